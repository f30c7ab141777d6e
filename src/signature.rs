//! Signature check of a split path (HMAC-SHA256 over salt ‖ path, every configured pair, constant
//! time; unsigned `insecure` URLs only when enabled).

use imago_signing::Verifier;

use crate::error::Error;
use crate::url::SplitPath;

/// Signature segments accepted for unsigned URLs when `IMAGO_ALLOW_INSECURE` is on.
pub const INSECURE: [&str; 2] = ["insecure", "_"];

pub fn check(split: &SplitPath<'_>, verifier: &Verifier, allow_insecure: bool) -> Result<(), Error> {
    if INSECURE.contains(&split.signature) {
        return if allow_insecure { Ok(()) } else { Err(Error::InsecureNotAllowed) };
    }
    if verifier.verify(split.signature, split.signed) {
        Ok(())
    } else {
        Err(Error::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imago_signing::{KeyPair, Signer};

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
}
