//! Newest-first listing (`GET /v1/images?order=newest`, the default; SPEC §10 "Listing").
//!
//! S3 lists keys in byte order only, and a content-addressed key carries no time, so newest
//! first needs an index. It is kept in the store beside the other lifecycle records, as empty
//! objects whose *names* are the index:
//!
//! * `.imago/recent/{prefix}/{tenant}/{slot}/{rest}` — one per completed upload, where the
//!   upload key is `{prefix}/{rest}` and `slot` is `99999999999 − t` in 11 digits (`t` = when
//!   the bytes were stored, Unix seconds), so ascending byte order is newest first;
//! * `.imago/recent/{prefix}/~all/{slot}/{rest}` — the same, for admin keys listing every
//!   tenant (`~` is never the first character of a tenant name).
//!
//! A page is one store listing of that directory: no read per item beyond the state the key
//! listing reads too. Entries are written when an upload completes (before its `ready` record,
//! so a crash between the two leaves an entry of a `pending` upload, which a retried completion
//! writes again under the same name: `t` is the object's own time, the store's `Last-Modified`
//! or the file's mtime, not the completion's). An entry is *current* while the object's time
//! still equals its `t` (the `ready` record keeps it as `uploaded_at`; embedded mode reads the
//! file's mtime); others — left by a purge that crashed, or an older upload of the same key —
//! are skipped and removed when a listing meets them. Purge removes the entries of the image.
//! Pending and rejected uploads (never completed) are listed by `order=key` only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::{stream, StreamExt};

use super::state::State;
use super::tenancy::{Item, Listing};
use super::{Backend, UploadError, Uploads};

/// Directory of the index (bucket root, or local root).
pub const RECENT_DIR: &str = ".imago/recent";
/// The tenant directory of the all-tenants index.
const ALL: &str = "~all";
/// Slots count down from here (Unix seconds: year 5138).
const HORIZON: i64 = 99_999_999_999;
/// Store listings read per page at most (stale entries are skipped).
const MAX_SCANS: usize = 8;

fn slot(t: i64) -> String {
    format!("{:011}", HORIZON - t.clamp(0, HORIZON))
}

fn unslot(s: &str) -> Option<i64> {
    (s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit())).then(|| HORIZON - s.parse::<i64>().unwrap_or(HORIZON))
}

/// The two index entries of `{prefix}/{rest}` stored at `t`.
fn entries(prefix: &str, tenant: &str, rest: &str, t: i64) -> [String; 2] {
    let s = slot(t);
    [format!("{RECENT_DIR}/{prefix}/{tenant}/{s}/{rest}"), format!("{RECENT_DIR}/{prefix}/{ALL}/{s}/{rest}")]
}

/// `(slot time, rest)` of an entry name below its tenant directory.
fn parse_entry(rel: &str) -> Option<(i64, &str)> {
    let (s, rest) = rel.split_once('/')?;
    Some((unslot(s)?, rest))
}

fn secs(t: std::time::SystemTime) -> Option<i64> {
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)
}

impl Uploads {
    /// `(prefix, rest, tenant)` of an upload key (the longest prefix it is under).
    fn split_upload_key<'a>(&'a self, key: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
        let p = self
            .settings
            .prefixes
            .iter()
            .filter(|p| key.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')))
            .max_by_key(|p| p.len())?;
        let rest = &key[p.len() + 1..];
        Some((p.as_str(), rest, self.tenancy.owner(rest)))
    }

    /// When the bytes at `key` were stored, as the index knows it: the file's mtime (embedded),
    /// else the `ready` record's `uploaded_at`.
    async fn stored_at(&self, key: &str) -> Result<Option<i64>, UploadError> {
        match &self.backend {
            Backend::Local => Ok(self.ingest.stat(key).await?.and_then(|m| m.modified().ok()).and_then(secs)),
            Backend::S3(b) => Ok(self.ready_record(b, key).await?.and_then(|f| f.uploaded_at)),
        }
    }

    /// Writes the index entries of `key` stored at `t` (the same names every time: idempotent).
    pub(super) async fn index_recent(&self, key: &str, t: i64) -> Result<(), UploadError> {
        let Some((prefix, rest, tenant)) = self.split_upload_key(key) else { return Ok(()) };
        for name in entries(prefix, tenant, rest, t) {
            match &self.backend {
                Backend::S3(b) => b.put(&name, "application/octet-stream", Vec::new()).await?,
                Backend::Local => {
                    // An empty file: nothing to half-write, so no temp file and rename (whose
                    // temp name concurrent writers of one entry would share).
                    let path = self.ingest.root().root().join(&name);
                    tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
                        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map(drop)
                    })
                    .await
                    .map_err(|e| UploadError::Storage(format!("index task: {e}")))?
                    .map_err(|e| UploadError::Storage(format!("index entry: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// Embedded mode: indexes a stored file at its mtime (S3 mode indexes at completion).
    pub async fn index_local(&self, key: &str) -> Result<(), UploadError> {
        if !matches!(self.backend, Backend::Local) {
            return Ok(());
        }
        if let Some(t) = self.stored_at(key).await? {
            self.index_recent(key, t).await?;
        }
        Ok(())
    }

    /// Removes the index entries of `key` stored at `t` (missing ones are fine).
    async fn unindex(&self, key: &str, t: i64) -> Result<(), UploadError> {
        let Some((prefix, rest, tenant)) = self.split_upload_key(key) else { return Ok(()) };
        for name in entries(prefix, tenant, rest, t) {
            match &self.backend {
                Backend::S3(b) => b.delete(&name).await?,
                Backend::Local => {
                    let path = self.ingest.root().root().join(&name);
                    tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    })
                    .await
                    .map_err(|e| UploadError::Storage(format!("index task: {e}")))?
                    .map_err(|e| UploadError::Storage(format!("index entry: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// Before a purge: when the image was stored (to remove its entries after).
    pub(super) async fn recent_of(&self, key: &str) -> Option<i64> {
        self.stored_at(key).await.ok().flatten()
    }

    /// After a purge: removes the entries (a failure leaves them to the next listing).
    pub(super) async fn unindex_purged(&self, key: &str, t: Option<i64>) {
        if let Some(t) = t {
            if let Err(e) = self.unindex(key, t).await {
                tracing::warn!(key, error = %e, "index entries of a purged image not removed");
            }
        }
    }

    /// A page of the newest-first listing of `tenant` (`None`: every tenant) under `prefix`.
    pub(super) async fn list_newest(
        &self,
        prefix: &str,
        tenant: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Listing, UploadError> {
        let dir = format!("{RECENT_DIR}/{prefix}/{}", tenant.unwrap_or(ALL));
        let mut after = cursor.map(|c| super::tenancy::decode_cursor(c, &dir)).transpose()?;
        let mut items = Vec::new();
        let mut more = true;
        for _ in 0..MAX_SCANS {
            if !more || items.len() >= limit {
                break;
            }
            let page = match &self.backend {
                Backend::S3(b) => b.list_page(&format!("{dir}/"), after.as_deref(), limit - items.len()).await?,
                Backend::Local => {
                    let (local, d, a, n) =
                        (self.ingest.root().clone(), dir.clone(), after.clone(), limit - items.len());
                    tokio::task::spawn_blocking(move || local.list_after(&d, a.as_deref(), n, &|_: &str| false))
                        .await
                        .map_err(|e| UploadError::Storage(format!("listing task: {e}")))??
                }
            };
            more = page.more;
            let found: Vec<(String, i64)> = page
                .objects
                .iter()
                .filter_map(|o| {
                    parse_entry(o.key.get(dir.len() + 1..)?).map(|(t, rest)| (format!("{prefix}/{rest}"), t))
                })
                .filter(|(k, _)| self.upload_key(k).is_ok())
                .collect();
            after = page.objects.last().map(|o| o.key.clone()).or(after);
            let looked: Vec<Result<Option<Item>, UploadError>> =
                stream::iter(found).map(|(k, t)| self.recent_item(k, t)).buffered(16).collect().await;
            for it in looked {
                items.extend(it?);
            }
        }
        let next_cursor = if more { after.map(|a| URL_SAFE_NO_PAD.encode(a)) } else { None };
        Ok(Listing { items, next_cursor })
    }

    /// The listed item of an entry, or `None` (and the entry removed) when it is not current.
    async fn recent_item(&self, key: String, t: i64) -> Result<Option<Item>, UploadError> {
        let deleted = self.deleted_record(&key).await?;
        let (bytes, state, current) = match &self.backend {
            Backend::Local => match self.ingest.stat(&key).await? {
                Some(m) => (m.len(), "ready", m.modified().ok().and_then(secs) == Some(t)),
                None => (0, "ready", false),
            },
            Backend::S3(_) => match self.state_of(&key).await? {
                State::Ready(f) => (f.bytes, "ready", f.uploaded_at.is_none_or(|u| u == t)),
                State::Pending => (0, "pending", true),
                State::Rejected(_) | State::Missing => (0, "ready", false),
            },
        };
        if !current {
            if let Err(e) = self.unindex(&key, t).await {
                tracing::warn!(key, error = %e, "a stale index entry not removed");
            }
            return Ok(None);
        }
        let mut item = self.listed_item(&key, bytes, Some(t));
        item.state = state;
        if let Some(d) = deleted {
            item.state = "deleted";
            item.purge_at = Some(d.purge_at_text());
        }
        Ok(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sort_newest_first_and_round_trip() {
        let (old, new) = (1_700_000_000, 1_800_000_000);
        assert!(slot(new) < slot(old), "byte order is newest first");
        assert_eq!(unslot(&slot(old)), Some(old));
        assert_eq!(slot(0).len(), 11);
        assert_eq!(unslot("12345"), None);
        assert_eq!(unslot("1234567890x"), None);
        let [t, all] = entries("uploads", "acme", "acme/sha256/ab.jpg", old);
        assert_eq!(t, format!("{RECENT_DIR}/uploads/acme/{}/acme/sha256/ab.jpg", slot(old)));
        assert_eq!(all, format!("{RECENT_DIR}/uploads/~all/{}/acme/sha256/ab.jpg", slot(old)));
        assert_eq!(parse_entry(&format!("{}/acme/sha256/ab.jpg", slot(old))), Some((old, "acme/sha256/ab.jpg")));
    }
}
