"""signing/vectors/webhooks.json (SPEC §13), and list_images / delete_image against a local server."""
import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from imago_signing import ImagoApiError, ImagoOptionError, ImagoWebhookError, delete_image, list_images, restore_image, sign_webhook, verify_webhook

VECTORS = json.loads((pathlib.Path(__file__).resolve().parents[2] / "vectors" / "webhooks.json").read_text("utf-8"))


def test_vectors_have_cases():
    assert len(VECTORS["sign"]) >= 3 and len(VECTORS["verify"]) >= 10


@pytest.mark.parametrize("c", VECTORS["sign"], ids=lambda c: c["name"])
def test_sign(c):
    assert sign_webhook(c["secrets"], c["timestamp"], c["body"]) == c["header"]


@pytest.mark.parametrize("c", VECTORS["verify"], ids=lambda c: c["name"])
def test_verify(c):
    run = lambda: verify_webhook(c["header"], c["body"], c["secrets"], tolerance=c["tolerance"], now=c["now"])  # noqa: E731
    if c["valid"]:
        assert run() == c["timestamp"]
    else:
        with pytest.raises(ImagoWebhookError) as e:
            run()
        assert e.value.code == c["error"]


@pytest.fixture()
def api():
    seen = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _reply(self, status, body=None):
            self.send_response(status)
            data = json.dumps(body).encode() if body is not None else b""
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self):
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != "Bearer good":
                return self._reply(401, {"code": "unauthorized", "message": "bad api key"})
            if self.command == "GET" and self.path.startswith("/v1/images?"):
                return self._reply(200, {"items": [{"key": "uploads/a.jpg", "tenant": "default", "bytes": 3,
                                                    "last_modified": None, "image_url": "u", "info_url": "i"}],
                                         "next_cursor": None})
            if self.command == "DELETE" and self.path == "/v1/images/uploads/a%20b.jpg":
                return self._reply(204)
            if self.command == "POST" and self.path == "/v1/images/uploads/a%20b.jpg/restore":
                return self._reply(200, {"key": "uploads/a b.jpg", "state": "ready"})
            if self.command == "POST" and self.path == "/v1/images/uploads/old.jpg/restore":
                return self._reply(410, {"code": "image-deleted", "message": "its grace period ended"})
            return self._reply(404, {"code": "not-found", "message": "no such image"})

        do_GET = do_DELETE = do_POST = _handle

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", seen
    srv.shutdown()


def test_list_images(api):
    base, seen = api
    page = list_images(base, "good", prefix="uploads", limit=2, cursor="c1")
    assert page["next_cursor"] is None and page["items"][0]["key"] == "uploads/a.jpg"
    q = parse_qs(urlsplit(seen[-1][1]).query)
    assert q == {"prefix": ["uploads"], "limit": ["2"], "cursor": ["c1"]}
    list_images(base, "good", order="key")
    assert parse_qs(urlsplit(seen[-1][1]).query) == {"order": ["key"]}
    n = len(seen)
    with pytest.raises(ImagoOptionError):
        list_images(base, "good", order="oldest")
    assert len(seen) == n, "a bad order is refused before any request"
    with pytest.raises(ImagoApiError) as e:
        list_images(base, "bad")
    assert (e.value.status, e.value.code) == (401, "unauthorized")


def test_delete_image(api):
    base, seen = api
    assert delete_image(base, "good", "uploads/a b.jpg") is None
    assert seen[-1][0] == "DELETE"
    with pytest.raises(ImagoApiError) as e:
        delete_image(base, "good", "uploads/missing.jpg")
    assert (e.value.status, e.value.code) == (404, "not-found")


def test_restore_image(api):
    base, seen = api
    assert restore_image(base, "good", "uploads/a b.jpg") is None
    assert seen[-1][:2] == ("POST", "/v1/images/uploads/a%20b.jpg/restore")
    with pytest.raises(ImagoApiError) as e:
        restore_image(base, "good", "uploads/old.jpg")
    assert (e.value.status, e.value.code) == (410, "image-deleted")
