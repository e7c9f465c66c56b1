//! Which hosts serve a registry, in the order to try them: the `[host."URL"]` entries of
//! `<certs_dir>/<registry>/hosts.toml` (else `<certs_dir>/_default/hosts.toml`) that may pull
//! (and resolve tags), then its `server` (by default the registry itself; `docker.io` is
//! `https://registry-1.docker.io`). The file has containerd's `hosts.toml` shape; keys this
//! module does not use (`header`, `client`, ...) are ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::ImageError;
use super::types::ImageConfig;

/// One host that serves a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegistryHost {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host[:port]`.
    pub authority: String,
    /// Accept any TLS certificate.
    pub skip_verify: bool,
    /// Extra CA certificates (PEM files).
    pub ca: Vec<PathBuf>,
}

impl RegistryHost {
    /// `scheme://authority`, as named in messages.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// A key for caching a registry client of this host.
    pub fn client_key(&self) -> String {
        format!("{}|{}|{:?}", self.url(), self.skip_verify, self.ca)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HostsFile {
    server: Option<String>,
    skip_verify: Option<bool>,
    ca: Option<OneOrMany>,
    host: OrderedHosts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HostEntry {
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        let v: Vec<&String> = match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v.iter().collect(),
        };
        v.into_iter().map(|p| dir.join(p)).collect()
    }
}

/// `[host."URL"]` tables in file order (a map would sort them).
#[derive(Debug, Default)]
struct OrderedHosts(Vec<(String, HostEntry)>);

impl<'de> Deserialize<'de> for OrderedHosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedHosts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of hosts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, e)) = m.next_entry::<String, HostEntry>()? {
                    v.push((k, e));
                }
                Ok(OrderedHosts(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether `authority` is on this host (docker treats those registries as insecure).
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The default server of `registry`.
fn default_server(registry: &str) -> String {
    if registry == "docker.io" {
        "registry-1.docker.io".into()
    } else {
        registry.into()
    }
}

/// Parses a host URL (`scheme://host[:port][/v2]`) into scheme and authority.
fn parse_url(
    url: &str,
    path: &Path,
    insecure: &[String],
) -> Result<(&'static str, String), ImageError> {
    let bad = |reason: String| ImageError::HostsConfig {
        path: path.to_owned(),
        reason,
    };
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", r)) => ("http", r),
        Some(("https", r)) => ("https", r),
        Some((s, _)) => return Err(bad(format!("host {url:?}: unsupported scheme {s:?}"))),
        None => ("https", url),
    };
    let (authority, p) = rest.split_once('/').unwrap_or((rest, ""));
    let p = p.trim_end_matches('/');
    if !(p.is_empty() || p == "v2") {
        return Err(bad(format!(
            "host {url:?}: path prefixes other than /v2 are not supported"
        )));
    }
    if authority.is_empty() {
        return Err(bad(format!("host {url:?} names no host")));
    }
    let scheme = if insecure.iter().any(|i| i == authority) {
        "http"
    } else {
        scheme
    };
    Ok((scheme, authority.to_owned()))
}

/// The hosts to try for `registry`, in order. `resolve` asks for hosts that may resolve tags
/// (a reference without a digest); otherwise `pull` capability is enough.
pub(crate) fn hosts_for(
    cfg: &ImageConfig,
    registry: &str,
    resolve: bool,
) -> Result<Vec<RegistryHost>, ImageError> {
    let file = cfg.certs_dir.as_ref().and_then(|dir| {
        [registry, "_default"]
            .iter()
            .map(|d| dir.join(d).join("hosts.toml"))
            .find(|p| p.is_file())
    });
    let insecure = &cfg.insecure_registries;
    let Some(path) = file else {
        let authority = default_server(registry);
        let scheme = if is_loopback(&authority) || insecure.contains(&authority) {
            "http"
        } else {
            "https"
        };
        return Ok(vec![RegistryHost {
            scheme,
            authority,
            skip_verify: false,
            ca: vec![],
        }]);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ImageError::HostsConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse_hosts(&text, &path, registry, resolve, insecure)
}

fn parse_hosts(
    text: &str,
    path: &Path,
    registry: &str,
    resolve: bool,
    insecure: &[String],
) -> Result<Vec<RegistryHost>, ImageError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let f: HostsFile = toml::from_str(text).map_err(|e| ImageError::HostsConfig {
        path: path.to_owned(),
        reason: e.message().to_owned(),
    })?;
    let mut out: Vec<RegistryHost> = Vec::new();
    for (url, e) in &f.host.0 {
        let caps = e
            .capabilities
            .clone()
            .unwrap_or_else(|| vec!["pull".into(), "resolve".into(), "push".into()]);
        let can = |c: &str| caps.iter().any(|x| x == c);
        if !can("pull") || (resolve && !can("resolve")) {
            continue;
        }
        let (scheme, authority) = parse_url(url, path, insecure)?;
        out.push(RegistryHost {
            scheme,
            authority,
            skip_verify: e.skip_verify.unwrap_or(false),
            ca: e.ca.as_ref().map(|c| c.paths(dir)).unwrap_or_default(),
        });
    }
    let server = match &f.server {
        Some(s) => parse_url(s, path, insecure)?,
        None => {
            let a = default_server(registry);
            let scheme = if is_loopback(&a) || insecure.contains(&a) {
                "http"
            } else {
                "https"
            };
            (scheme, a)
        }
    };
    let server = RegistryHost {
        scheme: server.0,
        authority: server.1,
        skip_verify: f.skip_verify.unwrap_or(false),
        ca: f.ca.as_ref().map(|c| c.paths(dir)).unwrap_or_default(),
    };
    if !out.iter().any(|h| h.url() == server.url()) {
        out.push(server);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(h: &[RegistryHost]) -> Vec<String> {
        h.iter().map(RegistryHost::url).collect()
    }

    const MIRROR: &str = r#"
server = "https://registry-1.docker.io"

[host."http://127.0.0.1:5100"]
  capabilities = ["pull", "resolve"]
"#;

    #[test]
    fn mirrors_then_server() {
        let p = Path::new("/etc/certs.d/docker.io/hosts.toml");
        let h = parse_hosts(MIRROR, p, "docker.io", true, &[]).unwrap();
        assert_eq!(
            urls(&h),
            ["http://127.0.0.1:5100", "https://registry-1.docker.io"]
        );
    }

    #[test]
    fn keeps_file_order_and_capabilities() {
        let text = r#"
server = "https://z.example"
[host."https://zz.example"]
  capabilities = ["pull", "resolve"]
[host."https://aa.example"]
  capabilities = ["pull"]
  skip_verify = true
[host."https://mm.example/v2"]
  capabilities = ["pull", "resolve"]
  ca = "mm.pem"
[host."https://push.example"]
  capabilities = ["push"]
"#;
        let p = Path::new("/c/r.example/hosts.toml");
        let tags = parse_hosts(text, p, "r.example", true, &[]).unwrap();
        assert_eq!(
            urls(&tags),
            [
                "https://zz.example",
                "https://mm.example",
                "https://z.example"
            ]
        );
        assert_eq!(tags[1].ca, [PathBuf::from("/c/r.example/mm.pem")]);
        let digests = parse_hosts(text, p, "r.example", false, &[]).unwrap();
        assert_eq!(
            urls(&digests),
            [
                "https://zz.example",
                "https://aa.example",
                "https://mm.example",
                "https://z.example"
            ]
        );
        assert!(digests[1].skip_verify);
    }

    #[test]
    fn server_equal_to_a_host_is_tried_once() {
        let text = r#"
server = "http://127.0.0.1:5100"
[host."http://127.0.0.1:5100"]
  capabilities = ["pull", "resolve", "push"]
"#;
        let p = Path::new("/c/127.0.0.1:5100/hosts.toml");
        let h = parse_hosts(text, p, "127.0.0.1:5100", true, &[]).unwrap();
        assert_eq!(urls(&h), ["http://127.0.0.1:5100"]);
    }

    #[test]
    fn defaults_without_a_file() {
        let cfg = ImageConfig {
            certs_dir: None,
            insecure_registries: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        let u = |r: &str| urls(&hosts_for(&cfg, r, true).unwrap());
        assert_eq!(u("docker.io"), ["https://registry-1.docker.io"]);
        assert_eq!(u("quay.io"), ["https://quay.io"]);
        assert_eq!(u("127.0.0.1:5100"), ["http://127.0.0.1:5100"]);
        assert_eq!(u("localhost:5000"), ["http://localhost:5000"]);
        assert_eq!(u("reg.lan:5000"), ["http://reg.lan:5000"]);
        // No server line: the registry itself.
        let h = parse_hosts(
            "",
            Path::new("/c/docker.io/hosts.toml"),
            "docker.io",
            true,
            &[],
        )
        .unwrap();
        assert_eq!(urls(&h), ["https://registry-1.docker.io"]);
    }

    #[test]
    fn insecure_registries_use_http() {
        let p = Path::new("/c/hosts.toml");
        let text = "server = \"https://reg.lan:5000\"";
        let h = parse_hosts(text, p, "reg.lan:5000", true, &["reg.lan:5000".into()]).unwrap();
        assert_eq!(urls(&h), ["http://reg.lan:5000"]);
    }

    #[test]
    fn bad_files_name_the_file() {
        let p = Path::new("/c/x/hosts.toml");
        let e = parse_hosts("server = [", p, "x", true, &[]).unwrap_err();
        assert!(e.to_string().contains("/c/x/hosts.toml"), "{e}");
        let e = parse_hosts("[host.\"ftp://a\"]", p, "x", true, &[]).unwrap_err();
        assert!(e.to_string().contains("unsupported scheme"), "{e}");
        let e = parse_hosts("[host.\"https://a/b/c\"]", p, "x", true, &[]).unwrap_err();
        assert!(e.to_string().contains("path prefixes"), "{e}");
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5100"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry-1.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
