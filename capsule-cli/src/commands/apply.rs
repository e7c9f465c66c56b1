//! `apply -f FILE`: make the named capsule be this template. Creates it if no capsule has the
//! name; does nothing if it was made from the same template; with `--replace`, deletes and
//! recreates it when the template changed. The template's hash travels in an annotation.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::template::Loaded;
use super::{create, segment, wait, ShowArgs, WaitArgs};
use crate::client::Client;
use crate::CliError;

/// The annotation holding the SHA-256 of the template `apply` created the capsule from.
pub const HASH_ANNOTATION: &str = "capsule.openstack.org/template-sha256";

/// `apply` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The capsule template, YAML or JSON (`-` reads stdin); it must have `metadata.name`.
    #[arg(short = 'f', long = "file")]
    pub file: String,
    /// If the capsule exists with another template, delete it and create it anew.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    #[command(flatten)]
    pub(crate) show: ShowArgs,
}

/// Runs it with the template `t` read from `args.file` and validated (before any request).
pub fn run(client: &Client, args: &Args, t: &Loaded) -> Result<(), CliError> {
    let mut t = t.clone();
    let name = t
        .name()
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "{}: apply needs metadata.name to find the capsule again",
                t.source
            ))
        })?
        .to_owned();
    let hash = template_hash(&t.value);
    let existing = match client.get(&format!("/capsules/{}", segment(&name))) {
        Ok(c) => Some(c),
        Err(CliError::Api { status: 404, .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(c) = existing {
        let id = c["uuid"].as_str().unwrap_or(&name).to_owned();
        if c["annotations"][HASH_ANNOTATION].as_str() == Some(hash.as_str()) {
            eprintln!("capsule {name} ({id}) is up to date");
            return create::finish(client, c, args.wait, &args.show);
        }
        if !args.replace {
            return Err(CliError::Failed(format!(
                "capsule {name} ({id}) exists and was not made from this template; \
                 --replace deletes and recreates it"
            )));
        }
        eprintln!("capsule {name} ({id}) differs: replacing it");
        client.delete(&format!("/capsules/{}", segment(&id)))?;
        wait::until_gone(client, &id, Duration::from_secs(args.wait.wait_timeout))?;
    }
    annotate(&mut t.value, &hash);
    let created = create::create(client, &t.value)?;
    create::finish(client, created, args.wait, &args.show)
}

/// SHA-256 of the template's canonical JSON (keys sorted, its own hash annotation left out).
pub fn template_hash(template: &Value) -> String {
    let mut v = template.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove(HASH_ANNOTATION);
            // `annotate` may have made the map just for the hash.
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    hex::encode(Sha256::digest(canonical(&v).as_bytes()))
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn annotate(template: &mut Value, hash: &str) {
    let meta = &mut template["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = Value::Object(Default::default());
    }
    meta["annotations"][HASH_ANNOTATION] = Value::String(hash.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_ignores_key_order_and_its_own_annotation() {
        let a = json!({"kind": "capsule", "metadata": {"name": "x"}, "spec": {"containers": [{"image": "busybox"}]}});
        let b = json!({"spec": {"containers": [{"image": "busybox"}]}, "metadata": {"name": "x"}, "kind": "capsule"});
        assert_eq!(template_hash(&a), template_hash(&b));
        let mut c = a.clone();
        annotate(&mut c, &template_hash(&a));
        assert_eq!(template_hash(&c), template_hash(&a));
        let d = json!({"kind": "capsule", "metadata": {"name": "x"}, "spec": {"containers": [{"image": "nginx"}]}});
        assert_ne!(template_hash(&a), template_hash(&d));
        // Order inside a list matters.
        let e = json!([1, 2]);
        let f = json!([2, 1]);
        assert_ne!(template_hash(&e), template_hash(&f));
    }
}
