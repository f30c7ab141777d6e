//! The embedded store's receiving end: stream an upload body to a temp file under
//! `{root}/.incoming/`, checking size, magic bytes and checksum on the way, then commit it with
//! fsync + an atomic no-replace rename + directory fsync.
//!
//! Guarantees: nothing is written before the first bytes have passed the magic-byte check; the
//! body timeout bounds receiving only: a body that arrived whole is committed and answered as
//! committed (a `408` always means nothing was stored); a body that is refused, cut off or too
//! slow leaves no visible object (its temp file, if one was
//! started, is removed; a crash leaves it in `.incoming/`, which reads cannot reach and which is
//! swept of temp files older than the body timeout at start-up and every body timeout after);
//! an existing object is never replaced (`renameat2(RENAME_NOREPLACE)`, or hard link +
//! unlink where the filesystem lacks it). Small bodies (below [`SPILL`]) are buffered and written
//! in one blocking call at the end, so a cut-off small upload never touches the disk. The file
//! operations themselves are [`crate::storage::LocalRoot`]'s.

use std::path::Path;
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::{check_magic, ImageType, UploadError};
pub use crate::storage::Outcome;
use crate::storage::{LocalRoot, TempFile};

/// Bytes buffered in memory before the body is spilled to the temp file.
pub const SPILL: usize = 1024 * 1024;

/// How many leading bytes the magic-byte check looks at (SVG needs a little text).
fn magic_window(t: &ImageType) -> usize {
    if t.sniff == "svg" {
        1024
    } else {
        32
    }
}

/// What the ticket allows for one body.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub exact: Option<u64>,
    pub sha256: Option<[u8; 32]>,
}

/// A stored body.
#[derive(Clone, Debug)]
pub struct Stored {
    pub bytes: u64,
    /// The body's SHA-256, when the ticket carried one (it was verified).
    pub sha256: Option<[u8; 32]>,
    pub outcome: Outcome,
}

/// The embedded store writer.
#[derive(Clone, Debug)]
pub struct Ingest {
    local: LocalRoot,
    fsync: bool,
    body_timeout: Duration,
    /// Keeps the sweeper thread running: it stops when the last clone is dropped.
    _sweeper: Option<Arc<Sender<()>>>,
}

/// Sweeps `.incoming/` every `age` on its own thread until the returned sender is dropped.
fn sweeper(local: LocalRoot, age: Duration) -> std::io::Result<Sender<()>> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new().name("upload-sweeper".into()).spawn(move || loop {
        match rx.recv_timeout(age) {
            Err(RecvTimeoutError::Timeout) => {
                let removed = local.sweep_incoming(age);
                if removed > 0 {
                    tracing::info!(removed, "removed stale upload temp files");
                }
            }
            // Dropped (or, never, a message): the store is gone.
            _ => return,
        }
    })?;
    Ok(tx)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, UploadError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UploadError::Storage(format!("writer task: {e}")))?
}

impl Ingest {
    /// With `prepare` (embedded uploads are on), creates `{root}/.incoming/`, removes temp files
    /// older than the body timeout, and starts a thread that does that again every body timeout.
    /// A temp file that old was left by a crash (every upload is bounded by the body timeout,
    /// and its file is written at least once per [`SPILL`] bytes; a live upload's file is always
    /// younger): the start-up sweep alone would miss the files of a crash followed by a quick
    /// restart, which is the usual case. Without `prepare` no I/O happens, so a read-only root
    /// still serves reads.
    pub fn new(
        local: impl Into<LocalRoot>,
        fsync: bool,
        body_timeout: Duration,
        prepare: bool,
    ) -> Result<Ingest, String> {
        let mut ingest = Ingest { local: local.into(), fsync, body_timeout, _sweeper: None };
        if prepare {
            ingest.local.create_incoming().map_err(|e| e.to_string())?;
            let removed = ingest.clean_stale(body_timeout);
            if removed > 0 {
                tracing::info!(removed, "removed stale upload temp files");
            }
            if !body_timeout.is_zero() {
                let tx = sweeper(ingest.local.clone(), body_timeout)
                    .map_err(|e| format!("cannot start the upload temp file sweeper: {e}"))?;
                ingest._sweeper = Some(Arc::new(tx));
            }
        }
        Ok(ingest)
    }

    /// Removes temp files older than `age`; returns how many.
    pub fn clean_stale(&self, age: Duration) -> usize {
        self.local.sweep_incoming(age)
    }

    /// The local root it writes to.
    pub fn root(&self) -> &LocalRoot {
        &self.local
    }

    pub fn incoming_dir(&self) -> &Path {
        self.local.incoming_dir()
    }

    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The metadata of a stored object, if there is one.
    pub async fn stat(&self, key: &str) -> Result<Option<std::fs::Metadata>, UploadError> {
        Ok(self.local.stat(key).await?)
    }

    /// Removes a stored object (through the store's path check: never outside the root);
    /// `NotFound` when there is none.
    pub async fn delete(&self, key: &str) -> Result<(), UploadError> {
        crate::storage::object_key(key)?;
        let (local, key, fsync) = (self.local.clone(), key.to_string(), self.fsync);
        blocking(move || Ok(local.remove(&key, fsync)?)).await
    }

    /// Receives one body for `key`: its chunks must all have arrived by `deadline` (the
    /// request's start plus the body timeout: the handler's earlier reads count too), else
    /// [`UploadError::Timeout`] and nothing is stored. Once the body is complete the commit is
    /// not timed: its outcome is the answer.
    pub async fn receive<S, E>(
        &self,
        key: &str,
        t: &'static ImageType,
        limits: &Limits,
        mut body: S,
        deadline: tokio::time::Instant,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let key = crate::storage::object_key(key)?;
        let secs = self.body_timeout.as_secs();
        let cap = limits.exact.unwrap_or(limits.max_bytes).min(limits.max_bytes);
        let window = magic_window(t);
        // Only a ticket with a digest pays for hashing.
        let mut hasher = limits.sha256.map(|_| Sha256::new());
        // Chunks are kept as received (no copy) until written.
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0usize;
        let mut head: Vec<u8> = Vec::new();
        let mut total: u64 = 0;
        let mut checked = false;
        let mut temp: Option<TempFile> = None;
        while let Some(chunk) =
            tokio::time::timeout_at(deadline, body.next()).await.map_err(|_| UploadError::Timeout(secs))?
        {
            let chunk = chunk.map_err(|e| {
                tracing::debug!(error = %e, "upload body failed");
                UploadError::Incomplete
            })?;
            total += chunk.len() as u64;
            if total > cap {
                return Err(match limits.exact {
                    Some(expected) if expected < limits.max_bytes => {
                        UploadError::LengthMismatch { expected, got: total }
                    }
                    _ => UploadError::TooLarge { limit: limits.max_bytes },
                });
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if !checked {
                head.extend_from_slice(&chunk[..chunk.len().min(window - head.len())]);
                if head.len() >= window {
                    check_magic(t, &head)?;
                    checked = true;
                }
            }
            pending_len += chunk.len();
            pending.push(chunk);
            if checked && pending_len >= SPILL {
                let data = std::mem::take(&mut pending);
                pending_len = 0;
                let local = self.local.clone();
                let tf = temp.take();
                temp = Some(
                    blocking(move || {
                        let mut tf = match tf {
                            Some(tf) => tf,
                            None => local.temp_file()?,
                        };
                        tf.write_chunks(&data)?;
                        Ok(tf)
                    })
                    .await?,
                );
            }
        }
        if !checked {
            check_magic(t, &head)?;
        }
        if let Some(expected) = limits.exact {
            if total != expected {
                return Err(UploadError::LengthMismatch { expected, got: total });
            }
        }
        let digest: Option<[u8; 32]> = hasher.map(|h| h.finalize().into());
        if let (Some(want), Some(got)) = (limits.sha256, digest) {
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &got[..])) {
                return Err(UploadError::ChecksumMismatch);
            }
        }
        let (local, fsync) = (self.local.clone(), self.fsync);
        let outcome = blocking(move || {
            let mut tf = match temp {
                Some(tf) => tf,
                None => local.temp_file()?,
            };
            tf.write_chunks(&pending)?;
            Ok(local.commit(tf, &key, fsync)?)
        })
        .await?;
        Ok(Stored { bytes: total, sha256: digest, outcome })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::storage::INCOMING_DIR;

    fn jpeg_type() -> &'static ImageType {
        super::super::IMAGE_TYPES.iter().find(|t| t.mime == "image/jpeg").unwrap()
    }

    fn body(parts: Vec<Result<Vec<u8>, &'static str>>) -> impl Stream<Item = Result<Bytes, &'static str>> + Unpin {
        futures_util::stream::iter(parts.into_iter().map(|r| r.map(Bytes::from)))
    }

    /// Receives with the whole body timeout from now.
    async fn recv<S: Stream<Item = Result<Bytes, &'static str>> + Unpin>(
        ing: &Ingest,
        key: &str,
        t: &'static ImageType,
        lim: &Limits,
        body: S,
    ) -> Result<Stored, UploadError> {
        ing.receive(key, t, lim, body, tokio::time::Instant::now() + ing.body_timeout()).await
    }

    fn jpeg(n: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
        v.resize(n, 7);
        v
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in walk(dir) {
            out.push(e);
        }
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    v.extend(walk(&p));
                } else {
                    v.push(p);
                }
            }
        }
        v
    }

    #[tokio::test]
    async fn stores_refuses_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let ing = Ingest::new(root.clone(), true, Duration::from_secs(5), false).unwrap();
        let lim = Limits { max_bytes: 3 * SPILL as u64, exact: None, sha256: None };
        // Large body: spills to a temp file across several writes.
        let big = jpeg(2 * SPILL + 123);
        let parts = big.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
        let s = recv(&ing, "a/b/big.jpg", jpeg_type(), &lim, body(parts)).await.unwrap();
        assert_eq!((s.bytes, s.outcome), (big.len() as u64, Outcome::Created));
        assert_eq!(std::fs::read(root.join("a/b/big.jpg")).unwrap(), big);
        // Same bytes again: identical; different bytes: conflict, original untouched.
        let s = recv(&ing, "a/b/big.jpg", jpeg_type(), &lim, body(vec![Ok(big.clone())])).await.unwrap();
        assert_eq!(s.outcome, Outcome::Identical);
        let e = recv(&ing, "a/b/big.jpg", jpeg_type(), &lim, body(vec![Ok(jpeg(500))])).await.unwrap_err();
        assert_eq!(e.code(), "exists");
        assert_eq!(std::fs::read(root.join("a/b/big.jpg")).unwrap(), big);
        // Cut off mid-body after spilling: no object, no temp file.
        let parts = vec![Ok(jpeg(SPILL + 10)), Err("connection reset")];
        let e = recv(&ing, "a/cut.jpg", jpeg_type(), &lim, body(parts)).await.unwrap_err();
        assert_eq!(e.code(), "incomplete-body");
        // Not an image: refused on the first bytes.
        let e = recv(&ing, "a/x.jpg", jpeg_type(), &lim, body(vec![Ok(b"<html>".repeat(100))])).await.unwrap_err();
        assert_eq!(e.code(), "not-an-image");
        // Over the cap (streamed, no length declared).
        let small = Limits { max_bytes: 1000, exact: None, sha256: None };
        let e = recv(&ing, "a/y.jpg", jpeg_type(), &small, body(vec![Ok(jpeg(600)), Ok(jpeg(600))])).await.unwrap_err();
        assert_eq!(e.code(), "too-large");
        // Checksum and exact length.
        let data = jpeg(700);
        let good: [u8; 32] = Sha256::digest(&data).into();
        let lim = Limits { max_bytes: 1000, exact: Some(700), sha256: Some([1; 32]) };
        let e = recv(&ing, "a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data.clone())])).await.unwrap_err();
        assert_eq!(e.code(), "checksum-mismatch");
        let lim = Limits { sha256: Some(good), ..lim };
        let e = recv(&ing, "a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data[..600].to_vec())])).await.unwrap_err();
        assert_eq!(e.code(), "length-mismatch");
        assert_eq!(recv(&ing, "a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data)])).await.unwrap().sha256, Some(good));
        let mut left = files(&root);
        left.sort();
        assert_eq!(left, vec![root.join("a/b/big.jpg"), root.join("a/z.jpg")], "nothing else was left behind");
        // Reserved and unclean keys.
        for bad in [".incoming/x.part", "../x.jpg"] {
            let e = recv(&ing, bad, jpeg_type(), &lim, body(vec![Ok(jpeg(500))])).await.unwrap_err();
            assert_eq!(e.code(), "invalid-request", "{bad}");
        }
        ing.delete("a/z.jpg").await.unwrap();
        assert_eq!(ing.delete("a/z.jpg").await.unwrap_err().code(), "not-found");
    }

    /// A body that yields `data` and ends at `end` (a real stream, paced by the clock).
    fn ending_at(data: Vec<u8>, end: tokio::time::Instant) -> impl Stream<Item = Result<Bytes, &'static str>> + Unpin {
        Box::pin(futures_util::stream::unfold(Some(data), move |d| async move {
            match d {
                Some(d) => Some((Ok(Bytes::from(d)), None)),
                None => {
                    tokio::time::sleep_until(end).await;
                    None
                }
            }
        }))
    }

    #[tokio::test]
    async fn the_timeout_covers_receiving_only_and_the_answer_matches_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let timeout = Duration::from_millis(400);
        let ing = Ingest::new(root.clone(), true, timeout, false).unwrap();
        let lim = Limits { max_bytes: 3 * SPILL as u64, exact: None, sha256: None };
        // A complete body whose end arrives just before the deadline, then a commit that needs
        // some time (a deep new directory, fsynced level by level): the commit lands, so the
        // answer must say so.
        let key = format!("{}late.jpg", "d/".repeat(300));
        let start = tokio::time::Instant::now();
        let body = ending_at(jpeg(SPILL + 10), start + timeout - Duration::from_millis(2));
        let r = ing.receive(&key, jpeg_type(), &lim, body, start + timeout).await;
        // Whatever was answered, the commit (if one started) has ended in 5 s.
        let landed = async {
            for _ in 0..50 {
                if root.join(&key).exists() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        match r {
            Ok(s) => assert!(root.join(&key).exists() && s.outcome == Outcome::Created),
            Err(e) => panic!("a complete body was answered `{}`; the object landed anyway: {}", e.code(), landed.await),
        }
        // A body still arriving at the deadline: a timeout, and nothing committed.
        let start = tokio::time::Instant::now();
        let body = ending_at(jpeg(SPILL + 10), start + timeout + Duration::from_millis(200));
        let e = ing.receive("a/slow.jpg", jpeg_type(), &lim, body, start + timeout).await.unwrap_err();
        assert_eq!(e.code(), "upload-timeout");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!root.join("a/slow.jpg").exists());
        assert!(files(ing.incoming_dir()).is_empty(), "{:?}", files(ing.incoming_dir()));
    }

    #[test]
    fn stale_temp_files_are_cleaned_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join(INCOMING_DIR);
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::write(inc.join("old.part"), b"x").unwrap();
        let ing = Ingest::new(dir.path().to_path_buf(), false, Duration::ZERO, true).unwrap();
        assert!(files(ing.incoming_dir()).is_empty());
    }

    #[test]
    fn temp_files_left_by_a_crash_are_swept_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let ing = Ingest::new(dir.path().to_path_buf(), false, Duration::from_secs(1), true).unwrap();
        let start = std::time::Instant::now();
        // Written just now (by a process killed right before this start): too young for the
        // start-up sweep, which only removes what no live upload can still be writing …
        let crashed = ing.incoming_dir().join("crashed.part");
        std::fs::write(&crashed, b"x").unwrap();
        // … next to the temp file of an upload in progress (written more often than the timeout).
        let live = ing.incoming_dir().join("live.part");
        let mut f = std::fs::File::create(&live).unwrap();
        // The crashed one is removed once it is older than the body timeout; the live one stays.
        while crashed.exists() || start.elapsed() < Duration::from_millis(2500) {
            assert!(start.elapsed() < Duration::from_secs(10), "the crash's temp file was not swept");
            f.write_all(b"y").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(live.exists(), "a temp file being written was swept");
    }
}
