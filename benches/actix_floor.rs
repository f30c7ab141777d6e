//! The framework floor for scripts/bench-cache.sh: actix-web serving one file's bytes from memory
//! (a cloned `Bytes`, the same worker count as imago, no per-request work beyond building the
//! response). imago's cache hit cannot be faster than this; the script prints imago's ratio to it
//! beside the ratio to nginx (which uses sendfile and never copies the body in user space).
//!
//! Usage: `actix_floor <file> <127.0.0.1:port> <workers>` (runs until killed).
use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` runs every bench binary with `--bench`; this one only runs from the script.
    if args.len() < 4 || args.iter().any(|a| a == "--bench") {
        eprintln!("actix_floor: run by scripts/bench-cache.sh (actix_floor <file> <addr> <workers>)");
        return Ok(());
    }
    let body = Bytes::from(std::fs::read(&args[1])?);
    let workers: usize = args[3].parse().unwrap_or(2);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().default_service(web::to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .insert_header(("content-type", "image/webp"))
                        .insert_header(("cache-control", "public, max-age=31536000, immutable"))
                        .insert_header(("etag", "\"floor\""))
                        .body(body)
                }
            }))
        })
        .workers(workers)
        .bind(&args[2])?
        .run()
        .await
    })
}
