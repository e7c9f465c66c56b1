//! A thin client of the containerd services the image module uses (content, images,
//! snapshots, diff, leases), bound to one namespace and, while pulling or unpacking, to one
//! lease. Every call maps containerd's status to an [`ImageError`] naming what was asked.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, CommitSnapshotRequest, Info as SnapshotInfo, MountsRequest,
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    content_client::ContentClient, diff_client::DiffClient, images_client::ImagesClient,
    leases_client::LeasesClient, AbortRequest, AddResourceRequest, ApplyRequest,
    CreateImageRequest, CreateRequest, DeleteImageRequest, DeleteRequest, GetImageRequest,
    Image as CtdImage, Info as ContentInfo, InfoRequest, ReadContentRequest, Resource,
    UpdateImageRequest, UpdateRequest, WriteAction, WriteContentRequest, WriteContentResponse,
};
use containerd_client::tonic::metadata::{Ascii, MetadataValue};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status, Streaming};
use containerd_client::types::{Descriptor as CtdDescriptor, Mount};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::{ctd, ImageError};

/// Largest manifest, index or config read whole into memory.
const MAX_SMALL_BLOB: usize = 16 << 20;

/// How long a lease lives if its holder dies before deleting it.
const LEASE_EXPIRY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// containerd in one namespace (and maybe one lease).
#[derive(Clone)]
pub(crate) struct Ctd {
    channel: Channel,
    namespace: MetadataValue<Ascii>,
    lease: Option<MetadataValue<Ascii>>,
    lease_id: Option<String>,
    /// The snapshotter.
    pub snapshotter: String,
}

fn ascii(what: &str, v: &str) -> Result<MetadataValue<Ascii>, ImageError> {
    v.parse().map_err(|_| ImageError::Containerd {
        action: format!("use {what} {v:?}"),
        code: Code::InvalidArgument,
        message: "not a valid gRPC header value".into(),
    })
}

impl Ctd {
    /// A client of `namespace` on `channel`.
    pub fn new(channel: Channel, namespace: &str, snapshotter: &str) -> Result<Self, ImageError> {
        let valid = !namespace.is_empty()
            && namespace
                .split(['.', '_', '-'])
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid {
            return Err(ImageError::Containerd {
                action: format!("use namespace {namespace:?}"),
                code: Code::InvalidArgument,
                message: "a namespace is letters and digits separated by single '.', '_' or '-'"
                    .into(),
            });
        }
        Ok(Self {
            channel,
            namespace: ascii("namespace", namespace)?,
            lease: None,
            lease_id: None,
            snapshotter: snapshotter.to_owned(),
        })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        md.insert("containerd-namespace", self.namespace.clone());
        if let Some(l) = &self.lease {
            md.insert("containerd-lease", l.clone());
        }
        r
    }

    // ---- leases ----

    /// Creates a lease that expires by itself after an hour, and a client working under it.
    pub async fn leased(&self, purpose: &str) -> Result<Ctd, ImageError> {
        let id = format!("capsule-{purpose}-{}", uuid::Uuid::new_v4().simple());
        let expire =
            (chrono::Utc::now() + LEASE_EXPIRY).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let labels = HashMap::from([("containerd.io/gc.expire".to_owned(), expire)]);
        LeasesClient::new(self.channel.clone())
            .create(self.req(CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .map_err(ctd(format!("create lease {id}")))?;
        let mut c = self.clone();
        c.lease = Some(ascii("lease", &id)?);
        c.lease_id = Some(id);
        Ok(c)
    }

    /// Whether this client works under a lease.
    pub fn has_lease(&self) -> bool {
        self.lease_id.is_some()
    }

    /// Deletes this client's lease (logging a failure: the lease expires anyway).
    pub async fn release_lease(&self) {
        let Some(id) = &self.lease_id else { return };
        let mut c = self.clone();
        c.lease = None;
        let r = LeasesClient::new(self.channel.clone())
            .delete(c.req(DeleteRequest {
                id: id.clone(),
                sync: false,
            }))
            .await;
        if let Err(s) = r {
            if s.code() != Code::NotFound {
                tracing::warn!(lease = %id, error = %s.message(), "cannot delete lease");
            }
        }
    }

    /// Adds existing content to this client's lease, so GC keeps it until the lease goes.
    pub async fn lease_content(&self, digest: &str) -> Result<(), ImageError> {
        let Some(id) = &self.lease_id else {
            return Ok(());
        };
        LeasesClient::new(self.channel.clone())
            .add_resource(self.req(AddResourceRequest {
                id: id.clone(),
                resource: Some(Resource {
                    id: digest.to_owned(),
                    r#type: "content".into(),
                }),
            }))
            .await
            .map(|_| ())
            .map_err(ctd(format!("lease content {digest}")))
    }

    // ---- content ----

    /// The content `digest`, if present.
    pub async fn content_info(&self, digest: &str) -> Result<Option<ContentInfo>, ImageError> {
        match ContentClient::new(self.channel.clone())
            .info(self.req(InfoRequest {
                digest: digest.to_owned(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().info),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ctd(format!("stat content {digest}"))(s)),
        }
    }

    /// The whole content `digest` (a manifest, index or config); `None` if absent.
    pub async fn read_small(&self, digest: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let what = || format!("read content {digest}");
        let r = ContentClient::new(self.channel.clone())
            .read(self.req(ReadContentRequest {
                digest: digest.to_owned(),
                offset: 0,
                size: 0,
            }))
            .await;
        let mut stream = match r {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(ctd(what())(s)),
        };
        let mut out = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    out.extend_from_slice(&m.data);
                    if out.len() > MAX_SMALL_BLOB {
                        return Err(ImageError::Containerd {
                            action: what(),
                            code: Code::ResourceExhausted,
                            message: format!("larger than {MAX_SMALL_BLOB} bytes"),
                        });
                    }
                }
                Ok(None) => return Ok(Some(out)),
                Err(s) if s.code() == Code::NotFound => return Ok(None),
                Err(s) => return Err(ctd(what())(s)),
            }
        }
    }

    /// Adds `labels` to the content `digest` where missing or different.
    pub async fn label_content(
        &self,
        digest: &str,
        labels: &[(String, String)],
    ) -> Result<(), ImageError> {
        if labels.is_empty() {
            return Ok(());
        }
        let Some(mut info) = self.content_info(digest).await? else {
            return Err(ImageError::Containerd {
                action: format!("label content {digest}"),
                code: Code::NotFound,
                message: "content not found".into(),
            });
        };
        let mut req = UpdateRequest {
            info: None,
            update_mask: Some(Default::default()),
        };
        let mut changed = false;
        for (k, v) in labels {
            if info.labels.get(k) != Some(v) {
                info.labels.insert(k.clone(), v.clone());
                if let Some(m) = req.update_mask.as_mut() {
                    m.paths.push(format!("labels.{k}"));
                }
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        req.info = Some(info);
        ContentClient::new(self.channel.clone())
            .update(self.req(req))
            .await
            .map(|_| ())
            .map_err(ctd(format!("label content {digest}")))
    }

    /// Starts writing the blob ingest `reference`; `None` when `expected` is already present.
    /// Waits (up to about a minute) for another writer of the same reference to finish.
    pub async fn writer(
        &self,
        reference: &str,
        expected: Option<&str>,
        total: i64,
    ) -> Result<Option<BlobWriter>, ImageError> {
        let action = || format!("write content {}", expected.unwrap_or(reference));
        let mut delay = Duration::from_millis(50);
        let mut attempts = 0;
        loop {
            match self.open_writer(reference, expected, total).await {
                Ok(tx_rx) => {
                    return Ok(tx_rx.map(|(tx, rx)| BlobWriter {
                        tx,
                        rx,
                        action: action(),
                        offset: 0,
                    }))
                }
                // Another writer holds the ingest ("ref ... locked"): wait for it.
                Err(s) if s.code() == Code::Unavailable && attempts < 40 => {
                    tracing::debug!(reference, "ingest locked; waiting");
                    attempts += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(s) => return Err(ctd(action())(s)),
            }
        }
    }

    /// One try at opening a write session: the first message states the ingest.
    async fn open_writer(
        &self,
        reference: &str,
        expected: Option<&str>,
        total: i64,
    ) -> Result<Option<WriteSession>, Status> {
        let (tx, rx) = mpsc::channel(2);
        let first = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_owned(),
            total,
            expected: expected.unwrap_or_default().to_owned(),
            ..Default::default()
        };
        // The server answers only once it has the first message: queue it before calling.
        tx.send(first)
            .await
            .map_err(|_| Status::internal("write stream closed"))?;
        let opened = ContentClient::new(self.channel.clone())
            .write(self.req(ReceiverStream::new(rx)))
            .await;
        let first_answer = match opened {
            Ok(r) => {
                let mut rx = r.into_inner();
                rx.message().await.map(|m| m.map(|_| rx))
            }
            Err(s) => Err(s),
        };
        match first_answer {
            Ok(Some(rx)) => Ok(Some((tx, rx))),
            Ok(None) => Err(Status::internal("write stream closed")),
            Err(s) if s.code() == Code::AlreadyExists => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// Discards the ingest `reference` (absent is fine).
    pub async fn abort(&self, reference: &str) {
        let _ = ContentClient::new(self.channel.clone())
            .abort(self.req(AbortRequest {
                r#ref: reference.to_owned(),
            }))
            .await;
    }

    // ---- images ----

    /// The image record `name`, if any.
    pub async fn image(&self, name: &str) -> Result<Option<CtdImage>, ImageError> {
        match ImagesClient::new(self.channel.clone())
            .get(self.req(GetImageRequest {
                name: name.to_owned(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().image),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ctd(format!("get image {name}"))(s)),
        }
    }

    /// Creates the image record `name` pointing at `target`, or points the existing one there.
    pub async fn put_image(&self, name: &str, target: CtdDescriptor) -> Result<(), ImageError> {
        let image = CtdImage {
            name: name.to_owned(),
            labels: HashMap::new(),
            target: Some(target),
            created_at: None,
            updated_at: None,
        };
        let mut c = ImagesClient::new(self.channel.clone());
        match c
            .create(self.req(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                let mut req = UpdateImageRequest {
                    image: Some(image),
                    update_mask: Some(Default::default()),
                    source_date_epoch: None,
                };
                if let Some(m) = req.update_mask.as_mut() {
                    m.paths.push("target".into());
                }
                c.update(self.req(req))
                    .await
                    .map(|_| ())
                    .map_err(ctd(format!("update image {name}")))
            }
            Err(s) => Err(ctd(format!("create image {name}"))(s)),
        }
    }

    /// Deletes the image record `name` (absent is fine); `sync` waits for containerd's GC.
    pub async fn delete_image(&self, name: &str, sync: bool) -> Result<(), ImageError> {
        match ImagesClient::new(self.channel.clone())
            .delete(self.req(DeleteImageRequest {
                name: name.to_owned(),
                sync,
                target: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(ctd(format!("delete image {name}"))(s)),
        }
    }

    // ---- snapshots ----

    /// The snapshot `key`, if any.
    pub async fn snapshot(&self, key: &str) -> Result<Option<SnapshotInfo>, ImageError> {
        match SnapshotsClient::new(self.channel.clone())
            .stat(self.req(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().info),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ctd(format!("stat snapshot {key}"))(s)),
        }
    }

    /// Prepares the active snapshot `key` on `parent`; the raw status lets callers handle
    /// `AlreadyExists`.
    pub async fn prepare(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, Status> {
        SnapshotsClient::new(self.channel.clone())
            .prepare(self.req(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
                parent: parent.to_owned(),
                labels,
            }))
            .await
            .map(|r| r.into_inner().mounts)
    }

    /// The mounts of the snapshot `key`.
    pub async fn mounts(&self, key: &str) -> Result<Vec<Mount>, ImageError> {
        SnapshotsClient::new(self.channel.clone())
            .mounts(self.req(MountsRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
            .map(|r| r.into_inner().mounts)
            .map_err(ctd(format!("get the mounts of snapshot {key}")))
    }

    /// Commits the active snapshot `key` as `name`; the raw status lets callers handle
    /// `AlreadyExists`.
    pub async fn commit(
        &self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), Status> {
        SnapshotsClient::new(self.channel.clone())
            .commit(self.req(CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: name.to_owned(),
                key: key.to_owned(),
                labels,
            }))
            .await
            .map(|_| ())
    }

    /// Removes the snapshot `key`; `false` if it was absent.
    pub async fn remove_snapshot(&self, key: &str) -> Result<bool, ImageError> {
        match SnapshotsClient::new(self.channel.clone())
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(ctd(format!("remove snapshot {key}"))(s)),
        }
    }

    // ---- diff ----

    /// Applies the layer `layer` onto `mounts`; returns the applied (uncompressed) digest.
    pub async fn apply(
        &self,
        layer: CtdDescriptor,
        mounts: Vec<Mount>,
    ) -> Result<String, ImageError> {
        let digest = layer.digest.clone();
        DiffClient::new(self.channel.clone())
            .apply(self.req(ApplyRequest {
                diff: Some(layer),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(ctd(format!("apply layer {digest}")))
            .map(|r| r.into_inner().applied.map(|d| d.digest).unwrap_or_default())
    }
}

/// The two halves of a content write call.
type WriteSession = (
    mpsc::Sender<WriteContentRequest>,
    Streaming<WriteContentResponse>,
);

/// An open content ingest: write the bytes in order, then commit.
pub(crate) struct BlobWriter {
    tx: mpsc::Sender<WriteContentRequest>,
    rx: Streaming<WriteContentResponse>,
    action: String,
    offset: i64,
}

impl BlobWriter {
    async fn round_trip(
        &mut self,
        req: WriteContentRequest,
    ) -> Result<WriteContentResponse, Status> {
        if self.tx.send(req).await.is_err() {
            // The server ended the call: its status is on the response stream.
            return match self.rx.message().await {
                Err(s) => Err(s),
                _ => Err(Status::internal("write stream closed")),
            };
        }
        match self.rx.message().await? {
            Some(m) => Ok(m),
            None => Err(Status::internal("write stream closed")),
        }
    }

    /// Appends `data`.
    pub async fn write(&mut self, data: Bytes) -> Result<(), ImageError> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as i64;
        let req = WriteContentRequest {
            action: WriteAction::Write as i32,
            offset: self.offset,
            data: data.to_vec(),
            ..Default::default()
        };
        let resp = self
            .round_trip(req)
            .await
            .map_err(ctd(self.action.clone()))?;
        self.offset += len;
        if resp.offset != self.offset {
            return Err(ImageError::Containerd {
                action: self.action.clone(),
                code: Code::DataLoss,
                message: format!("offset {} after writing up to {}", resp.offset, self.offset),
            });
        }
        Ok(())
    }

    /// Commits the blob, checking `total` bytes and, when given, the `expected` digest; adds
    /// `labels`. Returns the digest. Content that appeared meanwhile is a success.
    pub async fn commit(
        mut self,
        total: i64,
        expected: Option<&str>,
        labels: &[(String, String)],
    ) -> Result<String, ImageError> {
        let req = WriteContentRequest {
            action: WriteAction::Commit as i32,
            offset: self.offset,
            total,
            expected: expected.unwrap_or_default().to_owned(),
            labels: labels.iter().cloned().collect(),
            ..Default::default()
        };
        match self.round_trip(req).await {
            Ok(resp) => Ok(resp.digest),
            Err(s) if s.code() == Code::AlreadyExists => {
                Ok(expected.unwrap_or_default().to_owned())
            }
            Err(s) => Err(ctd(self.action.clone())(s)),
        }
    }
}
