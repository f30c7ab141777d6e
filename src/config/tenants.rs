//! The grammar of `IMAGO_API_KEYS` entries: which tenant a key belongs to and what it may do.
//!
//! * `key`: a bare key: tenant `default`, every scope (admin included): what every key was
//!   before tenants existed, so a bare-key deployment behaves exactly as before;
//! * `tenant:key`: a tenant's key with the tenant scopes (`upload`, `read-info`, `delete`,
//!   `analytics`; not `admin`);
//! * `tenant:scope+scope:key`: explicit scopes (`all` = every scope). A key that itself contains
//!   `:` must be written in this form.
//!
//! Only `key` travels (as `Authorization: Bearer key`); tenant names are
//! `[a-z][a-z0-9-]{0,31}` except `sha256` (they become a key segment, never confused with a
//! year directory or the digest directory).

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `POST /v1/uploads`.
    Upload,
    /// `GET /v1/images/{key}/info` and `GET /v1/images`.
    ReadInfo,
    /// `DELETE /v1/images/{key}`.
    Delete,
    /// `GET /v1/analytics`, `/v1/analytics/report`.
    Analytics,
    /// The key's other scopes reach every tenant.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Scope::Upload, Scope::ReadInfo, Scope::Delete, Scope::Analytics, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Upload => "upload",
            Scope::ReadInfo => "read-info",
            Scope::Delete => "delete",
            Scope::Analytics => "analytics",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope (bare keys, `all`).
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.iter().fold(0, |a, s| a | s.bit()))
    }

    /// What `tenant:key` gets: everything but `admin`.
    pub fn tenant() -> Scopes {
        Scopes(Scopes::all().0 & !Scope::Admin.bit())
    }

    pub fn has(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Parses `scope+scope…`.
    pub fn parse(s: &str) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in s.split('+') {
            if name == "all" {
                bits |= Scopes::all().0;
                continue;
            }
            let scope = Scope::ALL.iter().find(|x| x.name() == name).ok_or_else(|| {
                format!("unknown scope `{name}` (upload, read-info, delete, analytics, admin, all; joined with +)")
            })?;
            bits |= scope.bit();
        }
        Ok(Scopes(bits))
    }
}

/// The tenant of bare keys.
pub const DEFAULT_TENANT: &str = "default";

/// True for a valid tenant name: `[a-z][a-z0-9-]{0,31}`, not `sha256`.
pub fn valid_tenant(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && name != "sha256"
}

/// One parsed `IMAGO_API_KEYS` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    pub tenant: String,
    pub scopes: Scopes,
    /// The Bearer token.
    pub key: String,
}

impl std::fmt::Debug for ApiKeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeySpec").field("tenant", &self.tenant).field("scopes", &self.scopes).finish()
    }
}

impl ApiKeySpec {
    /// Parses one entry (the error never quotes the key).
    pub fn parse(entry: &str) -> Result<ApiKeySpec, String> {
        let entry = entry.trim();
        let (tenant, scopes, key) = match entry.split_once(':') {
            None => (DEFAULT_TENANT, Scopes::all(), entry),
            Some((tenant, rest)) => {
                if !valid_tenant(tenant) {
                    // Not quoted: it may be the start of a bare key that contains `:`.
                    return Err("an entry with `:` is `tenant:key` or `tenant:scopes:key`, and the part before \
                                the first `:` is not a tenant name (a-z, 0-9, -; starting with a letter; at most \
                                32; not sha256); write a key that contains `:` as `default:all:key`"
                        .into());
                }
                match rest.split_once(':') {
                    None => (tenant, Scopes::tenant(), rest),
                    Some((scopes, key)) => (tenant, Scopes::parse(scopes)?, key),
                }
            }
        };
        if key.len() < 16 {
            return Err("each API key must be at least 16 characters".into());
        }
        Ok(ApiKeySpec { tenant: tenant.to_string(), scopes, key: key.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse() {
        let k = "0123456789abcdef";
        let bare = ApiKeySpec::parse(k).unwrap();
        assert_eq!((bare.tenant.as_str(), bare.scopes, bare.key.as_str()), ("default", Scopes::all(), k));
        let t = ApiKeySpec::parse(&format!("acme:{k}")).unwrap();
        assert_eq!((t.tenant.as_str(), t.scopes), ("acme", Scopes::tenant()));
        assert!(!t.scopes.has(Scope::Admin) && t.scopes.has(Scope::Delete));
        let s = ApiKeySpec::parse(&format!("ops:read-info+admin:{k}:x")).unwrap();
        assert_eq!(s.key, format!("{k}:x"));
        assert!(s.scopes.has(Scope::Admin) && s.scopes.has(Scope::ReadInfo) && !s.scopes.has(Scope::Upload));
        assert_eq!(ApiKeySpec::parse(&format!("default:all:{k}")).unwrap().scopes, Scopes::all());
        for bad in [
            "short".to_string(),
            format!("Acme:{k}"),
            format!("sha256:{k}"),
            format!("1acme:{k}"),
            "acme:short".to_string(),
            format!("acme:write:{k}"),
            format!("{}:{k}", "a".repeat(33)),
        ] {
            let e = ApiKeySpec::parse(&bad).unwrap_err();
            assert!(!e.contains(k), "the error must not quote the key: {e}");
        }
        assert!(!format!("{s:?}").contains(k));
    }
}
