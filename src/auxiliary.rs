//! The auxiliary images of issue #20, as imgproxy's "aux image providers": the watermark
//! (`wm:`) and the fallback image. `_PATH`/`_DATA` images are decoded (watermark) or probed
//! (fallback) at start, and a bad one refuses the start; a `_URL` image is fetched through the
//! source layer (its allow-list, size and time limits) on first use, then kept for the life of
//! the process: it is never refreshed (restart to change it). A failed URL load is not kept:
//! the next request that needs it tries again.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::{AuxSource, MediaSettings};
use crate::error::Error;
use crate::source::Sources;
use crate::transform::{EncodeSettings, WatermarkImage};

/// A loaded-once image.
enum Slot<T> {
    None,
    Ready(T),
    Url { source: String, cell: OnceCell<T> },
}

/// The watermark and the fallback image, shared by every request.
pub struct Auxiliary {
    watermark: Slot<Arc<WatermarkImage>>,
    fallback: Slot<bytes::Bytes>,
    max_megapixels: f64,
}

impl Auxiliary {
    /// Decodes the `_PATH`/`_DATA` watermark and probes the fallback image now.
    pub fn new(media: &MediaSettings, enc: &EncodeSettings) -> Result<Auxiliary, String> {
        let watermark = match &media.watermark {
            AuxSource::None => Slot::None,
            AuxSource::Bytes(b) => Slot::Ready(Arc::new(
                WatermarkImage::decode(b, enc.max_src_megapixels)
                    .map_err(|e| format!("IMAGO_WATERMARK_PATH/_DATA: {e}"))?,
            )),
            AuxSource::Url(u) => Slot::Url { source: u.clone(), cell: OnceCell::new() },
        };
        let fallback = match &media.fallback {
            AuxSource::None => Slot::None,
            AuxSource::Bytes(b) => {
                crate::transform::probe(b, enc).map_err(|e| format!("IMAGO_FALLBACK_IMAGE_PATH/_DATA: {e}"))?;
                Slot::Ready(bytes::Bytes::copy_from_slice(b))
            }
            AuxSource::Url(u) => Slot::Url { source: u.clone(), cell: OnceCell::new() },
        };
        Ok(Auxiliary { watermark, fallback, max_megapixels: enc.max_src_megapixels })
    }

    /// Whether a fallback image is configured.
    pub fn has_fallback(&self) -> bool {
        !matches!(self.fallback, Slot::None)
    }

    /// The watermark (`None`: not configured, and `wm:` is ignored, as imgproxy). A URL
    /// watermark that cannot be loaded fails the request with the fetch's or decoder's error.
    pub async fn watermark(&self, sources: &Sources) -> Result<Option<Arc<WatermarkImage>>, Error> {
        match &self.watermark {
            Slot::None => Ok(None),
            Slot::Ready(w) => Ok(Some(w.clone())),
            Slot::Url { source, cell } => {
                let max = self.max_megapixels;
                let w = cell
                    .get_or_try_init(|| async {
                        let bytes = fetch(sources, source).await?;
                        let decoded = tokio::task::spawn_blocking(move || WatermarkImage::decode(&bytes, max))
                            .await
                            .map_err(|e| Error::Internal(e.to_string()))??;
                        tracing::info!(
                            width = decoded.width,
                            height = decoded.height,
                            "watermark loaded from IMAGO_WATERMARK_URL"
                        );
                        Ok::<_, Error>(Arc::new(decoded))
                    })
                    .await?;
                Ok(Some(w.clone()))
            }
        }
    }

    /// The encoded fallback image, or `None` (not configured, or its URL cannot be loaded now:
    /// the request then answers its own error, as imgproxy does).
    pub async fn fallback(&self, sources: &Sources) -> Option<bytes::Bytes> {
        match &self.fallback {
            Slot::None => None,
            Slot::Ready(b) => Some(b.clone()),
            Slot::Url { source, cell } => {
                let r = cell.get_or_try_init(|| fetch(sources, source)).await;
                match r {
                    Ok(b) => Some(b.clone()),
                    Err(e) => {
                        tracing::warn!(error = %e, "the fallback image (IMAGO_FALLBACK_IMAGE_URL) cannot be loaded");
                        None
                    }
                }
            }
        }
    }
}

/// One auxiliary image through the source layer: parsed, authorized, fetched within its limits.
async fn fetch(sources: &Sources, source: &str) -> Result<bytes::Bytes, Error> {
    let src = crate::source::parse(source)?;
    sources.authorize(&src)?;
    Ok(sources.fetch(&src).await?.bytes)
}
