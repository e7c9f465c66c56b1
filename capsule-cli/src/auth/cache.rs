//! Token reuse: one JSON file per set of credentials in `$XDG_CACHE_HOME/capsule/` (or
//! `~/.cache/capsule/`), holding the token, its expiry and the endpoint found with it. Files
//! are 0600 in a 0700 directory; the name is a SHA-256 of everything that selects the token,
//! including a hash of the secret, so a changed password never reuses an old token.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keystone::Method;
use super::AuthArgs;

/// A token is reused only while it has more than this many seconds left.
pub const MIN_SECONDS_LEFT: i64 = 60;

/// One cached token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The token.
    pub token: String,
    /// When Keystone said it expires.
    pub expires_at: DateTime<Utc>,
    /// The catalog's `container` endpoint found with it, if there was one.
    pub endpoint: Option<String>,
}

/// The default cache directory: `$XDG_CACHE_HOME/capsule` or `~/.cache/capsule`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(x) = super::clouds::non_empty_var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("capsule"));
    }
    super::clouds::non_empty_var("HOME").map(|h| PathBuf::from(h).join(".cache").join("capsule"))
}

/// The cache file for these (merged) credentials.
pub fn path(
    dir: &Path,
    args: &AuthArgs,
    method: Method,
    auth_url: &str,
    interface: &str,
) -> PathBuf {
    let secret = match method {
        Method::Password => args.password.as_deref(),
        Method::ApplicationCredential => args.application_credential_secret.as_deref(),
        Method::Token => args.token.as_deref(),
    }
    .unwrap_or_default();
    let fields = [
        Some("capsule-token-cache/1"),
        Some(auth_url),
        Some(method.name()),
        args.user_id.as_deref(),
        args.username.as_deref(),
        args.user_domain_id.as_deref(),
        args.user_domain_name.as_deref(),
        args.project_id.as_deref(),
        args.project_name.as_deref(),
        args.project_domain_id.as_deref(),
        args.project_domain_name.as_deref(),
        args.application_credential_id.as_deref(),
        args.application_credential_name.as_deref(),
        args.region_name.as_deref(),
        Some(interface),
        Some(&hex::encode(Sha256::digest(secret.as_bytes()))),
    ];
    // JSON keeps the fields apart: ("ab", "c") and ("a", "bc") differ.
    let key = serde_json::to_string(&fields).unwrap_or_default();
    dir.join(format!(
        "token-{}.json",
        hex::encode(Sha256::digest(key.as_bytes()))
    ))
}

/// The entry at `path` if it exists, parses and has more than [`MIN_SECONDS_LEFT`] left.
pub fn load(path: &Path) -> Option<Entry> {
    let text = std::fs::read_to_string(path).ok()?;
    let e: Entry = serde_json::from_str(&text).ok()?;
    let left = e.expires_at - Utc::now();
    (left.num_seconds() > MIN_SECONDS_LEFT && !e.token.is_empty()).then_some(e)
}

/// Writes `entry` to `path` atomically (a 0600 temporary file renamed over it), creating the
/// directory 0700.
pub fn store(path: &Path, entry: &Entry) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the cache file has no directory"))?;
    make_private_dir(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(serde_json::to_string(entry)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Deletes the entry at `path`, if any.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    match b.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Tighten a directory made by hand; not ours to fail on if we cannot.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
