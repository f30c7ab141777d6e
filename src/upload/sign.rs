//! `POST /v1/sign`: signed image URLs, `srcset` and `sizes` for an image of the caller's tenant,
//! built server-side with the Rust SDK's builder (`imago_signing`, SPEC §9), so that a browser
//! (the console, src/http/console.rs) or any client holding an API key but not the URL-signing
//! key can show images. SPEC §10 "Signed URLs".

use imago_signing::{sizes, Breakpoint, CssSize, Options, SrcsetOptions, UrlBuilder};
use serde::{Deserialize, Serialize};

use super::{UploadError, Uploads};
use crate::auth::Caller;

/// Most `srcset.widths` and `sizes.breakpoints` a request may give.
pub const MAX_WIDTHS: usize = 32;
pub const MAX_BREAKPOINTS: usize = 16;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The image's key, as listed by `GET /v1/images`.
    pub key: String,
    /// Processing options: the canonical JSON option object of SPEC §4 (`{"width": 800,
    /// "resizing_type": "fill", "gravity": {"type": "sm"}, "format": "webp"}`).
    #[serde(default)]
    pub options: Option<serde_json::Value>,
    /// `{max_width?, widths?}` (SPEC §9); without `widths`, the server's `IMAGO_WIDTH_LADDER`.
    #[serde(default)]
    pub srcset: Option<SrcsetRequest>,
    /// `{breakpoints: [{max_width, size}], default?}` (SPEC §9).
    #[serde(default)]
    pub sizes: Option<SizesRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrcsetRequest {
    pub max_width: Option<u32>,
    pub widths: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizesRequest {
    #[serde(default)]
    pub breakpoints: Vec<BreakpointRequest>,
    pub default: Option<SizeValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakpointRequest {
    pub max_width: u32,
    pub size: SizeValue,
}

/// A CSS length (`"50vw"`) or pixels (`300`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Px(f64),
    Css(String),
}

impl From<&SizeValue> for CssSize {
    fn from(v: &SizeValue) -> CssSize {
        match v {
            SizeValue::Px(p) => CssSize::Px(*p),
            SizeValue::Css(s) => CssSize::Css(s.clone()),
        }
    }
}

/// One `srcset` candidate.
#[derive(Debug, Serialize)]
pub struct Candidate {
    pub width: u32,
    pub url: String,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct Signed {
    pub key: String,
    pub source: String,
    /// The signed URL of the options as given (`src`).
    pub url: String,
    /// Its path (what follows the public URL).
    pub path: String,
    pub srcset: String,
    pub candidates: Vec<Candidate>,
    pub sizes: String,
}

fn bad(e: impl std::fmt::Display) -> UploadError {
    UploadError::InvalidRequest(e.to_string())
}

impl Uploads {
    /// Signs `req` for `caller`: the key must be readable by it ([`Uploads::readable_key`]: its
    /// tenant's upload keys, anywhere for an admin key), else `403 other-tenant`.
    pub fn sign_urls(&self, caller: &Caller, req: &SignRequest, ladder: &[u32]) -> Result<Signed, UploadError> {
        let key = self.readable_key(caller, &req.key)?;
        let options = match &req.options {
            None => Options::default(),
            Some(v) => Options::from_json(v).map_err(bad)?,
        };
        let srcset_req = req.srcset.as_ref();
        let widths = srcset_req.and_then(|s| s.widths.clone()).unwrap_or_else(|| ladder.to_vec());
        if widths.len() > MAX_WIDTHS {
            return Err(bad(format!("srcset.widths: at most {MAX_WIDTHS} widths")));
        }
        let srcset_opts = SrcsetOptions { max_width: srcset_req.and_then(|s| s.max_width), widths: Some(widths) };
        let default_sizes = SizesRequest::default();
        let sizes_req = req.sizes.as_ref().unwrap_or(&default_sizes);
        if sizes_req.breakpoints.len() > MAX_BREAKPOINTS {
            return Err(bad(format!("sizes.breakpoints: at most {MAX_BREAKPOINTS} breakpoints")));
        }
        let breakpoints: Vec<Breakpoint> =
            sizes_req.breakpoints.iter().map(|b| Breakpoint::new(b.max_width, CssSize::from(&b.size))).collect();
        let sizes = sizes(&breakpoints, sizes_req.default.as_ref().map(CssSize::from)).map_err(bad)?;
        let source = self.source_of(&key);
        let base = &self.settings.public_url;
        let builder = UrlBuilder::from_options(options);
        let path = builder.sign(&self.signer, &source).map_err(bad)?;
        let candidates: Vec<Candidate> = builder
            .srcset_entries(&self.signer, base, &source, &srcset_opts)
            .map_err(bad)?
            .into_iter()
            .map(|(width, url)| Candidate { width, url })
            .collect();
        let srcset = candidates.iter().map(|c| format!("{} {}w", c.url, c.width)).collect::<Vec<_>>().join(", ");
        Ok(Signed {
            key,
            source,
            url: format!("{}{path}", base.trim_end_matches('/')),
            path,
            srcset,
            candidates,
            sizes,
        })
    }
}
