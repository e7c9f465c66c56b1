//! A copy of every message the API sends to a compute host, and the means to send one again:
//! a queue of the test's own, bound on the stack's broker to the host's routing key, gets each
//! message as the host's queue gets it, byte for byte; [`Tap::cast_again`] publishes such a
//! copy on the host's queue once more (a duplicate delivery, as a broker redelivers after a
//! lost acknowledgement), and [`Tap::call_again`] asks a call again and returns the answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc::{AmqpBus, Bus, ConsumerHandle, Delivery, Disposition, Handler, QueueSpec};
use test_support::wait::until_async;

use crate::Stack;

/// One message the host was sent.
#[derive(Clone, Debug)]
pub struct Tapped {
    /// The envelope, as published.
    pub payload: Vec<u8>,
    /// Whether it was a call (the sender waited for an answer).
    pub wants_reply: bool,
}

/// The tap on one host's queue. Stops consuming when dropped (its queue stays, unused).
pub struct Tap {
    bus: Bus,
    queue: String,
    seen: Arc<Mutex<Vec<Tapped>>>,
    consumer: Option<ConsumerHandle>,
}

#[derive(Clone)]
struct Keep(Arc<Mutex<Vec<Tapped>>>);

impl Handler for Keep {
    async fn handle(&self, d: Delivery) -> Disposition {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Tapped {
                payload: d.payload,
                wants_reply: d.wants_reply,
            });
        Disposition::Ack
    }
}

/// How long a publish may wait for the broker.
const PATIENCE: Duration = Duration::from_secs(10);

impl Tap {
    /// Taps `queue` (a host's queue, `zun-compute.<host>`) on the stack's broker, and returns
    /// once the tap gets what is sent there.
    pub async fn start(stack: &Stack, queue: &str) -> Self {
        let bus = Bus::Amqp(AmqpBus::new(stack.broker_url(), "e2e-tap"));
        let own = format!("e2e-tap.{queue}");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let consumer = bus.consume(
            QueueSpec {
                queue: own.clone(),
                bindings: vec![queue.to_owned(), own.clone()],
                prefetch: 16,
            },
            Keep(seen.clone()),
        );
        let tap = Self {
            bus,
            queue: queue.to_owned(),
            seen,
            consumer: Some(consumer),
        };
        // A probe through the tap's own key: once it is back, the consumer has declared and
        // bound its queue (before consuming), so it gets everything sent to `queue` from now.
        let probe = format!("tap-probe-{}", uuid::Uuid::new_v4()).into_bytes();
        tap.bus
            .publish(&own, &probe, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("tap probe: {e}"));
        until_async(
            Duration::from_secs(30),
            Duration::from_millis(20),
            async || {
                let mut seen = tap.seen.lock().unwrap_or_else(|p| p.into_inner());
                match seen.iter().position(|m| m.payload == probe) {
                    Some(i) => {
                        seen.remove(i);
                        Ok(())
                    }
                    None => Err(format!("the tap on {queue} never got its probe")),
                }
            },
        )
        .await;
        tap
    }

    /// Everything sent to the host so far, in order (the duplicates sent by this tap too).
    pub fn messages(&self) -> Vec<Tapped> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a message `pick` chooses was sent to the host (the last one it chooses),
    /// and returns what `pick` made of it.
    pub async fn wait_for<T>(&self, what: &str, pick: impl Fn(&Tapped) -> Option<T>) -> T {
        until_async(
            Duration::from_secs(60),
            Duration::from_millis(50),
            async || {
                self.messages()
                    .iter()
                    .rev()
                    .find_map(&pick)
                    .ok_or_else(|| format!("{} was never sent {what}", self.queue))
            },
        )
        .await
    }

    /// Publishes `m` on the host's queue again, the same bytes, as a cast.
    pub async fn cast_again(&self, m: &Tapped) {
        self.bus
            .publish(&self.queue, &m.payload, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("publish again on {}: {e}", self.queue));
    }

    /// Sends the call `m` to the host again, the same bytes, and returns its answer.
    pub async fn call_again(&self, m: &Tapped) -> Vec<u8> {
        assert!(m.wants_reply, "not a call");
        self.bus
            .call(&self.queue, &m.payload, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("call again on {}: {e}", self.queue))
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // Stopping waits for the channel to close: done on the runtime, not waited for.
        if let (Some(c), Ok(rt)) = (self.consumer.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(c.stop());
        }
    }
}
