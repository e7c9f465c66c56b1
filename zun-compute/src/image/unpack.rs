//! Unpacking an image into committed snapshots, once: for each layer bottom up, the snapshot
//! named by its chain id is kept if it exists, else prepared on its parent under a random
//! `extract-` key, filled by containerd's diff service, and committed under the chain id. A
//! concurrent unpacker (another image sharing layers, another agent) committing the same chain
//! id first is a success. The image's config is then labelled so containerd's GC keeps the top
//! snapshot.

use std::collections::HashMap;
use std::time::Instant;

use containerd_client::tonic::Code;

use super::ctd::Ctd;
use super::error::{ctd as ctd_err, ImageError};
use super::oci::{self, Descriptor};
use super::Resolved;

/// Makes sure every layer of `res` is unpacked; returns the top chain id. Works under `ctd`'s
/// lease if it has one, else under its own.
pub(crate) async fn unpack(ctd: &Ctd, res: &Resolved) -> Result<String, ImageError> {
    let chain = res.chain_ids();
    let Some(top) = chain.last().cloned() else {
        return Err(ImageError::Invalid {
            reference: res.name.clone(),
            reason: "it has no layers".into(),
        });
    };
    let gc_label = [(oci::snapshot_gc_label(&ctd.snapshotter), top.clone())];
    if ctd.snapshot(&top).await?.is_some() {
        ctd.label_content(&res.manifest.config.digest, &gc_label)
            .await?;
        return Ok(top);
    }
    if ctd.has_lease() {
        return unpack_layers(ctd, res, &chain, &gc_label).await;
    }
    let own = ctd.leased("unpack").await?;
    let result = unpack_layers(&own, res, &chain, &gc_label).await;
    own.release_lease().await;
    result
}

async fn unpack_layers(
    ctd: &Ctd,
    res: &Resolved,
    chain: &[String],
    gc_label: &[(String, String)],
) -> Result<String, ImageError> {
    let started = Instant::now();
    let diffs = &res.config.rootfs.diff_ids;
    let mut applied = 0;
    for (i, layer) in res.manifest.layers.iter().enumerate() {
        if ctd.snapshot(&chain[i]).await?.is_some() {
            continue;
        }
        let parent = if i == 0 { "" } else { chain[i - 1].as_str() };
        if apply_layer(ctd, res, layer, &diffs[i], &chain[i], parent).await? {
            applied += 1;
            ctd.label_content(
                &layer.digest,
                &[(oci::LABEL_UNCOMPRESSED.to_owned(), diffs[i].clone())],
            )
            .await?;
        }
    }
    ctd.label_content(&res.manifest.config.digest, gc_label)
        .await?;
    tracing::info!(
        image = %res.name,
        layers = applied,
        ms = started.elapsed().as_millis() as u64,
        "image unpacked"
    );
    Ok(chain.last().cloned().unwrap_or_default())
}

/// Applies `layer` on `parent` and commits it as `chain_id`. Returns false if someone else
/// committed it meanwhile.
async fn apply_layer(
    ctd: &Ctd,
    res: &Resolved,
    layer: &Descriptor,
    diff_id: &str,
    chain_id: &str,
    parent: &str,
) -> Result<bool, ImageError> {
    let key = format!("extract-{} {chain_id}", uuid::Uuid::new_v4().simple());
    let labels = HashMap::from([(oci::LABEL_SNAPSHOT_REF.to_owned(), chain_id.to_owned())]);
    let mounts = match ctd.prepare(&key, parent, labels.clone()).await {
        Ok(m) => m,
        // The target chain id exists already (containerd checks the snapshot.ref label).
        Err(s) if s.code() == Code::AlreadyExists => return Ok(false),
        Err(s) => {
            return Err(ctd_err(format!(
                "prepare snapshot {key} on {}",
                if parent.is_empty() { "nothing" } else { parent }
            ))(s))
        }
    };
    let done = async {
        let got = ctd.apply(layer.to_ctd(), mounts).await?;
        if got != diff_id {
            return Err(ImageError::Invalid {
                reference: res.name.clone(),
                reason: format!(
                    "layer {} unpacks to {got}, but its config says {diff_id}",
                    layer.digest
                ),
            });
        }
        match ctd.commit(chain_id, &key, labels).await {
            Ok(()) => Ok(true),
            Err(s) if s.code() == Code::AlreadyExists => Ok(false),
            Err(s) => Err(ctd_err(format!("commit snapshot {chain_id}"))(s)),
        }
    }
    .await;
    if !matches!(done, Ok(true)) {
        if let Err(e) = ctd.remove_snapshot(&key).await {
            tracing::warn!(key, error = %e.reason(), "cannot remove extraction snapshot");
        }
    }
    done
}
