//! Edge purges: when an image is deleted, every configured Varnish edge is sent
//! `BAN /` with `X-Imago-Ban: img-{id}` and `X-Imago-Purge-Token` (the shipped VCL,
//! `docker/varnish/default.vcl`, accepts it only from its purger ACL with the right token, and
//! bans every object whose `Surrogate-Key` holds the tag: all variants, Accept classes and
//! hints of the image at once). Fastly and Cloudflare purge by the same tags through their APIs
//! (`Surrogate-Key` / `Cache-Tag`; docs/edge-purge.md).

use std::time::Duration;

use crate::config::EventSettings;

/// The purge client and the edges it purges. `Debug` never shows the token.
pub struct Purger {
    client: Option<reqwest::Client>,
    varnish: Vec<url::Url>,
    token: String,
}

/// What purging one image did at one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOutcome {
    pub edge: String,
    /// The edge's HTTP status, or the transport error.
    pub result: Result<u16, String>,
}

impl Purger {
    /// Edges are the operator's configuration (trusted, like the object store's endpoint):
    /// private addresses allowed, redirects never followed, environment proxies ignored.
    pub fn new(s: &EventSettings) -> Result<Purger, String> {
        let client = if s.varnish.is_empty() {
            None
        } else {
            Some(
                reqwest::Client::builder()
                    .timeout(s.timeout.min(Duration::from_secs(10)))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("purge client: {e}"))?,
            )
        };
        Ok(Purger { client, varnish: s.varnish.clone(), token: s.purge_token.clone().unwrap_or_default() })
    }

    /// Bans `tag` at every Varnish edge, all at once; a failure is logged and reported, never
    /// retried here (the edge copy then lives until its TTL).
    pub async fn purge_tag(&self, tag: &str) -> Vec<PurgeOutcome> {
        let Some(client) = &self.client else { return Vec::new() };
        let sends = self.varnish.iter().map(|edge| async move {
            let r = client
                .request(reqwest::Method::from_bytes(b"BAN").unwrap_or(reqwest::Method::DELETE), edge.clone())
                .header("x-imago-ban", tag)
                .header("x-imago-purge-token", &self.token)
                .send()
                .await;
            let result = match r {
                Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                Ok(r) => Err(format!("answered {}", r.status().as_u16())),
                Err(e) => Err(e.without_url().to_string()),
            };
            let host = edge.host_str().unwrap_or_default().to_string();
            if let Err(e) = &result {
                tracing::warn!(edge = %host, tag, error = %e, "edge purge failed");
            }
            PurgeOutcome { edge: host, result: result.map_err(|e| e.to_string()) }
        });
        futures_util::future::join_all(sends).await
    }
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger").field("varnish", &self.varnish.len()).finish()
    }
}
