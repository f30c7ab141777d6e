//! Where the outbox keeps its files: one object per delivery under a reserved prefix of the
//! object store (S3 mode: `.imago/outbox/…`) or of the local root (embedded mode:
//! `{IMAGO_LOCAL_ROOT}/.outbox/…`, a directory no image key can name). Both give the same five
//! operations; `create` is the only one that must be exclusive, because leases rest on it:
//! `O_EXCL` locally; in the store `If-None-Match: *` (AWS S3, R2, MinIO), or, for a store that
//! ignores it (Garage 2.x; probed once), check → write a nonce → wait → read back (see
//! [`Store::create`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::storage::{local, Bucket, StorageError};

/// The object-store prefix of the outbox.
pub const S3_PREFIX: &str = ".imago/outbox";
/// Largest outbox file read back.
const MAX_FILE: u64 = 1024 * 1024;

/// How long a verified create waits before reading its nonce back; it also bounds the time
/// between its check and its write.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub enum Store {
    Local(PathBuf),
    /// The bucket, and whether it honours `If-None-Match: *` (probed on first use).
    S3(Bucket, Arc<tokio::sync::OnceCell<bool>>),
}

fn join(err: tokio::task::JoinError) -> StorageError {
    StorageError::Invalid(format!("outbox task: {err}"))
}

impl Store {
    /// The outbox in `bucket`.
    pub fn s3(bucket: Bucket) -> Store {
        Store::S3(bucket, Arc::default())
    }

    fn s3_key(name: &str) -> String {
        format!("{S3_PREFIX}/{name}")
    }

    /// Writes `name` (replacing it), durably.
    pub async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), StorageError> {
        match self {
            Store::Local(dir) => {
                let (dir, name) = (dir.clone(), name.to_string());
                tokio::task::spawn_blocking(move || local::write_atomic(&dir, &name, &body)).await.map_err(join)?
            }
            Store::S3(s, _) => s.put(&Self::s3_key(name), "application/json", body).await,
        }
    }

    /// Creates `name` unless it exists: `false` when another writer was first.
    pub async fn create(&self, name: &str, body: Vec<u8>) -> Result<bool, StorageError> {
        match self {
            Store::Local(dir) => {
                let path = dir.join(name);
                tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|source| StorageError::Io { path: parent.to_path_buf(), source })?;
                    }
                    let io = |source| StorageError::Io { path: path.clone(), source };
                    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                        Ok(mut f) => {
                            f.write_all(&body).map_err(io)?;
                            Ok(true)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                        Err(e) => Err(io(e)),
                    }
                })
                .await
                .map_err(join)?
            }
            Store::S3(s, conditional) => {
                let key = Self::s3_key(name);
                let honoured = conditional.get_or_try_init(|| probe(s)).await?;
                if *honoured {
                    return s.put_new(&key, "application/json", body).await;
                }
                // Check, write a nonce, wait, read back. Two writers A and B both winning would
                // need B's check before A's write and B's write after A's read-back, which is
                // SETTLE after A's write: B's check-to-write would exceed SETTLE, and B gives up
                // when it does. (S3 reads are strongly consistent after writes.)
                let start = Instant::now();
                if s.head(&key).await?.is_some() {
                    return Ok(false);
                }
                let nonce = hex::encode(rand::random::<[u8; 16]>());
                s.put(&key, "text/plain", nonce.clone().into_bytes()).await?;
                if start.elapsed() >= SETTLE {
                    return Ok(false);
                }
                tokio::time::sleep(SETTLE).await;
                Ok(self.get(name).await?.is_some_and(|b| b == nonce.as_bytes()))
            }
        }
    }

    /// The file, or `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Store::Local(dir) => {
                let path = dir.join(name);
                tokio::task::spawn_blocking(move || match local::read_file(&path, MAX_FILE) {
                    Ok(b) => Ok(Some(b)),
                    Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                })
                .await
                .map_err(join)?
            }
            Store::S3(s, _) => match s.get(&Self::s3_key(name), MAX_FILE).await {
                Ok(o) => Ok(Some(o.bytes.to_vec())),
                Err(StorageError::Status { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// The file names in `dir` (`pending`, `lease`), temp files left out.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        match self {
            Store::Local(root) => {
                let d = root.join(dir);
                let mut names = tokio::task::spawn_blocking(move || local::list_dir(&d)).await.map_err(join)??;
                names.retain(|n| !n.starts_with('.'));
                names.sort();
                Ok(names)
            }
            Store::S3(s, _) => {
                let prefix = format!("{}/", Self::s3_key(dir));
                let keys = s.list(&prefix).await?;
                Ok(keys.into_iter().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect())
            }
        }
    }

    /// Removes `name` (no error when it is gone).
    pub async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match self {
            Store::Local(dir) => {
                let path = dir.join(name);
                tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(StorageError::Io { path, source }),
                })
                .await
                .map_err(join)?
            }
            Store::S3(s, _) => s.delete(&Self::s3_key(name)).await,
        }
    }
}

/// Whether the store refuses a second `If-None-Match: *` write of one key.
async fn probe(s: &Bucket) -> Result<bool, StorageError> {
    let key = format!("{S3_PREFIX}/probe/{}", hex::encode(rand::random::<[u8; 8]>()));
    let first = s.put_new(&key, "text/plain", b"1".to_vec()).await?;
    let second = s.put_new(&key, "text/plain", b"2".to_vec()).await?;
    s.delete(&key).await?;
    let honoured = first && !second;
    if !honoured {
        tracing::info!("outbox: the object store ignores If-None-Match; leases are verified by read-back");
    }
    Ok(honoured)
}
