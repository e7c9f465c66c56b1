//! An in-process bus with the semantics of the AMQP one (durable queues that hold messages
//! until a consumer takes them, competing consumers, acknowledgement after the handler, retry
//! by requeueing, calls with replies), for unit tests of the API and the compute agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::{stopped, ConsumerHandle, Delivery, Disposition, Handler, QueueSpec, RpcError};

struct Message {
    payload: Vec<u8>,
    routing_key: String,
    redelivered: bool,
    reply: Option<oneshot::Sender<Vec<u8>>>,
}

struct Queue {
    tx: mpsc::UnboundedSender<Message>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Message>>>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    /// Routing key -> queues bound to it.
    bindings: HashMap<String, Vec<String>>,
}

/// The in-process bus; cheap to clone, all clones share the queues.
#[derive(Clone, Default)]
pub struct MemoryBus {
    state: Arc<StdMutex<State>>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBus")
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn declare(state: &mut State, queue: &str, bindings: &[String]) {
        if !state.queues.contains_key(queue) {
            let (tx, rx) = mpsc::unbounded_channel();
            state.queues.insert(
                queue.to_owned(),
                Queue {
                    tx,
                    rx: Arc::new(Mutex::new(rx)),
                },
            );
        }
        for key in bindings {
            let bound = state.bindings.entry(key.clone()).or_default();
            if !bound.iter().any(|q| q == queue) {
                bound.push(queue.to_owned());
            }
        }
    }

    fn route(&self, routing_key: &str, payload: &[u8], reply: Option<oneshot::Sender<Vec<u8>>>) {
        let mut state = self.lock();
        Self::declare(&mut state, routing_key, &[routing_key.to_owned()]);
        let mut reply = reply;
        for q in state.bindings.get(routing_key).cloned().unwrap_or_default() {
            if let Some(queue) = state.queues.get(&q) {
                let _ = queue.tx.send(Message {
                    payload: payload.to_vec(),
                    routing_key: routing_key.to_owned(),
                    redelivered: false,
                    reply: reply.take(),
                });
            }
        }
    }

    /// See [`crate::Bus::publish`].
    pub fn publish(&self, routing_key: &str, payload: &[u8]) -> Result<(), RpcError> {
        self.route(routing_key, payload, None);
        Ok(())
    }

    /// See [`crate::Bus::consume`].
    pub fn consume<H: Handler>(&self, spec: QueueSpec, handler: H) -> ConsumerHandle {
        let (rx, tx) = {
            let mut state = self.lock();
            Self::declare(&mut state, &spec.queue, &spec.bindings);
            let q = &state.queues[&spec.queue];
            (q.rx.clone(), q.tx.clone())
        };
        let handler = Arc::new(handler);
        let slots = Arc::new(tokio::sync::Semaphore::new(usize::from(
            spec.prefetch.max(1),
        )));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let msg = tokio::select! {
                    m = async { rx.lock().await.recv().await } => m,
                    _ = stopped(stop.clone()) => return,
                };
                let Some(msg) = msg else {
                    return;
                };
                let handler = handler.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let delivery = Delivery {
                        payload: msg.payload.clone(),
                        routing_key: msg.routing_key.clone(),
                        redelivered: msg.redelivered,
                        wants_reply: msg.reply.is_some(),
                    };
                    match handler.handle(delivery).await {
                        Disposition::Ack | Disposition::Drop(_) => {}
                        Disposition::Reply(body) => {
                            if let Some(r) = msg.reply {
                                let _ = r.send(body);
                            }
                        }
                        Disposition::Retry(after) => {
                            tokio::time::sleep(after).await;
                            let _ = tx.send(Message {
                                redelivered: true,
                                ..msg
                            });
                        }
                    }
                    drop(permit);
                });
            }
        });
        ConsumerHandle {
            stop: stop_tx,
            task,
        }
    }

    /// See [`crate::Bus::call`].
    pub async fn call(
        &self,
        routing_key: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.route(routing_key, payload, Some(tx));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(body)) => Ok(body),
            _ => Err(RpcError::Timeout {
                routing_key: routing_key.to_owned(),
                timeout_ms: timeout.as_millis(),
            }),
        }
    }
}
