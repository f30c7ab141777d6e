//! Issue #18: a deletion reaches every replica's memory, not only the one that served the
//! `DELETE`. Two servers share one store (the local root, as replicas share a bucket); replica B
//! holds a variant in memory, the image is deleted through replica A, and within
//! `IMAGO_DELETE_SYNC_MS` B answers 404 instead of serving the deleted image from memory (which
//! would refill an edge that was just purged). Another image stays cached on B.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_drops_a_deleted_image_from_memory() {
    let key = "fleet-delete-key-0123456789";
    let a = start(&[], |c| {
        c.api_keys = imago::config::List::from_strs(&[key]);
        c.delete_sync_ms = 50;
    })
    .await;
    let shared = a.root.clone();
    let b = start(&[], |c| {
        c.api_keys = imago::config::List::from_strs(&[key]);
        c.delete_sync_ms = 50;
        c.local_root = shared;
    })
    .await;
    a.put("uploads/x.jpg", &fixture("gps.jpg"));
    a.put("uploads/y.jpg", &fixture("gps.jpg"));
    let x = b.url("w:100", "local:///uploads/x.jpg", Some("jpg"));
    let y = b.url("w:100", "local:///uploads/y.jpg", Some("jpg"));
    for u in [&x, &y] {
        assert_eq!(b.get(u).await.status(), 200);
        assert_eq!(b.get(u).await.headers()["x-imago-cache"], "hit");
    }
    let r = a.client.delete(format!("{}/v1/images/uploads/x.jpg", a.base)).bearer_auth(key).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let t = Instant::now();
    let mut status = 0;
    while t.elapsed() < Duration::from_secs(5) {
        status = b.get(&x).await.status().as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 404, "replica B still serves the deleted image from memory");
    println!("replica B dropped the deleted image after {:?}", t.elapsed());
    let still = b.get(&y).await;
    assert_eq!((still.status().as_u16(), still.headers()["x-imago-cache"].to_str().unwrap()), (200, "hit"));
}
