//! A small parser for container image references (`[host[:port]/]path[:tag][@algo:hex]`).
//!
//! The grammar is the one of the `distribution/reference` package that Docker, containerd and
//! podman share, written out by hand (no regex crate):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*
//! domain     := host [ ":" port ]          host := label ( "." label )* | "[" ipv6 "]"
//! component  := alnum ( separator alnum )*  alnum := [a-z0-9]+
//! separator  := "." | "_" | "__" | "-"+
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" [0-9a-fA-F]{32,}
//! algorithm  := [A-Za-z][A-Za-z0-9]* ( [+._-] [A-Za-z][A-Za-z0-9]* )*
//! ```
//!
//! The first `/`-separated part is a domain when it contains `.` or `:`, is `localhost`, or has
//! an upper-case letter (the same rule as Docker's `splitDockerDomain`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest image reference accepted (Zun's schema bound for `image`).
pub const MAX_IMAGE_REF_LEN: usize = 255;

/// Longest tag accepted.
const MAX_TAG_LEN: usize = 128;

/// Fewest hex digits in a digest.
const MIN_DIGEST_HEX: usize = 32;

/// A parsed image reference, e.g. `registry.local:5000/team/app:1.2@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageReference {
    /// Registry host with optional port (`registry.local:5000`), when the reference names one.
    pub domain: Option<String>,
    /// Repository path (`team/app`, or `nginx`), never empty.
    pub path: String,
    /// Tag (`1.2`), when given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), when given.
    pub digest: Option<String>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The string is empty.
    #[error("is empty")]
    Empty,
    /// The string is longer than [`MAX_IMAGE_REF_LEN`] bytes.
    #[error("is longer than {MAX_IMAGE_REF_LEN} characters")]
    TooLong,
    /// The string holds whitespace, control or non-ASCII characters.
    #[error("must contain only printable ASCII characters")]
    InvalidCharacter,
    /// The registry host or port is malformed.
    #[error("has an invalid registry host or port")]
    InvalidDomain,
    /// A repository path component is empty or not lowercase `[a-z0-9]` with `.`/`_`/`-`
    /// separators.
    #[error(
        "has an invalid repository name (lowercase letters, digits and single . _ - separators)"
    )]
    InvalidPath,
    /// The tag is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("has an invalid tag")]
    InvalidTag,
    /// The digest is not `algorithm:hex` with at least 32 hex digits.
    #[error("has an invalid digest")]
    InvalidDigest,
}

impl ImageReference {
    /// Parses `s`, checking the whole grammar.
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if s.len() > MAX_IMAGE_REF_LEN {
            return Err(ImageRefError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ImageRefError::InvalidCharacter);
        }
        // All bytes are ASCII from here on, so byte offsets are char boundaries.
        let (name_tag, digest) = match s.split_once('@') {
            Some((before, after)) => {
                check_digest(after)?;
                (before, Some(after.to_owned()))
            }
            None => (s, None),
        };
        let last_part_start = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_part_start..].find(':') {
            Some(colon) => {
                let at = last_part_start + colon;
                let tag = &name_tag[at + 1..];
                check_tag(tag)?;
                (&name_tag[..at], Some(tag.to_owned()))
            }
            None => (name_tag, None),
        };
        let (domain, path) = split_domain(name);
        if let Some(domain) = domain {
            check_domain(domain)?;
        }
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return Err(ImageRefError::InvalidPath);
        }
        Ok(Self {
            domain: domain.map(str::to_owned),
            path: path.to_owned(),
            tag,
            digest,
        })
    }
}

impl FromStr for ImageReference {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits `name` into its optional domain and its path, by Docker's rule.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]` where host is dotted DNS labels or a bracketed IPv6 address.
fn check_domain(domain: &str) -> Result<(), ImageRefError> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or(ImageRefError::InvalidDomain)?;
        let addr_ok = addr.contains(':')
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !addr_ok {
            return Err(ImageRefError::InvalidDomain);
        }
        match after {
            "" => (None, None),
            _ => (
                None,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(ImageRefError::InvalidDomain)?,
                ),
            ),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() || !host.split('.').all(is_domain_label) {
            return Err(ImageRefError::InvalidDomain);
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(ImageRefError::InvalidDomain);
        }
    }
    Ok(())
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `.`, `_`, `__` or `-+`.
pub(crate) fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // One run of lowercase alphanumerics.
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // One separator.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), ImageRefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = bytes.first().is_some_and(|b| word(*b))
        && bytes.len() <= MAX_TAG_LEN
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ImageRefError::InvalidTag)
    }
}

/// `algorithm:hex` with at least 32 hex digits.
fn check_digest(digest: &str) -> Result<(), ImageRefError> {
    let (algorithm, hex) = digest.split_once(':').ok_or(ImageRefError::InvalidDigest)?;
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    let hex_ok = hex.len() >= MIN_DIGEST_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if algorithm_ok && hex_ok {
        Ok(())
    } else {
        Err(ImageRefError::InvalidDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_common_references() {
        let ok = [
            "nginx",
            "busybox:1.36",
            "library/nginx:latest",
            "docker.io/library/nginx:1.25",
            "localhost/app",
            "localhost:5000/app:v1",
            "127.0.0.1:5000/team/app",
            "registry.example.com/a/b/c:tag_1.0-rc",
            "Registry/app",
            "[::1]:5000/app",
            "[fe80::1]/app",
            "a__b/c--d/e.f/g_h",
            "ab",
        ];
        for s in ok {
            assert!(ImageReference::parse(s).is_ok(), "{s}");
        }
        let with_digest = format!("registry:5000/app:1@{SHA}");
        assert!(ImageReference::parse(&with_digest).is_ok());
    }

    #[test]
    fn splits_parts() {
        let r = ImageReference::parse(&format!("localhost:5000/team/app:1.2@{SHA}")).unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(r.path, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some(SHA));
        assert_eq!(r.to_string(), format!("localhost:5000/team/app:1.2@{SHA}"));

        let r: ImageReference = "library/nginx".parse().unwrap();
        assert_eq!(r.domain, None);
        assert_eq!(r.path, "library/nginx");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn refuses_bad_references() {
        let cases = [
            ("", ImageRefError::Empty),
            ("Nginx", ImageRefError::InvalidPath),
            ("nginx:", ImageRefError::InvalidTag),
            (":tag", ImageRefError::InvalidPath),
            ("/nginx", ImageRefError::InvalidPath),
            ("nginx/", ImageRefError::InvalidPath),
            ("a//b", ImageRefError::InvalidPath),
            ("a/-b", ImageRefError::InvalidPath),
            ("a.", ImageRefError::InvalidPath),
            ("a...b", ImageRefError::InvalidPath),
            ("a___b", ImageRefError::InvalidPath),
            ("nginx latest", ImageRefError::InvalidCharacter),
            ("nginx;rm", ImageRefError::InvalidPath),
            ("ngïnx", ImageRefError::InvalidCharacter),
            ("nginx:.bad", ImageRefError::InvalidTag),
            ("nginx@sha256:abc", ImageRefError::InvalidDigest),
            ("nginx@", ImageRefError::InvalidDigest),
            (
                "nginx@:0123456789abcdef0123456789abcdef",
                ImageRefError::InvalidDigest,
            ),
            ("host:99999/app", ImageRefError::InvalidDomain),
            ("host:0/app", ImageRefError::InvalidDomain),
            ("host:/app", ImageRefError::InvalidDomain),
            ("-host.com/app", ImageRefError::InvalidDomain),
            ("[zz::1]/app", ImageRefError::InvalidDomain),
            ("[::1/app", ImageRefError::InvalidDomain),
        ];
        for (s, want) in cases {
            assert_eq!(ImageReference::parse(s), Err(want), "{s:?}");
        }
        let long_tag = format!("nginx:{}", "t".repeat(129));
        assert_eq!(
            ImageReference::parse(&long_tag),
            Err(ImageRefError::InvalidTag)
        );
        let long = "a".repeat(256);
        assert_eq!(ImageReference::parse(&long), Err(ImageRefError::TooLong));
    }

    #[test]
    fn path_components() {
        assert!(is_path_component("a"));
        assert!(is_path_component("a-b---c"));
        assert!(is_path_component("a_b__c.d"));
        assert!(!is_path_component(""));
        assert!(!is_path_component("_a"));
        assert!(!is_path_component("a_"));
        assert!(!is_path_component("a._b"));
        assert!(!is_path_component("A"));
    }
}
