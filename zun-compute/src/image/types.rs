//! The image module's plain types: its configuration, the pull policy, an image as the rest of
//! the agent sees it, and the run configuration an image brings (with Kubernetes' rules for
//! combining it with a container's `command` and `args`). Pure: no I/O.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use super::error::ImageError;
use super::reference::ImageRef;

/// `[image]` of `zun-compute.toml`: where containerd is and how registries are reached.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// containerd's gRPC socket.
    pub containerd_socket: PathBuf,
    /// The containerd namespace that holds the agent's images and snapshots.
    pub namespace: String,
    /// The containerd snapshotter that unpacks images and holds rootfs snapshots.
    pub snapshotter: String,
    /// A directory of `<registry>/hosts.toml` files (containerd's `hosts.toml` shape) naming
    /// mirrors and the upstream server of each registry; `None` reaches every registry directly.
    pub certs_dir: Option<PathBuf>,
    /// Registries (`host` or `host:port`) reached over plain HTTP instead of HTTPS. Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `[::1]`) are always reached over plain HTTP.
    pub insecure_registries: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            containerd_socket: PathBuf::from("/opt/capsule/run/containerd/containerd.sock"),
            namespace: "capsule".into(),
            snapshotter: "overlayfs".into(),
            certs_dir: Some(PathBuf::from("/opt/capsule/etc/zun/certs.d")),
            insecure_registries: Vec::new(),
        }
    }
}

/// When an image is pulled from its registry (a container's `imagePullPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Pull on every create, even when the host has the image.
    Always,
    /// Pull only when the host does not have the image.
    #[default]
    IfNotPresent,
    /// Never pull: the image must already be on the host (imported or pulled before).
    Never,
}

impl FromStr for PullPolicy {
    type Err = ImageError;

    /// Parses `Always`, `IfNotPresent` or `Never`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("always") {
            Ok(Self::Always)
        } else if t.eq_ignore_ascii_case("ifnotpresent") {
            Ok(Self::IfNotPresent)
        } else if t.eq_ignore_ascii_case("never") {
            Ok(Self::Never)
        } else {
            Err(ImageError::InvalidPullPolicy {
                value: s.to_owned(),
            })
        }
    }
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        })
    }
}

impl PullPolicy {
    /// The policy of a container: `policy` when given (and not blank), else Kubernetes'
    /// default: `Always` for a reference tagged `:latest` or untagged, `IfNotPresent` for any
    /// other tag or a digest.
    pub fn for_reference(policy: Option<&str>, reference: &str) -> Result<Self, ImageError> {
        if let Some(p) = policy.filter(|p| !p.trim().is_empty()) {
            return p.parse();
        }
        let r = ImageRef::parse(reference)?;
        Ok(if r.tag() == Some("latest") {
            Self::Always
        } else {
            Self::IfNotPresent
        })
    }
}

/// An image on this host, unpacked and ready to back rootfs snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The normalized reference, e.g. `docker.io/library/busybox:latest`; containerd's image
    /// record name.
    pub name: String,
    /// Digest of the platform manifest (not of a multi-platform index).
    pub manifest_digest: String,
    /// Chain id of the top layer: the committed snapshot a rootfs is prepared from.
    pub chain_id: String,
    /// What the image runs by default.
    pub config: RunConfig,
}

/// What an image runs by default (its config's `config` section).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, `NAME=value` each.
    pub env: Vec<String>,
    /// `WorkingDir`, if set and not empty.
    pub working_dir: Option<String>,
    /// `User` (`name`, `uid`, `uid:gid`...), if set and not empty.
    pub user: Option<String>,
    /// `ExposedPorts`, e.g. `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
    /// `StopSignal`, if set (`SIGQUIT` for nginx): see [`signal_number`].
    pub stop_signal: Option<String>,
    /// The normalized name of the image this comes from (named by errors).
    pub image: String,
}

/// The number of signal `name` as an image's `StopSignal` names it (`SIGQUIT`, `QUIT`, `3`;
/// `SIGRTMIN+3`); `None` for what is no signal.
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        let base = libc::SIGRTMIN();
        let n = match rest.strip_prefix('+') {
            Some(k) => base + k.parse::<i32>().ok()?,
            None if rest.is_empty() => base,
            None => return None,
        };
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    format!("SIG{bare}")
        .parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

impl RunConfig {
    /// The container's argv, by Kubernetes' rules: the container's `command` replaces the
    /// image's entrypoint and drops its cmd; `args` replaces the image's cmd. An empty result
    /// is an error naming the image.
    pub fn process_args(
        &self,
        command: Option<&[String]>,
        args: Option<&[String]>,
    ) -> Result<Vec<String>, ImageError> {
        let argv: Vec<String> = match (command, args) {
            (Some(c), Some(a)) => c.iter().chain(a).cloned().collect(),
            (Some(c), None) => c.to_vec(),
            (None, Some(a)) => self.entrypoint.iter().chain(a).cloned().collect(),
            (None, None) => self.entrypoint.iter().chain(&self.cmd).cloned().collect(),
        };
        if argv.is_empty() {
            return Err(ImageError::NoCommand {
                image: if self.image.is_empty() {
                    "(unnamed)".into()
                } else {
                    self.image.clone()
                },
            });
        }
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn nginx() -> RunConfig {
        RunConfig {
            entrypoint: v(&["/docker-entrypoint.sh"]),
            cmd: v(&["nginx", "-g", "daemon off;"]),
            image: "docker.io/library/nginx:latest".into(),
            ..Default::default()
        }
    }

    #[test]
    fn process_args_follows_kubernetes() {
        let c = nginx();
        let cmd = v(&["/bin/sh", "-c"]);
        let args = v(&["echo hi"]);
        // Neither: entrypoint + cmd.
        assert_eq!(
            c.process_args(None, None).unwrap(),
            v(&["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"])
        );
        // command only: replaces the entrypoint and drops cmd.
        assert_eq!(c.process_args(Some(&cmd), None).unwrap(), cmd);
        // args only: entrypoint + args.
        assert_eq!(
            c.process_args(None, Some(&args)).unwrap(),
            v(&["/docker-entrypoint.sh", "echo hi"])
        );
        // Both: command + args.
        assert_eq!(
            c.process_args(Some(&cmd), Some(&args)).unwrap(),
            v(&["/bin/sh", "-c", "echo hi"])
        );
        // Empty args given explicitly: entrypoint only.
        assert_eq!(
            c.process_args(None, Some(&[])).unwrap(),
            v(&["/docker-entrypoint.sh"])
        );
    }

    #[test]
    fn stop_signals_by_name_or_number() {
        assert_eq!(signal_number("SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(signal_number("quit"), Some(libc::SIGQUIT));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number("0"), None);
    }

    #[test]
    fn process_args_without_entrypoint() {
        let c = RunConfig {
            cmd: v(&["sh"]),
            image: "docker.io/library/busybox:latest".into(),
            ..Default::default()
        };
        assert_eq!(c.process_args(None, None).unwrap(), v(&["sh"]));
        assert_eq!(
            c.process_args(None, Some(&v(&["ls", "/"]))).unwrap(),
            v(&["ls", "/"])
        );
    }

    #[test]
    fn empty_argv_is_an_error_naming_the_image() {
        let c = RunConfig {
            image: "docker.io/library/scratchy:1".into(),
            ..Default::default()
        };
        let e = c.process_args(None, None).unwrap_err();
        assert!(matches!(e, ImageError::NoCommand { .. }));
        assert!(
            e.to_string().contains("docker.io/library/scratchy:1"),
            "{e}"
        );
        let e = nginx().process_args(Some(&[]), None).unwrap_err();
        assert!(e.to_string().contains("nginx"), "{e}");
    }

    #[test]
    fn pull_policy_parses_in_any_case() {
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!(
            "IfNotPresent".parse::<PullPolicy>().unwrap(),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            "ifnotpresent".parse::<PullPolicy>().unwrap(),
            PullPolicy::IfNotPresent
        );
        assert_eq!("NEVER".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let e = "sometimes".parse::<PullPolicy>().unwrap_err();
        assert!(e.to_string().contains("\"sometimes\""), "{e}");
        assert!(e.to_string().contains("IfNotPresent"), "{e}");
        assert!("".parse::<PullPolicy>().is_err());
    }

    #[test]
    fn pull_policy_defaults_like_kubernetes() {
        use PullPolicy::*;
        let cases = [
            (None, "busybox", Always),
            (None, "busybox:latest", Always),
            (None, "127.0.0.1:5100/library/busybox", Always),
            (None, "busybox:1.36", IfNotPresent),
            (
                None,
                "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                IfNotPresent,
            ),
            (Some("Never"), "busybox", Never),
            (Some("always"), "busybox:1.36", Always),
            (Some(""), "busybox:1.36", IfNotPresent),
            (Some("IfNotPresent"), "busybox", IfNotPresent),
        ];
        for (p, r, want) in cases {
            assert_eq!(PullPolicy::for_reference(p, r).unwrap(), want, "{p:?} {r}");
        }
        assert!(PullPolicy::for_reference(Some("Sometimes"), "busybox").is_err());
        assert!(PullPolicy::for_reference(None, "Not A Reference").is_err());
    }

    #[test]
    fn config_defaults_match_the_host_layout() {
        let c: ImageConfig = toml::from_str("").unwrap();
        assert_eq!(c, ImageConfig::default());
        assert_eq!(
            c.containerd_socket,
            PathBuf::from("/opt/capsule/run/containerd/containerd.sock")
        );
        assert_eq!(c.namespace, "capsule");
        assert_eq!(c.snapshotter, "overlayfs");
        let c: ImageConfig =
            toml::from_str("namespace = \"x\"\ninsecure_registries = [\"r:5000\"]").unwrap();
        assert_eq!(c.namespace, "x");
        assert_eq!(c.insecure_registries, vec!["r:5000".to_string()]);
        assert!(toml::from_str::<ImageConfig>("nosuch = 1").is_err());
    }
}
