//! `IMAGO_CONSOLE`: whether the web console (`/console`, src/http/console.rs) is served.
//!
//! `auto` (the default) serves it only where it is a developer's tool: the embedded store (no
//! `IMAGO_S3_BUCKET`) on a loopback `IMAGO_BIND`. Anywhere else it answers 404 unless
//! `IMAGO_CONSOLE=true`; `false` turns it off everywhere.

use std::net::SocketAddr;

/// Whether the console is served, from `IMAGO_CONSOLE` (`auto`, `true`, `false`), the bound
/// address and whether uploads go to an object store.
pub fn console_enabled(setting: &str, bind: &SocketAddr, object_store: bool) -> Result<bool, String> {
    match setting.trim().to_ascii_lowercase().as_str() {
        "auto" | "" => Ok(bind.ip().is_loopback() && !object_store),
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("must be auto, true or false, got `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_only_on_loopback_with_the_embedded_store() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(console_enabled("auto", &lo, false), Ok(true));
        assert_eq!(console_enabled("auto", &lo6, false), Ok(true));
        assert_eq!(console_enabled("auto", &any, false), Ok(false));
        assert_eq!(console_enabled("auto", &lo, true), Ok(false));
        assert_eq!(console_enabled("true", &any, true), Ok(true));
        assert_eq!(console_enabled("TRUE", &any, true), Ok(true));
        assert_eq!(console_enabled("false", &lo, false), Ok(false));
        assert!(console_enabled("yes", &lo, false).unwrap_err().contains("auto, true or false"));
    }
}
