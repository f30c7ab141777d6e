//! API keys (`IMAGO_API_KEYS`): kept as SHA-256 digests and checked in constant time. One
//! checker for every API route (uploads, image info and deletion, analytics).

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

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
    pub fn new<S: AsRef<str>>(keys: &[S]) -> ApiKeys {
        ApiKeys { digests: keys.iter().map(|k| Sha256::digest(k.as_ref().as_bytes()).into()).collect() }
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

    #[test]
    fn bearer_keys_by_index() {
        let k = ApiKeys::new(&["key-one-0123456789", "key-two-0123456789"]);
        assert_eq!(k.check(Some("Bearer key-one-0123456789")), Ok(0));
        assert_eq!(k.check(Some("bearer  key-two-0123456789 ")), Ok(1));
        assert_eq!(k.check(None), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer  ")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Basic key-one-0123456789")), Err(Refused::Missing));
        assert_eq!(k.check(Some("Bearer key-one-012345678")), Err(Refused::Unknown));
        assert_eq!(ApiKeys::new::<&str>(&[]).check(Some("Bearer x")), Err(Refused::NoKeys));
        assert_eq!(format!("{k:?}"), "ApiKeys(2 keys)");
    }

    /// The analytics routes' former check (moved here with its cases when both API routes
    /// began to share [`ApiKeys`]).
    fn api_key_ok(keys: &[String], authorization: Option<&str>) -> bool {
        ApiKeys::new(keys).check(authorization).is_ok()
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
