//! The Rust SDK's upload client (feature `client`) against the real server: a ticket is
//! requested with the API key, the bytes go to the ticket's target (PUT and POST), and the new
//! image is served from the ticket's signed `image_url`.

mod common;

use common::*;
use imago_signing::client::{ClientError, ListRequest, TicketRequest, UploadClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_requests_tickets_and_uploads() {
    let key = "rust-sdk-api-key-0123456789";
    let s = start(&[], |c| {
        c.api_keys = imago::config::List::from_strs(&[key]);
        c.auto_quality = false;
    })
    .await;
    let client = UploadClient::new(&s.base, key).unwrap();
    let photo = fixture("orientation/Landscape_1.jpg");
    for method in ["PUT", "POST"] {
        let req = TicketRequest {
            content_type: "image/jpeg".into(),
            content_length: Some(photo.len() as u64),
            filename: Some("photo.jpg".into()),
            method: Some(method.into()),
            ..Default::default()
        };
        let ticket = client.request_upload(&req).await.unwrap();
        assert_eq!(ticket.method, method);
        assert!(ticket.source.starts_with("local:///"), "{}", ticket.source);
        client.upload(&ticket, photo.clone()).await.unwrap();
        let r = s.get(&ticket.image_url).await;
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (1800, 1200));
    }
    // A wrong API key is a typed refusal with imago's code.
    let bad = UploadClient::new(&s.base, "wrong-key-wrong-key-000").unwrap();
    match bad
        .request_upload(&TicketRequest {
            content_type: "image/jpeg".into(),
            content_length: Some(10),
            ..Default::default()
        })
        .await
    {
        Err(ClientError::Refused { status: 401, code, .. }) => assert_eq!(code, "unauthorized"),
        other => panic!("{other:?}"),
    }
    // A non-image is refused by the target and nothing is served.
    let ticket = client
        .request_upload(&TicketRequest {
            content_type: "image/png".into(),
            content_length: Some(11),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(matches!(client.upload(&ticket, b"hello world".to_vec()).await, Err(ClientError::UploadRefused { .. })));
    assert_eq!(s.get(&ticket.image_url).await.status(), 404);
    assert!(UploadClient::new("ftp://x", key).is_err());
}

/// `complete` asks imago to check an upload and returns the facts; an upload that never
/// happened is a typed refusal with imago's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_completes_uploads() {
    let key = "rust-sdk-api-key-0123456789";
    let s = start(&[], |c| c.api_keys = imago::config::List::from_strs(&[key])).await;
    let client = UploadClient::new(&s.base, key).unwrap();
    let photo = fixture("orientation/Landscape_6.jpg");
    let req = TicketRequest {
        content_type: "image/jpeg".into(),
        content_length: Some(photo.len() as u64),
        ..Default::default()
    };
    let ticket = client.request_upload(&req).await.unwrap();
    assert!(ticket.complete_url.as_deref().is_some_and(|u| u.ends_with("/complete")));
    match client.complete(&ticket).await {
        Err(ClientError::Refused { status: 404, code, .. }) => assert_eq!(code, "not-found"),
        other => panic!("nothing uploaded yet: {other:?}"),
    }
    client.upload(&ticket, photo.clone()).await.unwrap();
    let done = client.complete(&ticket).await.unwrap();
    assert_eq!((done.state.as_str(), done.key.as_str()), ("ready", ticket.key.as_str()));
    assert_eq!((done.width, done.height, done.frames, done.bytes), (1800, 1200, 1, photo.len() as u64));
    assert_eq!(done.image_url, ticket.image_url);
}

/// `list_images` pages through the key's tenant's images with the cursor; another tenant's
/// key sees none of them, and the refusal keeps imago's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_lists_a_tenants_images() {
    let (a, b) = ("acme-sdk-key-0123456789", "beta-sdk-key-0123456789");
    let s = start(&[], |c| {
        c.api_keys = imago::config::List::from_strs(&[&format!("acme:{a}"), &format!("beta:upload:{b}")]);
        c.auto_quality = false;
    })
    .await;
    let client = UploadClient::new(&s.base, a).unwrap();
    let mut want = Vec::new();
    for f in ["Landscape_1", "Landscape_2", "Portrait_1"] {
        let photo = fixture(&format!("orientation/{f}.jpg"));
        let req = TicketRequest {
            content_type: "image/jpeg".into(),
            content_length: Some(photo.len() as u64),
            ..Default::default()
        };
        let ticket = client.request_upload(&req).await.unwrap();
        client.upload(&ticket, photo).await.unwrap();
        want.push(ticket.key);
    }
    want.sort();
    let mut got = Vec::new();
    // Key order (uploads within one second have no newest-first order among them).
    let mut req = ListRequest { limit: Some(2), order: Some("key".into()), ..Default::default() };
    loop {
        let page = client.list_images(&req).await.unwrap();
        assert!(page.items.len() <= 2);
        assert!(page.items.iter().all(|i| i.tenant == "acme" && i.bytes > 0));
        got.extend(page.items.into_iter().map(|i| i.key));
        match page.next_cursor {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want);
    match UploadClient::new(&s.base, b).unwrap().list_images(&ListRequest::default()).await {
        Err(ClientError::Refused { status: 403, code, .. }) => assert_eq!(code, "scope-missing"),
        other => panic!("{other:?}"),
    }
    // `delete_image`: gone from the listing; a second delete is imago's 404.
    client.delete_image(&want[0]).await.unwrap();
    let mut left: Vec<String> =
        client.list_images(&ListRequest::default()).await.unwrap().items.into_iter().map(|i| i.key).collect();
    left.sort();
    assert_eq!(left, want[1..], "the default order (newest first) lists the same images");
    match client.delete_image(&want[0]).await {
        Err(ClientError::Refused { status: 404, code, .. }) => assert_eq!(code, "not-found"),
        other => panic!("{other:?}"),
    }
}

/// `restore_image` (issue #18): a soft-deleted image is listed `deleted` with its `purge_at`,
/// comes back with `restore_image`, and a second restore is imago's 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_restores_a_deleted_image() {
    let key = "sdk-restore-key-0123456789";
    let s = start(&[], |c| {
        c.api_keys = imago::config::List::from_strs(&[key]);
        c.delete_grace_secs = 3600;
    })
    .await;
    let client = UploadClient::new(&s.base, key).unwrap();
    let photo = fixture("gps.jpg");
    let req = TicketRequest {
        content_type: "image/jpeg".into(),
        content_length: Some(photo.len() as u64),
        ..Default::default()
    };
    let ticket = client.request_upload(&req).await.unwrap();
    client.upload(&ticket, photo).await.unwrap();
    client.delete_image(&ticket.key).await.unwrap();
    let page = client.list_images(&ListRequest::default()).await.unwrap();
    let item = page.items.iter().find(|i| i.key == ticket.key).unwrap();
    assert_eq!(item.state.as_deref(), Some("deleted"));
    assert!(item.purge_at.is_some());
    client.restore_image(&ticket.key).await.unwrap();
    let page = client.list_images(&ListRequest::default()).await.unwrap();
    assert_eq!(page.items.iter().find(|i| i.key == ticket.key).unwrap().state.as_deref(), Some("ready"));
    match client.restore_image(&ticket.key).await {
        Err(ClientError::Refused { status: 404, code, .. }) => assert_eq!(code, "not-found"),
        other => panic!("{other:?}"),
    }
}
