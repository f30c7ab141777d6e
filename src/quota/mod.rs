//! Upload quotas (issue #17): per subject (a named tenant's keys together, or one API key:
//! `IMAGO_QUOTA_SCOPE`), tickets per second with a burst (GCRA), bytes per UTC day (declared at
//! ticket time, the unused part refunded when an embedded upload stores fewer bytes) and
//! optionally tickets per UTC day.
//!
//! Where they are counted decides what they mean (`IMAGO_QUOTA_STORE`):
//!
//! * `memory` (the default, nothing to run): in this process ([`memory`]). Every replica counts on
//!   its own, so a fleet of N replicas admits up to N times each limit.
//! * `redis://…` / `rediss://…` / `valkey://…`: one Redis or Valkey server the fleet shares
//!   ([`shared`]): each admission is one atomic Lua script on the server, timed by its clock, so
//!   the limits hold for the fleet whatever the number of replicas.
//!
//! When the shared store fails or does not answer within `IMAGO_QUOTA_TIMEOUT_MS`,
//! `IMAGO_QUOTA_ON_STORE_ERROR` decides: `local` (default: count in this replica meanwhile, the
//! per-replica limits), `open` (admit uncounted) or `closed` (`503 quota-unavailable`). Each such
//! failure counts in `imago_quota_store_errors_total{action}` and logs a warning (at most one per
//! 10 s).

mod memory;
mod shared;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prometheus::{IntCounterVec, Opts, Registry};

use crate::config::{OnStoreError, QuotaLimits, QuotaSettings, QuotaStore};

/// The state of a subject's ticket bucket after a decision (the `RateLimit-*` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    /// The bucket size (`IMAGO_UPLOAD_BURST`); 0 when tickets are not rate-limited.
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is full again (admitted) or a ticket is admitted (refused).
    pub reset: u64,
    /// Seconds the bucket takes to refill from empty.
    pub window: u64,
}

impl RateState {
    fn of(l: &QuotaLimits, remaining: u64, reset: u64) -> RateState {
        if l.rate_per_sec <= 0.0 {
            return RateState::default();
        }
        let window = (l.burst as f64 / l.rate_per_sec).ceil().max(1.0) as u64;
        RateState { limit: l.burst as u64, remaining: remaining.min(l.burst as u64), reset, window }
    }

    /// `RateLimit-Limit`, `-Remaining`, `-Reset` and `-Policy` (IETF httpapi draft; names in
    /// lower case, as HTTP/2 sends them), or none when tickets are not rate-limited.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        if self.limit == 0 {
            return Vec::new();
        }
        vec![
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset.to_string()),
            ("ratelimit-policy", format!("{};w={}", self.limit, self.window)),
        ]
    }
}

/// A store's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Admitted(RateState),
    RateLimited(RateState),
    /// A day quota (`bytes` or `uploads`) is used up; seconds until the UTC day ends.
    Exceeded(&'static str, u64),
}

/// Why a ticket was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("too many upload tickets: retry in {} s", .0.reset)]
    RateLimited(RateState),
    #[error("the daily upload {what} quota is used up: it resets in {retry_after} s (UTC midnight)")]
    Exceeded { what: &'static str, retry_after: u64 },
    #[error("the quota store is unavailable")]
    Unavailable,
}

/// The quota service (one per process).
pub struct Quotas {
    settings: QuotaSettings,
    memory: memory::Memory,
    shared: Option<shared::Shared>,
    charge_ttl: Duration,
    store_errors: IntCounterVec,
    last_warning: AtomicU64,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").field("store", &self.settings.store).field("scope", &self.settings.scope).finish()
    }
}

impl Quotas {
    /// `ticket_ttl`: how long a ticket may still be used (its charge is kept that long, for the
    /// refund).
    pub fn new(settings: QuotaSettings, ticket_ttl: Duration) -> Result<Quotas, String> {
        let charge_ttl = ticket_ttl + Duration::from_secs(60);
        let shared = match &settings.store {
            QuotaStore::Memory => None,
            QuotaStore::Redis(url) => Some(shared::Shared::new(url, &settings.key_prefix, settings.timeout)?),
        };
        let store_errors = IntCounterVec::new(
            Opts::new(
                "imago_quota_store_errors_total",
                "Ticket admissions and refunds the shared quota store failed to answer, by what was done instead",
            ),
            &["action"],
        )
        .map_err(|e| e.to_string())?;
        Ok(Quotas {
            settings,
            memory: memory::Memory::new(charge_ttl),
            shared,
            charge_ttl,
            store_errors,
            last_warning: 0.into(),
        })
    }

    /// Adds this service's metrics to `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), String> {
        registry.register(Box::new(self.store_errors.clone())).map_err(|e| e.to_string())
    }

    pub fn settings(&self) -> &QuotaSettings {
        &self.settings
    }

    /// One failure of the shared store: counted, and logged at most once per 10 s.
    fn store_failed(&self, what: &str, e: &shared::StoreError, action: &'static str) {
        self.store_errors.with_label_values(&[action]).inc();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(error = %e, action, "quota store failed ({what}); IMAGO_QUOTA_ON_STORE_ERROR applies");
        }
    }

    /// Admits one ticket of `subject` (of `tenant`, whose limits apply) declaring `bytes`, for
    /// the object at `object_key`; the bucket's state for the `RateLimit-*` headers.
    pub async fn admit(
        &self,
        subject: &str,
        tenant: &str,
        bytes: u64,
        object_key: &str,
    ) -> Result<RateState, QuotaError> {
        let limits = self.settings.limits_of(tenant);
        if limits.rate_per_sec <= 0.0 && limits.bytes_per_day == 0 && limits.uploads_per_day == 0 {
            return Ok(RateState::default());
        }
        let decision = match &self.shared {
            None => self.memory.admit(subject, limits, bytes, object_key),
            Some(s) => match s.admit(subject, limits, bytes, object_key, self.charge_ttl).await {
                Ok(d) => d,
                Err(e) => match self.settings.on_store_error {
                    OnStoreError::Local => {
                        self.store_failed("admit", &e, "local");
                        self.memory.admit(subject, limits, bytes, object_key)
                    }
                    OnStoreError::Open => {
                        self.store_failed("admit", &e, "open");
                        Decision::Admitted(RateState::default())
                    }
                    OnStoreError::Closed => {
                        self.store_failed("admit", &e, "closed");
                        return Err(QuotaError::Unavailable);
                    }
                },
            },
        };
        match decision {
            Decision::Admitted(s) => Ok(s),
            Decision::RateLimited(s) => Err(QuotaError::RateLimited(s)),
            Decision::Exceeded(what, retry_after) => Err(QuotaError::Exceeded { what, retry_after }),
        }
    }

    /// An upload at `object_key` stored `stored` bytes (0: nothing new): gives back what its
    /// ticket declared beyond that, once. A failure is counted and logged, never an error.
    pub async fn refund(&self, object_key: &str, stored: u64) -> u64 {
        if let Some(back) = self.memory.refund(object_key, stored) {
            return back;
        }
        let Some(s) = &self.shared else { return 0 };
        match s.refund(object_key, stored).await {
            Ok(back) => back,
            Err(e) => {
                self.store_failed("refund", &e, "refund-lost");
                0
            }
        }
    }
}
