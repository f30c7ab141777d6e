//! imago: a signed, device-aware image proxy (imgproxy-compatible URLs, libvips).
//!
//! Layers import only downward (checked by `tests/layers.rs`; docs/design.md §"Layers"):
//!
//! * [`http`]: the only place that knows routes: the route table, listeners, middleware and the
//!   handlers (images, uploads, analytics, operations);
//! * [`app`]: the composition root: builds every service from the [`Config`], stops them in order;
//! * [`image`]: the image flow, one function per step: `prepare` → `run` → `serve` → `miss` →
//!   `make_variant`;
//! * the request steps, one file each: [`url`] (split the path) → [`signature`] (HMAC check) →
//!   [`options`] (parse the processing options) → [`negotiate`] (format, size and quality from
//!   `Accept` and Client Hints) → [`cache`] (key, variant cache, request memo) → [`source`]
//!   (fetch the original) → [`transform`] (the pipeline; the only user of the libvips adapter
//!   `vips`) → [`respond`] (cache headers, ETag, `Vary`);
//! * [`auxiliary`]: the watermark and the fallback image, loaded once;
//! * services beside the flow: [`upload`] (tickets, embedded uploads), [`analytics`] (events and
//!   reports), [`auth`] (API keys), [`quota`] (upload quotas, per replica or fleet-wide); bytes live behind [`storage`] (the local root and
//!   the one object-store client), which [`source`], [`upload`] and [`analytics`] share;
//! * the floor: [`config`], [`telemetry`] (logs, traces, request ids), [`metrics`], [`error`] (the
//!   one top-level error and its stable codes).

pub mod analytics;
pub mod app;
pub mod auth;
pub mod auxiliary;
pub mod cache;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod image;
pub mod metrics;
pub mod negotiate;
pub mod options;
pub mod purge;
pub mod quota;
pub mod respond;
pub mod signature;
pub mod source;
pub mod storage;
pub mod telemetry;
pub mod transform;
pub mod upload;
pub mod url;
pub(crate) mod vips;

pub use config::{Config, RawConfig};
pub use error::Error;
