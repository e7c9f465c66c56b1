//! The parts of the OCI (and docker schema 2) image format the agent reads: descriptors,
//! manifests, indexes and the image config; platform selection, chain ids and the
//! containerd garbage-collection labels that tie an image's blobs together. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::types::RunConfig;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Manifest media types a registry is asked for.
pub const ACCEPTED_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// containerd's label: the uncompressed digest of a layer blob.
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// containerd's label on an unpacking snapshot: the chain id it will be committed as.
pub const LABEL_SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";
/// containerd's label that makes an object a garbage-collection root.
pub const LABEL_GC_ROOT: &str = "containerd.io/gc.root";

/// A content descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: i64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

impl Descriptor {
    /// The containerd form.
    pub fn to_ctd(&self) -> containerd_client::types::Descriptor {
        containerd_client::types::Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: self.annotations.clone().unwrap_or_default(),
        }
    }

    /// From the containerd form.
    pub fn from_ctd(d: &containerd_client::types::Descriptor) -> Self {
        Self {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            platform: None,
            annotations: (!d.annotations.is_empty()).then(|| d.annotations.clone()),
        }
    }
}

/// An index entry's platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or docker schema 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Media type, when the document says.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An image index or manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Index {
    /// Media type, when the document says.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// Entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// What a manifest-ish document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An index or manifest list.
    Index,
    /// An image manifest.
    Manifest,
}

/// The kind of `bytes` (by its `mediaType`, else by its shape) and its media type.
pub fn kind_of(bytes: &[u8]) -> Result<(Kind, String), String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    match p.media_type.as_deref() {
        Some(m @ (OCI_INDEX | DOCKER_LIST)) => Ok((Kind::Index, m.to_owned())),
        Some(m @ (OCI_MANIFEST | DOCKER_MANIFEST)) => Ok((Kind::Manifest, m.to_owned())),
        Some(other) => Err(format!("unsupported manifest media type {other}")),
        None if p.manifests.is_some() => Ok((Kind::Index, OCI_INDEX.to_owned())),
        None if p.config.is_some() => Ok((Kind::Manifest, OCI_MANIFEST.to_owned())),
        None => Err("neither a manifest nor an index".into()),
    }
}

/// The architecture name of this host, as in OCI platforms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The entry of `index` for linux on this host's architecture; an entry without a platform
/// when it is the only one. Else why not, naming the platforms it has.
pub fn pick_platform(index: &Index) -> Result<&Descriptor, String> {
    let arch = host_arch();
    let found = index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .or_else(|| match index.manifests.as_slice() {
            [only] if only.platform.is_none() => Some(only),
            _ => None,
        });
    found.ok_or_else(|| format!("no linux/{arch} manifest (it has {})", platforms(index)))
}

/// The platforms `index` offers, for an error message.
fn platforms(index: &Index) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The image config blob (the parts used).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ConfigFile {
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// The run configuration.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    /// The layers' uncompressed digests.
    pub rootfs: RootFs,
}

/// `config` of an image config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `Env`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `User`.
    #[serde(default)]
    pub user: Option<String>,
    /// `ExposedPorts`.
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `StopSignal` (`SIGQUIT`, `QUIT`, `3`...).
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RootFs {
    /// Uncompressed layer digests, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ConfigFile {
    /// The run configuration of the image `name`.
    pub fn run_config(&self, name: &str) -> RunConfig {
        let c = self.config.clone().unwrap_or_default();
        RunConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
            exposed_ports: c
                .exposed_ports
                .map(|p| p.into_keys().collect())
                .unwrap_or_default(),
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            image: name.to_owned(),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The chain id of every layer: ChainID(L0) = DiffID(L0), ChainID(Ln) =
/// sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Whether `digest` is a well-formed `sha256:<64 hex>`.
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Labels on a manifest blob that keep its config and layers from containerd's GC.
pub fn manifest_gc_labels(m: &Manifest) -> Vec<(String, String)> {
    let mut v = vec![(
        "containerd.io/gc.ref.content.config".to_owned(),
        m.config.digest.clone(),
    )];
    for (i, l) in m.layers.iter().enumerate() {
        v.push((
            format!("containerd.io/gc.ref.content.l.{i}"),
            l.digest.clone(),
        ));
    }
    v
}

/// Labels on an index blob that keep its manifests from containerd's GC.
pub fn index_gc_labels(ix: &Index) -> Vec<(String, String)> {
    ix.manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                format!("containerd.io/gc.ref.content.m.{i}"),
                m.digest.clone(),
            )
        })
        .collect()
}

/// The label on a config blob that keeps the image's unpacked snapshot from containerd's GC.
pub fn snapshot_gc_label(snapshotter: &str) -> String {
    format!("containerd.io/gc.ref.snapshot.{snapshotter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        let c = "sha256:cccc".to_string();
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256(format!("{a} {b}").as_bytes()));
        assert_eq!(ids[2], sha256(format!("{} {c}", ids[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn kinds() {
        let m = br#"{"schemaVersion":2,"config":{"digest":"sha256:1","size":1},"layers":[]}"#;
        assert_eq!(kind_of(m).unwrap(), (Kind::Manifest, OCI_MANIFEST.into()));
        let i = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(kind_of(i).unwrap(), (Kind::Index, OCI_INDEX.into()));
        let d = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[]}}"#);
        assert_eq!(kind_of(d.as_bytes()).unwrap().0, Kind::Index);
        assert!(kind_of(br#"{"mediaType":"text/plain"}"#).is_err());
        assert!(kind_of(b"nope").is_err());
    }

    #[test]
    fn picks_this_platform() {
        let e = |os: &str, arch: &str, d: &str| Descriptor {
            digest: d.into(),
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            ..Default::default()
        };
        let ix = Index {
            media_type: None,
            manifests: vec![
                e("linux", "s390x", "a"),
                e("windows", host_arch(), "b"),
                e("linux", host_arch(), "c"),
            ],
        };
        assert_eq!(pick_platform(&ix).unwrap().digest, "c");
        let ix = Index {
            media_type: None,
            manifests: vec![e("linux", "s390x", "a")],
        };
        assert_eq!(
            pick_platform(&ix).unwrap_err(),
            format!("no linux/{} manifest (it has linux/s390x)", host_arch())
        );
    }

    #[test]
    fn run_config_from_a_docker_config() {
        let c: ConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],
                "Cmd":["nginx","-g","daemon off;"],"Entrypoint":null,"WorkingDir":"",
                "ExposedPorts":{"80/tcp":{},"443/tcp":{}},"User":""},
                "rootfs":{"type":"layers","diff_ids":["sha256:1"]}}"#,
        )
        .unwrap();
        let r = c.run_config("n");
        assert_eq!(r.cmd, ["nginx", "-g", "daemon off;"]);
        assert!(r.entrypoint.is_empty());
        assert_eq!(r.working_dir, None);
        assert_eq!(r.user, None);
        assert_eq!(r.exposed_ports, ["443/tcp", "80/tcp"]);
        assert_eq!(r.image, "n");
        assert_eq!(c.rootfs.diff_ids, ["sha256:1"]);
    }

    #[test]
    fn digests() {
        assert!(valid_digest(&sha256(b"")));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest("md5:00"));
    }
}
