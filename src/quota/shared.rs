//! The shared quota store: one Redis or Valkey server every replica talks to, through one
//! multiplexed, reconnecting connection ([`redis::aio::ConnectionManager`]) with connect and
//! response timeouts. Each admission is one `EVALSHA` of `admit.lua` (GCRA for tickets per second,
//! day counters for bytes and uploads, the charge record), atomic on the server and timed by the
//! server's clock; a refund is one `EVALSHA` of `refund.lua`.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{Decision, RateState};
use crate::config::QuotaLimits;

/// Why the store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("quota store: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("quota store: no answer within {0:?}")]
    Timeout(Duration),
    #[error("quota store: unexpected reply {0:?}")]
    Reply(Vec<i64>),
}

pub struct Shared {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    admit: Script,
    refund: Script,
    prefix: String,
    timeout: Duration,
}

impl Shared {
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Shared, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("IMAGO_QUOTA_STORE: {}: {e}", crate::config::redact_url(url)))?;
        Ok(Shared {
            client,
            conn: tokio::sync::OnceCell::new(),
            admit: Script::new(include_str!("admit.lua")),
            refund: Script::new(include_str!("refund.lua")),
            prefix: prefix.to_string(),
            timeout,
        })
    }

    /// The connection, made on first use (so a store that is down at start-up delays nothing).
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let c = self
            .conn
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
            })
            .await?;
        Ok(c.clone())
    }

    /// Runs `f` within twice the timeout (a reconnect may take one connect and one response).
    async fn bounded<T>(&self, f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout * 2, f).await.map_err(|_| StoreError::Timeout(self.timeout * 2))?
    }

    pub async fn admit(
        &self,
        subject: &str,
        limits: &QuotaLimits,
        bytes: u64,
        object_key: &str,
        charge_ttl: Duration,
    ) -> Result<Decision, StoreError> {
        let interval_us =
            if limits.rate_per_sec > 0.0 { ((1e6 / limits.rate_per_sec).round() as u64).max(1) } else { 0 };
        let reply: Vec<i64> = self
            .bounded(async {
                let mut c = self.conn().await?;
                Ok(self
                    .admit
                    .key(format!("{}{subject}:rate", self.prefix))
                    .key(format!("{}{subject}:day", self.prefix))
                    .key(format!("{}charge:{object_key}", self.prefix))
                    .arg(interval_us)
                    .arg(limits.burst)
                    .arg(bytes)
                    .arg(limits.bytes_per_day)
                    .arg(limits.uploads_per_day)
                    .arg(subject)
                    .arg(charge_ttl.as_secs().max(1))
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        let ms = |v: i64| (v.max(0) as u64).div_ceil(1000).max(1);
        Ok(match reply.as_slice() {
            [0, remaining, reset, ..] => Decision::Admitted(RateState::of(limits, *remaining as u64, ms(*reset))),
            [1, wait, ..] => Decision::RateLimited(RateState::of(limits, 0, ms(*wait))),
            [2, secs, ..] => Decision::Exceeded("bytes", (*secs).max(1) as u64),
            [3, secs, ..] => Decision::Exceeded("uploads", (*secs).max(1) as u64),
            _ => return Err(StoreError::Reply(reply)),
        })
    }

    /// Refunds the charge of `object_key` beyond `stored` bytes; the bytes given back.
    pub async fn refund(&self, object_key: &str, stored: u64) -> Result<u64, StoreError> {
        self.bounded(async {
            let mut c = self.conn().await?;
            let n: i64 = self
                .refund
                .key(format!("{}charge:{object_key}", self.prefix))
                .arg(stored)
                .arg(&self.prefix)
                .invoke_async(&mut c)
                .await?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
