import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imago_signing import (
    ImagoApiError, ImagoOptionError, ImagoUploadError, UploadCompletion, UploadTicket, complete_upload, request_upload,
    upload_file,
)

TICKET = {
    "id": "upl_1", "key": "avatars/cat.jpg", "method": "PUT", "url": "", "fields": {},
    "headers": {"Content-Type": "image/jpeg", "x-amz-meta-a": "b"}, "expires_at": "2030-01-01T00:00:00Z",
    "max_bytes": 1000, "source": "s3://bucket/avatars/cat.jpg", "image_url": "https://img.example/sig/x",
    "info_url": "https://img.example/v1/uploads/upl_1", "exists": False,
}

DONE = {
    "id": "upl_1", "key": "avatars/cat.jpg", "state": "ready", "etag": '"e"', "bytes": 10, "format": "jpg",
    "width": 3, "height": 2, "frames": 1, "checked_at": "2030-01-01T00:00:00Z", "image_url": "i", "info_url": "n",
}


class Server:
    """Local API + storage stub. ``plan`` scripts the storage answers."""

    def __init__(self):
        self.requests = []
        self.plan = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                outer.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if self.path.endswith("/complete"):
                    if self.path == "/v1/uploads/upl_1/complete":
                        return self._reply(200, json.dumps(DONE))
                    return self._reply(422, json.dumps({"code": "not-an-image", "message": "the body is not a JPEG image"}))
                if self.path == "/v1/uploads":
                    j = json.loads(body)
                    if self.headers.get("Authorization") != "Bearer good":
                        return self._reply(401, json.dumps({"code": "unauthorized", "message": "bad api key"}))
                    if j["content_type"] == "text/html":
                        return self._reply(502, "bad gateway", "text/plain")
                    if j["content_type"] == "image/x-broken":
                        return self._reply(201, json.dumps({"id": "x"}))
                    return self._reply(201, json.dumps({**TICKET, "url": outer.base + "/store", "exists": "sha256" in j}))
                status = outer.plan.pop(0) if outer.plan else 200
                return self._reply(status, "")

            do_POST = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_request_upload(server):
    t = request_upload(server.base + "/", "good", {"content_type": "image/jpeg", "content_length": 10, "filename": "cat.jpg"})
    assert isinstance(t, UploadTicket)
    assert (t.id, t.method, t.source, t.exists, t.max_bytes) == ("upl_1", "PUT", "s3://bucket/avatars/cat.jpg", False, 1000)
    assert t.headers == TICKET["headers"]
    r = server.requests[-1]
    assert (r["method"], r["path"], r["headers"]["authorization"]) == ("POST", "/v1/uploads", "Bearer good")
    assert r["headers"]["content-type"] == "application/json"
    assert json.loads(r["body"]) == {"content_type": "image/jpeg", "content_length": 10, "filename": "cat.jpg"}
    assert request_upload(server.base, "good", {"content_type": "image/png", "sha256": "a" * 64}).exists is True
    request_upload(server.base, "good", {"content_type": "image/png", "method": "POST"})
    assert json.loads(server.requests[-1]["body"]) == {"content_type": "image/png", "method": "POST"}


def test_request_upload_errors(server):
    with pytest.raises(ImagoApiError) as ei:
        request_upload(server.base, "bad", {"content_type": "image/png"})
    assert (ei.value.status, ei.value.code, ei.value.message) == (401, "unauthorized", "bad api key")
    with pytest.raises(ImagoApiError) as ei:
        request_upload(server.base, "good", {"content_type": "text/html"})
    assert (ei.value.status, ei.value.code) == (502, "http-502")
    with pytest.raises(ImagoApiError) as ei:
        request_upload(server.base, "good", {"content_type": "image/x-broken"})
    assert ei.value.code == "invalid-response"


@pytest.mark.parametrize("args,opt", [
    (("good", {"content_type": "jpeg"}), "content_type"),
    (("good", {"content_type": "image/png", "sha256": "XYZ"}), "sha256"),
    (("good", {"content_type": "image/png", "content_length": -1}), "content_length"),
    (("good", {"content_type": "image/png", "method": "PATCH"}), "method"),
    (("", {"content_type": "image/png"}), "api_key"),
])
def test_request_upload_validation(server, args, opt):
    with pytest.raises(ImagoOptionError) as ei:
        request_upload(server.base, *args)
    assert ei.value.option == opt
    assert server.requests == []


def ticket(server, **kw):
    return UploadTicket.from_json({**TICKET, "url": server.base + "/store", **kw})


def test_upload_put(server):
    t = ticket(server)
    assert upload_file(t, b"0123456789") is t
    r = server.requests[-1]
    assert (r["method"], r["path"], r["body"]) == ("PUT", "/store", b"0123456789")
    assert r["headers"]["content-type"] == "image/jpeg" and r["headers"]["x-amz-meta-a"] == "b"


def test_upload_post_multipart_fields_first(server, tmp_path):
    f = tmp_path / "cat.jpg"
    f.write_bytes(b"\xff\xd8abc")
    t = ticket(server, method="POST", fields={"key": "avatars/cat.jpg", "policy": "p"}, headers={})
    upload_file(t, f, content_type="image/jpeg")
    r = server.requests[-1]
    assert r["method"] == "POST" and r["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    body = r["body"]
    i_key, i_pol, i_file = body.index(b'name="key"'), body.index(b'name="policy"'), body.index(b'name="file"; filename="cat.jpg"')
    assert i_key < i_pol < i_file
    assert b"\r\n\r\n\xff\xd8abc\r\n" in body and b"Content-Type: image/jpeg" in body


def test_upload_retries_5xx_then_succeeds(server):
    server.plan = [503, 500, 200]
    delays = []
    upload_file(ticket(server), b"x", retries=2, retry_delay=0.5, sleep=delays.append)
    assert len(server.requests) == 3 and delays == [0.5, 1.0]


def test_upload_gives_up(server):
    server.plan = [500, 500, 500, 200]
    with pytest.raises(ImagoUploadError) as ei:
        upload_file(ticket(server), b"x", retries=2, sleep=lambda s: None)
    assert (ei.value.status, ei.value.attempts, len(server.requests)) == (500, 3, 3)


def test_upload_no_retry_on_4xx(server):
    server.plan = [403, 200]
    with pytest.raises(ImagoUploadError) as ei:
        upload_file(ticket(server), b"x", sleep=lambda s: None)
    assert ei.value.status == 403 and len(server.requests) == 1


def test_upload_network_error_is_retried():
    t = UploadTicket.from_json({**TICKET, "url": "http://127.0.0.1:9/store"})  # discard port: connection refused
    delays = []
    with pytest.raises(ImagoUploadError) as ei:
        upload_file(t, b"x", retries=1, sleep=delays.append, timeout=2)
    assert ei.value.status == 0 and ei.value.attempts == 2 and len(delays) == 1


def test_upload_exists_and_too_large(server):
    assert upload_file(ticket(server, exists=True), b"x").exists
    with pytest.raises(ImagoUploadError) as ei:
        upload_file(ticket(server, max_bytes=2), b"xyz")
    assert ei.value.status == 413
    assert server.requests == []


def test_complete_upload(server):
    t = UploadTicket.from_json({**TICKET, "complete_url": server.base + "/v1/uploads/upl_1/complete"})
    c = complete_upload(t)
    assert isinstance(c, UploadCompletion)
    assert (c.state, c.key, c.width, c.height, c.frames, c.bytes) == ("ready", "avatars/cat.jpg", 3, 2, 1, 10)
    r = server.requests[-1]
    assert (r["method"], r["path"], r["headers"].get("authorization")) == ("POST", "/v1/uploads/upl_1/complete", None)
    # Without complete_url (older servers): from base_url, with the API key when given.
    old = UploadTicket.from_json(TICKET)
    complete_upload(old, base_url=server.base + "/", api_key="k")
    assert server.requests[-1]["headers"]["authorization"] == "Bearer k"
    with pytest.raises(ImagoOptionError):
        complete_upload(old)
    bad = UploadTicket.from_json({**TICKET, "id": "upl_2", "complete_url": server.base + "/v1/uploads/upl_2/complete"})
    with pytest.raises(ImagoApiError) as e:
        complete_upload(bad)
    assert (e.value.status, e.value.code) == (422, "not-an-image")
