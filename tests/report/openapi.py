"""Validates imago's OpenAPI document and real exchanges against it (tests/openapi.rs).

Usage: openapi.py SPEC.json < exchanges.json

The document is checked against the OpenAPI 3.1 meta-schema (openapi-spec-validator); each
exchange (a real request to a running imago and its response, recorded by the Rust test) by
openapi-core: the response's status must be documented for the operation, its media type, body
and declared headers must match; requests marked `check_request` are validated too. Prints JSON:
{"checked", "errors", "operations", "exercised", "statuses"}; exits 0 (the Rust test decides).
"""

import base64
import json
import sys

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate as validate_spec

HOST = "http://imago.test"


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    exchanges = json.load(sys.stdin)
    errors = []
    try:
        validate_spec(spec)
    except Exception as e:  # the document itself is wrong: nothing else is meaningful
        print(json.dumps({"checked": 0, "errors": [f"document: {e}"], "operations": [], "exercised": [], "statuses": []}))
        return
    api = OpenAPI.from_dict(spec)
    operations = sorted(
        f"{m.upper()} {p}"
        for p, item in spec["paths"].items()
        for m in item
        if m in ("get", "put", "post", "delete", "options", "head", "patch")
    )
    exercised = set()
    statuses = set()
    for i, x in enumerate(exchanges):
        what = f"#{i} {x['method']} {x['path']} -> {x['status']}"
        body = base64.b64decode(x["request_body"]) if x.get("request_body") else None
        req = MockRequest(
            HOST,
            x["method"].lower(),
            x["path"],
            path_pattern=x["template"],
            args=x.get("query") or {},
            view_args=x.get("path_params") or {},
            headers=x.get("headers") or {},
            data=body,
            content_type=x.get("request_content_type") or "",
        )
        resp = MockResponse(
            base64.b64decode(x["response_body"]),
            status_code=x["status"],
            headers=x.get("response_headers") or {},
            content_type=x.get("response_content_type") or "",
        )
        exercised.add(f"{x['method'].upper()} {x['template']}")
        statuses.add(f"{x['method'].upper()} {x['template']} {x['status']}")
        if x.get("check_request"):
            try:
                api.validate_request(req)
            except Exception as e:
                errors.append(f"{what}: request: {describe(e)}")
        try:
            api.validate_response(req, resp)
        except Exception as e:
            errors.append(f"{what}: response: {describe(e)}; body: {resp.data[:300]!r}")
    print(
        json.dumps(
            {
                "checked": len(exchanges),
                "errors": errors,
                "operations": operations,
                "exercised": sorted(exercised),
                "statuses": sorted(statuses),
            }
        )
    )


def describe(e: Exception) -> str:
    """The exception with its causes (openapi-core wraps the schema errors)."""
    parts = [f"{type(e).__name__}: {e}"]
    for sub in getattr(e, "schema_errors", None) or []:
        parts.append(f"  - {getattr(sub, 'message', sub)} at {list(getattr(sub, 'absolute_path', []))}")
    cause = e.__cause__
    while cause is not None:
        parts.append(f"  caused by {type(cause).__name__}: {cause}")
        for sub in getattr(cause, "schema_errors", None) or []:
            parts.append(f"    - {getattr(sub, 'message', sub)} at {list(getattr(sub, 'absolute_path', []))}")
        cause = cause.__cause__
    return "\n".join(parts)


if __name__ == "__main__":
    main()
