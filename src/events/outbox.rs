//! The durable outbox: `pending/{event id}~{url hash}.json` per event and webhook URL, claimed
//! per attempt with a lease, delivered, then removed.
//!
//! Claiming: time is cut into lease slots of `2 × timeout + 2 s`; a replica may attempt a
//! delivery in slot `n` only after creating `lease/{name}.{n}` with a conditional write (only
//! one replica can), and only while more than `timeout + 1 s` of the slot is left, so the attempt
//! (bounded by the timeout) ends inside its slot. After the attempt the holder records the
//! outcome (delete on success; attempts and the next time on failure) and drops the lease; a
//! replica that dies mid-attempt leaves its lease, and the delivery is taken up in a later slot
//! by anyone. So two replicas never send one delivery at once, and a crash between the
//! receiver's 2xx and the delete is the only way to send twice: at least once, deduplicated by
//! the receiver on the event id.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::store::Store;
use crate::config::{EventSettings, MAX_BACKOFF};
use crate::storage::StorageError;

/// One event on its way to one URL (the file's content).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    /// The exact JSON bytes that are signed and sent.
    pub body: String,
    pub attempts: u32,
    /// Not before this time (unix milliseconds).
    pub next_at_ms: u64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Sweep stale leases every this many passes.
const SWEEP_EVERY: u64 = 30;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn url_hash(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..8])
}

/// The host of a URL, for logs (paths and queries of webhook URLs often hold tokens).
fn host(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
}

pub struct Outbox {
    store: Store,
    settings: EventSettings,
    client: reqwest::Client,
    wake: Notify,
    lease_ms: u64,
    /// When each pending delivery this replica has read is due next (unix ms): a delivery
    /// backing off is not read again before then (another replica can only move it later or
    /// remove it).
    due: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// `imago_webhook_deliveries_total{result}` (none in tests that build an outbox alone).
    counter: Option<prometheus::IntCounterVec>,
}

impl Outbox {
    /// Webhook URLs are the operator's configuration (like the object store's endpoint), not
    /// client input, so they may name private addresses; redirects are never followed and
    /// environment proxies are ignored, so a delivery goes exactly where the configuration says.
    pub fn new(store: Store, settings: EventSettings) -> Result<Outbox, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("imago-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        let lease_ms = 2 * settings.timeout.as_millis() as u64 + 2000;
        Ok(Outbox { store, settings, client, wake: Notify::new(), lease_ms, due: Default::default(), counter: None })
    }

    /// Counts attempts in `counter` (label `result`).
    pub fn with_counter(mut self, counter: prometheus::IntCounterVec) -> Outbox {
        self.counter = Some(counter);
        self
    }

    fn count(&self, result: &str) {
        if let Some(c) = &self.counter {
            c.with_label_values(&[result]).inc();
        }
    }

    /// Writes one pending delivery per webhook URL (durable when this returns) and wakes the
    /// delivery task.
    pub async fn enqueue(&self, id: &str, kind: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let body = String::from_utf8(body).map_err(|e| StorageError::Invalid(e.to_string()))?;
        for url in &self.settings.urls {
            let d = Delivery {
                id: id.to_string(),
                kind: kind.to_string(),
                url: url.to_string(),
                body: body.clone(),
                attempts: 0,
                next_at_ms: 0,
                last_error: None,
            };
            let file = serde_json::to_vec(&d).map_err(|e| StorageError::Invalid(e.to_string()))?;
            self.store.put(&format!("pending/{id}~{}.json", url_hash(url.as_str())), file).await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The pending deliveries' file names.
    pub async fn pending(&self) -> Result<Vec<String>, StorageError> {
        self.store.list("pending").await
    }

    /// Runs the delivery loop on the current runtime (or a thread of its own).
    pub fn spawn(self: Arc<Self>) -> Result<(), String> {
        let run = async move {
            let mut pass = 0u64;
            loop {
                pass += 1;
                self.run_once().await;
                if pass % SWEEP_EVERY == 1 {
                    self.sweep_leases().await;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        };
        crate::telemetry::spawn_background("imago-outbox", run)
    }

    /// One pass over the pending deliveries: every due one this replica can claim is attempted.
    /// Returns how many were delivered.
    pub async fn run_once(&self) -> usize {
        let names = match self.pending().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: cannot list pending events");
                return 0;
            }
        };
        let now = now_ms();
        let skip: std::collections::HashSet<String> = match self.due.lock() {
            Ok(mut due) => {
                due.retain(|n, _| names.contains(n));
                due.iter().filter(|(_, &at)| at > now).map(|(n, _)| n.clone()).collect()
            }
            Err(_) => Default::default(),
        };
        let mut delivered = 0;
        for name in names.iter().filter(|n| n.ends_with(".json") && !skip.contains(*n)) {
            match self.attempt(name).await {
                Ok(true) => delivered += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, file = %name, "outbox: storage error"),
            }
        }
        delivered
    }

    async fn read(&self, name: &str) -> Result<Option<Delivery>, StorageError> {
        let Some(bytes) = self.store.get(&format!("pending/{name}")).await? else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                tracing::error!(error = %e, file = %name, "outbox: unreadable event file moved to dead/");
                self.store.put(&format!("dead/{name}"), bytes).await?;
                self.store.delete(&format!("pending/{name}")).await?;
                Ok(None)
            }
        }
    }

    /// Claims and attempts one delivery if it is due: `true` when the receiver took it.
    async fn attempt(&self, name: &str) -> Result<bool, StorageError> {
        let Some(d) = self.read(name).await? else { return Ok(false) };
        let now = now_ms();
        if d.next_at_ms > now {
            if let Ok(mut due) = self.due.lock() {
                due.insert(name.to_string(), d.next_at_ms);
            }
            return Ok(false);
        }
        let slot = now / self.lease_ms;
        let left = self.lease_ms - now % self.lease_ms;
        if left <= self.settings.timeout.as_millis() as u64 + 1000 {
            return Ok(false);
        }
        let stem = name.trim_end_matches(".json");
        let lease = format!("lease/{stem}.{slot}");
        if !self.store.create(&lease, Vec::new()).await? {
            return Ok(false);
        }
        let result = self.attempt_claimed(name).await;
        self.store.delete(&lease).await?;
        result
    }

    async fn attempt_claimed(&self, name: &str) -> Result<bool, StorageError> {
        // Read again under the lease: the previous holder may have delivered or rescheduled it.
        let Some(mut d) = self.read(name).await? else { return Ok(false) };
        if d.next_at_ms > now_ms() {
            return Ok(false);
        }
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let sig = imago_signing::webhook::sign(&self.settings.secrets, t, d.body.as_bytes());
        d.attempts += 1;
        let sent = self
            .client
            .post(&d.url)
            .header("content-type", "application/json")
            .header(imago_signing::webhook::SIGNATURE_HEADER, sig)
            .header("imago-event-id", &d.id)
            .header("imago-event-type", &d.kind)
            .header("imago-delivery-attempt", d.attempts.to_string())
            .body(d.body.clone())
            .send()
            .await;
        let error = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("answered {}", r.status().as_u16())),
            Err(e) => Some(if e.is_timeout() { "timed out".to_string() } else { e.without_url().to_string() }),
        };
        let file = format!("pending/{name}");
        let Some(error) = error else {
            tracing::info!(event = %d.id, kind = %d.kind, host = %host(&d.url), attempts = d.attempts, "webhook delivered");
            self.count("delivered");
            self.store.delete(&file).await?;
            return Ok(true);
        };
        tracing::warn!(event = %d.id, host = %host(&d.url), attempts = d.attempts, error = %error, "webhook attempt failed");
        d.last_error = Some(error);
        self.count("failed");
        let bytes = serde_json::to_vec(&d).map_err(|e| StorageError::Invalid(e.to_string()))?;
        if d.attempts >= self.settings.max_attempts {
            tracing::error!(event = %d.id, host = %host(&d.url), "webhook given up: moved to the outbox's dead/");
            self.count("dead");
            self.store.put(&format!("dead/{name}"), bytes).await?;
            self.store.delete(&file).await?;
        } else {
            let factor = 1u32.checked_shl(d.attempts - 1).unwrap_or(u32::MAX);
            let delay = self.settings.backoff.saturating_mul(factor).min(MAX_BACKOFF);
            d.next_at_ms = now_ms() + delay.as_millis() as u64;
            let bytes = serde_json::to_vec(&d).map_err(|e| StorageError::Invalid(e.to_string()))?;
            self.store.put(&file, bytes).await?;
            if let Ok(mut due) = self.due.lock() {
                due.insert(name.to_string(), d.next_at_ms);
            }
        }
        Ok(false)
    }

    /// Removes leases of slots before the previous one (left by a replica that died mid-attempt).
    async fn sweep_leases(&self) {
        let Ok(names) = self.store.list("lease").await else { return };
        let current = now_ms() / self.lease_ms;
        for n in names {
            let slot = n.rsplit('.').next().and_then(|s| s.parse::<u64>().ok());
            if slot.is_some_and(|s| s + 1 < current) {
                let _ = self.store.delete(&format!("lease/{n}")).await;
            }
        }
    }

    /// How long one lease slot lasts.
    pub fn lease_slot(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}
