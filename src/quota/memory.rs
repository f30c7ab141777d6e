//! The in-process quota store (`IMAGO_QUOTA_STORE=memory`, and the `local` fallback while the
//! shared store is down): per replica. Tickets per second are `governor`'s GCRA (the same
//! algorithm `admit.lua` runs in the shared store), the day counters sit beside it under one lock
//! per store, so a refused day quota takes no ticket and a refused ticket counts no bytes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Decision, RateState};
use crate::config::QuotaLimits;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct Entry {
    limiter: Option<Limiter>,
    day: u64,
    bytes: u64,
    uploads: u64,
}

/// Subjects are the configured tenants and keys, so the map stays as small as the key list.
pub struct Memory {
    subjects: Mutex<HashMap<String, Entry>>,
    /// Object key → (subject, day, bytes charged), until the ticket expires.
    charges: moka::sync::Cache<String, (String, u64, u64)>,
}

fn limiter(l: &QuotaLimits) -> Option<Limiter> {
    if l.rate_per_sec <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / l.rate_per_sec).max(Duration::from_nanos(1));
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(l.burst).unwrap_or(NonZeroU32::MIN));
    Some(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>())
}

/// (UTC day number, seconds until it ends).
fn today() -> (u64, u64) {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs / 86_400, 86_400 - secs % 86_400)
}

impl Memory {
    pub fn new(charge_ttl: Duration) -> Memory {
        Memory {
            subjects: Mutex::new(HashMap::new()),
            charges: moka::sync::Cache::builder().max_capacity(1_000_000).time_to_live(charge_ttl).build(),
        }
    }

    pub fn admit(&self, subject: &str, limits: &QuotaLimits, bytes: u64, object_key: &str) -> Decision {
        let (day, to_midnight) = today();
        let mut map = match self.subjects.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let e = map.entry(subject.to_string()).or_insert_with(|| Entry {
            limiter: limiter(limits),
            day,
            bytes: 0,
            uploads: 0,
        });
        if e.day != day {
            (e.day, e.bytes, e.uploads) = (day, 0, 0);
        }
        if limits.bytes_per_day > 0 && e.bytes.saturating_add(bytes) > limits.bytes_per_day {
            return Decision::Exceeded("bytes", to_midnight);
        }
        if limits.uploads_per_day > 0 && e.uploads + 1 > limits.uploads_per_day {
            return Decision::Exceeded("uploads", to_midnight);
        }
        let state = match &e.limiter {
            None => RateState::default(),
            Some(lim) => match lim.check() {
                Ok(snap) => {
                    let remaining = snap.remaining_burst_capacity() as u64;
                    let full = (limits.burst as u64).saturating_sub(remaining) as f64 / limits.rate_per_sec;
                    RateState::of(limits, remaining, full.ceil().max(1.0) as u64)
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Decision::RateLimited(RateState::of(limits, 0, wait.as_secs_f64().ceil().max(1.0) as u64));
                }
            },
        };
        e.bytes = e.bytes.saturating_add(bytes);
        e.uploads += 1;
        drop(map);
        if bytes > 0 {
            self.charges.insert(object_key.to_string(), (subject.to_string(), day, bytes));
        }
        Decision::Admitted(state)
    }

    /// Refunds what the charge of `object_key` holds beyond `stored` bytes, once. `None` when this
    /// store has no charge for it.
    pub fn refund(&self, object_key: &str, stored: u64) -> Option<u64> {
        let (subject, day, charged) = self.charges.remove(object_key)?;
        let back = charged.saturating_sub(stored);
        let mut map = match self.subjects.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        match map.get_mut(&subject) {
            Some(e) if e.day == day && back > 0 => {
                e.bytes = e.bytes.saturating_sub(back);
                Some(back)
            }
            _ => Some(0),
        }
    }
}
