//! Webhook signatures (SPEC §13): imago signs every event it delivers with
//! `Imago-Signature: t={unix seconds},v1={hex},v1={hex}…`, where each `v1` is
//! `hex(HMAC-SHA256(secret, "{t}.{raw body}"))` for one configured secret (several during a
//! rotation). A receiver accepts the request when one `v1` matches one of its secrets (constant
//! time) and `t` is within its replay window of its own clock, then deduplicates on the event
//! `id` (delivery is at least once).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header imago sends the signature in.
pub const SIGNATURE_HEADER: &str = "Imago-Signature";
/// The default replay window, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The header is missing, or has no `t=` integer or no `v1=` value.
    #[error("malformed Imago-Signature header")]
    MalformedHeader,
    /// No `v1` value matches any secret.
    #[error("no signature matches")]
    SignatureMismatch,
    /// `t` is further than the tolerance from now (a replay, or a skewed clock).
    #[error("timestamp outside the tolerance")]
    TimestampOutsideTolerance,
    /// No secret configured.
    #[error("no webhook secret configured")]
    NoSecret,
}

impl WebhookError {
    /// The stable code the shared vectors use (`signing/vectors/webhooks.json`).
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::MalformedHeader => "malformed-header",
            WebhookError::SignatureMismatch => "signature-mismatch",
            WebhookError::TimestampOutsideTolerance => "timestamp-outside-tolerance",
            WebhookError::NoSecret => "no-secret",
        }
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The `Imago-Signature` value for `body` at `timestamp`, one `v1` per secret in order.
pub fn sign(secrets: &[impl AsRef<[u8]>], timestamp: i64, body: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&hex::encode(mac(s.as_ref(), timestamp, body)));
    }
    out
}

/// Checks an `Imago-Signature` header against the raw request body: one `v1` must match one of
/// `secrets`, and `t` must be within `tolerance_secs` of `now` (unix seconds). Returns `t`.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[impl AsRef<[u8]>],
    tolerance_secs: u64,
    now: i64,
) -> Result<i64, WebhookError> {
    if secrets.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { return Err(WebhookError::MalformedHeader) };
        match k {
            "t" if t.is_none() => {
                if v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookError::MalformedHeader);
                }
                t = Some(v.parse::<i64>().map_err(|_| WebhookError::MalformedHeader)?);
            }
            "t" => return Err(WebhookError::MalformedHeader),
            "v1" => {
                if let Ok(b) = hex::decode(v) {
                    if b.len() == 32 {
                        sigs.push(b);
                    }
                }
            }
            // Other schemes (a future v2) are ignored.
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::MalformedHeader)?;
    if sigs.is_empty() {
        return Err(WebhookError::MalformedHeader);
    }
    let mut ok = false;
    for s in secrets {
        let want = mac(s.as_ref(), t, body);
        for got in &sigs {
            ok |= bool::from(want.as_slice().ct_eq(got));
        }
    }
    if !ok {
        return Err(WebhookError::SignatureMismatch);
    }
    if now.abs_diff(t) > tolerance_secs {
        return Err(WebhookError::TimestampOutsideTolerance);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_rotation() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign(&["old-secret", "new-secret"], 1_700_000_000, body);
        assert_eq!(h.matches("v1=").count(), 2);
        assert_eq!(verify(&h, body, &["new-secret"], 300, 1_700_000_100), Ok(1_700_000_000));
        assert_eq!(verify(&h, body, &["other"], 300, 1_700_000_000), Err(WebhookError::SignatureMismatch));
        assert_eq!(verify(&h, body, &["old-secret"], 300, 1_700_000_301), Err(WebhookError::TimestampOutsideTolerance));
        assert_eq!(verify("v1=00", body, &["x"], 300, 0), Err(WebhookError::MalformedHeader));
    }
}
