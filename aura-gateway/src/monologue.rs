//! The monologue: AURA's components' tracing events, broadcast to live listeners.
//!
//! [`MonologueLayer`] is a `tracing_subscriber` layer that turns every event whose
//! target names an AURA component (`Orchestrator`, `Cascade.BRICK`, `Sandbox`, …) into
//! a [`MonologueEvent`] on a tokio broadcast channel; `GET /v1/events` streams them as
//! server-sent events. Nobody listening costs one atomic load per event.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The components whose events are the monologue (targets, or their prefixes before a `.`).
pub const COMPONENTS: &[&str] = &[
    "Gateway",
    "Orchestrator",
    "Cascade",
    "PersistenceGuardian",
    "Sandbox",
    "Store",
    "ContextIngestor",
    "Forge",
    "LocalModel",
    "OllamaModel",
    "OpenAiModel",
];

/// One line of the monologue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonologueEvent {
    /// Position in this process's monologue, counting from 1 (gaps mean events were dropped).
    pub seq: u64,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// `TRACE` … `ERROR`.
    pub level: String,
    /// The component: the tracing target (`Cascade.BRICK`, `Sandbox`, …).
    pub component: String,
    /// The event's message.
    pub message: String,
    /// Its other fields.
    pub fields: Map<String, Value>,
}

/// The broadcast side of the monologue; clone it freely.
#[derive(Clone, Debug)]
pub struct Monologue {
    sender: broadcast::Sender<Arc<MonologueEvent>>,
    seq: Arc<AtomicU64>,
}

impl Default for Monologue {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Monologue {
    /// A monologue that keeps up to `capacity` events for a slow listener before it lags.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The tracing layer that feeds this monologue; add it to the host's subscriber.
    pub fn layer(&self) -> MonologueLayer {
        MonologueLayer {
            monologue: self.clone(),
        }
    }

    /// A new listener, receiving events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MonologueEvent>> {
        self.sender.subscribe()
    }

    fn publish(&self, make: impl FnOnce(u64) -> MonologueEvent) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        // A send fails only when every listener left meanwhile: nothing to do.
        let _ = self.sender.send(Arc::new(make(seq)));
    }
}

/// A `tracing_subscriber` layer that publishes AURA's component events to a [`Monologue`].
#[derive(Clone, Debug)]
pub struct MonologueLayer {
    monologue: Monologue,
}

/// Whether `target` names one of AURA's components.
pub fn is_component(target: &str) -> bool {
    let head = target.split('.').next().unwrap_or(target);
    COMPONENTS.contains(&head)
}

impl<S: Subscriber> Layer<S> for MonologueLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !is_component(meta.target()) {
            return;
        }
        self.monologue.publish(|seq| {
            let mut visitor = FieldVisitor::default();
            event.record(&mut visitor);
            MonologueEvent {
                seq,
                at: chrono::Utc::now(),
                level: meta.level().to_string(),
                component: meta.target().to_string(),
                message: visitor.message,
                fields: visitor.fields,
            }
        });
    }
}

#[derive(Default)]
struct FieldVisitor {
    message: String,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            match value {
                Value::String(s) => self.message = s,
                other => self.message = other.to_string(),
            }
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, Value::String(s));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn component_events_are_broadcast_in_order_with_their_fields() {
        let monologue = Monologue::new(16);
        let mut rx = monologue.subscribe();
        let subscriber = tracing_subscriber::registry().with(monologue.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "Cascade.BRICK", selector = "fib", "deconstructing");
            tracing::info!(target: "some_crate::module", "not a component");
            tracing::warn!(target: "Store", version = 2u64, "committed");
        });
        let first = rx.try_recv().unwrap_or_else(|e| panic!("{e}"));
        let second = rx.try_recv().unwrap_or_else(|e| panic!("{e}"));
        assert!(rx.try_recv().is_err(), "only component events");
        assert_eq!(first.component, "Cascade.BRICK");
        assert_eq!(first.message, "deconstructing");
        assert_eq!(first.fields["selector"], "fib");
        assert_eq!(
            (second.component.as_str(), second.level.as_str()),
            ("Store", "WARN")
        );
        assert_eq!(second.fields["version"], 2);
        assert!(second.seq > first.seq);
    }
}
