//! Which tenant an image belongs to, from the source of a signed URL (the edge tags of its
//! variants, `Surrogate-Key: img-… tenant-…`).

use super::{Backend, Uploads};

impl Uploads {
    /// The tenant owning the upload key a source names (`local:///…` in embedded mode,
    /// `s3://{uploads bucket}/…` in S3 mode), or `None` for any other source.
    pub fn tenant_of_source(&self, source: &str) -> Option<&str> {
        let key = match &self.backend {
            Backend::Local => source.strip_prefix("local:///")?,
            Backend::S3(b) => source.strip_prefix("s3://")?.strip_prefix(b.name())?.strip_prefix('/')?,
        };
        self.upload_key(key).ok()?;
        self.owner_of(key)
    }
}
