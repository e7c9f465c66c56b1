//! RPC benchmark on a private RabbitMQ: the round trip of a capsule create through the whole
//! control plane (HTTP create -> outbox -> broker -> agent -> report -> conductor -> database
//! says Running), with the fake runtime so only the RPC path is timed; and the bus alone:
//! confirmed casts per second into a queue and deliveries per second out of it.
//! Run it with `devstack/bench.sh rpc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::percentile_ms as pct;
use rpc::{AmqpBus, Bus, Delivery, Disposition, Handler, QueueSpec};

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Handler for Counter {
    async fn handle(&self, _d: Delivery) -> Disposition {
        self.0.fetch_add(1, Ordering::Relaxed);
        Disposition::Ack
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = e2e::Stack::start_with(60).await;
    let _c1 = stack.compute("bench1", 1_000_000, 0).await;

    // Round trip through the control plane, sequential.
    let n = 200;
    let mut rtt = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let t = Instant::now();
        let uuid = stack.create(&format!("rt{i}"), 4).await;
        loop {
            let rec = stack
                .state
                .db
                .capsule_by_uuid(&db::Scope::All, &uuid)
                .await
                .expect("db")
                .expect("row");
            if rec.capsule.status == "Running" {
                break;
            }
            assert_ne!(
                rec.capsule.status, "Error",
                "{:?}",
                rec.capsule.status_reason
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        if i >= 20 {
            rtt.push(t.elapsed());
        }
    }
    rtt.sort();

    // The bus alone: 16 publishers, one consumer with prefetch 64.
    let url = stack.broker.as_ref().expect("broker").url();
    let bus = Bus::Amqp(AmqpBus::new(&url, "bench"));
    let counter = Counter::default();
    let consumer = bus.consume(QueueSpec::named("bench-queue", 64), counter.clone());
    let total = 10_000u64;
    let publishers = 16u64;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / publishers {
                bus.publish("bench-queue", b"{\"version\":1}", Duration::from_secs(30))
                    .await
                    .expect("publish");
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher");
    }
    let published = t.elapsed();
    while counter.0.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let consumed = t.elapsed();
    consumer.stop().await;

    println!("RPC benchmark (private RabbitMQ 3.10, SQLite, fake runtime, 2 cores)");
    println!("{:<58} {:>9} {:>9}", "measure", "p50 ms", "p99 ms");
    println!(
        "{:<58} {:>9.2} {:>9.2}",
        format!("create round trip: POST -> agent -> report written (n={n})"),
        pct(&rtt, 0.5),
        pct(&rtt, 0.99)
    );
    println!(
        "{:<58} {:>9.0}/s",
        format!("confirmed persistent casts ({publishers} publishers)"),
        total as f64 / published.as_secs_f64()
    );
    println!(
        "{:<58} {:>9.0}/s",
        "deliveries acked by one consumer (prefetch 64)",
        total as f64 / consumed.as_secs_f64()
    );
    let mut f = bench::Figures::new("rpc");
    f.latency(
        "round_trip",
        "create: POST -> agent -> report written",
        &rtt,
    );
    let rate = total as f64 / published.as_secs_f64();
    f.value(
        "casts",
        "confirmed persistent casts, 16 publishers",
        rate,
        "msg/s",
    );
    let rate = total as f64 / consumed.as_secs_f64();
    f.value("acks", "deliveries acked by one consumer", rate, "msg/s");
    f.save().expect("bench/out/rpc.json");
    stack.stop().await;
}
