//! One realtime connection of the harness: `init`, requests with replies matched by id, and
//! every event handed to a callback as it arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::setup::Target;
use crate::BenchError;

/// Microseconds since the epoch (send timestamps travel in message bodies).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, Value>>>>>;

/// Called with every event frame.
pub type OnEvent = Arc<dyn Fn(&Value) + Send + Sync>;

/// An initialized realtime connection.
#[derive(Clone)]
pub struct Conn {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    /// Connects to the next node, sends `init` and waits for its reply.
    pub async fn open(target: &Target, token: &str, on_event: OnEvent) -> Result<Conn, BenchError> {
        let ws = target.connect().await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let reader_pending = pending.clone();
        let closed = Arc::new(AtomicBool::new(false));
        let reader_closed = closed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                match frame["type"].as_str() {
                    Some("reply") => {
                        let id = frame["id"].as_u64().unwrap_or(u64::MAX);
                        if let Some(reply) = lock(&reader_pending).remove(&id) {
                            let outcome = if frame["ok"] == true {
                                Ok(frame["result"].clone())
                            } else {
                                Err(frame["error"].clone())
                            };
                            let _ = reply.send(outcome);
                        }
                    }
                    Some("event") => on_event(&frame),
                    _ => {}
                }
            }
            // The connection is gone: fail whatever waits, and whatever comes.
            reader_closed.store(true, Ordering::SeqCst);
            lock(&reader_pending).clear();
        });
        let conn = Conn {
            out,
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
            closed,
        };
        conn.request("init", json!({"token": token}))
            .await
            .map_err(|e| BenchError::Connect(format!("init refused: {e}")))?;
        Ok(conn)
    }

    /// Sends a request; the receiver resolves with the reply.
    pub fn send(&self, op: &str, mut params: Value) -> oneshot::Receiver<Result<Value, Value>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.closed.load(Ordering::SeqCst) {
            // Dropping the sender resolves the receiver with an error at once.
            return rx;
        }
        lock(&self.pending).insert(id, tx);
        params["type"] = json!(op);
        params["id"] = json!(id);
        let _ = self.out.send(Message::text(params.to_string()));
        rx
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&self, op: &str, params: Value) -> Result<Value, Value> {
        self.send(op, params)
            .await
            .unwrap_or_else(|_| Err(json!({"message": "connection closed"})))
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the connection.
    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }
}
