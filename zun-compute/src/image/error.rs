//! Why an image operation failed, in words a user can act on: each message names the image,
//! digest, host or path concerned, and becomes a capsule's `status_reason`.

use std::error::Error as _;
use std::path::PathBuf;

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// An image operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not an image reference.
    #[error("invalid image reference {reference:?}")]
    InvalidReference {
        /// As given.
        reference: String,
        /// Why.
        #[source]
        source: oci_client::ParseError,
    },
    /// Not a pull policy.
    #[error("invalid imagePullPolicy {value:?}: expected Always, IfNotPresent or Never")]
    InvalidPullPolicy {
        /// As given.
        value: String,
    },
    /// `Never` and the host lacks the image.
    #[error("image {reference} is not on this host and imagePullPolicy is Never")]
    NotPresent {
        /// The normalized reference.
        reference: String,
    },
    /// No host of the image's registry could resolve it.
    #[error("{}", unavailable(reference, attempts))]
    Unavailable {
        /// The normalized reference.
        reference: String,
        /// Every host tried, in order, and why it failed.
        attempts: Vec<PullAttempt>,
    },
    /// A host resolved the image but then failed to serve part of it.
    #[error("cannot pull image {reference}: cannot fetch {what} {digest} from {host}")]
    Fetch {
        /// The normalized reference.
        reference: String,
        /// The host (`scheme://host:port`).
        host: String,
        /// `manifest`, `config` or `layer`.
        what: &'static str,
        /// The blob's digest.
        digest: String,
        /// Why.
        #[source]
        source: Box<OciDistributionError>,
    },
    /// The image's manifest or config is unusable (no linux platform, bad JSON, missing
    /// content, wrong diff id...).
    #[error("image {reference} is not usable: {reason}")]
    Invalid {
        /// The normalized reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The image runs nothing by default and the container names no command.
    #[error("image {image} has neither an entrypoint nor a command: the container must set command or args")]
    NoCommand {
        /// The normalized reference.
        image: String,
    },
    /// containerd's socket does not answer.
    #[error("cannot connect to containerd at {}", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: containerd_client::tonic::transport::Error,
    },
    /// A containerd call failed.
    #[error("containerd cannot {action}: {message}")]
    Containerd {
        /// What was asked, naming the object (image, digest, snapshot key).
        action: String,
        /// containerd's status code.
        code: containerd_client::tonic::Code,
        /// containerd's message.
        message: String,
    },
    /// A `hosts.toml` is unusable.
    #[error("invalid registry host configuration {}: {reason}", path.display())]
    HostsConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image archive is not an OCI layout nor a `docker save` tar.
    #[error("{} is not a usable image archive: {reason}", path.display())]
    ArchiveFormat {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was tried (`read`, `create`, `remove`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Mounting a rootfs failed.
    #[error("cannot mount the rootfs of snapshot {key} on {} ({fstype} mount)", target.display())]
    Mount {
        /// The snapshot key.
        key: String,
        /// The mount point.
        target: PathBuf,
        /// The filesystem type.
        fstype: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// Unmounting a rootfs failed.
    #[error("cannot unmount {}", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// A rootfs snapshot key is taken by a snapshot of another image.
    #[error("snapshot {key} belongs to another image (parent {found}, want {wanted}) and is mounted on {}", target.display())]
    SnapshotConflict {
        /// The snapshot key.
        key: String,
        /// Its parent.
        found: String,
        /// The image's chain id.
        wanted: String,
        /// The mount point.
        target: PathBuf,
    },
}

impl ImageError {
    /// The message with every underlying cause, `": "`-separated: for logs and status
    /// reasons.
    pub fn reason(&self) -> String {
        let mut s = self.to_string();
        let mut cur = self.source();
        while let Some(e) = cur {
            let m = e.to_string();
            if !s.ends_with(&m) {
                s.push_str(": ");
                s.push_str(&m);
            }
            cur = e.source();
        }
        s
    }

    /// Whether the image does not exist on any host tried (as opposed to a host being down).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Unavailable { attempts, .. } => {
                !attempts.is_empty()
                    && attempts
                        .iter()
                        .all(|a| matches!(a.failure, AttemptFailure::NotFound))
            }
            Self::NotPresent { .. } => true,
            _ => false,
        }
    }
}

/// One host tried for an image, and how it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullAttempt {
    /// `scheme://host:port`.
    pub host: String,
    /// How it failed.
    pub failure: AttemptFailure,
}

/// How a host failed to resolve an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The host answered that it does not have the image.
    NotFound,
    /// The host refused anonymous access.
    Denied(String),
    /// The host could not be reached.
    Unreachable(String),
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for PullAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            AttemptFailure::NotFound => write!(f, "{}: not found", self.host),
            AttemptFailure::Denied(m) => write!(f, "{}: access denied ({m})", self.host),
            AttemptFailure::Unreachable(m) => write!(f, "{}: unreachable ({m})", self.host),
            AttemptFailure::Other(m) => write!(f, "{}: {m}", self.host),
        }
    }
}

fn unavailable(reference: &str, attempts: &[PullAttempt]) -> String {
    if attempts.is_empty() {
        return format!("cannot pull image {reference}: no registry host is configured for it");
    }
    let hosts: Vec<&str> = attempts.iter().map(|a| a.host.as_str()).collect();
    if attempts
        .iter()
        .all(|a| a.failure == AttemptFailure::NotFound)
    {
        return format!(
            "cannot pull image {reference}: not found in any of {}",
            hosts.join(", ")
        );
    }
    let each: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    format!("cannot pull image {reference}: {}", each.join("; "))
}

impl AttemptFailure {
    /// Classifies a registry client error.
    pub(crate) fn of(e: &OciDistributionError) -> Self {
        use OciDistributionError as E;
        match e {
            E::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    Self::NotFound
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    Self::Denied(message)
                } else {
                    Self::Other(message)
                }
            }
            E::ServerError { code: 404, .. } | E::ImageManifestNotFoundError(_) => Self::NotFound,
            E::ServerError {
                code: 401 | 403,
                message,
                ..
            } => Self::Denied(message.trim().to_owned()),
            E::ServerError { code, message, .. } => {
                Self::Other(format!("HTTP {code}: {}", message.trim()))
            }
            E::UnauthorizedError { .. } => Self::Denied("authentication required".into()),
            E::AuthenticationFailure(m) => Self::Denied(m.trim().to_owned()),
            E::RequestError(r) => Self::Unreachable(deepest(r)),
            other => Self::Other(other.to_string()),
        }
    }
}

/// The innermost cause's message (e.g. "Connection refused (os error 111)").
fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// Maps a containerd status to [`ImageError::Containerd`], naming the `action`.
pub(crate) fn ctd(
    action: impl Into<String>,
) -> impl FnOnce(containerd_client::tonic::Status) -> ImageError {
    move |s| ImageError::Containerd {
        action: action.into(),
        code: s.code(),
        message: s.message().to_owned(),
    }
}

/// Maps an I/O error to [`ImageError::Io`].
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    move |source| ImageError::Io {
        action,
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(host: &str, failure: AttemptFailure) -> PullAttempt {
        PullAttempt {
            host: host.into(),
            failure,
        }
    }

    #[test]
    fn unavailable_lists_every_host() {
        let e = ImageError::Unavailable {
            reference: "docker.io/library/nosuch:latest".into(),
            attempts: vec![
                a("http://127.0.0.1:5100", AttemptFailure::NotFound),
                a("https://registry-1.docker.io", AttemptFailure::NotFound),
            ],
        };
        assert_eq!(
            e.to_string(),
            "cannot pull image docker.io/library/nosuch:latest: not found in any of \
             http://127.0.0.1:5100, https://registry-1.docker.io"
        );
        assert!(e.is_not_found());
        let e = ImageError::Unavailable {
            reference: "docker.io/library/nosuch:latest".into(),
            attempts: vec![
                a("http://127.0.0.1:5100", AttemptFailure::NotFound),
                a(
                    "https://registry-1.docker.io",
                    AttemptFailure::Unreachable("dns error".into()),
                ),
            ],
        };
        assert_eq!(
            e.to_string(),
            "cannot pull image docker.io/library/nosuch:latest: http://127.0.0.1:5100: not \
             found; https://registry-1.docker.io: unreachable (dns error)"
        );
        assert!(!e.is_not_found());
    }

    #[test]
    fn reason_joins_causes_once() {
        let e = ImageError::Io {
            action: "read",
            path: "/x".into(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(e.reason(), "cannot read /x: boom");
    }
}
