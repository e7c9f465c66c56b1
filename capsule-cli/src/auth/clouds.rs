//! `clouds.yaml` and `secure.yaml`: the named cloud's `auth` section, region and interface,
//! from the usual search paths (`./`, `$XDG_CONFIG_HOME/openstack/` or
//! `~/.config/openstack/`, `/etc/openstack/`), or `OS_CLIENT_CONFIG_FILE` (and
//! `OS_CLIENT_SECURE_FILE`) first.
//!
//! As in openstacksdk, the first `clouds` file that exists is read, the first `secure` file
//! that exists is deep-merged over it, and flags and `OS_*` variables override what the cloud
//! says.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::AuthArgs;
use crate::CliError;

/// The endings openstacksdk accepts for `clouds.*` and `secure.*`, in its order.
const SUFFIXES: [&str; 3] = ["yaml", "yml", "json"];

/// The directories searched, in order: the current directory, `$XDG_CONFIG_HOME/openstack`
/// (if set), `~/.config/openstack`, `/etc/openstack`.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd);
    }
    if let Some(x) = non_empty_var("XDG_CONFIG_HOME") {
        dirs.push(PathBuf::from(x).join("openstack"));
    }
    if let Some(home) = non_empty_var("HOME") {
        let d = PathBuf::from(home).join(".config").join("openstack");
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

/// The candidate files `<dir>/<stem>.{yaml,yml,json}` for each of `dirs`, with `first` (an
/// explicit file such as `OS_CLIENT_CONFIG_FILE`) in front.
pub fn candidates(stem: &str, first: Option<PathBuf>, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = first.into_iter().collect();
    for d in dirs {
        for s in SUFFIXES {
            files.push(d.join(format!("{stem}.{s}")));
        }
    }
    files
}

/// An environment variable, if set and not empty.
pub(crate) fn non_empty_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The settings of cloud `name`: the first existing file of `clouds` with the first existing
/// file of `secure` merged over it. Only the fields the cloud sets are `Some`.
pub fn load_cloud(
    name: &str,
    clouds: &[PathBuf],
    secure: &[PathBuf],
) -> Result<AuthArgs, CliError> {
    let main = first_existing(clouds)?;
    let sec = first_existing(secure)?;
    let mut all = main
        .as_ref()
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Mapping(Mapping::new()));
    if let Some((_, v)) = &sec {
        deep_merge(&mut all, v);
    }
    let known = all.get("clouds").and_then(Value::as_mapping);
    if let Some(cloud) = known.and_then(|m| m.get(name)) {
        return Ok(from_cloud(cloud));
    }
    let searched = clouds
        .iter()
        .chain(secure)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let read: Vec<String> = main
        .iter()
        .chain(sec.iter())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if read.is_empty() {
        return Err(CliError::Usage(format!(
            "cloud \"{name}\" not found: there is no clouds.yaml (searched {searched})"
        )));
    }
    let names: Vec<String> = known
        .map(|m| m.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    let names = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    Err(CliError::Usage(format!(
        "cloud \"{name}\" not found in {} (clouds there: {names}; searched {searched})",
        read.join(" or ")
    )))
}

/// Fields of `flags` override those of `cloud`. An identity given by name or id (user, user
/// domain, project, project domain, application credential) replaces the cloud's whole pair,
/// so `--os-project-name` is not shadowed by the cloud's `project_id`.
pub fn overlay(flags: &AuthArgs, cloud: AuthArgs) -> AuthArgs {
    fn one(f: &Option<String>, c: Option<String>) -> Option<String> {
        f.clone().or(c)
    }
    fn pair(
        f: (&Option<String>, &Option<String>),
        c: (Option<String>, Option<String>),
    ) -> (Option<String>, Option<String>) {
        if f.0.is_some() || f.1.is_some() {
            (f.0.clone(), f.1.clone())
        } else {
            c
        }
    }
    let (username, user_id) = pair(
        (&flags.username, &flags.user_id),
        (cloud.username, cloud.user_id),
    );
    let (user_domain_name, user_domain_id) = pair(
        (&flags.user_domain_name, &flags.user_domain_id),
        (cloud.user_domain_name, cloud.user_domain_id),
    );
    let (project_name, project_id) = pair(
        (&flags.project_name, &flags.project_id),
        (cloud.project_name, cloud.project_id),
    );
    let (project_domain_name, project_domain_id) = pair(
        (&flags.project_domain_name, &flags.project_domain_id),
        (cloud.project_domain_name, cloud.project_domain_id),
    );
    let (application_credential_name, application_credential_id) = pair(
        (
            &flags.application_credential_name,
            &flags.application_credential_id,
        ),
        (
            cloud.application_credential_name,
            cloud.application_credential_id,
        ),
    );
    AuthArgs {
        cloud: flags.cloud.clone(),
        auth_url: one(&flags.auth_url, cloud.auth_url),
        auth_type: one(&flags.auth_type, cloud.auth_type),
        username,
        user_id,
        password: one(&flags.password, cloud.password),
        user_domain_name,
        user_domain_id,
        project_name,
        project_id,
        project_domain_name,
        project_domain_id,
        application_credential_id,
        application_credential_name,
        application_credential_secret: one(
            &flags.application_credential_secret,
            cloud.application_credential_secret,
        ),
        token: one(&flags.token, cloud.token),
        region_name: one(&flags.region_name, cloud.region_name),
        interface: one(&flags.interface, cloud.interface),
        endpoint: one(&flags.endpoint, cloud.endpoint),
        access_token: one(&flags.access_token, cloud.access_token),
        discovery_endpoint: one(&flags.discovery_endpoint, cloud.discovery_endpoint),
        client_id: one(&flags.client_id, cloud.client_id),
        client_secret: one(&flags.client_secret, cloud.client_secret),
        openid_scope: one(&flags.openid_scope, cloud.openid_scope),
        oidc_audience: one(&flags.oidc_audience, cloud.oidc_audience),
    }
}

/// Reads the first of `files` that exists and can be read (openstacksdk skips unreadable ones
/// too); a file that is not YAML is an error naming it.
fn first_existing(files: &[PathBuf]) -> Result<Option<(PathBuf, Value)>, CliError> {
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(text) => return parse(f, &text).map(|v| Some((f.clone(), v))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) => {}
            Err(e) => return Err(CliError::Usage(format!("cannot read {}: {e}", f.display()))),
        }
    }
    Ok(None)
}

fn parse(path: &Path, text: &str) -> Result<Value, CliError> {
    let v: Value = serde_yaml::from_str(text)
        .map_err(|e| CliError::Usage(format!("{} is not valid YAML: {e}", path.display())))?;
    Ok(match v {
        Value::Null => Value::Mapping(Mapping::new()),
        v => v,
    })
}

/// Merges `over` into `base`: mappings key by key, anything else replaced.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A scalar as text (YAML reads `password: 1234` as a number); empty is unset.
fn scalar(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// One cloud's entry as `AuthArgs`.
fn from_cloud(cloud: &Value) -> AuthArgs {
    let auth = cloud.get("auth");
    let a = |k: &str| auth.and_then(|m| m.get(k)).and_then(scalar);
    let top = |k: &str| cloud.get(k).and_then(scalar);
    // `regions: [RegionOne]` or `regions: [{name: RegionOne}]`: the first is the default.
    let first_region = cloud
        .get("regions")
        .and_then(Value::as_sequence)
        .and_then(|s| s.first())
        .and_then(|r| scalar(r).or_else(|| r.get("name").and_then(scalar)));
    AuthArgs {
        cloud: None,
        auth_url: a("auth_url"),
        auth_type: top("auth_type"),
        username: a("username"),
        user_id: a("user_id"),
        password: a("password"),
        // openstacksdk lets `domain_name`/`domain_id` stand for both domains.
        user_domain_name: a("user_domain_name").or_else(|| a("domain_name")),
        user_domain_id: a("user_domain_id").or_else(|| a("domain_id")),
        project_name: a("project_name").or_else(|| a("tenant_name")),
        project_id: a("project_id").or_else(|| a("tenant_id")),
        project_domain_name: a("project_domain_name").or_else(|| a("domain_name")),
        project_domain_id: a("project_domain_id").or_else(|| a("domain_id")),
        application_credential_id: a("application_credential_id"),
        application_credential_name: a("application_credential_name"),
        application_credential_secret: a("application_credential_secret"),
        token: a("token"),
        region_name: top("region_name").or(first_region),
        interface: top("interface"),
        endpoint: top("container_endpoint_override"),
        // keystoneauth's v3oidcaccesstoken and v3oidcclientcredentials option names.
        access_token: a("access_token"),
        discovery_endpoint: a("discovery_endpoint"),
        client_id: a("client_id"),
        client_secret: a("client_secret"),
        openid_scope: a("openid_scope"),
        oidc_audience: a("audience"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_is_merged_over_clouds_and_numbers_are_text() {
        let mut base: Value =
            serde_yaml::from_str("clouds: {c: {auth: {username: u, password: x}, region_name: R}}")
                .unwrap();
        let over: Value = serde_yaml::from_str("clouds: {c: {auth: {password: 1234}}}").unwrap();
        deep_merge(&mut base, &over);
        let c = from_cloud(&base["clouds"]["c"]);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("1234"));
        assert_eq!(c.region_name.as_deref(), Some("R"));
    }

    #[test]
    fn a_flag_replaces_the_clouds_whole_pair() {
        let cloud = AuthArgs {
            project_id: Some("p-id".into()),
            username: Some("u".into()),
            ..Default::default()
        };
        let flags = AuthArgs {
            project_name: Some("demo".into()),
            ..Default::default()
        };
        let m = overlay(&flags, cloud);
        assert_eq!(m.project_name.as_deref(), Some("demo"));
        assert_eq!(m.project_id, None);
        assert_eq!(m.username.as_deref(), Some("u"));
    }
}
