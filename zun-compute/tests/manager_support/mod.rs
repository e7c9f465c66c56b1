//! What the manager's tests share (`manager.rs`, `manager_ops.rs`, and the real runtime's
//! `container_ops.rs`): the conductor's queue of an in-process bus read into a list, a manager
//! over the fake drivers, and a container call asked of a manager with its answer.
// Each test file uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capsule_types::rpc::{
    CapsuleSpec, ComputeRequest, ConductorEvent, ContainerCall, ContainerReply, Envelope,
    CONDUCTOR_QUEUE,
};
use rpc::{Bus, Delivery, Disposition, QueueSpec, TypedHandler};
use zun_compute::manager::{Manager, Outcome};
use zun_compute::reporter::Reporter;
use zun_compute::store::Store;

/// What the conductor was told, in order.
pub type Reports = Arc<Mutex<Vec<ConductorEvent>>>;

/// Reads the conductor's queue of `bus` into a new list (the consumer runs on the test's
/// runtime).
pub fn conductor_reports(bus: &Bus) -> Reports {
    let reports = Reports::default();
    read_reports(bus, reports.clone());
    reports
}

/// Reads the conductor's queue of `bus` into `sink` (a list kept across agent restarts).
pub fn read_reports(bus: &Bus, sink: Reports) {
    let _ = bus.consume(
        QueueSpec::named(CONDUCTOR_QUEUE, 8),
        TypedHandler::new(move |env: Envelope<ConductorEvent>, _d: Delivery| {
            sink.lock().unwrap().push(env.body);
            async { Disposition::Ack }
        }),
    );
}

/// A manager of host `h1` over the fake drivers and a store in `dir`, reporting on `bus`.
pub fn fake_manager(dir: &Path, bus: Bus) -> Manager {
    Manager::new(
        zun_compute::start::fake_drivers(dir, Duration::ZERO).unwrap(),
        Store::open(dir).unwrap(),
        Reporter::new(bus, "h1"),
    )
}

/// Asks `manager` container call `call` of container `c` of `s` (request id `rid`); its answer.
pub async fn call(
    manager: &Manager,
    s: &CapsuleSpec,
    c: usize,
    call: ContainerCall,
    rid: &str,
) -> ContainerReply {
    let req = ComputeRequest::ContainerCall {
        capsule: s.uuid,
        container: s.containers[c].uuid,
        call,
    };
    match manager.handle(req, Some(rid.into())).await.unwrap() {
        Outcome::Reply(v) => serde_json::from_value(v).unwrap(),
        other => panic!("not a reply: {other:?}"),
    }
}
