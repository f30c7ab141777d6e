//! API keys (`IMAGO_API_KEYS`): kept as SHA-256 digests and checked in constant time. One
//! checker for every API route (uploads, image info, listing and deletion, analytics); each key
//! carries its tenant and scopes ([`crate::config::ApiKeySpec`]), handed to the route as a
//! [`Caller`].

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{ApiKeySpec, Scope, Scopes};

/// Who sent an API request: which key (its index in `IMAGO_API_KEYS`), of which tenant, with
/// which scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub index: usize,
    pub tenant: Arc<str>,
    pub scopes: Scopes,
}

impl Caller {
    pub fn may(&self, s: Scope) -> bool {
        self.scopes.has(s)
    }

    /// Its scopes reach every tenant.
    pub fn admin(&self) -> bool {
        self.scopes.has(Scope::Admin)
    }
}

/// Why a request's credentials were refused (the public message of a 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No API key is configured at all.
    NoKeys,
    /// No `Authorization: Bearer …` header (or an empty token).
    Missing,
    /// A Bearer token that is none of the keys.
    Unknown,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::NoKeys => "no API keys are configured (IMAGO_API_KEYS)",
            Refused::Missing => "send `Authorization: Bearer <API key>`",
            Refused::Unknown => "unknown API key",
        }
    }
}

/// The configured API keys, as digests (their text is not kept).
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    owners: Vec<(Arc<str>, Scopes)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, rest) = authorization?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|k| !k.is_empty())
}

impl ApiKeys {
    pub fn new(keys: &[ApiKeySpec]) -> ApiKeys {
        ApiKeys {
            digests: keys.iter().map(|k| Sha256::digest(k.key.as_bytes()).into()).collect(),
            owners: keys.iter().map(|k| (Arc::from(k.tenant.as_str()), k.scopes)).collect(),
        }
    }

    /// The caller the `Authorization` header value names ([`ApiKeys::check`]).
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, Refused> {
        let index = self.check(authorization)?;
        let (tenant, scopes) = self.owners[index].clone();
        Ok(Caller { index, tenant, scopes })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Which key (its index in the configured list) the `Authorization` header value carries.
    /// Every key is compared by digest (so lengths do not leak either), without an early exit.
    pub fn check(&self, authorization: Option<&str>) -> Result<usize, Refused> {
        if self.digests.is_empty() {
            return Err(Refused::NoKeys);
        }
        let given = bearer(authorization).ok_or(Refused::Missing)?;
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, k) in self.digests.iter().enumerate() {
            let eq = k.ct_eq(&digest);
            index = u32::conditional_select(&index, &(i as u32), eq);
            found |= eq;
        }
        if bool::from(found) {
            Ok(index as usize)
        } else {
            Err(Refused::Unknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[&str]) -> ApiKeys {
        ApiKeys::new(&entries.iter().map(|e| ApiKeySpec::parse(e).unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn bearer_keys_by_index() {
        let k = keys(&["key-one-0123456789", "key-two-0123456789"]);
        assert_eq!(k.check(Some("Bearer key-one-0123456789")), Ok(0));
        assert_eq!(k.check(Some("bearer  key-two-0123456789 ")), Ok(1));
        assert_eq!(k.check(None), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer  ")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Basic key-one-0123456789")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer key-one-012345678")), Err(Refused::Unknown));
        assert_eq!(ApiKeys::new(&[]).check(Some("Bearer x")), Err(Refused::NoKeys));
        assert_eq!(format!("{k:?}"), "ApiKeys(2 keys)");
    }

    #[test]
    fn callers_carry_tenant_and_scopes() {
        let k = keys(&["bare-key-0123456789", "acme:acme-key-0123456789", "ops:read-info+admin:ops-key-0123456789"]);
        let bare = k.caller(Some("Bearer bare-key-0123456789")).unwrap();
        assert_eq!((&*bare.tenant, bare.admin(), bare.may(Scope::Delete)), ("default", true, true));
        let acme = k.caller(Some("Bearer acme-key-0123456789")).unwrap();
        assert_eq!((&*acme.tenant, acme.index, acme.admin(), acme.may(Scope::Upload)), ("acme", 1, false, true));
        let ops = k.caller(Some("Bearer ops-key-0123456789")).unwrap();
        assert!(ops.admin() && ops.may(Scope::ReadInfo) && !ops.may(Scope::Upload) && !ops.may(Scope::Delete));
        assert_eq!(k.caller(Some("Bearer acme:acme-key-0123456789")), Err(Refused::Unknown));
    }

    /// The analytics routes' former check (moved here with its cases when both API routes
    /// began to share [`ApiKeys`]).
    fn api_key_ok(keys: &[String], authorization: Option<&str>) -> bool {
        let specs: Vec<ApiKeySpec> = keys.iter().map(|k| ApiKeySpec::parse(k).unwrap()).collect();
        ApiKeys::new(&specs).check(authorization).is_ok()
    }

    #[test]
    fn bearer_keys() {
        let keys = vec!["key-one-0123456789".to_string(), "key-two-0123456789".to_string()];
        assert!(api_key_ok(&keys, Some("Bearer key-one-0123456789")));
        assert!(api_key_ok(&keys, Some("bearer  key-two-0123456789 ")));
        assert!(!api_key_ok(&keys, Some("Bearer key-three")));
        assert!(!api_key_ok(&keys, Some("Basic key-one-0123456789")));
        assert!(!api_key_ok(&keys, Some("Bearer ")));
        assert!(!api_key_ok(&keys, None));
        assert!(!api_key_ok(&[], Some("Bearer key-one-0123456789")));
    }
}
