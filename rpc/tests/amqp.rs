//! The AMQP bus against a real RabbitMQ node owned by each test: confirmed casts into durable
//! queues, acknowledgement after handling, requeue on retry, calls with replies, and no message
//! lost across a broker restart or crash in the middle of a stream of casts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpc::{AmqpBus, Bus, Delivery, Disposition, Handler, QueueSpec, RpcError};
use test_support::PrivateBroker;

/// Records every payload it sees; retries a payload once if it starts with `retry`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Handler for Recorder {
    async fn handle(&self, d: Delivery) -> Disposition {
        let text = String::from_utf8(d.payload).unwrap();
        let first = {
            let mut seen = self.seen.lock().unwrap();
            let first = !seen.iter().any(|(t, _)| *t == text);
            seen.push((text.clone(), d.redelivered));
            first
        };
        if text.starts_with("retry") && first {
            return Disposition::Retry(Duration::from_millis(50));
        }
        if d.wants_reply {
            return Disposition::Reply(format!("re:{text}").into_bytes());
        }
        Disposition::Ack
    }
}

impl Recorder {
    fn distinct(&self) -> HashSet<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.distinct().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived",
                self.distinct().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn bus(b: &PrivateBroker) -> Bus {
    Bus::Amqp(AmqpBus::new(&b.url(), "rpc-test"))
}

const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_wait_in_durable_queues_until_consumed() {
    let broker = PrivateBroker::start();
    let bus = bus(&broker);
    // Published before anyone consumes: the queue keeps them.
    for i in 0..20 {
        bus.publish("zun-compute.h1", format!("m{i}").as_bytes(), PATIENCE)
            .await
            .unwrap();
    }
    let rec = Recorder::default();
    let consumer = bus.consume(QueueSpec::named("zun-compute.h1", 8), rec.clone());
    rec.wait_for(20, Duration::from_secs(10)).await;
    consumer.stop().await;
    assert_eq!(rec.seen.lock().unwrap().len(), 20, "each exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_requeues_and_redelivers() {
    let broker = PrivateBroker::start();
    let bus = bus(&broker);
    let rec = Recorder::default();
    let consumer = bus.consume(QueueSpec::named("zun-conductor", 4), rec.clone());
    bus.publish("zun-conductor", b"retry-1", PATIENCE)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.seen.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no redelivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen[0], ("retry-1".to_owned(), false));
    assert_eq!(seen[1], ("retry-1".to_owned(), true));
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_get_replies_and_time_out_without_a_server() {
    let broker = PrivateBroker::start();
    let bus = bus(&broker);
    let err = bus
        .call("zun-compute.nobody", b"ping", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err:?}");
    let consumer = bus.consume(QueueSpec::named("zun-compute.h2", 4), Recorder::default());
    let reply = bus
        .call("zun-compute.h2", b"ping", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reply, b"re:ping");
    consumer.stop().await;
}

/// Publishes `n` messages while `fault` hits the broker halfway, then checks every one
/// arrives (at least once; duplicates are the handlers' business).
async fn survive(fault: impl FnOnce(&mut PrivateBroker) + Send + 'static) {
    let mut broker = PrivateBroker::start();
    let url = broker.url();
    let publisher = Bus::Amqp(AmqpBus::new(&url, "publisher"));
    let consumer_bus = Bus::Amqp(AmqpBus::new(&url, "consumer"));
    let rec = Recorder::default();
    let consumer = consumer_bus.consume(QueueSpec::named("zun-compute.h3", 8), rec.clone());
    let n = 50;
    for i in 0..n / 2 {
        publisher
            .publish("zun-compute.h3", format!("m{i}").as_bytes(), PATIENCE)
            .await
            .unwrap();
    }
    // The fault runs on a thread while publishing goes on: publishes block (retrying) until the
    // broker is back, and none may be lost.
    let faulting = std::thread::spawn(move || {
        fault(&mut broker);
        broker
    });
    for i in n / 2..n {
        publisher
            .publish("zun-compute.h3", format!("m{i}").as_bytes(), PATIENCE)
            .await
            .unwrap();
    }
    let _broker = faulting.join().unwrap();
    rec.wait_for(n, Duration::from_secs(60)).await;
    let want: HashSet<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(rec.distinct(), want);
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_lost_across_a_broker_restart() {
    survive(|b| b.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_confirmed_message_lost_when_the_broker_crashes() {
    survive(|b| {
        b.kill();
        std::thread::sleep(Duration::from_millis(500));
        b.start_again();
    })
    .await;
}
