//! Local disk: the local root (the embedded store: `local:///a/b.jpg` is `a/b.jpg` under it)
//! and plain directories of files (analytics event files).
//!
//! Keys are clean relative paths ([`clean_key`]); [`INCOMING_DIR`] under the root holds upload
//! temp files and no key may name it ([`object_key`]). Every path of a key goes through one
//! check, [`LocalRoot::resolve`]: it walks the key's directories from the (canonical) root one at
//! a time, follows a symlink only to a directory that is still inside the root, creates missing
//! directories only when asked and only once their parent is known to be inside, and refuses a
//! file that resolves outside ([`StorageError::Escapes`]). Reads, stats, removals, commits and
//! directory creation all use it. Writes are atomic: a temp file, fsync, then a rename (no-replace for the
//! root's objects: `renameat2(RENAME_NOREPLACE)`, or hard link + unlink where the filesystem
//! lacks it), then the directory is synced.

use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{Object, StorageError};

/// Temp files of embedded uploads live here, under the local root; no key can name it, so reads
/// never reach it.
pub const INCOMING_DIR: &str = ".incoming";
/// The event outbox of embedded mode (`src/events/`) lives here, under the local root; no key can
/// name it either.
pub const OUTBOX_DIR: &str = ".outbox";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

/// Checks that a store key is a clean relative path: no `..`, no `.`, no empty segments, no
/// backslashes or NUL. Applied to local and S3 keys alike.
pub fn clean_key(key: &str) -> Result<String, StorageError> {
    if key.is_empty() {
        return Err(StorageError::BadKey("is empty"));
    }
    if key.len() > 1024 {
        return Err(StorageError::BadKey("is too long"));
    }
    if key.contains(['\\', '\0']) || key.chars().any(char::is_control) {
        return Err(StorageError::BadKey("contains a forbidden character"));
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(StorageError::BadKey("must be a relative path without empty, `.` or `..` segments"));
        }
    }
    Ok(key.to_string())
}

/// A clean key of an object of the local root: [`clean_key`], and not under [`INCOMING_DIR`]
/// ([`StorageError::Reserved`]).
pub fn object_key(key: &str) -> Result<String, StorageError> {
    let key = clean_key(key)?;
    if matches!(key.split('/').next(), Some(INCOMING_DIR | OUTBOX_DIR)) {
        return Err(StorageError::Reserved);
    }
    Ok(key)
}

/// How a no-replace commit went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new object.
    Created,
    /// The same bytes were already there (a retried upload): nothing changed.
    Identical,
}

/// What [`LocalRoot::resolve`] does about the key's directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dirs {
    /// They must exist ([`StorageError::NotFound`] otherwise).
    Existing,
    /// Missing ones are created (with `true`, each new entry is fsynced).
    Create { fsync: bool },
}

/// The local root (cheap to clone).
#[derive(Clone, Debug)]
pub struct LocalRoot {
    root: PathBuf,
    incoming: PathBuf,
}

/// A root at `path` as given (no I/O: the path should be canonical).
impl From<PathBuf> for LocalRoot {
    fn from(root: PathBuf) -> LocalRoot {
        let incoming = root.join(INCOMING_DIR);
        LocalRoot { root, incoming }
    }
}

impl LocalRoot {
    /// Creates `path` when missing and opens it by its canonical path.
    pub fn open(path: &Path) -> Result<LocalRoot, StorageError> {
        std::fs::create_dir_all(path).map_err(io(path))?;
        Ok(LocalRoot::from(std::fs::canonicalize(path).map_err(io(path))?))
    }

    /// The root's canonical path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `{root}/.incoming`.
    pub fn incoming_dir(&self) -> &Path {
        &self.incoming
    }

    /// The one local path check (blocking): the path of an object key ([`object_key`]) whose
    /// directories are real directories inside the root. The directories are walked from the
    /// root one at a time: a symlink is followed only when it resolves to a directory inside the
    /// root ([`StorageError::Escapes`] otherwise), a missing directory is created only with
    /// [`Dirs::Create`] (so nothing is ever created outside), and the returned path names the
    /// final entry under the resolved directory (the entry itself may not exist, and is not
    /// followed: see [`LocalRoot::resolve_file`]).
    pub fn resolve(&self, key: &str, dirs: Dirs) -> Result<PathBuf, StorageError> {
        let key = object_key(key)?;
        let (parent, name) = match key.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, key.as_str()),
        };
        let mut dir = self.root.clone();
        for seg in parent.into_iter().flat_map(|p| p.split('/')) {
            dir = match self.step(&dir, seg)? {
                Some(d) => d,
                None => match dirs {
                    Dirs::Existing => return Err(StorageError::NotFound),
                    Dirs::Create { fsync } => {
                        let next = dir.join(seg);
                        match std::fs::create_dir(&next) {
                            Ok(()) => {
                                if fsync {
                                    fsync_dir(&dir).map_err(io(&dir))?;
                                }
                                next
                            }
                            // Made by a concurrent upload: checked like any other directory.
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                                self.step(&dir, seg)?.ok_or(StorageError::NotFound)?
                            }
                            Err(e) => return Err(io(&next)(e)),
                        }
                    }
                },
            };
        }
        Ok(dir.join(name))
    }

    /// One directory of a walk from a directory inside the root: the real path of `dir/seg`
    /// when it is a directory inside the root (a symlink is followed), `None` when it is missing,
    /// [`StorageError::Escapes`] when it leads outside, [`StorageError::NotFound`] when it is not
    /// a directory.
    fn step(&self, dir: &Path, seg: &str) -> Result<Option<PathBuf>, StorageError> {
        let next = dir.join(seg);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => Ok(Some(next)),
            Ok(m) if m.file_type().is_symlink() => {
                let real = match std::fs::canonicalize(&next) {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound),
                    Err(e) => return Err(io(&next)(e)),
                };
                if !real.starts_with(&self.root) {
                    return Err(StorageError::Escapes);
                }
                if !real.is_dir() {
                    return Err(StorageError::NotFound);
                }
                Ok(Some(real))
            }
            Ok(_) => Err(StorageError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&next)(e)),
        }
    }

    /// The real path of an existing object (blocking): [`LocalRoot::resolve`], then the entry is
    /// followed and must be a file inside the root. `Ok(None)` when there is no such file.
    pub fn resolve_file(&self, key: &str) -> Result<Option<(PathBuf, std::fs::Metadata)>, StorageError> {
        let p = match self.resolve(key, Dirs::Existing) {
            Err(StorageError::NotFound) => return Ok(None),
            r => r?,
        };
        let real = match std::fs::canonicalize(&p) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&p)(e)),
        };
        if !real.starts_with(&self.root) {
            return Err(StorageError::Escapes);
        }
        let meta = std::fs::metadata(&real).map_err(io(&real))?;
        Ok(meta.is_file().then_some((real, meta)))
    }

    async fn resolve_file_async(&self, key: &str) -> Result<Option<(PathBuf, std::fs::Metadata)>, StorageError> {
        let (this, k) = (self.clone(), key.to_string());
        tokio::task::spawn_blocking(move || this.resolve_file(&k))
            .await
            .map_err(|e| StorageError::Invalid(format!("local store task: {e}")))?
    }

    /// Reads an object, refusing one that resolves (through symlinks) outside the root, one
    /// that is not a file ([`StorageError::NotFound`]) and one larger than `max_bytes`.
    pub async fn read(&self, key: &str, max_bytes: u64) -> Result<Object, StorageError> {
        let (real, meta) = self.resolve_file_async(key).await?.ok_or(StorageError::NotFound)?;
        if meta.len() > max_bytes {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        let bytes = tokio::fs::read(&real).await.map_err(io(&real))?;
        if bytes.len() as u64 > max_bytes {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        Ok(Object { bytes: Bytes::from(bytes), last_modified: meta.modified().ok() })
    }

    /// The metadata of an object, if there is one (a file inside the root).
    pub async fn stat(&self, key: &str) -> Result<Option<std::fs::Metadata>, StorageError> {
        Ok(self.resolve_file_async(key).await?.map(|(_, m)| m))
    }

    /// Removes an object (blocking); [`StorageError::NotFound`] when there is none. With
    /// `fsync`, the directory is synced after.
    /// The entry is not followed: a symlink is not an object, so it is [`StorageError::NotFound`].
    pub fn remove(&self, key: &str, fsync: bool) -> Result<(), StorageError> {
        let p = self.resolve(key, Dirs::Existing)?;
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(StorageError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(io(&p)(e)),
        }
        std::fs::remove_file(&p).map_err(io(&p))?;
        if fsync {
            if let Some(dir) = p.parent() {
                fsync_dir(dir).map_err(io(dir))?;
            }
        }
        Ok(())
    }

    /// Creates [`INCOMING_DIR`].
    pub fn create_incoming(&self) -> Result<(), StorageError> {
        std::fs::create_dir_all(&self.incoming).map_err(io(&self.incoming))
    }

    /// Removes the files in [`INCOMING_DIR`] not modified for `age`; returns how many.
    pub fn sweep_incoming(&self, age: Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.incoming) else {
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

    /// A new temp file in [`INCOMING_DIR`] (blocking; the directory is created when missing).
    pub fn temp_file(&self) -> Result<TempFile, StorageError> {
        match TempFile::create_in(&self.incoming) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.incoming).map_err(io(&self.incoming))?;
                TempFile::create_in(&self.incoming).map_err(io(&self.incoming))
            }
            r => r.map_err(io(&self.incoming)),
        }
    }

    /// Moves a complete temp file to the object `key` without replacing anything (blocking); its
    /// directories are made by [`LocalRoot::resolve`], so never outside the root. With `fsync`,
    /// the file and every directory entry it needs are synced. An existing object with the same
    /// bytes is [`Outcome::Identical`] (the temp file is dropped), with other bytes
    /// [`StorageError::Exists`]; it is never touched.
    pub fn commit(&self, mut tf: TempFile, key: &str, fsync: bool) -> Result<Outcome, StorageError> {
        if fsync {
            tf.file.sync_all().map_err(io(&tf.path))?;
        }
        let dest = &self.resolve(key, Dirs::Create { fsync })?;
        let parent = dest.parent().ok_or_else(|| StorageError::Invalid("bad key".into()))?;
        match rename_noreplace(&tf.path, dest) {
            Ok(()) => {
                tf.committed = true;
                if fsync {
                    fsync_dir(parent).map_err(io(parent))?;
                }
                Ok(Outcome::Created)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if same_contents(&tf.path, dest).map_err(io(dest))? {
                    Ok(Outcome::Identical)
                } else {
                    Err(StorageError::Exists)
                }
            }
            Err(e) => Err(io(dest)(e)),
        }
    }

    /// Readiness: the root is a directory.
    pub async fn ready(&self) -> Result<(), String> {
        let meta = tokio::fs::metadata(&self.root).await.map_err(|e| format!("local store: {e}"))?;
        if !meta.is_dir() {
            return Err("local store is not a directory".into());
        }
        Ok(())
    }
}

/// A temp file that removes itself unless committed.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    committed: bool,
}

impl TempFile {
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

    /// Appends every chunk (vectored writes: the chunks are not copied together first).
    pub fn write_chunks(&mut self, chunks: &[Bytes]) -> Result<(), StorageError> {
        write_chunks(&mut self.file, chunks).map_err(io(&self.path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

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

/// Writes `dir/name` atomically (blocking; the file may be replaced): a temp file `.{file}.tmp`
/// beside it (not matched by `*.ext` globs while it is written), fsync, rename, then the
/// directory is synced so that the rename is durable too (best effort).
pub fn write_atomic(dir: &Path, name: &str, body: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(name);
    let parent = path.parent().ok_or_else(|| StorageError::Invalid(format!("bad file name {name}")))?;
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp"));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    Ok(())
}

/// The first `limit` bytes of a file (blocking).
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, StorageError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut buf = Vec::new();
    f.take(limit).read_to_end(&mut buf).map_err(io(path))?;
    Ok(buf)
}

/// The names of the entries of `dir` (blocking; none when it does not exist), unsorted.
pub fn list_dir(dir: &Path) -> Result<Vec<String>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    Ok(entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
}

/// The regular files of `dir` with their sizes (blocking; none when it does not exist), unsorted.
pub fn list_files(dir: &Path) -> Result<Vec<(String, u64)>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        // A file removed meanwhile is skipped.
        if let Ok(m) = e.metadata() {
            if m.is_file() {
                out.push((e.file_name().to_string_lossy().into_owned(), m.len()));
            }
        }
    }
    Ok(out)
}

/// Removes a file (blocking); one that is already gone is fine.
pub fn remove_file(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Removes `dir` when it is empty (blocking; anything else, e.g. a file written meanwhile, keeps it).
pub fn remove_empty_dir(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_clean_and_incoming_is_reserved() {
        for bad in ["", "/a", "a//b", "a/./b", "a/../b", "..", "a\\b", "a\0b", "a\nb"] {
            assert!(matches!(clean_key(bad), Err(StorageError::BadKey(_))), "{bad:?}");
        }
        assert!(matches!(clean_key(&"a".repeat(1025)), Err(StorageError::BadKey("is too long"))));
        assert_eq!(clean_key("a/b.jpg").unwrap(), "a/b.jpg");
        assert!(matches!(object_key(".incoming/x.part"), Err(StorageError::Reserved)));
        assert_eq!(object_key("x/.incoming/y").unwrap(), "x/.incoming/y");
    }

    #[tokio::test]
    async fn reads_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = LocalRoot::open(&dir.path().join("root")).unwrap();
        std::fs::create_dir_all(root.root().join("a")).unwrap();
        std::fs::write(root.root().join("a/b.jpg"), b"12345").unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let o = root.read("a/b.jpg", 5).await.unwrap();
        assert_eq!(&o.bytes[..], b"12345");
        assert!(o.last_modified.is_some());
        assert!(matches!(root.read("a/b.jpg", 4).await, Err(StorageError::TooLarge { limit: 4 })));
        assert!(matches!(root.read("a/none.jpg", 5).await, Err(StorageError::NotFound)));
        assert!(matches!(root.read("a", 5).await, Err(StorageError::NotFound)));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path().join("secret"), root.root().join("a/link")).unwrap();
            assert!(matches!(root.read("a/link", 5).await, Err(StorageError::Escapes)));
        }
        assert!(root.stat("a/b.jpg").await.unwrap().is_some());
        assert!(root.stat("a").await.unwrap().is_none());
        root.remove("a/b.jpg", true).unwrap();
        assert!(matches!(root.remove("a/b.jpg", true), Err(StorageError::NotFound)));
        root.ready().await.unwrap();
    }

    #[test]
    fn write_atomic_lists_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "d/h/x.jsonl.zst", b"abc").unwrap();
        write_atomic(dir.path(), "d/h/x.jsonl.zst", b"abcd").unwrap();
        assert_eq!(list_dir(&dir.path().join("d/h")).unwrap(), vec!["x.jsonl.zst".to_string()]);
        assert!(list_dir(&dir.path().join("missing")).unwrap().is_empty());
        assert_eq!(read_file(&dir.path().join("d/h/x.jsonl.zst"), 3).unwrap(), b"abc");
        let e = read_file(&dir.path().join("nope"), 3).unwrap_err().to_string();
        assert!(e.starts_with(&dir.path().join("nope").display().to_string()), "{e}");
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
