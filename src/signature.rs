//! Signature check of a split path (HMAC-SHA256 over salt ‖ path, every configured pair, constant
//! time; unsigned `insecure` URLs only when enabled). Source errors found while splitting are
//! reported here, once the signature passed (SPEC §8: signature 403 → parse 400).

use imago_signing::Verifier;

use crate::url::{SplitPath, UrlError};

/// Signature segments accepted for unsigned URLs when `IMAGO_ALLOW_INSECURE` is on.
pub const INSECURE: [&str; 2] = ["insecure", "_"];

/// Why a path was refused here (status and code: [`crate::error::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("invalid signature")]
    Invalid,
    #[error("unsigned URLs are not accepted")]
    InsecureNotAllowed,
    /// A source error found while splitting, reported once the signature passed.
    #[error(transparent)]
    Url(#[from] UrlError),
}

pub fn check(split: &SplitPath<'_>, verifier: &Verifier, allow_insecure: bool) -> Result<(), SignatureError> {
    if INSECURE.contains(&split.signature) {
        if !allow_insecure {
            return Err(SignatureError::InsecureNotAllowed);
        }
    } else if !verifier.verify(split.signature, split.signed) {
        return Err(SignatureError::Invalid);
    }
    match &split.source_error {
        Some(e) => Err(SignatureError::Url(e.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{SplitPath, Verifier};
    use crate::error::Error;
    use actix_web::ResponseError;
    use imago_signing::{KeyPair, Signer};

    /// The check as the image flow sees it: mapped into the top-level error (status, code).
    fn check(split: &SplitPath<'_>, verifier: &Verifier, allow_insecure: bool) -> Result<(), Error> {
        super::check(split, verifier, allow_insecure).map_err(Error::from)
    }

    #[test]
    fn signed_insecure_and_tampered() {
        let pair = KeyPair::from_hex("aa11", "bb22").unwrap();
        let v = Verifier::new(vec![pair.clone()]).unwrap();
        let path = Signer::new(pair).signed_path("/w:100/plain/local:///a.jpg");
        let s = crate::url::split(&path).unwrap();
        assert!(check(&s, &v, false).is_ok());
        let tampered = path.replace("w:100", "w:101");
        assert!(matches!(check(&crate::url::split(&tampered).unwrap(), &v, false), Err(Error::InvalidSignature)));
        let insecure = crate::url::split("/insecure/w:1/plain/local:///a.jpg").unwrap();
        assert!(matches!(check(&insecure, &v, false), Err(Error::InsecureNotAllowed)));
        assert!(check(&insecure, &v, true).is_ok());
        // Re-encoding the path (percent-encoding a character) breaks the signature.
        let reenc = path.replace("local:///a.jpg", "local:///%61.jpg");
        assert!(check(&crate::url::split(&reenc).unwrap(), &v, false).is_err());
    }

    #[test]
    fn signature_first_then_source_errors() {
        let pair = KeyPair::from_hex("aa11", "bb22").unwrap();
        let v = Verifier::new(vec![pair.clone()]).unwrap();
        let signed = Signer::new(pair).signed_path("/w:1/plain/a%zz");
        let e = check(&crate::url::split(&signed).unwrap(), &v, false).unwrap_err();
        assert_eq!((e.code(), e.status_code().as_u16()), ("invalid-source", 400));
        // Unsigned: 403, the parser is not consulted.
        let forged = signed.replace(&signed[1..signed[1..].find('/').unwrap_or(1) + 1], "AAAA");
        assert!(matches!(check(&crate::url::split(&forged).unwrap(), &v, false), Err(Error::InvalidSignature)));
        let e = check(&crate::url::split("/insecure/w:1/aHR0c$$.jpg").unwrap(), &v, true).unwrap_err();
        assert_eq!(e.code(), "invalid-source");
        // Empty and padded signatures never verify.
        assert!(matches!(
            check(&crate::url::split("//w:1/plain/local:///a").unwrap(), &v, false),
            Err(Error::InvalidSignature)
        ));
    }
}
