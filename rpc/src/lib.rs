//! The compute RPC transport: messages of `capsule_types::rpc` over AMQP (RabbitMQ, via lapin),
//! or over an in-process bus for unit tests of the components that use it.
//!
//! One [`Bus`] interface: [`Bus::publish`] (a cast: persistent, confirmed by the broker, to a
//! durable queue), [`Bus::consume`] (a consumer that acknowledges a message only after its
//! handler has committed the effect, with bounded prefetch), and [`Bus::call`] (a request with
//! a reply and a timeout). The AMQP bus reconnects with back-off after the broker goes away and
//! re-subscribes its consumers; what was in flight is redelivered, so handlers are idempotent.
//! [`AmqpBus::stats`] counts its connections and publish attempts, so a reconnection or a
//! retried publish can be seen from outside.

mod amqp;
mod error;
mod memory;
mod typed;

use std::future::Future;
use std::time::Duration;

pub use amqp::{AmqpBus, AmqpStats};
pub use error::RpcError;
pub use memory::MemoryBus;
pub use typed::{decode, encode, TypedHandler};

/// A message as a consumer receives it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The body.
    pub payload: Vec<u8>,
    /// The routing key it was published with.
    pub routing_key: String,
    /// The broker delivered it before and it was not acknowledged.
    pub redelivered: bool,
    /// Whether the sender waits for a reply ([`Bus::call`]).
    pub wants_reply: bool,
}

/// What to do with a message once its handler is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done: acknowledge it.
    Ack,
    /// Done: acknowledge it and send this reply to the caller.
    Reply(Vec<u8>),
    /// Not done (a dependency is down): put it back and try again after this delay.
    Retry(Duration),
    /// It can never be handled (undecodable, wrong version): acknowledge and drop it, logged.
    Drop(String),
}

/// Handles messages of one queue. Called concurrently for up to `prefetch` messages.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message; the returned future decides its fate.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Disposition> + Send;
}

/// Where a queue takes its messages from.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    /// Durable queue name.
    pub queue: String,
    /// Routing keys on the `zun` exchange bound to it.
    pub bindings: Vec<String>,
    /// Most unacknowledged messages handled at once.
    pub prefetch: u16,
}

impl QueueSpec {
    /// A durable queue bound to the routing key of the same name.
    pub fn named(queue: &str, prefetch: u16) -> Self {
        Self {
            queue: queue.to_owned(),
            bindings: vec![queue.to_owned()],
            prefetch,
        }
    }
}

/// A running consumer; dropping it does not stop it, [`ConsumerHandle::stop`] does.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Resolves once `stop` turns true; never if its sender is dropped without doing so (a dropped
/// [`ConsumerHandle`] leaves its consumer running).
pub(crate) async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl ConsumerHandle {
    /// Stops consuming and waits until the consumer's channel is closed; messages it had not
    /// acknowledged go back to the queue.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The message bus a component talks through.
#[derive(Clone, Debug)]
pub enum Bus {
    /// RabbitMQ.
    Amqp(AmqpBus),
    /// In-process, for unit tests.
    Memory(MemoryBus),
}

impl Bus {
    /// Publishes `payload` with `routing_key` on the `zun` exchange and waits until the broker
    /// has it (publisher confirm), retrying across reconnections for at most `patience`.
    /// Declares the queue `routing_key` first, so a message to a host that has not started yet
    /// waits in its durable queue instead of being dropped.
    pub async fn publish(
        &self,
        routing_key: &str,
        payload: &[u8],
        patience: Duration,
    ) -> Result<(), RpcError> {
        match self {
            Bus::Amqp(b) => b.publish(routing_key, payload, patience).await,
            Bus::Memory(b) => b.publish(routing_key, payload),
        }
    }

    /// Starts consuming `spec` with `handler`, re-subscribing after reconnections.
    pub fn consume<H: Handler>(&self, spec: QueueSpec, handler: H) -> ConsumerHandle {
        match self {
            Bus::Amqp(b) => b.consume(spec, handler),
            Bus::Memory(b) => b.consume(spec, handler),
        }
    }

    /// Sends a request and waits up to `timeout` for its reply.
    pub async fn call(
        &self,
        routing_key: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        match self {
            Bus::Amqp(b) => b.call(routing_key, payload, timeout).await,
            Bus::Memory(b) => b.call(routing_key, payload, timeout).await,
        }
    }
}
