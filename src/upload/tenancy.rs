//! Tenants (`IMAGO_API_KEYS` entries `tenant:key`, `tenant:scopes:key`): where a tenant's uploads
//! live, who may reach a key, and the listing (`GET /v1/images`).
//!
//! Layout: tenant `default` (bare keys) keeps the keys of before tenants,
//! `{prefix}/{yyyy}/{mm}/{dd}/{ulid}.{ext}` and `{prefix}/sha256/{hex}.{ext}`; tenant `t` has
//! the same below `{prefix}/t/`. A key belongs to `t` when its first segment after the prefix is
//! a configured tenant's name (names start with a letter and are never `sha256`, so they never
//! meet a year or the digest directory), else to `default`: with bare keys only, every upload
//! key is `default`'s, as before. Dedup, `/info`, listing and deletion stay inside the caller's
//! tenant unless its key has the `admin` scope; another tenant's key is refused before any
//! storage lookup ([`UploadError::OtherTenant`]), so the answer never tells whether it exists.
//!
//! Listing order: newest first by default, from an index ([`super::recent`]); `order=key` lists
//! every object under the tenant's directory (pending and rejected uploads too) in key order:
//! the dated keys oldest first (their ULIDs are time-ordered), then the `sha256/` keys by
//! digest. The cursor is the last key of a page (base64url): stable under concurrent uploads and
//! deletions (a key is never listed twice; one uploaded behind the cursor is not listed in this
//! walk).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::{Backend, UploadError, Uploads, IMAGE_TYPES};
use crate::auth::Caller;
use crate::config::{clean_prefix, ApiKeySpec, Scope, DEFAULT_TENANT};
use crate::storage::{Listed, Page};

/// Store listings read per `GET /v1/images` at most (each up to the page's `limit`); past it the
/// page ends early with a cursor.
const MAX_SCANS: usize = 8;

/// The configured tenants.
#[derive(Clone, Debug, Default)]
pub struct Tenancy {
    /// Named tenants (all but `default`).
    named: Vec<String>,
}

impl Tenancy {
    pub fn new(keys: &[ApiKeySpec]) -> Tenancy {
        let mut named: Vec<String> = keys.iter().map(|k| k.tenant.clone()).filter(|t| t != DEFAULT_TENANT).collect();
        named.sort();
        named.dedup();
        Tenancy { named }
    }

    /// The directory of `tenant`'s uploads under `prefix`.
    pub fn root(&self, tenant: &str, prefix: &str) -> String {
        if tenant == DEFAULT_TENANT {
            prefix.to_string()
        } else {
            format!("{prefix}/{tenant}")
        }
    }

    /// The tenant of an upload key, from its part after the prefix and `/`.
    pub fn owner<'a>(&'a self, rest: &str) -> &'a str {
        match rest.split_once('/') {
            Some((first, _)) => self.named.iter().find(|t| *t == first).map_or(DEFAULT_TENANT, |t| t.as_str()),
            None => DEFAULT_TENANT,
        }
    }
}

fn image_name(key: &str) -> bool {
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    name.rsplit_once('.').is_some_and(|(_, e)| {
        let e = e.to_ascii_lowercase();
        IMAGE_TYPES.iter().any(|t| t.ext == e || t.alt_ext.contains(&e.as_str()))
    })
}

/// The key a `cursor` names: one under `dir` (a cursor of another order or prefix is refused).
pub(super) fn decode_cursor(c: &str, dir: &str) -> Result<String, UploadError> {
    let bad = || UploadError::InvalidRequest("cursor is not one this API returned for this order and prefix".into());
    let raw = URL_SAFE_NO_PAD.decode(c.trim_end_matches('=')).map_err(|_| bad())?;
    let k = crate::storage::clean_key(&String::from_utf8(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    match k.strip_prefix(dir) {
        Some(r) if r.starts_with('/') => Ok(k),
        _ => Err(bad()),
    }
}

/// `GET /v1/images` query.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
    /// Admin keys only (another tenant's name is [`UploadError::OtherTenant`] for the others).
    pub tenant: Option<String>,
    /// `newest` (the default) or `key`.
    pub order: Option<String>,
}

/// One listed image.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub key: String,
    pub tenant: String,
    pub bytes: u64,
    pub last_modified: Option<String>,
    pub image_url: String,
    pub info_url: String,
    /// `ready`, `pending`, `rejected` ([`super::state`]; embedded uploads are `ready`) or
    /// `deleted` (soft-deleted, [`super::trash`]).
    pub state: &'static str,
    /// When a `deleted` image is purged (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_at: Option<String>,
}

/// A page of `GET /v1/images`.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub items: Vec<Item>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

impl Uploads {
    /// The caller of an API request, refused unless its key has `scope`
    /// ([`UploadError::ScopeMissing`]).
    pub fn authorize(&self, authorization: Option<&str>, scope: Scope) -> Result<Caller, UploadError> {
        let caller = self.keys.caller(authorization).map_err(|r| UploadError::Unauthorized(r.message()))?;
        if !caller.may(scope) {
            return Err(UploadError::ScopeMissing(scope.name()));
        }
        Ok(caller)
    }

    /// The longest upload prefix `key` is under, and the tenant owning it.
    pub(super) fn owner_of(&self, key: &str) -> Option<&str> {
        let p = self
            .settings
            .prefixes
            .iter()
            .filter(|p| key.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')))
            .max_by_key(|p| p.len())?;
        Some(self.tenancy.owner(&key[p.len() + 1..]))
    }

    /// An upload key ([`Uploads::upload_key`]) the caller's tenant owns (any, for an admin key).
    pub fn owned_key(&self, caller: &Caller, key: &str) -> Result<String, UploadError> {
        let key = self.upload_key(key)?;
        match self.owner_of(&key) {
            Some(t) if caller.admin() || t == &*caller.tenant => Ok(key),
            _ => Err(UploadError::OtherTenant),
        }
    }

    /// The key `/info` may read: an image file name (never an event file or other object of the
    /// store: [`UploadError::KeyNotAllowed`]); for an admin key anywhere in the store (as bare
    /// keys always could), for the others an upload key of their tenant ([`Uploads::owned_key`]).
    pub fn readable_key(&self, caller: &Caller, key: &str) -> Result<String, UploadError> {
        if !caller.admin() {
            return self.owned_key(caller, key);
        }
        let key = match crate::storage::object_key(key) {
            Err(crate::storage::StorageError::Reserved) => return Err(UploadError::NotFound),
            r => r?,
        };
        if !image_name(&key) {
            return Err(UploadError::KeyNotAllowed("the key does not name an image file".into()));
        }
        Ok(key)
    }

    /// Whether an analytics event's image (`source` `local`/`s3`, its `key`) is an upload of
    /// `tenant`: the report filter of non-admin keys.
    pub fn event_of(&self, tenant: &str, source: Option<&str>, key: Option<&str>) -> bool {
        let key = match (&self.backend, source, key) {
            (Backend::Local, Some("local"), Some(k)) => k,
            (Backend::S3(b), Some("s3"), Some(k)) => match k.strip_prefix(b.name()).and_then(|k| k.strip_prefix('/')) {
                Some(k) => k,
                None => return false,
            },
            _ => return false,
        };
        self.upload_key(key).is_ok() && self.owner_of(key) == Some(tenant)
    }

    /// `GET /v1/images`: a page of the caller's images (every tenant's for an admin key, or
    /// `tenant`'s), newest first or in key order (`order`), after `cursor`.
    pub async fn list(&self, caller: &Caller, q: &ListQuery) -> Result<Listing, UploadError> {
        let s = &self.settings;
        let prefix = match &q.prefix {
            None => s.prefixes[0].clone(),
            Some(p) => {
                let c = clean_prefix(p)
                    .ok_or_else(|| UploadError::InvalidRequest(format!("prefix `{p}` is not a key prefix")))?;
                if !s.prefixes.contains(&c) {
                    return Err(UploadError::Forbidden(format!(
                        "prefix `{c}` is not an upload prefix (IMAGO_UPLOAD_PREFIXES: {})",
                        s.prefixes.join(", ")
                    )));
                }
                c
            }
        };
        let tenant: Option<Arc<str>> = match (&q.tenant, caller.admin()) {
            (Some(t), _) if t.as_str() == &*caller.tenant => Some(caller.tenant.clone()),
            (Some(t), true) => Some(Arc::from(t.as_str())),
            (Some(_), false) => return Err(UploadError::OtherTenant),
            (None, true) => None,
            (None, false) => Some(caller.tenant.clone()),
        };
        let limit = match &q.limit {
            None => s.list_max_limit.min(100),
            Some(l) => l.parse::<usize>().ok().filter(|l| (1..=s.list_max_limit).contains(l)).ok_or_else(|| {
                UploadError::InvalidRequest(format!("limit must be 1 to {} (IMAGO_LIST_MAX_LIMIT)", s.list_max_limit))
            })?,
        };
        match q.order.as_deref() {
            None | Some("newest") => {
                return self.list_newest(&prefix, tenant.as_deref(), limit, q.cursor.as_deref()).await;
            }
            Some("key") => {}
            Some(o) => return Err(UploadError::InvalidRequest(format!("order `{o}` is not `newest` or `key`"))),
        }
        let mut after = q.cursor.as_deref().map(|c| decode_cursor(c, &prefix)).transpose()?;
        let dir = match &tenant {
            Some(t) => self.tenancy.root(t, &prefix),
            None => prefix.clone(),
        };
        let keep = |key: &str| {
            image_name(key)
                && key
                    .strip_prefix(prefix.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(|rest| tenant.as_deref().is_none_or(|t| self.tenancy.owner(rest) == t))
        };
        let skip_named = tenant.as_deref() == Some(DEFAULT_TENANT);
        let mut items = Vec::new();
        let mut more = true;
        for _ in 0..MAX_SCANS {
            if !more || items.len() >= limit {
                break;
            }
            let page = self.list_page(&prefix, &dir, skip_named, after.as_deref(), limit - items.len()).await?;
            more = page.more;
            for o in page.objects {
                after = Some(o.key.clone());
                if keep(&o.key) {
                    items.push(self.item(o));
                    continue;
                }
                // Another tenant's directory inside `default`'s (S3 lists it; the local walk
                // never enters it): continue past all of it (`{dir}0` follows `{dir}/…`).
                let rest = o.key.strip_prefix(prefix.as_str()).and_then(|r| r.strip_prefix('/')).unwrap_or_default();
                let owner = self.tenancy.owner(rest);
                if skip_named && owner != DEFAULT_TENANT {
                    after = Some(format!("{prefix}/{owner}0"));
                    more = true;
                    break;
                }
            }
        }
        self.fill_states(&mut items).await?;
        let next_cursor = if more { after.map(|a| URL_SAFE_NO_PAD.encode(a)) } else { None };
        Ok(Listing { items, next_cursor })
    }

    /// One store listing of `dir`'s objects after `after` (`skip_named`: not inside the named
    /// tenants' directories, which the local walk can skip).
    async fn list_page(
        &self,
        prefix: &str,
        dir: &str,
        skip_named: bool,
        after: Option<&str>,
        max: usize,
    ) -> Result<Page, UploadError> {
        match &self.backend {
            Backend::S3(b) => Ok(b.list_page(&format!("{dir}/"), after, max).await?),
            Backend::Local => {
                let local = self.ingest.root().clone();
                let named: Vec<String> = if skip_named {
                    self.tenancy.named.iter().map(|t| format!("{prefix}/{t}")).collect()
                } else {
                    vec![]
                };
                let (dir, after) = (dir.to_string(), after.map(str::to_string));
                tokio::task::spawn_blocking(move || {
                    local.list_after(&dir, after.as_deref(), max, &|d: &str| named.iter().any(|n| n == d))
                })
                .await
                .map_err(|e| UploadError::Storage(format!("listing task: {e}")))?
                .map_err(UploadError::from)
            }
        }
    }

    fn item(&self, o: Listed) -> Item {
        let t = o.last_modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
        self.listed_item(&o.key, o.size, t)
    }

    /// A listed image, `ready` until its state is read (`t`: Unix seconds).
    pub(super) fn listed_item(&self, key: &str, bytes: u64, t: Option<i64>) -> Item {
        Item {
            tenant: self.owner_of(key).unwrap_or(DEFAULT_TENANT).to_string(),
            bytes,
            last_modified: t
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            image_url: self.image_url(key).unwrap_or_default(),
            info_url: format!("{}/v1/images/{key}/info", self.settings.public_url),
            state: "ready",
            purge_at: None,
            key: key.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_roots() {
        let keys: Vec<ApiKeySpec> = ["bare-key-0123456789", "acme:acme-key-0123456789", "b-2:upload:b2-key-0123456789"]
            .iter()
            .map(|e| ApiKeySpec::parse(e).unwrap())
            .collect();
        let t = Tenancy::new(&keys);
        assert_eq!(t.root("default", "uploads"), "uploads");
        assert_eq!(t.root("acme", "uploads"), "uploads/acme");
        assert_eq!(t.owner("acme/sha256/ab.jpg"), "acme");
        assert_eq!(t.owner("b-2/2025/01/01/x.jpg"), "b-2");
        assert_eq!(t.owner("2025/01/01/x.jpg"), "default");
        assert_eq!(t.owner("sha256/ab.jpg"), "default");
        assert_eq!(t.owner("other/x.jpg"), "default", "not a configured tenant");
        assert_eq!(t.owner("acme"), "default", "a file, not a directory");
        assert!(image_name("a/b.JPG") && !image_name("a/b.txt") && !image_name("a/jpg"));
    }
}
