//! Importing image archives: an OCI image layout (`oci-layout`, `index.json`, `blobs/`) or a
//! `docker save` archive (`manifest.json`, `<id>/layer.tar`, `<id>.json`), either possibly
//! gzipped, told apart by their files. The tar is read once, in a blocking thread: large files
//! stream into containerd's content store as they come, small ones are kept to be parsed and
//! stored once the archive says which of them matter. A docker archive gets a docker schema 2
//! manifest made for it, as containerd's importer does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::ctd::{BlobWriter, Ctd};
use super::error::{io, ImageError};
use super::oci::{self, ConfigFile, Descriptor, Index, Kind, Manifest};
use super::pull::put_small;
use super::reference::ImageRef;
use super::Resolved;

/// Files up to this size are kept in memory until the archive is read.
const SMALL: u64 = 4 << 20;
/// Bytes read from the archive per message.
const CHUNK: usize = 1 << 20;

/// What the reader thread reports, in archive order.
enum Event {
    /// A regular file begins.
    Start { path: String, size: u64 },
    /// Its next bytes.
    Chunk(Bytes),
    /// It ended; its digest, and whether it is gzip data.
    End { digest: String, gzip: bool },
    /// A link: `path` has the content of `to`.
    Link { path: String, to: String },
}

/// A file of the archive.
struct File {
    digest: String,
    size: u64,
    gzip: bool,
    /// The content, for small files.
    data: Option<Vec<u8>>,
}

/// The file being received.
struct Current {
    path: String,
    size: u64,
    buf: Option<Vec<u8>>,
    writer: Option<BlobWriter>,
}

/// Reads `archive`, storing its blobs with `ctd` (which must hold a lease), and returns the
/// images it names. The caller records and unpacks them before the lease ends.
pub(crate) async fn import(ctd: &Ctd, archive: &Path) -> Result<Vec<Resolved>, ImageError> {
    let started = std::time::Instant::now();
    let (tx, mut rx) = mpsc::channel::<Event>(4);
    let path = archive.to_owned();
    let reader = tokio::task::spawn_blocking(move || read_tar(&path, tx));

    let format = |reason: String| ImageError::ArchiveFormat {
        path: archive.to_owned(),
        reason,
    };
    let mut files: HashMap<String, File> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut cur: Option<Current> = None;
    let received = async {
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Start { path, size } => {
                    let expected = blob_digest(&path);
                    let (buf, writer) = if size <= SMALL {
                        (Some(Vec::with_capacity(size as usize)), None)
                    } else {
                        let r = format!(
                            "capsule-import-{}",
                            expected
                                .clone()
                                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
                        );
                        let w = ctd.writer(&r, expected.as_deref(), size as i64).await?;
                        if w.is_none() {
                            if let Some(d) = &expected {
                                ctd.lease_content(d).await?;
                            }
                        }
                        (None, w)
                    };
                    cur = Some(Current {
                        path,
                        size,
                        buf,
                        writer,
                    });
                }
                Event::Chunk(b) => match cur.as_mut() {
                    Some(Current { buf: Some(v), .. }) => v.extend_from_slice(&b),
                    Some(Current {
                        writer: Some(w), ..
                    }) => w.write(b).await?,
                    _ => {}
                },
                Event::End { digest, gzip } => {
                    let Some(c) = cur.take() else { continue };
                    if let Some(want) = blob_digest(&c.path) {
                        if want != digest {
                            return Err(format(format!("{} has digest {digest}", c.path)));
                        }
                    }
                    if let Some(w) = c.writer {
                        w.commit(c.size as i64, Some(&digest), &[]).await?;
                    }
                    files.insert(
                        c.path,
                        File {
                            digest,
                            size: c.size,
                            gzip,
                            data: c.buf,
                        },
                    );
                }
                Event::Link { path, to } => {
                    links.insert(path, to);
                }
            }
        }
        Ok::<_, ImageError>(())
    }
    .await;
    drop(rx);
    let read = reader.await.map_err(|e| ImageError::Io {
        action: "read",
        path: archive.to_owned(),
        source: std::io::Error::other(e),
    })?;
    received?;
    read.map_err(io("read image archive", archive))?;
    let ar = Archive {
        path: archive,
        files,
        links,
    };
    tracing::info!(
        files = ar.files.len(),
        ms = started.elapsed().as_millis() as u64,
        "image archive read"
    );
    if ar.has("oci-layout") && ar.has("index.json") {
        ar.oci(ctd).await
    } else if ar.has("manifest.json") {
        ar.docker(ctd).await
    } else {
        Err(format(
            "it has neither oci-layout and index.json (OCI layout) nor manifest.json (docker save)"
                .into(),
        ))
    }
}

/// The digest a path of an OCI layout names (`blobs/sha256/<hex>`).
fn blob_digest(path: &str) -> Option<String> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    let d = format!("sha256:{hex}");
    oci::valid_digest(&d).then_some(d)
}

/// The archive's path in canonical form (no `./`, no trailing `/`).
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The blocking half: reads the tar (gunzipping if needed) and sends its files.
fn read_tar(path: &Path, tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    let mut r = BufReader::new(std::fs::File::open(path)?);
    let gz = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut ar = tar::Archive::new(input);
    let gone = || std::io::Error::other("import abandoned");
    for entry in ar.entries()? {
        let mut e = entry?;
        let name = clean(&e.path()?.to_string_lossy());
        let kind = e.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(link) = e.link_name()? else { continue };
            let link = link.to_string_lossy().into_owned();
            let to = if kind.is_symlink() && !link.starts_with('/') {
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                clean(&format!("{dir}/{link}"))
            } else {
                clean(&link)
            };
            tx.blocking_send(Event::Link { path: name, to })
                .map_err(|_| gone())?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = e.size();
        tx.blocking_send(Event::Start { path: name, size })
            .map_err(|_| gone())?;
        let mut h = Sha256::new();
        let mut first = true;
        let mut gzip = false;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut e, &mut buf)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if first {
                gzip = buf.starts_with(&[0x1f, 0x8b]);
                first = false;
            }
            h.update(&buf);
            tx.blocking_send(Event::Chunk(Bytes::from(buf)))
                .map_err(|_| gone())?;
        }
        let digest = format!("sha256:{}", hex::encode(h.finalize()));
        tx.blocking_send(Event::End { digest, gzip })
            .map_err(|_| gone())?;
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An archive read whole.
struct Archive<'a> {
    path: &'a Path,
    files: HashMap<String, File>,
    links: HashMap<String, String>,
}

/// One image of a `docker save` `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Archive<'_> {
    fn bad(&self, reason: String) -> ImageError {
        ImageError::ArchiveFormat {
            path: self.path.to_owned(),
            reason,
        }
    }

    fn has(&self, p: &str) -> bool {
        self.files.contains_key(p)
    }

    /// The file at `p`, following links.
    fn file(&self, p: &str) -> Result<&File, ImageError> {
        let mut p = clean(p);
        for _ in 0..16 {
            if let Some(f) = self.files.get(&p) {
                return Ok(f);
            }
            match self.links.get(&p) {
                Some(to) => p = to.clone(),
                None => break,
            }
        }
        Err(self.bad(format!("it lacks {p}")))
    }

    /// The content of the small file `p`.
    fn small(&self, p: &str) -> Result<&[u8], ImageError> {
        let f = self.file(p)?;
        f.data
            .as_deref()
            .ok_or_else(|| self.bad(format!("{p} is too large ({} bytes) for its role", f.size)))
    }

    /// The path of the OCI blob `digest`.
    fn blob_path(&self, digest: &str) -> Result<String, ImageError> {
        if !oci::valid_digest(digest) {
            return Err(self.bad(format!("unsupported digest {digest:?}")));
        }
        Ok(format!("blobs/sha256/{}", &digest["sha256:".len()..]))
    }

    /// Stores the archive file `p` as `desc` with `labels`: small files now, large ones were
    /// written while reading.
    async fn store(
        &self,
        ctd: &Ctd,
        p: &str,
        desc: &Descriptor,
        labels: &[(String, String)],
    ) -> Result<(), ImageError> {
        let f = self.file(p)?;
        match &f.data {
            Some(d) => put_small(ctd, desc, d, labels).await,
            None => {
                ctd.lease_content(&desc.digest).await?;
                ctd.label_content(&desc.digest, labels).await
            }
        }
    }

    async fn oci(&self, ctd: &Ctd) -> Result<Vec<Resolved>, ImageError> {
        let index: Index = serde_json::from_slice(self.small("index.json")?)
            .map_err(|e| self.bad(format!("bad index.json: {e}")))?;
        let mut out = Vec::new();
        for entry in &index.manifests {
            let ann = entry.annotations.clone().unwrap_or_default();
            let name = ann
                .get("io.containerd.image.name")
                .or_else(|| {
                    ann.get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains(['/', ':', '@']))
                })
                .cloned();
            let Some(name) = name else {
                tracing::warn!(
                    archive = %self.path.display(),
                    digest = %entry.digest,
                    "index.json entry without an image name: skipped"
                );
                continue;
            };
            let name = ImageRef::parse(&name)?.name();
            out.push(self.oci_image(ctd, name, entry).await?);
        }
        if out.is_empty() {
            return Err(self.bad("its index.json names no image".into()));
        }
        Ok(out)
    }

    async fn oci_image(
        &self,
        ctd: &Ctd,
        name: String,
        entry: &Descriptor,
    ) -> Result<Resolved, ImageError> {
        let invalid = |reason: String| ImageError::Invalid {
            reference: name.clone(),
            reason,
        };
        let target = Descriptor {
            platform: None,
            ..entry.clone()
        };
        let root_path = self.blob_path(&target.digest)?;
        let root = self.small(&root_path)?;
        let (kind, _) = oci::kind_of(root).map_err(invalid)?;
        let manifest_desc = match kind {
            Kind::Manifest => target.clone(),
            Kind::Index => {
                let ix: Index = serde_json::from_slice(root)
                    .map_err(|e| invalid(format!("bad index {}: {e}", target.digest)))?;
                oci::pick_platform(&ix).cloned().map_err(invalid)?
            }
        };
        let mpath = self.blob_path(&manifest_desc.digest)?;
        let manifest: Manifest = serde_json::from_slice(self.small(&mpath)?)
            .map_err(|e| invalid(format!("bad manifest {}: {e}", manifest_desc.digest)))?;
        let cpath = self.blob_path(&manifest.config.digest)?;
        let config: ConfigFile = serde_json::from_slice(self.small(&cpath)?)
            .map_err(|e| invalid(format!("bad config {}: {e}", manifest.config.digest)))?;
        let res = Resolved {
            name: name.clone(),
            target: target.clone(),
            manifest_digest: manifest_desc.digest.clone(),
            manifest,
            config,
        };
        res.check()?;
        let m = &res.manifest;
        self.store(ctd, &cpath, &m.config, &[]).await?;
        for l in &m.layers {
            self.store(ctd, &self.blob_path(&l.digest)?, l, &[]).await?;
        }
        let mdesc = Descriptor {
            platform: None,
            ..manifest_desc
        };
        self.store(ctd, &mpath, &mdesc, &oci::manifest_gc_labels(m))
            .await?;
        if kind == Kind::Index {
            let ix: Index = serde_json::from_slice(root)
                .map_err(|e| invalid(format!("bad index {}: {e}", target.digest)))?;
            self.store(ctd, &root_path, &target, &oci::index_gc_labels(&ix))
                .await?;
        }
        Ok(res)
    }

    async fn docker(&self, ctd: &Ctd) -> Result<Vec<Resolved>, ImageError> {
        let entries: Vec<DockerEntry> = serde_json::from_slice(self.small("manifest.json")?)
            .map_err(|e| self.bad(format!("bad manifest.json: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            let tags = e.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                tracing::warn!(archive = %self.path.display(), config = %e.config, "untagged image: skipped");
                continue;
            }
            let cfile = self.file(&e.config)?;
            let config_desc = Descriptor {
                media_type: oci::DOCKER_CONFIG.into(),
                digest: cfile.digest.clone(),
                size: cfile.size as i64,
                ..Default::default()
            };
            let config: ConfigFile = serde_json::from_slice(self.small(&e.config)?)
                .map_err(|err| self.bad(format!("bad config {}: {err}", e.config)))?;
            let mut layers = Vec::new();
            for l in &e.layers {
                let f = self.file(l)?;
                layers.push(Descriptor {
                    media_type: if f.gzip {
                        oci::DOCKER_LAYER_GZIP
                    } else {
                        oci::DOCKER_LAYER
                    }
                    .into(),
                    digest: f.digest.clone(),
                    size: f.size as i64,
                    ..Default::default()
                });
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(oci::DOCKER_MANIFEST.into()),
                config: config_desc.clone(),
                layers,
            };
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|err| self.bad(format!("cannot encode a manifest: {err}")))?;
            let mdesc = Descriptor {
                media_type: oci::DOCKER_MANIFEST.into(),
                digest: oci::sha256(&bytes),
                size: bytes.len() as i64,
                ..Default::default()
            };
            let first = Resolved {
                name: ImageRef::parse(&tags[0])?.name(),
                target: mdesc.clone(),
                manifest_digest: mdesc.digest.clone(),
                manifest,
                config,
            };
            first.check()?;
            self.store(ctd, &e.config, &config_desc, &[]).await?;
            for (p, l) in e.layers.iter().zip(&first.manifest.layers) {
                self.store(ctd, p, l, &[]).await?;
            }
            put_small(
                ctd,
                &mdesc,
                &bytes,
                &oci::manifest_gc_labels(&first.manifest),
            )
            .await?;
            let others = tags[1..]
                .iter()
                .map(|t| {
                    Ok(Resolved {
                        name: ImageRef::parse(t)?.name(),
                        ..first.clone()
                    })
                })
                .collect::<Result<Vec<_>, ImageError>>()?;
            out.push(first);
            out.extend(others);
        }
        if out.is_empty() {
            return Err(self.bad("its manifest.json names no tagged image".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(clean("a/b/../c/"), "a/c");
        assert_eq!(clean("/index.json"), "index.json");
    }

    #[test]
    fn blob_paths_name_digests() {
        let d = oci::sha256(b"x");
        let p = format!("blobs/sha256/{}", &d[7..]);
        assert_eq!(blob_digest(&p), Some(d));
        assert_eq!(blob_digest("blobs/sha256/zz"), None);
        assert_eq!(blob_digest("index.json"), None);
    }
}
