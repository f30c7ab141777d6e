//! The sweep of pending uploads (S3 mode; the embedded store has none): for uploads whose client
//! never called the completion. An upload older than `IMAGO_UPLOAD_PENDING_TTL_SECS` without a
//! record is completed exactly as the call would (so the sweep racing a completion writes the
//! same verdict), or — with `IMAGO_UPLOAD_REQUIRE_COMPLETE` — removed once it is older than the
//! expiry fence ([`super::state::Lifecycle::expiry_fence`]), after one more look for a `ready`
//! record. Every replica sweeps every `clamp(TTL / 4, 10 s, 1 h)`; sweeps of several replicas
//! agree for the same reasons completions do.
//!
//! The sweep goes by which records exist (it lists them, it does not read them): an upload with a
//! `ready` record that does not parse (written by hand) is left to reads and completions, which
//! treat it as none and rewrite it.
//!
//! Why not an S3 lifecycle rule: a pending upload sits at its final key (the ticket's `key`, read
//! by clients at once) and Garage's lifecycle filters are prefixes and sizes only (no tags), so
//! no rule can tell a pending object from a ready one. Cost: one listing of every upload prefix
//! and of the records per sweep.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use super::state::{READY_DIR, REJECTED_DIR};
use super::{UploadError, Uploads};
use crate::storage::Bucket;

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub pending: usize,
    pub completed: usize,
    pub rejected: usize,
    pub expired: usize,
}

async fn all_keys(b: &Bucket, prefix: &str) -> Result<Vec<crate::storage::Listed>, UploadError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.list_page(prefix, after.as_deref(), 1000).await?;
        after = page.objects.last().map(|o| o.key.clone());
        out.extend(page.objects);
        if !page.more || after.is_none() {
            return Ok(out);
        }
    }
}

impl Uploads {
    /// One sweep as of `now` (S3 mode; embedded: nothing to do).
    pub async fn sweep_at(&self, now: SystemTime) -> Result<Swept, UploadError> {
        let mut done = Swept::default();
        let Some(b) = self.bucket() else { return Ok(done) };
        let lc = &self.lifecycle;
        for prefix in &self.settings.prefixes {
            let strip = |dir: &str, l: Vec<crate::storage::Listed>| -> HashSet<String> {
                l.into_iter().filter_map(|o| o.key.strip_prefix(&format!("{dir}/")).map(str::to_string)).collect()
            };
            let ready = strip(READY_DIR, all_keys(b, &format!("{READY_DIR}/{prefix}/")).await?);
            let rejected = strip(REJECTED_DIR, all_keys(b, &format!("{REJECTED_DIR}/{prefix}/")).await?);
            for o in all_keys(b, &format!("{prefix}/")).await? {
                if ready.contains(&o.key) || self.upload_key(&o.key).is_err() {
                    continue;
                }
                let age = o.last_modified.and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                if age < lc.pending_ttl && !rejected.contains(&o.key) {
                    done.pending += 1;
                    continue;
                }
                if lc.require_complete && !rejected.contains(&o.key) {
                    // Between the TTL and the fence a completion may still be running: wait.
                    if age < lc.expiry_fence() || self.ready_record(b, &o.key).await?.is_some() {
                        done.pending += 1;
                        continue;
                    }
                    b.delete(&o.key).await?;
                    tracing::info!(key = o.key, "expired a pending upload");
                    done.expired += 1;
                    continue;
                }
                match self.complete_key(&o.key).await {
                    Ok(_) => done.completed += 1,
                    Err(e) if super::complete::is_verdict(&e) || matches!(e, UploadError::Rejected(_)) => {
                        done.rejected += 1
                    }
                    Err(UploadError::NotFound) => {}
                    Err(e) => tracing::warn!(key = o.key, error = %e, "sweep: cannot complete an upload"),
                }
            }
        }
        Ok(done)
    }

    /// The sweep's period.
    pub fn sweep_every(&self) -> Duration {
        (self.lifecycle.pending_ttl / 4).clamp(Duration::from_secs(10), Duration::from_secs(3600))
    }
}

/// Sweeps every [`Uploads::sweep_every`] while the owner of the uploads lives (S3 mode with
/// uploads on; returns at once otherwise).
pub async fn run_sweeper<T: Send + Sync + 'static>(owner: Weak<T>, uploads: fn(&T) -> &Uploads) {
    let every = match owner.upgrade() {
        Some(o) if uploads(&o).bucket().is_some() && !uploads(&o).settings.api_keys.is_empty() => {
            uploads(&o).sweep_every()
        }
        _ => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(o) = owner.upgrade() else { return };
        match uploads(&o).sweep_at(SystemTime::now()).await {
            Ok(s) if s != Swept::default() => tracing::info!(?s, "swept pending uploads"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep of pending uploads failed"),
        }
    }
}
