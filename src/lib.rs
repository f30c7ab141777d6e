//! imago: a signed, device-aware image proxy (imgproxy-compatible URLs, libvips).
//!
//! One request flow, one module each: [`url`] → [`signature`] → [`options`] → [`negotiate`] →
//! [`cache`] → [`source`] → [`transform`] (libvips only in [`vips`]) → [`respond`] → [`metrics`].
//! Bytes live behind [`storage`] (the local root and the one object store client), which
//! [`source`], [`upload`] and [`analytics`] share.

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
pub mod storage;
pub mod telemetry;
pub mod transform;
pub mod upload;
pub mod url;
pub mod vips;

pub use config::{Config, RawConfig};
pub use error::Error;
