//! The figures read from the host at each scrape: every running capsule's containers (CPU time,
//! working set, memory limit, running, restarts, OOM kills), each capsule's network bytes, the
//! shims that answered, and the broker connection's counters. Written as constant series of
//! the last reading: a capsule that is gone is gone from the next scrape.

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::runtime::CapsuleUsage;

/// What the host says at one scrape.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every capsule whose shim answered.
    pub capsules: Vec<CapsuleUsage>,
    /// The broker connection's counters (`None`: not over AMQP).
    pub bus: Option<rpc::AmqpStats>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    capsule: String,
    container: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapsuleLabels {
    capsule: String,
}

/// The last snapshot, encoded when the registry is.
#[derive(Debug, Default)]
pub(super) struct Collected(Mutex<Snapshot>);

impl Collected {
    pub(super) fn set(&self, s: Snapshot) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// One metric of several series.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut e = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in series {
        metric.encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let containers: Vec<_> = s
            .capsules
            .iter()
            .flat_map(|c| {
                c.containers.iter().map(move |k| {
                    let labels = ContainerLabels {
                        capsule: c.capsule.to_string(),
                        container: k.container.to_string(),
                    };
                    (labels, k)
                })
            })
            .collect();
        let each = |f: fn(&crate::runtime::ContainerUsage) -> f64| {
            containers.iter().map(move |(l, k)| (l.clone(), f(k)))
        };
        family(
            &mut encoder,
            "container_cpu_seconds",
            "CPU time of a container's cgroup (its process and what was exec'd into it); \
             starts again from 0 when the container restarts",
            MetricType::Counter,
            each(|k| k.cpu_seconds).map(|(l, v)| (l, ConstCounter::new(v))),
        )?;
        family(
            &mut encoder,
            "container_memory_working_set_bytes",
            "Memory a container uses less its inactive file cache",
            MetricType::Gauge,
            each(|k| k.memory_working_set_bytes as f64).map(|(l, v)| (l, ConstGauge::new(v))),
        )?;
        family(
            &mut encoder,
            "container_memory_limit_bytes",
            "A container's memory limit (the host's memory when it has none)",
            MetricType::Gauge,
            each(|k| k.memory_limit_bytes as f64).map(|(l, v)| (l, ConstGauge::new(v))),
        )?;
        family(
            &mut encoder,
            "container_running",
            "1 while a container's process runs",
            MetricType::Gauge,
            each(|k| f64::from(u8::from(k.running))).map(|(l, v)| (l, ConstGauge::new(v))),
        )?;
        family(
            &mut encoder,
            "container_restarts",
            "Restarts a container's restart policy made",
            MetricType::Counter,
            containers
                .iter()
                .map(|(l, k)| (l.clone(), ConstCounter::new(u64::from(k.restarts)))),
        )?;
        family(
            &mut encoder,
            "container_oom_kills",
            "Times the kernel killed a container for lack of memory",
            MetricType::Counter,
            containers
                .iter()
                .map(|(l, k)| (l.clone(), ConstCounter::new(u64::from(k.oom_kills)))),
        )?;
        let capsule = |c: &CapsuleUsage| CapsuleLabels {
            capsule: c.capsule.to_string(),
        };
        family(
            &mut encoder,
            "capsule_network_receive_bytes",
            "Bytes a capsule received on its network interfaces (loopback left out)",
            MetricType::Counter,
            s.capsules
                .iter()
                .map(|c| (capsule(c), ConstCounter::new(c.network_rx_bytes))),
        )?;
        family(
            &mut encoder,
            "capsule_network_transmit_bytes",
            "Bytes a capsule sent on its network interfaces (loopback left out)",
            MetricType::Counter,
            s.capsules
                .iter()
                .map(|c| (capsule(c), ConstCounter::new(c.network_tx_bytes))),
        )?;
        let shims = i64::try_from(s.capsules.len()).unwrap_or(i64::MAX);
        ConstGauge::new(shims).encode(encoder.encode_descriptor(
            "shims",
            "Capsule shims that answered (one per running capsule)",
            None,
            MetricType::Gauge,
        )?)?;
        if let Some(bus) = s.bus {
            for (name, help, v) in [
                (
                    "amqp_connections",
                    "Connections made to the broker, the first included",
                    bus.connections,
                ),
                (
                    "amqp_publish_attempts",
                    "Publish attempts (reports, heartbeats, replies' retries included)",
                    bus.publish_attempts,
                ),
                (
                    "amqp_publishes_confirmed",
                    "Publishes the broker confirmed",
                    bus.publishes_confirmed,
                ),
            ] {
                ConstCounter::new(v).encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    MetricType::Counter,
                )?)?;
            }
        }
        Ok(())
    }
}
