//! Pulling an image from its registry into containerd: try each host of the registry in order
//! until one resolves the reference; fetch the manifest (the linux one of this architecture
//! from an index), the config and the layers; write each blob into containerd's content store
//! under a lease (skipping blobs it has), with the GC labels that tie them to the manifest;
//! record the image; unpack it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio_stream::StreamExt;
use tracing::Instrument;

use super::ctd::Ctd;
use super::error::{AttemptFailure, ImageError, PullAttempt};
use super::hosts::{hosts_for, RegistryHost};
use super::oci::{self, ConfigFile, Descriptor, Index, Kind, Manifest};
use super::reference::ImageRef;
use super::{unpack, Image, Inner, Resolved};

/// Bytes sent to containerd per write.
const CHUNK: usize = 1 << 20;

/// A manifest or index as the registry served it.
struct Doc {
    bytes: Vec<u8>,
    digest: String,
    media_type: String,
}

/// Pulls `r` and unpacks it. The caller holds the image's lock.
pub(crate) async fn pull(inner: &Inner, r: &ImageRef) -> Result<Image, ImageError> {
    pull_image(inner, r)
        .instrument(tracing::info_span!("image_pull", image = %r))
        .await
}

async fn pull_image(inner: &Inner, r: &ImageRef) -> Result<Image, ImageError> {
    let name = r.name();
    let started = Instant::now();
    let hosts = hosts_for(&inner.cfg, r.registry(), r.digest().is_none())?;
    let mut attempts = Vec::new();
    let mut found = None;
    for host in hosts {
        let client = client_for(inner, &host)?;
        let oref = r.at_host(&host.authority);
        match resolve(&client, &oref).await {
            Ok(root) => {
                found = Some((host, client, oref, root));
                break;
            }
            Err(e) => {
                tracing::info!(host = %host.url(), error = %crate::chain::Chain(&e), "registry host cannot serve the image");
                attempts.push(PullAttempt {
                    host: host.url(),
                    failure: AttemptFailure::of(&e),
                });
            }
        }
    }
    let Some((host, client, oref, root)) = found else {
        return Err(ImageError::Unavailable {
            reference: name,
            attempts,
        });
    };
    tracing::info!(host = %host.url(), digest = %root.digest, "image resolved");
    let fetch = |what: &'static str, digest: &str| {
        let (reference, host, digest) = (name.clone(), host.url(), digest.to_owned());
        move |source: OciDistributionError| ImageError::Fetch {
            reference,
            host,
            what,
            digest,
            source: Box::new(source),
        }
    };
    let invalid = |reason: String| ImageError::Invalid {
        reference: name.clone(),
        reason,
    };
    let (kind, _) = oci::kind_of(&root.bytes).map_err(invalid)?;
    let (index, manifest_doc) = match kind {
        Kind::Manifest => (None, root),
        Kind::Index => {
            let ix: Index = serde_json::from_slice(&root.bytes)
                .map_err(|e| invalid(format!("bad index {}: {e}", root.digest)))?;
            let d = oci::pick_platform(&ix).map_err(invalid)?;
            let (bytes, digest) = client
                .pull_manifest_raw(
                    &oref.clone_with_digest(d.digest.clone()),
                    &RegistryAuth::Anonymous,
                    oci::ACCEPTED_MANIFESTS,
                )
                .await
                .map_err(fetch("manifest", &d.digest))?;
            let (k, media_type) = oci::kind_of(&bytes).map_err(invalid)?;
            if k != Kind::Manifest {
                return Err(invalid(format!("{} is a nested index", d.digest)));
            }
            let m = Doc {
                bytes: bytes.to_vec(),
                digest,
                media_type,
            };
            (Some((root, ix)), m)
        }
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_doc.bytes)
        .map_err(|e| invalid(format!("bad manifest {}: {e}", manifest_doc.digest)))?;
    let mut config_bytes = Vec::new();
    client
        .pull_blob(&oref, manifest.config.digest.as_str(), &mut config_bytes)
        .await
        .map_err(fetch("config", &manifest.config.digest))?;
    let config: ConfigFile = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(format!("bad config {}: {e}", manifest.config.digest)))?;
    let target = match &index {
        Some((doc, _)) => descriptor(doc),
        None => descriptor(&manifest_doc),
    };
    let res = Resolved {
        name: name.clone(),
        target,
        manifest_digest: manifest_doc.digest.clone(),
        manifest,
        config,
    };
    res.check()?;

    let leased = inner.ctd.leased("pull").await?;
    let stored = async {
        let m = &res.manifest;
        put_small(&leased, &m.config, &config_bytes, &[]).await?;
        let mut fetched = 0i64;
        for layer in &m.layers {
            fetched += fetch_layer(&leased, &client, &oref, layer)
                .await
                .map_err(|e| match e {
                    LayerError::Registry(source) => fetch("layer", &layer.digest)(source),
                    LayerError::Image(e) => e,
                })?;
        }
        let manifest_desc = descriptor(&manifest_doc);
        put_small(
            &leased,
            &manifest_desc,
            &manifest_doc.bytes,
            &oci::manifest_gc_labels(m),
        )
        .await?;
        if let Some((doc, ix)) = &index {
            put_small(
                &leased,
                &descriptor(doc),
                &doc.bytes,
                &oci::index_gc_labels(ix),
            )
            .await?;
        }
        inner.ctd.put_image(&res.name, res.target.to_ctd()).await?;
        let pulled = started.elapsed();
        tracing::info!(
            layers = m.layers.len(),
            fetched_bytes = fetched,
            ms = pulled.as_millis() as u64,
            "image content stored"
        );
        unpack::unpack(&leased, &res).await?;
        tracing::info!(
            unpack_ms = (started.elapsed() - pulled).as_millis() as u64,
            "image pulled"
        );
        Ok::<_, ImageError>(res.image())
    }
    .await;
    leased.release_lease().await;
    stored
}

fn descriptor(doc: &Doc) -> Descriptor {
    Descriptor {
        media_type: doc.media_type.clone(),
        digest: doc.digest.clone(),
        size: doc.bytes.len() as i64,
        ..Default::default()
    }
}

/// Resolves `oref` on its host: the manifest or index it names.
async fn resolve(client: &Client, oref: &Reference) -> Result<Doc, OciDistributionError> {
    client
        .auth(oref, &RegistryAuth::Anonymous, RegistryOperation::Pull)
        .await?;
    let (bytes, digest) = client
        .pull_manifest_raw(oref, &RegistryAuth::Anonymous, oci::ACCEPTED_MANIFESTS)
        .await?;
    let media_type = oci::kind_of(&bytes)
        .map(|(_, m)| m)
        .map_err(OciDistributionError::ManifestParsingError)?;
    Ok(Doc {
        bytes: bytes.to_vec(),
        digest,
        media_type,
    })
}

/// A registry client for `host`, shared by pulls (it caches tokens).
fn client_for(inner: &Inner, host: &RegistryHost) -> Result<Client, ImageError> {
    let key = host.client_key();
    if let Some(c) = inner
        .clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(c.clone());
    }
    let mut extra = Vec::new();
    for p in &host.ca {
        let data = std::fs::read(p).map_err(super::error::io("read CA certificate", p))?;
        extra.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let protocol = if host.scheme == "http" {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        accept_invalid_certificates: host.skip_verify,
        extra_root_certificates: extra,
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(120)),
        user_agent: concat!("zun-compute/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    });
    inner
        .clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, client.clone());
    Ok(client)
}

/// Stores `bytes` (all of the blob `desc`) with `labels`, or labels the blob if containerd has
/// it; either way the blob is kept by `ctd`'s lease.
pub(crate) async fn put_small(
    ctd: &Ctd,
    desc: &Descriptor,
    bytes: &[u8],
    labels: &[(String, String)],
) -> Result<(), ImageError> {
    if ctd.content_info(&desc.digest).await?.is_none() {
        let r = format!("capsule-put-{}", desc.digest);
        if let Some(mut w) = ctd.writer(&r, Some(&desc.digest), desc.size).await? {
            w.write(Bytes::copy_from_slice(bytes)).await?;
            w.commit(desc.size, Some(&desc.digest), labels).await?;
            return Ok(());
        }
    }
    ctd.lease_content(&desc.digest).await?;
    ctd.label_content(&desc.digest, labels).await
}

enum LayerError {
    Registry(OciDistributionError),
    Image(ImageError),
}

impl From<ImageError> for LayerError {
    fn from(e: ImageError) -> Self {
        Self::Image(e)
    }
}

/// Streams the layer `layer` from the registry into containerd unless it has it. Returns the
/// bytes fetched.
async fn fetch_layer(
    ctd: &Ctd,
    client: &Client,
    oref: &Reference,
    layer: &Descriptor,
) -> Result<i64, LayerError> {
    if ctd.content_info(&layer.digest).await?.is_some() {
        ctd.lease_content(&layer.digest).await?;
        return Ok(0);
    }
    let r = format!("capsule-pull-{}", layer.digest);
    let Some(mut w) = ctd.writer(&r, Some(&layer.digest), layer.size).await? else {
        ctd.lease_content(&layer.digest).await?;
        return Ok(0);
    };
    let copied = async {
        let mut stream = client
            .pull_blob_stream(oref, layer.digest.as_str())
            .await
            .map_err(LayerError::Registry)?;
        let mut buf = BytesMut::with_capacity(CHUNK);
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| LayerError::Registry(OciDistributionError::IoError(e)))?;
            buf.extend_from_slice(&chunk);
            if buf.len() >= CHUNK {
                w.write(buf.split().freeze()).await?;
            }
        }
        if !buf.is_empty() {
            w.write(buf.split().freeze()).await?;
        }
        w.commit(layer.size, Some(&layer.digest), &[]).await?;
        Ok(layer.size)
    }
    .await;
    if copied.is_err() {
        // Do not leave a half-written ingest behind.
        ctd.abort(&r).await;
    }
    copied
}
