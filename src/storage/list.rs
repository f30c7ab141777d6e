//! Listing objects in key order, a page at a time, from a position (`start-after`): what
//! `GET /v1/images` pages through. The order is the byte order of the whole key, in both
//! stores: S3's `ListObjectsV2` order, and the local walk's (a directory's entries are sorted by
//! name, a directory's name counted with its `/`, so `a-b/x` comes before `a/x` as it does in
//! the bucket). The local walk follows no symlink and skips dot-entries (`.incoming/`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{LocalRoot, StorageError};

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// A page of a listing: `more` when objects may follow the last one.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub objects: Vec<Listed>,
    pub more: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

impl LocalRoot {
    /// Up to `max` files under the directory `dir` (a key prefix without the trailing `/`), in
    /// key order, after the key `after` (blocking). A directory for which `skip(dir_key)` holds
    /// is not entered. A `dir` that is missing lists nothing; one that leads out of the root is
    /// [`StorageError::Escapes`].
    pub fn list_after(
        &self,
        dir: &str,
        after: Option<&str>,
        max: usize,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<Page, StorageError> {
        // The directory itself goes through the one path check (a symlink leading out is refused).
        let start = match self.resolve(&format!("{dir}/x"), super::Dirs::Existing) {
            Ok(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            Err(StorageError::NotFound) => return Ok(Page::default()),
            Err(e) => return Err(e),
        };
        let mut page = Page::default();
        walk(&start, dir, after, max, skip, &mut page)?;
        Ok(page)
    }
}

/// Depth-first, sorted walk of `path` (whose key is `key`), appending to `page` until it holds
/// `max` objects (then `more` is set).
fn walk(
    path: &PathBuf,
    key: &str,
    after: Option<&str>,
    max: usize,
    skip: &dyn Fn(&str) -> bool,
    page: &mut Page,
) -> Result<(), StorageError> {
    let mut entries: Vec<(String, bool, std::fs::DirEntry)> = Vec::new();
    for e in std::fs::read_dir(path).map_err(io(path))? {
        let e = e.map_err(io(path))?;
        let Ok(name) = e.file_name().into_string() else { continue };
        let Ok(t) = e.file_type() else { continue };
        if name.starts_with('.') || !(t.is_dir() || t.is_file()) {
            continue;
        }
        entries.push((name, t.is_dir(), e));
    }
    // A directory sorts as `name/`: the order of the whole keys below it.
    entries.sort_by(|a, b| {
        let ka = if a.1 { format!("{}/", a.0) } else { a.0.clone() };
        let kb = if b.1 { format!("{}/", b.0) } else { b.0.clone() };
        ka.cmp(&kb)
    });
    for (name, is_dir, e) in entries {
        let k = format!("{key}/{name}");
        if is_dir {
            // Every key below `k/` is at or before `after`: nothing to read there.
            let done = after.is_some_and(|a| a > format!("{k}/").as_str() && !a.starts_with(&format!("{k}/")));
            if done || skip(&k) {
                continue;
            }
            walk(&e.path(), &k, after, max, skip, page)?;
            if page.more {
                return Ok(());
            }
        } else if after.is_none_or(|a| k.as_str() > a) {
            if page.objects.len() == max {
                page.more = true;
                return Ok(());
            }
            let m = e.metadata().map_err(io(&e.path()))?;
            page.objects.push(Listed { key: k, size: m.len(), last_modified: m.modified().ok() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_listing_is_in_key_order_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let root = LocalRoot::open(dir.path()).unwrap();
        let keys = ["p/a-b/x.jpg", "p/a/y.jpg", "p/a/z/1.jpg", "p/b.jpg", "p/t/skip.jpg", "p/.hidden/h.jpg"];
        for k in keys {
            let f = root.root().join(k);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, k).unwrap();
        }
        let skip = |d: &str| d == "p/t";
        let all: Vec<String> =
            root.list_after("p", None, 100, &skip).unwrap().objects.into_iter().map(|o| o.key).collect();
        let mut sorted = vec!["p/a-b/x.jpg", "p/a/y.jpg", "p/a/z/1.jpg", "p/b.jpg"];
        sorted.sort();
        assert_eq!(all, sorted);
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = root.list_after("p", after.as_deref(), 1, &skip).unwrap();
            seen.extend(page.objects.iter().map(|o| o.key.clone()));
            after = page.objects.last().map(|o| o.key.clone());
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, sorted);
        assert!(root.list_after("missing", None, 10, &skip).unwrap().objects.is_empty());
    }
}
