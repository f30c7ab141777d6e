//! Upload-ticket client (feature `client`): an app backend asks imago for a presigned upload
//! ticket with its API key (`POST {base}/v1/uploads`, SPEC §10), then hands the ticket to the
//! browser, or uploads the bytes itself with [`UploadClient::upload`]. [`UploadClient::list_images`]
//! reads one page of the key's tenant's images (`GET {base}/v1/images`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Errors of the upload client. Server refusals keep imago's stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("imago refused the request ({status} {code}): {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("the store refused the upload ({status})")]
    UploadRefused { status: u16 },
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

/// The ticket request body.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TicketRequest {
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Hex SHA-256 of the file: enables deduplication and integrity checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `PUT` or `POST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// An upload ticket (SPEC §10).
#[derive(Clone, Debug, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub key: String,
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
    pub max_bytes: u64,
    pub source: String,
    pub image_url: String,
    pub info_url: String,
    /// Where [`UploadClient::complete`] posts (servers before completion send none).
    #[serde(default)]
    pub complete_url: Option<String>,
    #[serde(default)]
    pub exists: bool,
}

/// A completed upload: the facts imago checked (SPEC §10, Completion).
#[derive(Clone, Debug, Deserialize)]
pub struct Completion {
    pub id: String,
    pub key: String,
    /// `ready`.
    pub state: String,
    #[serde(default)]
    pub etag: String,
    pub bytes: u64,
    pub format: String,
    /// Upright dimensions (0 for SVG).
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub image_url: String,
    pub info_url: String,
}

/// A `GET /v1/images` request (every field optional).
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// One of the server's upload prefixes (default: its first).
    pub prefix: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (server default 100).
    pub limit: Option<u32>,
    /// Another tenant (keys with the `admin` scope only).
    pub tenant: Option<String>,
    /// `"newest"` (the server's default: completed uploads, newest first) or `"key"` (every
    /// object in key order, pending and rejected uploads too).
    pub order: Option<String>,
}

/// One listed image.
#[derive(Clone, Debug, Deserialize)]
pub struct ListedImage {
    pub key: String,
    pub tenant: String,
    pub bytes: u64,
    #[serde(default)]
    pub last_modified: Option<String>,
    pub image_url: String,
    pub info_url: String,
    /// `ready`, `pending`, `rejected` or `deleted` (servers before completion send none).
    #[serde(default)]
    pub state: Option<String>,
    /// When a `deleted` image is purged (RFC 3339; `IMAGO_DELETE_GRACE_SECS`).
    #[serde(default)]
    pub purge_at: Option<String>,
}

/// A page of images: pass `next_cursor` back as `cursor`; `None` ends the listing.
#[derive(Clone, Debug, Deserialize)]
pub struct ImagePage {
    pub items: Vec<ListedImage>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// Requests tickets from one imago with one API key.
#[derive(Clone)]
pub struct UploadClient {
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for UploadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadClient").field("base", &self.base).field("api_key", &"[redacted]").finish()
    }
}

impl UploadClient {
    pub fn new(base_url: &str, api_key: &str) -> Result<UploadClient, ClientError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::BaseUrl(base_url.to_string()));
        }
        Ok(UploadClient {
            base: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            http: reqwest::Client::new(),
        })
    }

    /// `POST /v1/uploads`: a ticket for one upload.
    pub async fn request_upload(&self, req: &TicketRequest) -> Result<Ticket, ClientError> {
        let r = self.http.post(format!("{}/v1/uploads", self.base)).bearer_auth(&self.api_key).json(req).send().await?;
        Self::answer(r).await
    }

    /// `GET /v1/images`: one page of this key's tenant's images (SPEC §10, listing).
    pub async fn list_images(&self, req: &ListRequest) -> Result<ImagePage, ClientError> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(p) = &req.prefix {
            q.push(("prefix", p.clone()));
        }
        if let Some(c) = &req.cursor {
            q.push(("cursor", c.clone()));
        }
        if let Some(l) = req.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(o) = &req.order {
            q.push(("order", o.clone()));
        }
        if let Some(t) = &req.tenant {
            q.push(("tenant", t.clone()));
        }
        let r = self.http.get(format!("{}/v1/images", self.base)).bearer_auth(&self.api_key).query(&q).send().await?;
        Self::answer(r).await
    }

    /// `POST {complete_url}`: asks imago to check the uploaded bytes (idempotent, safe to retry).
    /// `Ok` with the facts when the upload is ready; a rejected upload is
    /// [`ClientError::Refused`] with its code (`not-an-image`, … the first time,
    /// `upload-rejected` after).
    pub async fn complete(&self, ticket: &Ticket) -> Result<Completion, ClientError> {
        let url = match &ticket.complete_url {
            Some(u) => u.clone(),
            None => format!("{}/v1/uploads/{}/complete", self.base, ticket.id),
        };
        let r = self.http.post(url).bearer_auth(&self.api_key).send().await?;
        Self::answer(r).await
    }

    /// `/v1/images/{key}` with each segment of the key percent-encoded.
    fn image_path(&self, key: &str) -> String {
        const SEGMENT: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
        let path: Vec<String> =
            key.split('/').map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()).collect();
        format!("{}/v1/images/{}", self.base, path.join("/"))
    }

    /// `POST /v1/images/{key}/restore`: brings back an image deleted less than
    /// `IMAGO_DELETE_GRACE_SECS` ago. `Ok` on 200; after the grace period
    /// [`ClientError::Refused`] `410 image-deleted`, without a deletion `404 not-found`.
    pub async fn restore_image(&self, key: &str) -> Result<(), ClientError> {
        let r = self.http.post(format!("{}/restore", self.image_path(key))).bearer_auth(&self.api_key).send().await?;
        Self::answer::<serde_json::Value>(r).await.map(|_| ())
    }

    /// `DELETE /v1/images/{key}`: deletes the original — a soft delete, restorable with
    /// [`UploadClient::restore_image`] for `IMAGO_DELETE_GRACE_SECS` — (imago then drops its
    /// variants, purges the edges and emits `image.deleted`). `Ok` on 204, imago's refusal
    /// otherwise.
    pub async fn delete_image(&self, key: &str) -> Result<(), ClientError> {
        let url = self.image_path(key);
        let r = self.http.delete(url).bearer_auth(&self.api_key).send().await?;
        if r.status().is_success() {
            return Ok(());
        }
        Self::answer::<serde_json::Value>(r).await.map(|_| ())
    }

    /// The JSON body of a 2xx answer, or imago's refusal.
    async fn answer<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Result<T, ClientError> {
        let status = r.status().as_u16();
        if !r.status().is_success() {
            let body: Option<ErrorBody> = r.json().await.ok();
            let (code, message) =
                body.map(|b| (b.code, b.message)).unwrap_or_else(|| ("unknown".into(), String::new()));
            return Err(ClientError::Refused { status, code, message });
        }
        Ok(r.json().await?)
    }

    /// Sends `bytes` as the ticket says (PUT with its headers, or a POST form with its fields).
    /// Does nothing when the ticket says the image already `exists`.
    pub async fn upload(&self, ticket: &Ticket, bytes: Vec<u8>) -> Result<(), ClientError> {
        if ticket.exists {
            return Ok(());
        }
        let resp = if ticket.method.eq_ignore_ascii_case("POST") {
            // multipart/form-data by hand: the fields, then the file last (S3 requires it).
            let boundary = format!("imago{:016x}", bytes.len() as u64 ^ 0x5eed_1234_abcd_ef01);
            let mut body = Vec::with_capacity(bytes.len() + 1024);
            for (k, v) in &ticket.fields {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
                );
            }
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            self.http
                .post(&ticket.url)
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await?
        } else {
            let mut r = self.http.put(&ticket.url).body(bytes);
            for (k, v) in &ticket.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            r.send().await?
        };
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::UploadRefused { status: resp.status().as_u16() })
        }
    }
}
