//! Image references normalized as docker and containerd do: `busybox` is
//! `docker.io/library/busybox:latest`, `foo/bar:1` is `docker.io/foo/bar:1`, a first component
//! with a `.` or `:` (or `localhost`) is a registry, and `@sha256:...` digests are kept.

use oci_client::Reference;

use super::error::ImageError;

/// A parsed, normalized image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses and normalizes `reference`.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        let inner: Reference =
            reference
                .trim()
                .parse()
                .map_err(|source| ImageError::InvalidReference {
                    reference: reference.to_owned(),
                    source,
                })?;
        Ok(Self { inner })
    }

    /// The normalized reference, e.g. `docker.io/library/busybox:latest`: the name of the
    /// image's record in containerd.
    pub fn name(&self) -> String {
        self.inner.whole()
    }

    /// The registry, e.g. `docker.io` or `127.0.0.1:5100`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any (`latest` when the reference has neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The same image on `authority` (a mirror or the registry's server), for the registry
    /// client.
    pub(crate) fn at_host(&self, authority: &str) -> Reference {
        let (registry, repository) = (authority.to_owned(), self.repository().to_owned());
        match (self.tag(), self.digest()) {
            (Some(t), Some(d)) => {
                Reference::with_tag_and_digest(registry, repository, t.into(), d.into())
            }
            (None, Some(d)) => Reference::with_digest(registry, repository, d.into()),
            (Some(t), None) => Reference::with_tag(registry, repository, t.into()),
            (None, None) => Reference::with_tag(registry, repository, "latest".into()),
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The normalized form of `reference` (see [`ImageRef::name`]).
pub fn normalize(reference: &str) -> Result<String, ImageError> {
    ImageRef::parse(reference).map(|r| r.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:6a12f7cbd2bd8a0ddcc0a24f1a5fca0c6f0a5d0b0e4c27a81d6c1b8f1c5c1e4f";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("foo/bar:1", "docker.io/foo/bar:1"),
            ("quay.io/foo/bar", "quay.io/foo/bar:latest"),
            ("127.0.0.1:5100/x", "127.0.0.1:5100/x:latest"),
            (
                "127.0.0.1:5100/library/busybox:latest",
                "127.0.0.1:5100/library/busybox:latest",
            ),
            ("localhost/x:2", "localhost/x:2"),
            ("  busybox  ", "docker.io/library/busybox:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn keeps_digests() {
        let r = ImageRef::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.name(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(D));
        let r = ImageRef::parse(&format!("127.0.0.1:5100/x:1@{D}")).unwrap();
        assert_eq!(r.name(), format!("127.0.0.1:5100/x:1@{D}"));
        assert_eq!(r.registry(), "127.0.0.1:5100");
        assert_eq!(r.repository(), "x");
    }

    #[test]
    fn parts() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        let h = r.at_host("127.0.0.1:5100");
        assert_eq!(h.whole(), "127.0.0.1:5100/library/busybox:latest");
        assert_eq!(h.resolve_registry(), "127.0.0.1:5100");
        let h = ImageRef::parse(&format!("busybox@{D}"))
            .unwrap()
            .at_host("registry-1.docker.io");
        assert_eq!(h.digest(), Some(D));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "busybox@sha256:abc",
            "a b",
            "busybox:",
            ":latest",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(matches!(e, ImageError::InvalidReference { .. }), "{bad}");
            assert!(e.to_string().contains("invalid image reference"), "{e}");
        }
    }
}
