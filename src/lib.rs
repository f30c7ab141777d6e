//! imago: a signed, device-aware image proxy (imgproxy-compatible URLs, libvips).
//!
//! One request flow, one module each: [`url`] → [`signature`] → [`options`] → [`negotiate`] →
//! [`cache`] → [`source`] → [`transform`] (libvips only in its thin adapter, `vips`) →
//! [`respond`] → [`metrics`].

pub mod analytics;
pub mod cache;
pub mod config;
pub mod error;
pub mod metrics;
pub mod negotiate;
pub mod options;
pub mod respond;
pub mod server;
pub mod signature;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod transform;
pub mod upload;
pub mod url;
pub(crate) mod vips;

pub use config::{Config, RawConfig};
pub use error::Error;
