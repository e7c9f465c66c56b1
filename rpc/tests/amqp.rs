//! The AMQP bus against a real RabbitMQ node owned by each test: confirmed casts into durable
//! queues, acknowledgement after handling, requeue on retry, calls with replies, and no message
//! lost across a broker restart or crash in the middle of a stream of casts, with one cast in
//! flight across the outage (sent before, confirmed only after, by a retry the bus's counters
//! show).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpc::{AmqpBus, Bus, Delivery, Disposition, Handler, QueueSpec, RpcError};
use test_support::PrivateBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// How long a publish may keep retrying: past a broker's restart after a crash (recovery of
/// its message store included) on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);

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

/// A TCP relay standing for the network between a publisher and its broker. [`Relay::hold`]
/// holds what the publisher sends on the connections open at that moment: those bytes are on
/// their way and never reach the broker (such a connection is meant to end with the broker).
/// What the broker sends always passes, and when the broker's side closes the publisher's
/// side is closed, so a broker going away is seen as without the relay. Connections made after
/// a hold pass freely. Its task ends with the test's runtime.
struct Relay {
    /// The broker's URL with the relay's port.
    url: String,
    /// Connections made so far; those numbered below `hold_below` are held.
    made: Arc<AtomicU64>,
    hold_below: Arc<AtomicU64>,
    /// Bytes held so far.
    held: Arc<AtomicUsize>,
}

impl Relay {
    /// A relay to the broker of `url` (`amqp://user:password@127.0.0.1:PORT/vhost`).
    async fn start(url: &str) -> Self {
        let (head, tail) = url
            .split_once("@127.0.0.1:")
            .expect("a loopback broker URL");
        let (port, vhost) = tail.split_once('/').expect("a vhost");
        let broker = format!("127.0.0.1:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay port");
        let relay_port = listener.local_addr().expect("relay address").port();
        let relay = Relay {
            url: format!("{head}@127.0.0.1:{relay_port}/{vhost}"),
            made: Arc::default(),
            hold_below: Arc::default(),
            held: Arc::default(),
        };
        let (made, hold_below, held) = (
            relay.made.clone(),
            relay.hold_below.clone(),
            relay.held.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = made.fetch_add(1, Ordering::SeqCst);
                let (hold_below, held, broker) = (hold_below.clone(), held.clone(), broker.clone());
                tokio::spawn(async move {
                    // A broker that is down refuses the relay: the publisher sees its
                    // connection close at once, as it would see the refusal.
                    let Ok(upstream) = TcpStream::connect(&broker).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_broker, mut to_broker) = upstream.into_split();
                    let outbound = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = from_client.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            if id < hold_below.load(Ordering::SeqCst) {
                                held.fetch_add(n, Ordering::SeqCst);
                            } else if to_broker.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let inbound = tokio::io::copy(&mut from_broker, &mut to_client);
                    // Whichever side ends first ends both: its sockets close when dropped.
                    tokio::select! {
                        _ = outbound => {}
                        _ = inbound => {}
                    }
                });
            }
        });
        relay
    }

    /// Holds what the publisher sends on the connections open now.
    fn hold(&self) {
        self.hold_below
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Waits until some bytes were held.
    async fn wait_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.held.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the publisher sent nothing");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Publishes `n` messages across a broker outage (`down` takes the broker down; it is then
/// started again), one of them in flight through it: published (its frames on the wire)
/// before the broker goes down, held on its way by the [`Relay`] so that only a retry on a
/// new connection can have it confirmed, after the broker was gone. Then every message must
/// arrive (at least once; duplicates are the handlers' business).
async fn survive(down: impl FnOnce(&mut PrivateBroker) + Send + 'static) {
    // One outage at a time: two brokers restarting at once on a 2-core machine, beside the
    // other tests' brokers, can take longer than a publisher's patience.
    static OUTAGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = OUTAGE.lock().await;
    let mut broker = PrivateBroker::start();
    let url = broker.url();
    let relay = Relay::start(&url).await;
    let publisher = AmqpBus::new(&relay.url, "publisher");
    let consumer_bus = Bus::Amqp(AmqpBus::new(&url, "consumer"));
    let rec = Recorder::default();
    let consumer = consumer_bus.consume(QueueSpec::named("zun-compute.h3", 8), rec.clone());
    let n = 50;
    let half = n / 2;
    for i in 0..half {
        publisher
            .publish("zun-compute.h3", format!("m{i}").as_bytes(), PATIENCE)
            .await
            .unwrap();
    }

    // m{half} goes out while the network holds what the publisher sends.
    relay.hold();
    let before = publisher.stats();
    let sent = Instant::now();
    let in_flight = tokio::spawn({
        let publisher = publisher.clone();
        let m = format!("m{half}");
        async move {
            publisher
                .publish("zun-compute.h3", m.as_bytes(), PATIENCE)
                .await
                .map(|()| Instant::now())
        }
    });
    relay.wait_held().await;
    assert!(
        !in_flight.is_finished(),
        "m{half} was done before the broker went down: {:?}",
        in_flight.await
    );
    assert_eq!(
        publisher.stats().publish_attempts,
        before.publish_attempts + 1,
        "m{half} is on its first attempt"
    );

    // The broker goes down and comes back while m{half} waits for its confirm.
    let (going, gone, back, broker) = tokio::task::spawn_blocking(move || {
        let going = Instant::now();
        down(&mut broker);
        let gone = Instant::now();
        broker.start_again();
        (going, gone, Instant::now(), broker)
    })
    .await
    .unwrap();
    let confirmed = in_flight
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("m{half} was never confirmed: {e}"));
    let after = publisher.stats();
    let at = |t: Instant| t.duration_since(sent);
    println!(
        "m{half}: sent at 0, broker going down at {:?}, gone at {:?}, back at {:?}, confirmed \
         at {:?}; publisher {before:?} -> {after:?}",
        at(going),
        at(gone),
        at(back),
        at(confirmed)
    );
    assert!(
        sent < going,
        "m{half} was sent after the broker began to go down"
    );
    assert!(
        confirmed > gone,
        "m{half} was confirmed before the broker was gone, by the broker that went down"
    );
    assert!(
        after.publish_attempts >= before.publish_attempts + 2,
        "m{half} was not retried: {before:?} -> {after:?}"
    );
    assert!(
        after.connections > before.connections,
        "m{half} was confirmed without a new connection: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.publishes_confirmed,
        before.publishes_confirmed + 1,
        "m{half} confirmed once"
    );

    for i in half + 1..n {
        publisher
            .publish("zun-compute.h3", format!("m{i}").as_bytes(), PATIENCE)
            .await
            .unwrap();
    }
    rec.wait_for(n, Duration::from_secs(60)).await;
    let want: HashSet<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(rec.distinct(), want);
    consumer.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_lost_across_a_broker_restart_with_a_publish_in_flight() {
    survive(|b| b.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_confirmed_message_lost_when_the_broker_crashes_with_a_publish_in_flight() {
    survive(|b| {
        b.kill();
        std::thread::sleep(Duration::from_millis(500));
    })
    .await;
}
