//! The embedded store's receiving end: stream an upload body to a temp file under
//! `{root}/.incoming/`, checking size, magic bytes and checksum on the way, then commit it with
//! fsync + an atomic no-replace rename + directory fsync.
//!
//! Guarantees: nothing is written before the first bytes have passed the magic-byte check; a
//! body that is refused, cut off or too slow leaves no visible object (its temp file, if one was
//! started, is removed; a crash leaves it in `.incoming/`, which reads cannot reach and which is
//! swept of temp files older than the body timeout at start-up and every body timeout after);
//! an existing object is never replaced (`renameat2(RENAME_NOREPLACE)`, or hard link +
//! unlink where the filesystem lacks it). Small bodies (below [`SPILL`]) are buffered and written
//! in one blocking call at the end, so a cut-off small upload never touches the disk.

use std::collections::HashSet;
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::{check_magic, ImageType, UploadError, INCOMING_DIR};

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

/// How a body was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new object.
    Created,
    /// The same bytes were already there (a retried upload): nothing changed.
    Identical,
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
    root: PathBuf,
    incoming: PathBuf,
    fsync: bool,
    body_timeout: Duration,
    /// Directories already checked to lie inside the root (saves a realpath per upload).
    verified: Arc<Mutex<HashSet<PathBuf>>>,
    /// Keeps the sweeper thread running: it stops when the last clone is dropped.
    _sweeper: Option<Arc<Sender<()>>>,
}

/// A temp file that removes itself unless committed.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    committed: bool,
}

impl TempFile {
    fn create(dir: &Path) -> std::io::Result<TempFile> {
        match Self::create_in(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                Self::create_in(dir)
            }
            r => r,
        }
    }

    fn create_in(dir: &Path) -> std::io::Result<TempFile> {
        let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let name =
            format!("{}.part", ulid::Ulid::from_parts(ms, rand::random::<u128>()).to_string().to_ascii_lowercase());
        let path = dir.join(name);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o644);
        }
        let file = o.open(&path)?;
        Ok(TempFile { path, file, committed: false })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the files in `dir` not modified for `age`; returns how many.
fn sweep(dir: &Path, age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut n = 0;
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() >= age)
            .unwrap_or(false);
        if old && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Sweeps `dir` every `age` on its own thread until the returned sender is dropped.
fn sweeper(dir: PathBuf, age: Duration) -> std::io::Result<Sender<()>> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new().name("upload-sweeper".into()).spawn(move || loop {
        match rx.recv_timeout(age) {
            Err(RecvTimeoutError::Timeout) => {
                let removed = sweep(&dir, age);
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

fn io_err(e: std::io::Error) -> UploadError {
    UploadError::Storage(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UploadError> + Send + 'static,
) -> Result<T, UploadError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UploadError::Storage(format!("writer task: {e}")))?
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), atomically.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let f = CString::new(from.as_os_str().as_bytes())?;
        let t = CString::new(to.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
        let r =
            unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            // The filesystem (or kernel) cannot do it: fall back to link + unlink.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {}
            _ => return Err(e),
        }
    }
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// True when the two files hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

impl Ingest {
    /// With `prepare` (embedded uploads are on), creates `{root}/.incoming/`, removes temp files
    /// older than the body timeout, and starts a thread that does that again every body timeout.
    /// A temp file that old was left by a crash (every upload is bounded by the body timeout,
    /// and its file is written at least once per [`SPILL`] bytes; a live upload's file is always
    /// younger): the start-up sweep alone would miss the files of a crash followed by a quick
    /// restart, which is the usual case. Without `prepare` no I/O happens, so a read-only root
    /// still serves reads.
    pub fn new(root: PathBuf, fsync: bool, body_timeout: Duration, prepare: bool) -> Result<Ingest, String> {
        let incoming = root.join(INCOMING_DIR);
        let mut ingest = Ingest { root, incoming, fsync, body_timeout, verified: Arc::default(), _sweeper: None };
        if prepare {
            std::fs::create_dir_all(&ingest.incoming).map_err(|e| format!("{}: {e}", ingest.incoming.display()))?;
            let removed = ingest.clean_stale(body_timeout);
            if removed > 0 {
                tracing::info!(removed, "removed stale upload temp files");
            }
            if !body_timeout.is_zero() {
                let tx = sweeper(ingest.incoming.clone(), body_timeout)
                    .map_err(|e| format!("cannot start the upload temp file sweeper: {e}"))?;
                ingest._sweeper = Some(Arc::new(tx));
            }
        }
        Ok(ingest)
    }

    /// Removes temp files older than `age`; returns how many.
    pub fn clean_stale(&self, age: Duration) -> usize {
        sweep(&self.incoming, age)
    }

    pub fn incoming_dir(&self) -> &Path {
        &self.incoming
    }

    /// The path of a store key (clean relative path, never under `.incoming/`).
    pub fn path_of(&self, key: &str) -> Result<PathBuf, UploadError> {
        let key = crate::source::clean_key(key).map_err(|e| UploadError::InvalidRequest(e.to_string()))?;
        if key.split('/').next() == Some(INCOMING_DIR) {
            return Err(UploadError::InvalidRequest("this key is reserved".into()));
        }
        Ok(self.root.join(key))
    }

    /// The metadata of a stored object, if there is one.
    pub async fn stat(&self, key: &str) -> Result<Option<std::fs::Metadata>, UploadError> {
        let p = self.path_of(key)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Removes a stored object; `NotFound` when there is none.
    pub async fn delete(&self, key: &str) -> Result<(), UploadError> {
        let p = self.path_of(key)?;
        let fsync = self.fsync;
        blocking(move || {
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(UploadError::NotFound),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(UploadError::NotFound),
                Err(e) => return Err(io_err(e)),
            }
            std::fs::remove_file(&p).map_err(io_err)?;
            if fsync {
                if let Some(dir) = p.parent() {
                    fsync_dir(dir).map_err(io_err)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Receives one body for `key`. The whole receive is bounded by the body timeout.
    pub async fn receive<S, E>(
        &self,
        key: &str,
        t: &'static ImageType,
        limits: &Limits,
        body: S,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let dest = self.path_of(key)?;
        let secs = self.body_timeout.as_secs();
        match tokio::time::timeout(self.body_timeout, self.receive_inner(dest, t, limits, body)).await {
            Ok(r) => r,
            Err(_) => Err(UploadError::Timeout(secs)),
        }
    }

    async fn receive_inner<S, E>(
        &self,
        dest: PathBuf,
        t: &'static ImageType,
        limits: &Limits,
        mut body: S,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
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
        while let Some(chunk) = body.next().await {
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
                let dir = self.incoming.clone();
                let tf = temp.take();
                temp = Some(
                    blocking(move || {
                        let mut tf = match tf {
                            Some(tf) => tf,
                            None => TempFile::create(&dir).map_err(io_err)?,
                        };
                        write_chunks(&mut tf.file, &data).map_err(io_err)?;
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
        let (dir, root, fsync, verified) =
            (self.incoming.clone(), self.root.clone(), self.fsync, self.verified.clone());
        let outcome = blocking(move || commit(temp, pending, &dir, &root, &dest, fsync, &verified)).await?;
        Ok(Stored { bytes: total, sha256: digest, outcome })
    }
}

/// Writes every chunk (vectored writes: the chunks are not copied together first).
fn write_chunks(f: &mut std::fs::File, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut i = 0;
    let mut off = 0;
    while i < chunks.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity((chunks.len() - i).min(512));
        slices.push(IoSlice::new(&chunks[i][off..]));
        slices.extend(chunks[i + 1..].iter().take(511).map(|c| IoSlice::new(c)));
        let mut n = f.write_vectored(&slices)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while i < chunks.len() && n > 0 {
            let left = chunks[i].len() - off;
            if n >= left {
                n -= left;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Creates `dir` (and missing parents) under `root`, syncing each new directory entry.
fn ensure_dir(root: &Path, dir: &Path, fsync: bool) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() && d != root {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    if fsync {
        for m in missing.iter().rev() {
            if let Some(p) = m.parent() {
                fsync_dir(p)?;
            }
        }
    }
    Ok(())
}

/// Writes the rest, syncs, and moves the temp file into place without replacing anything.
fn commit(
    temp: Option<TempFile>,
    rest: Vec<Bytes>,
    incoming: &Path,
    root: &Path,
    dest: &Path,
    fsync: bool,
    verified: &Mutex<HashSet<PathBuf>>,
) -> Result<Outcome, UploadError> {
    let mut tf = match temp {
        Some(tf) => tf,
        None => TempFile::create(incoming).map_err(io_err)?,
    };
    write_chunks(&mut tf.file, &rest).map_err(io_err)?;
    if fsync {
        tf.file.sync_all().map_err(io_err)?;
    }
    let parent = dest.parent().ok_or_else(|| UploadError::InvalidRequest("bad key".into()))?;
    let known = verified.lock().map(|v| v.contains(parent)).unwrap_or(false);
    if !known {
        ensure_dir(root, parent, fsync).map_err(io_err)?;
        // A directory symlinked out of the store must not receive uploads.
        let real = std::fs::canonicalize(parent).map_err(io_err)?;
        if !real.starts_with(root) {
            return Err(UploadError::Forbidden("the key's directory is outside the store".into()));
        }
        if let Ok(mut v) = verified.lock() {
            if v.len() > 10_000 {
                v.clear();
            }
            v.insert(parent.to_path_buf());
        }
    }
    match rename_noreplace(&tf.path, dest) {
        Ok(()) => {
            tf.committed = true;
            if fsync {
                fsync_dir(parent).map_err(io_err)?;
            }
            Ok(Outcome::Created)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A retry of the same ticket: fine when the bytes are the same (the temp file is
            // dropped), a conflict otherwise. The stored object is never touched.
            if same_contents(&tf.path, dest).map_err(io_err)? {
                Ok(Outcome::Identical)
            } else {
                Err(UploadError::Exists)
            }
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_type() -> &'static ImageType {
        super::super::IMAGE_TYPES.iter().find(|t| t.mime == "image/jpeg").unwrap()
    }

    fn body(parts: Vec<Result<Vec<u8>, &'static str>>) -> impl Stream<Item = Result<Bytes, &'static str>> + Unpin {
        futures_util::stream::iter(parts.into_iter().map(|r| r.map(Bytes::from)))
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
        let s = ing.receive("a/b/big.jpg", jpeg_type(), &lim, body(parts)).await.unwrap();
        assert_eq!((s.bytes, s.outcome), (big.len() as u64, Outcome::Created));
        assert_eq!(std::fs::read(root.join("a/b/big.jpg")).unwrap(), big);
        // Same bytes again: identical; different bytes: conflict, original untouched.
        let s = ing.receive("a/b/big.jpg", jpeg_type(), &lim, body(vec![Ok(big.clone())])).await.unwrap();
        assert_eq!(s.outcome, Outcome::Identical);
        let e = ing.receive("a/b/big.jpg", jpeg_type(), &lim, body(vec![Ok(jpeg(500))])).await.unwrap_err();
        assert_eq!(e.code(), "exists");
        assert_eq!(std::fs::read(root.join("a/b/big.jpg")).unwrap(), big);
        // Cut off mid-body after spilling: no object, no temp file.
        let parts = vec![Ok(jpeg(SPILL + 10)), Err("connection reset")];
        let e = ing.receive("a/cut.jpg", jpeg_type(), &lim, body(parts)).await.unwrap_err();
        assert_eq!(e.code(), "incomplete-body");
        // Not an image: refused on the first bytes.
        let e = ing.receive("a/x.jpg", jpeg_type(), &lim, body(vec![Ok(b"<html>".repeat(100))])).await.unwrap_err();
        assert_eq!(e.code(), "not-an-image");
        // Over the cap (streamed, no length declared).
        let small = Limits { max_bytes: 1000, exact: None, sha256: None };
        let e =
            ing.receive("a/y.jpg", jpeg_type(), &small, body(vec![Ok(jpeg(600)), Ok(jpeg(600))])).await.unwrap_err();
        assert_eq!(e.code(), "too-large");
        // Checksum and exact length.
        let data = jpeg(700);
        let good: [u8; 32] = Sha256::digest(&data).into();
        let lim = Limits { max_bytes: 1000, exact: Some(700), sha256: Some([1; 32]) };
        let e = ing.receive("a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data.clone())])).await.unwrap_err();
        assert_eq!(e.code(), "checksum-mismatch");
        let lim = Limits { sha256: Some(good), ..lim };
        let e = ing.receive("a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data[..600].to_vec())])).await.unwrap_err();
        assert_eq!(e.code(), "length-mismatch");
        assert_eq!(ing.receive("a/z.jpg", jpeg_type(), &lim, body(vec![Ok(data)])).await.unwrap().sha256, Some(good));
        let mut left = files(&root);
        left.sort();
        assert_eq!(left, vec![root.join("a/b/big.jpg"), root.join("a/z.jpg")], "nothing else was left behind");
        // Reserved and unclean keys.
        assert!(ing.path_of(".incoming/x.part").is_err());
        assert!(ing.path_of("../x.jpg").is_err());
        ing.delete("a/z.jpg").await.unwrap();
        assert_eq!(ing.delete("a/z.jpg").await.unwrap_err().code(), "not-found");
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

    #[test]
    fn rename_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"1").unwrap();
        std::fs::write(&b, b"2").unwrap();
        assert_eq!(rename_noreplace(&a, &b).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"2");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(!a.exists() && std::fs::read(&b).unwrap() == b"1");
    }
}
