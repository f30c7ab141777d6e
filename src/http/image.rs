//! `GET|HEAD /{signature}/{options…}/{source}`: the image handler around [`crate::image`] (its
//! span, error logging, request counting and the analytics event).

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use tracing::{info, info_span, warn, Instrument};

use crate::app::AppState;

pub async fn image(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let span = info_span!("image", path = %req.uri().path(), status = tracing::field::Empty);
    let mut draft = crate::analytics::Draft::default();
    let resp = async {
        match st.flow().run(&req, start, &mut draft).await {
            Ok(r) => r,
            Err(e) => {
                draft.error(e.code());
                if e.status_code().is_server_error() {
                    warn!(error = %e, code = e.code(), "image request failed");
                } else {
                    info!(error = %e, code = e.code(), "image request refused");
                }
                e.error_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.record("status", resp.status().as_u16());
    st.metrics.http_requests.with_label_values(&[super::IMAGE_LABEL, resp.status().as_str()]).inc();
    st.metrics.request_seconds.with_label_values(&[super::IMAGE_LABEL]).observe(start.elapsed().as_secs_f64());
    st.analytics.emit(&req, &resp, start, draft);
    resp
}
