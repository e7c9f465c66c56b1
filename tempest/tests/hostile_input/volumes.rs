//! Volumes: hostile creates, and hostile updates, metadata and actions on a volume of demo's
//! made for the run (the fixture), judged by the block-storage API's contract.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};
use tempest::unique_name;

use crate::oracle::volume_version;
use crate::oracle_volume::{volume_change, volume_create};
use crate::paths::{pct_decode, segment, Segment};
use crate::stack::Stack;
use crate::strategies::{apply, edit_kind, edits, Deeps, Edit};
use crate::verdict::Verdict;
use crate::wire::{Api, Wire};
use crate::NOWHERE;

/// The name every generated volume starts with.
pub(crate) const NAME_FOR_VOLUMES: &str = "hostile-input";

pub(crate) const VOLUME_LOCS: &[&str] = &[
    "",
    "extra",
    "OS-SCH-HNT:scheduler_hints",
    "volume",
    "volume.size",
    "volume.name",
    "volume.display_name",
    "volume.description",
    "volume.display_description",
    "volume.availability_zone",
    "volume.metadata",
    "volume.metadata.key",
    "volume.volume_type",
    "volume.multiattach",
    "volume.snapshot_id",
    "volume.imageRef",
    "volume.source_volid",
    "volume.backup_id",
    "volume.consistencygroup_id",
    "volume.scheduler_hints",
    "volume.project_id",
    "volume.unknown",
];

#[derive(Clone, Debug)]
pub(crate) struct VolumeCase {
    /// A valid body may make a real volume (otherwise it names a zone that does not exist).
    pub(crate) real: bool,
    /// `/v3/{project_id}/volumes` rather than `/v3/volumes`.
    pub(crate) in_project: bool,
    pub(crate) version: &'static str,
    pub(crate) edits: Vec<Edit>,
}

pub(crate) const VOLUME_VERSIONS: &[&str] = &[
    "volume 3.71",
    "volume 3",
    "volume latest",
    "volume 3.0",
    "volume x.y",
    "",
    "volume 03.1",
    "compute 2.1",
    "volume 4.0",
    "volume 3.99999999999999999999",
];

pub(crate) fn volume_case() -> impl Strategy<Value = VolumeCase> {
    (
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
        prop_oneof![9 => Just("volume 3.70"), 1 => select(VOLUME_VERSIONS)],
        edits(VOLUME_LOCS, 3),
    )
        .prop_map(|(real, in_project, version, edits)| VolumeCase {
            real,
            in_project,
            version,
            edits,
        })
}

impl Stack {
    /// The request of a volume create, and what it must get.
    pub(crate) fn volume_wire(&self, c: &VolumeCase) -> (Wire, Verdict) {
        let mut body = json!({"volume": {"size": 1, "name": NAME_FOR_VOLUMES}});
        if !c.real {
            body["volume"]["availability_zone"] = json!(NOWHERE);
        }
        let mut deeps = Deeps::default();
        apply(&mut body, &c.edits, &mut deeps, &self.marks());
        let judged = volume_version(Some(c.version)).and_then(|_| volume_create(&body, &deeps));
        let mut kinds: Vec<String> = c.edits.iter().map(edit_kind).collect();
        if c.version != "volume 3.70" {
            kinds.push(format!("version {:?}", c.version));
        }
        if !c.in_project {
            kinds.push("no project in the path".into());
        }
        let path = if c.in_project {
            format!("/v3/{}/volumes", self.project)
        } else {
            "/v3/volumes".to_owned()
        };
        let mut w = self.wire(
            Api::Volume,
            "POST",
            path.as_bytes(),
            Some(deeps.render(&body).into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        w.headers.push((
            "OpenStack-API-Version".into(),
            c.version.as_bytes().to_vec(),
        ));
        (w, Verdict::of(judged, kinds))
    }
}

/// Changes of the fixture volume: `(method, path below the volume, valid body)`.
pub(crate) const VOLUME_CHANGES: &[(&str, &str, &str)] = &[
    (
        "PUT",
        "",
        r#"{"volume": {"name": "hostile-fixture", "description": "fixture"}}"#,
    ),
    ("POST", "/metadata", r#"{"metadata": {"k": "v"}}"#),
    ("PUT", "/metadata", r#"{"metadata": {"k": "v"}}"#),
    ("PUT", "/metadata/k", r#"{"meta": {"k": "v"}}"#),
    ("POST", "/action", r#"{"os-extend": {"new_size": 2}}"#),
];

pub(crate) const VOLUME_CHANGE_LOCS: &[&str] = &[
    "",
    "extra",
    "volume",
    "volume.name",
    "volume.description",
    "volume.display_name",
    "volume.metadata",
    "volume.metadata.k",
    "volume.size",
    "volume.status",
    "metadata",
    "metadata.k",
    "metadata.other",
    "meta",
    "meta.k",
    "meta.other",
    "os-extend",
    "os-extend.new_size",
    "os-reset_status",
];

#[derive(Clone, Debug)]
pub(crate) struct VolumeChangeCase {
    pub(crate) change: usize,
    pub(crate) version: &'static str,
    pub(crate) edits: Vec<Edit>,
    /// The metadata key in the path (for `/metadata/{key}`), when not `k`.
    pub(crate) key: Option<Segment>,
}

pub(crate) fn volume_change_case() -> impl Strategy<Value = VolumeChangeCase> {
    (
        0..VOLUME_CHANGES.len(),
        prop_oneof![6 => Just("volume 3.70"), 1 => Just("volume 3.0"), 1 => Just("volume 3.52"), 1 => select(VOLUME_VERSIONS)],
        edits(VOLUME_CHANGE_LOCS, 3),
        prop::option::weighted(0.2, segment()),
    )
        .prop_map(|(change, version, edits, key)| VolumeChangeCase {
            change,
            version,
            edits,
            key,
        })
}

impl Stack {
    /// The request of a change of the fixture volume, and what it must get.
    pub(crate) fn volume_change_wire(
        &self,
        c: &VolumeChangeCase,
        fixture: &str,
    ) -> (Wire, Verdict) {
        let (method, below, valid) = VOLUME_CHANGES[c.change];
        let mut body: Value = serde_json::from_str(valid).expect("valid body");
        let mut deeps = Deeps::default();
        apply(&mut body, &c.edits, &mut deeps, &self.marks());
        // The key the path names, as the API decodes it.
        let key = match (&c.key, below) {
            (Some(k), "/metadata/k") => {
                String::from_utf8_lossy(&pct_decode(&k.bytes())).into_owned()
            }
            _ => "k".to_owned(),
        };
        let judged = volume_version(Some(c.version))
            .and_then(|minor| volume_change(c.change, &body, &deeps, minor, &key));
        let mut kinds: Vec<String> = c.edits.iter().map(edit_kind).collect();
        kinds.push(format!("{method} volume{below}"));
        if c.version != "volume 3.70" {
            kinds.push(format!("version {:?}", c.version));
        }
        if c.key.is_some() && below == "/metadata/k" {
            kinds.push("a hostile key in the path".into());
        }
        let mut path = format!("/v3/{}/volumes/{fixture}", self.project).into_bytes();
        match (&c.key, below) {
            (Some(k), "/metadata/k") => {
                path.extend_from_slice(b"/metadata/");
                path.extend_from_slice(&k.bytes());
            }
            _ => path.extend_from_slice(below.as_bytes()),
        }
        let mut w = self.wire(
            Api::Volume,
            method,
            &path,
            Some(deeps.render(&body).into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        w.headers.push((
            "OpenStack-API-Version".into(),
            c.version.as_bytes().to_vec(),
        ));
        (w, Verdict::of(judged, kinds))
    }

    /// A volume of demo's for the run, once available.
    pub(crate) async fn fixture_volume(&self) -> String {
        let (status, v) = self
            .call(
                Api::Volume,
                false,
                "POST",
                &format!("/v3/{}/volumes", self.project),
                Some(json!({"volume": {"size": 1, "name": unique_name("hostile-fixture")}})),
            )
            .await;
        assert_eq!(status, 202, "fixture volume: {v}");
        let id = v["volume"]["id"].as_str().expect("volume id").to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self
                .call(
                    Api::Volume,
                    false,
                    "GET",
                    &format!("/v3/{}/volumes/{id}", self.project),
                    None,
                )
                .await;
            match v["volume"]["status"].as_str() {
                Some("available") => return id,
                Some("creating") | None if Instant::now() < deadline => {}
                other => panic!("fixture volume {id} is {other:?}: {v}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
