//! Upload quota settings (`IMAGO_QUOTA_*`, with `IMAGO_UPLOAD_RATE_PER_SEC` / `IMAGO_UPLOAD_BURST`),
//! typed and checked; the service is [`crate::quota`]. Errors name the setting.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RawConfig;

/// Where the quota counters live (`IMAGO_QUOTA_STORE`).
#[derive(Clone, PartialEq, Eq)]
pub enum QuotaStore {
    /// In this process: every replica counts on its own (the limits hold per replica).
    Memory,
    /// A Redis or Valkey server every replica shares (`redis://`, `rediss://`, `valkey://`,
    /// `valkeys://`): the limits hold for the fleet.
    Redis(String),
}

impl std::fmt::Debug for QuotaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuotaStore::Memory => f.write_str("Memory"),
            QuotaStore::Redis(u) => write!(f, "Redis({})", redact_url(u)),
        }
    }
}

/// `scheme://host…` of a store URL with any user and password replaced (logs, Debug).
pub fn redact_url(u: &str) -> String {
    super::without_userinfo(u)
}

/// Whom a quota counts (`IMAGO_QUOTA_SCOPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaScope {
    /// The keys of a named tenant (`tenant:key`) share one quota (they rotate together); a bare
    /// key (tenant `default`, what every key was before tenants) keeps one of its own.
    Tenant,
    /// Every API key has its own quota.
    Key,
}

/// What a ticket does when the shared store cannot answer (`IMAGO_QUOTA_ON_STORE_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStoreError {
    /// Count in this replica's memory meanwhile (per-replica limits: bounded, never unlimited).
    Local,
    /// Admit without counting.
    Open,
    /// Refuse (`503 quota-unavailable`).
    Closed,
}

/// One subject's limits (0 = no limit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaLimits {
    pub rate_per_sec: f64,
    pub burst: u32,
    pub bytes_per_day: u64,
    pub uploads_per_day: u64,
}

/// Validated quota settings.
#[derive(Clone, Debug)]
pub struct QuotaSettings {
    pub store: QuotaStore,
    pub scope: QuotaScope,
    pub on_store_error: OnStoreError,
    /// Connect and response timeout of the shared store.
    pub timeout: Duration,
    /// Prefix of every key in the shared store.
    pub key_prefix: String,
    /// Every subject's limits unless overridden.
    pub limits: QuotaLimits,
    /// Per-tenant limits (`IMAGO_QUOTA_TENANTS`).
    pub overrides: BTreeMap<String, QuotaLimits>,
}

impl QuotaSettings {
    /// The limits of a tenant.
    pub fn limits_of(&self, tenant: &str) -> &QuotaLimits {
        self.overrides.get(tenant).unwrap_or(&self.limits)
    }

    pub fn from_raw(r: &RawConfig) -> Result<QuotaSettings, (&'static str, String)> {
        let store = match r.quota_store.trim() {
            "" | "memory" => QuotaStore::Memory,
            u if ["redis://", "rediss://", "valkey://", "valkeys://"].iter().any(|s| u.starts_with(s)) => {
                url::Url::parse(u).map_err(|e| ("IMAGO_QUOTA_STORE", format!("not a URL: {e}")))?;
                QuotaStore::Redis(u.to_string())
            }
            _ => {
                return Err((
                    "IMAGO_QUOTA_STORE",
                    "must be `memory` or a redis://, rediss://, valkey:// or valkeys:// URL".into(),
                ))
            }
        };
        let scope = match r.quota_scope.trim() {
            "tenant" => QuotaScope::Tenant,
            "key" => QuotaScope::Key,
            _ => return Err(("IMAGO_QUOTA_SCOPE", "must be `tenant` or `key`".into())),
        };
        let on_store_error = match r.quota_on_store_error.trim() {
            "local" => OnStoreError::Local,
            "open" => OnStoreError::Open,
            "closed" => OnStoreError::Closed,
            _ => return Err(("IMAGO_QUOTA_ON_STORE_ERROR", "must be `local`, `open` or `closed`".into())),
        };
        if !(1..=60_000).contains(&r.quota_timeout_ms) {
            return Err(("IMAGO_QUOTA_TIMEOUT_MS", "must be 1 to 60000".into()));
        }
        let key_prefix = r.quota_key_prefix.clone();
        if key_prefix.len() > 64 || key_prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(("IMAGO_QUOTA_KEY_PREFIX", "at most 64 characters, no spaces".into()));
        }
        let limits = QuotaLimits {
            rate_per_sec: r.upload_rate_per_sec,
            burst: r.upload_burst,
            bytes_per_day: r.quota_bytes_per_day,
            uploads_per_day: r.quota_uploads_per_day,
        };
        let mut overrides = BTreeMap::new();
        for entry in r.quota_tenants.strings() {
            let (tenant, l) = parse_override(&entry, &limits).map_err(|e| ("IMAGO_QUOTA_TENANTS", e))?;
            overrides.insert(tenant, l);
        }
        Ok(QuotaSettings {
            store,
            scope,
            on_store_error,
            timeout: Duration::from_millis(r.quota_timeout_ms),
            key_prefix,
            limits,
            overrides,
        })
    }
}

/// `tenant:rate=50;burst=100;bytes=10000000000;uploads=1000` (entries are comma-separated, so
/// the fields are `;`-separated; a field left out keeps the default).
fn parse_override(entry: &str, base: &QuotaLimits) -> Result<(String, QuotaLimits), String> {
    let (tenant, rest) = entry.split_once(':').ok_or_else(|| format!("`{entry}`: expected tenant:name=value…"))?;
    let tenant = tenant.trim();
    if !super::valid_tenant(tenant) && tenant != super::DEFAULT_TENANT {
        return Err(format!("`{tenant}` is not a tenant name"));
    }
    let mut l = *base;
    for kv in rest.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("`{kv}`: expected name=value"))?;
        let num = |what: &str| v.trim().parse::<u64>().map_err(|_| format!("{tenant}: {what} must be a whole number"));
        match k.trim() {
            "rate" => {
                l.rate_per_sec =
                    v.trim().parse().ok().filter(|r: &f64| r.is_finite() && *r >= 0.0).ok_or_else(|| {
                        format!("{tenant}: rate must be 0 (no limit) or a positive number of tickets per second")
                    })?
            }
            "burst" => {
                l.burst = u32::try_from(num("burst")?).ok().filter(|b| *b > 0).ok_or("burst must be 1 or more")?
            }
            "bytes" => l.bytes_per_day = num("bytes")?,
            "uploads" => l.uploads_per_day = num("uploads")?,
            other => return Err(format!("{tenant}: unknown limit `{other}` (rate, burst, bytes, uploads)")),
        }
    }
    Ok((tenant.to_string(), l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_errors_name_the_field() {
        let base = QuotaLimits { rate_per_sec: 10.0, burst: 20, bytes_per_day: 5, uploads_per_day: 0 };
        let (t, l) = parse_override("acme:rate=2.5;bytes=100", &base).unwrap();
        assert_eq!((t.as_str(), l.rate_per_sec, l.burst, l.bytes_per_day), ("acme", 2.5, 20, 100));
        assert!(parse_override("acme:burst=0", &base).unwrap_err().contains("burst"));
        assert!(parse_override("acme:speed=1", &base).unwrap_err().contains("speed"));
        assert!(parse_override("Bad Name:rate=1", &base).is_err());
        assert_eq!(redact_url("rediss://u:secret@cache:6380/0"), "rediss://[redacted]@cache:6380/0");
    }
}
