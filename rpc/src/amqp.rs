//! The AMQP bus over RabbitMQ: one connection per process, re-established with back-off when it
//! breaks; a confirm-mode channel for casts; a channel per consumer; an exclusive reply queue
//! for calls.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use capsule_types::rpc::EXCHANGE;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{oneshot, watch, Mutex};
use tracing::Instrument;

use crate::{stopped, ConsumerHandle, Delivery, Disposition, Handler, QueueSpec, RpcError};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(MAX_BACKOFF)
}

/// An AMQP URL with its password hidden, for logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) => {
            let creds = &rest[..at - scheme.len() - 3];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The live connection and its publishing channel.
#[derive(Clone)]
struct Link {
    generation: u64,
    conn: Arc<Connection>,
    publish: Channel,
}

struct Inner {
    url: String,
    name: String,
    link: Mutex<Option<Link>>,
    /// Links opened so far (each a new connection); the current one's generation.
    generation: AtomicU64,
    /// Publish attempts so far (see [`AmqpStats::publish_attempts`]).
    publish_attempts: AtomicU64,
    /// Publishes the broker confirmed so far.
    publishes_confirmed: AtomicU64,
    /// Queues declared on the current connection (generation, queue).
    declared: StdMutex<HashSet<(u64, String)>>,
    /// Calls waiting for their reply, by correlation id.
    pending: StdMutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
    /// The reply queue of the current connection.
    reply_queue: Mutex<Option<(u64, String)>>,
}

/// What an [`AmqpBus`] (and its clones) did since it was made: counters for operators, and for
/// tests that must show a reconnection happened or a publish was retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AmqpStats {
    /// Connections established to the broker, the first one included: more than one means the
    /// bus reconnected.
    pub connections: u64,
    /// Publish attempts (casts, and the requests of calls): one per publish the broker
    /// confirms at the first try, one more for each try again after a failed attempt (a
    /// connection lost before the confirm came, a refusal).
    pub publish_attempts: u64,
    /// Publishes the broker confirmed.
    pub publishes_confirmed: u64,
}

/// A bus over RabbitMQ; cheap to clone.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus")
            .field("url", &redact(&self.inner.url))
            .field("name", &self.inner.name)
            .finish()
    }
}

fn persistent() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
}

impl AmqpBus {
    /// A bus for `url` (`amqp://user:password@host:port/vhost`); `name` shows in the broker's
    /// connection list. Connects lazily, on first use.
    pub fn new(url: &str, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                name: name.to_owned(),
                link: Mutex::new(None),
                generation: AtomicU64::new(0),
                publish_attempts: AtomicU64::new(0),
                publishes_confirmed: AtomicU64::new(0),
                declared: StdMutex::new(HashSet::new()),
                pending: StdMutex::new(HashMap::new()),
                reply_queue: Mutex::new(None),
            }),
        }
    }

    /// What the bus did so far: connections, publish attempts and confirmed publishes.
    pub fn stats(&self) -> AmqpStats {
        AmqpStats {
            connections: self.inner.generation.load(Ordering::SeqCst),
            publish_attempts: self.inner.publish_attempts.load(Ordering::SeqCst),
            publishes_confirmed: self.inner.publishes_confirmed.load(Ordering::SeqCst),
        }
    }

    /// Waits until the broker answers (for start-up checks), at most `patience`.
    pub async fn connect(&self, patience: Duration) -> Result<(), RpcError> {
        self.link(Instant::now() + patience).await.map(|_| ())
    }

    /// The live link, connecting (with back-off) until `deadline` if there is none.
    async fn link(&self, deadline: Instant) -> Result<Link, RpcError> {
        let started = Instant::now();
        let mut guard = self.inner.link.lock().await;
        if let Some(l) = guard.as_ref() {
            if l.conn.status().connected() && l.publish.status().connected() {
                return Ok(l.clone());
            }
        }
        let mut backoff = MIN_BACKOFF;
        loop {
            let last = match self.open().await {
                Ok(link) => {
                    tracing::info!(
                        broker = %redact(&self.inner.url),
                        generation = link.generation,
                        "connected to the message broker"
                    );
                    *guard = Some(link.clone());
                    return Ok(link);
                }
                Err(e) => e,
            };
            tracing::debug!(error = %last, "broker connection attempt failed");
            if Instant::now() + backoff > deadline {
                return Err(RpcError::Unavailable {
                    waited_ms: started.elapsed().as_millis(),
                    last: Some(last),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = next_backoff(backoff);
        }
    }

    async fn open(&self) -> Result<Link, lapin::Error> {
        let props =
            ConnectionProperties::default().with_connection_name(self.inner.name.clone().into());
        let conn = Connection::connect(&self.inner.url, props).await?;
        let publish = conn.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_exchange(&publish).await?;
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Link {
            generation,
            conn: Arc::new(conn),
            publish,
        })
    }

    /// Forgets the link of `generation` so the next use reconnects.
    async fn invalidate(&self, generation: u64) {
        let mut guard = self.inner.link.lock().await;
        if guard.as_ref().is_some_and(|l| l.generation == generation) {
            *guard = None;
        }
    }

    async fn ensure_queue(&self, link: &Link, queue: &str) -> Result<(), lapin::Error> {
        let key = (link.generation, queue.to_owned());
        if self.lock_declared().contains(&key) {
            return Ok(());
        }
        declare_queue(&link.publish, queue, &[queue.to_owned()]).await?;
        self.lock_declared().insert(key);
        Ok(())
    }

    fn lock_declared(&self) -> std::sync::MutexGuard<'_, HashSet<(u64, String)>> {
        self.inner
            .declared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Vec<u8>>>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// See [`crate::Bus::publish`].
    pub async fn publish(
        &self,
        routing_key: &str,
        payload: &[u8],
        patience: Duration,
    ) -> Result<(), RpcError> {
        self.publish_with(routing_key, payload, persistent(), patience)
            .await
    }

    async fn publish_with(
        &self,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
        patience: Duration,
    ) -> Result<(), RpcError> {
        let started = Instant::now();
        let deadline = started + patience;
        let mut backoff = MIN_BACKOFF;
        let mut refused = false;
        let mut last = None;
        loop {
            let link = self.link(deadline).await?;
            self.inner.publish_attempts.fetch_add(1, Ordering::SeqCst);
            let attempt = async {
                self.ensure_queue(&link, routing_key).await?;
                link.publish
                    .basic_publish(
                        EXCHANGE.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        payload,
                        props.clone(),
                    )
                    .await?
                    .await
            };
            match attempt.await {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => {
                    self.inner
                        .publishes_confirmed
                        .fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                }
                Ok(Confirmation::Ack(Some(_)) | Confirmation::Nack(_)) => {
                    // Unroutable or refused: the queue may have been deleted behind our back;
                    // declare it again and retry within our patience.
                    refused = true;
                    self.lock_declared()
                        .remove(&(link.generation, routing_key.to_owned()));
                }
                Err(e) => {
                    tracing::warn!(routing_key, error = %e, "publish failed; reconnecting");
                    last = Some(e);
                    self.invalidate(link.generation).await;
                }
            }
            if Instant::now() + backoff > deadline {
                return Err(if refused && last.is_none() {
                    RpcError::Refused {
                        routing_key: routing_key.to_owned(),
                    }
                } else {
                    RpcError::Unavailable {
                        waited_ms: started.elapsed().as_millis(),
                        last,
                    }
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = next_backoff(backoff);
        }
    }

    /// See [`crate::Bus::consume`].
    pub fn consume<H: Handler>(&self, spec: QueueSpec, handler: H) -> ConsumerHandle {
        let bus = self.clone();
        let handler = Arc::new(handler);
        let (stop_tx, stop) = watch::channel(false);
        let span = tracing::info_span!("consumer", queue = %spec.queue);
        let task = tokio::spawn(
            async move {
                let mut backoff = MIN_BACKOFF;
                loop {
                    let started = Instant::now();
                    match bus.run_consumer(&spec, handler.clone(), stop.clone()).await {
                        Ok(true) => return,
                        Ok(false) => {
                            tracing::warn!("consumer cancelled by the broker; resubscribing")
                        }
                        Err(e) => tracing::warn!(error = %e, "consumer lost; resubscribing"),
                    }
                    if started.elapsed() > Duration::from_secs(10) {
                        backoff = MIN_BACKOFF;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(stop.clone()) => return,
                    }
                    backoff = next_backoff(backoff);
                }
            }
            .instrument(span),
        );
        ConsumerHandle {
            stop: stop_tx,
            task,
        }
    }

    /// Consumes until the connection breaks (`Err`), the broker cancels (`Ok(false)`) or we
    /// are told to stop (`Ok(true)`).
    async fn run_consumer<H: Handler>(
        &self,
        spec: &QueueSpec,
        handler: Arc<H>,
        stop: watch::Receiver<bool>,
    ) -> Result<bool, RpcError> {
        if *stop.borrow() {
            return Ok(true);
        }
        // Wait for the broker as long as it takes: a consumer has nothing better to do.
        let link = tokio::select! {
            l = self.link(Instant::now() + Duration::from_secs(3600 * 24 * 365)) => l?,
            _ = stopped(stop.clone()) => return Ok(true),
        };
        let result = async {
            let ch = link.conn.create_channel().await?;
            declare_exchange(&ch).await?;
            declare_queue(&ch, &spec.queue, &spec.bindings).await?;
            ch.basic_qos(spec.prefetch, BasicQosOptions::default())
                .await?;
            let mut consumer = ch
                .basic_consume(
                    spec.queue.as_str().into(),
                    format!("{}-{}", self.inner.name, uuid::Uuid::new_v4().simple()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!("consuming");
            loop {
                let delivery = tokio::select! {
                    d = consumer.next() => d,
                    _ = stopped(stop.clone()) => {
                        // Closing the channel returns what we hold unacknowledged to the queue.
                        let _ = ch.close(200, "consumer stopped".into()).await;
                        return Ok(true);
                    }
                };
                let Some(delivery) = delivery else {
                    return Ok(false);
                };
                let delivery = delivery?;
                tokio::spawn(handle_delivery(handler.clone(), ch.clone(), delivery));
            }
        }
        .await;
        if result.is_err() {
            self.invalidate(link.generation).await;
        }
        result.map_err(|e: lapin::Error| RpcError::Unavailable {
            waited_ms: 0,
            last: Some(e),
        })
    }

    /// The reply queue of the current connection, created (with its consumer) on first use.
    async fn reply_queue(&self, link: &Link) -> Result<String, lapin::Error> {
        let mut guard = self.inner.reply_queue.lock().await;
        if let Some((generation, name)) = guard.as_ref() {
            if *generation == link.generation {
                return Ok(name.clone());
            }
        }
        let ch = link.conn.create_channel().await?;
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let name = q.name().to_string();
        let mut consumer = ch
            .basic_consume(
                name.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let bus = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let Some(corr) = d.properties.correlation_id().as_ref() else {
                    continue;
                };
                if let Some(tx) = bus.lock_pending().remove(corr.as_str()) {
                    let _ = tx.send(d.data);
                }
            }
        });
        *guard = Some((link.generation, name.clone()));
        Ok(name)
    }

    /// See [`crate::Bus::call`].
    pub async fn call(
        &self,
        routing_key: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let deadline = Instant::now() + timeout;
        let link = self.link(deadline).await?;
        let reply_to = match self.reply_queue(&link).await {
            Ok(q) => q,
            Err(e) => {
                self.invalidate(link.generation).await;
                return Err(RpcError::Unavailable {
                    waited_ms: 0,
                    last: Some(e),
                });
            }
        };
        let corr = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(corr.clone(), tx);
        // A request nobody took before the caller gave up is dropped by the broker.
        let props = persistent()
            .with_reply_to(reply_to.into())
            .with_correlation_id(corr.as_str().into())
            .with_expiration(timeout.as_millis().to_string().into());
        let left = deadline.saturating_duration_since(Instant::now());
        let result = match self.publish_with(routing_key, payload, props, left).await {
            Ok(()) => {
                match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), rx)
                    .await
                {
                    Ok(Ok(body)) => Ok(body),
                    _ => Err(RpcError::Timeout {
                        routing_key: routing_key.to_owned(),
                        timeout_ms: timeout.as_millis(),
                    }),
                }
            }
            Err(e) => Err(e),
        };
        self.lock_pending().remove(&corr);
        result
    }
}

/// Runs the handler on one delivery and acknowledges, replies, requeues or drops it.
async fn handle_delivery<H: Handler>(
    handler: Arc<H>,
    ch: Channel,
    delivery: lapin::message::Delivery,
) {
    let reply_to = delivery.properties.reply_to().clone();
    let correlation = delivery.properties.correlation_id().clone();
    let msg = Delivery {
        payload: delivery.data.clone(),
        routing_key: delivery.routing_key.to_string(),
        redelivered: delivery.redelivered,
        wants_reply: reply_to.is_some(),
    };
    let outcome = match handler.handle(msg).await {
        Disposition::Ack => delivery.ack(BasicAckOptions::default()).await,
        Disposition::Reply(body) => {
            if let (Some(to), Some(corr)) = (reply_to, correlation) {
                let props = BasicProperties::default()
                    .with_correlation_id(corr)
                    .with_content_type(ShortString::from("application/json"));
                // Replies go to the caller's own queue through the default exchange; a caller
                // that is gone simply never sees it.
                if let Err(e) = ch
                    .basic_publish("".into(), to, BasicPublishOptions::default(), &body, props)
                    .await
                {
                    tracing::warn!(error = %e, "cannot send reply");
                }
            }
            delivery.ack(BasicAckOptions::default()).await
        }
        Disposition::Retry(after) => {
            tokio::time::sleep(after).await;
            delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
        }
        Disposition::Drop(reason) => {
            tracing::error!(%reason, "dropping message");
            delivery.ack(BasicAckOptions::default()).await
        }
    };
    if let Err(e) = outcome {
        // The broker will redeliver it: handlers are idempotent.
        tracing::warn!(error = %e, "cannot acknowledge; it will be redelivered");
    }
}

async fn declare_exchange(ch: &Channel) -> Result<(), lapin::Error> {
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
}

async fn declare_queue(ch: &Channel, queue: &str, bindings: &[String]) -> Result<(), lapin::Error> {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    for key in bindings {
        ch.queue_bind(
            queue.into(),
            EXCHANGE.into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("amqp://zun:s3cret@127.0.0.1:5672/zun"),
            "amqp://zun:***@127.0.0.1:5672/zun"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}
