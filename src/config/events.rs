//! Typed settings of the event outbox (webhooks, `src/events/`) and of edge purges
//! (`src/purge.rs`), checked once at start.

use std::time::Duration;

use super::RawConfig;

/// Webhook delivery and edge purge settings. `Debug` never shows a secret.
#[derive(Clone, Default)]
pub struct EventSettings {
    /// `IMAGO_WEBHOOK_URLS` (none: events are not recorded).
    pub urls: Vec<url::Url>,
    /// `IMAGO_WEBHOOK_SECRETS`: every one signs (rotation: add the new one, let receivers switch,
    /// remove the old one).
    pub secrets: Vec<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to [`MAX_BACKOFF`].
    pub backoff: Duration,
    /// How often a replica looks for due events (an enqueue also wakes it).
    pub poll: Duration,
    /// How often a replica reads the other replicas' deletions (`None`: never).
    pub delete_sync: Option<Duration>,
    /// `IMAGO_PURGE_VARNISH_URLS`: Varnish edges sent a `BAN` per deleted image.
    pub varnish: Vec<url::Url>,
    pub purge_token: Option<String>,
}

/// The longest delay between two attempts of one delivery.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Shortest webhook / purge secret.
pub const MIN_SECRET_LEN: usize = 16;

impl std::fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings")
            .field("urls", &self.urls.iter().map(|u| u.as_str()).collect::<Vec<_>>())
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("varnish", &self.varnish.iter().map(|u| u.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

fn http_urls(setting: &'static str, list: Vec<String>) -> Result<Vec<url::Url>, (&'static str, String)> {
    list.iter()
        .map(|u| {
            let parsed = url::Url::parse(u).map_err(|e| (setting, format!("`{u}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err((setting, format!("`{u}`: not an http(s) URL")));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err((setting, "credentials in the URL are not allowed".to_string()));
            }
            Ok(parsed)
        })
        .collect()
}

impl EventSettings {
    pub fn from_raw(r: &RawConfig) -> Result<EventSettings, (&'static str, String)> {
        let urls = http_urls("IMAGO_WEBHOOK_URLS", r.webhook_urls.strings())?;
        let secrets = r.webhook_secrets.strings();
        if !urls.is_empty() && secrets.is_empty() {
            return Err(("IMAGO_WEBHOOK_SECRETS", "required with IMAGO_WEBHOOK_URLS".into()));
        }
        if secrets.iter().any(|s| s.len() < MIN_SECRET_LEN) {
            return Err(("IMAGO_WEBHOOK_SECRETS", format!("each secret needs {MIN_SECRET_LEN}+ characters")));
        }
        if !(100..=60_000).contains(&r.webhook_timeout_ms) {
            return Err(("IMAGO_WEBHOOK_TIMEOUT_MS", "must be 100-60000".into()));
        }
        if !(1..=100).contains(&r.webhook_max_attempts) {
            return Err(("IMAGO_WEBHOOK_MAX_ATTEMPTS", "must be 1-100".into()));
        }
        if !(10..=3_600_000).contains(&r.webhook_backoff_ms) {
            return Err(("IMAGO_WEBHOOK_BACKOFF_MS", "must be 10-3600000".into()));
        }
        if !(10..=60_000).contains(&r.webhook_poll_ms) {
            return Err(("IMAGO_WEBHOOK_POLL_MS", "must be 10-60000".into()));
        }
        if r.delete_sync_ms != 0 && !(10..=60_000).contains(&r.delete_sync_ms) {
            return Err(("IMAGO_DELETE_SYNC_MS", "must be 0 (off) or 10-60000".into()));
        }
        let varnish = http_urls("IMAGO_PURGE_VARNISH_URLS", r.purge_varnish_urls.strings())?;
        let purge_token = r.purge_token.clone().filter(|t| !t.is_empty());
        match &purge_token {
            None if !varnish.is_empty() => {
                return Err(("IMAGO_PURGE_TOKEN", "required with IMAGO_PURGE_VARNISH_URLS".into()))
            }
            Some(t) if t.len() < MIN_SECRET_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(("IMAGO_PURGE_TOKEN", format!("needs {MIN_SECRET_LEN}+ printable characters")))
            }
            _ => {}
        }
        Ok(EventSettings {
            urls,
            secrets,
            timeout: Duration::from_millis(r.webhook_timeout_ms),
            max_attempts: r.webhook_max_attempts,
            backoff: Duration::from_millis(r.webhook_backoff_ms),
            poll: Duration::from_millis(r.webhook_poll_ms),
            delete_sync: (r.delete_sync_ms > 0).then(|| Duration::from_millis(r.delete_sync_ms)),
            varnish,
            purge_token,
        })
    }
}
