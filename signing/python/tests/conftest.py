import json
import pathlib

import pytest

VECTORS_PATH = pathlib.Path(__file__).resolve().parents[2] / "test-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def signer_kwargs(v, **extra):
    kw = {"pairs": [(p["key"], p["salt"]) for p in v["pairs"]]} if "pairs" in v else {"key": v["key"], "salt": v["salt"]}
    if "signature_size" in v:
        kw["signature_size"] = v["signature_size"]
    kw.update(extra)
    return kw


def path_kwargs(v):
    kw = {"encoding": v["encoding"]}
    if "extension" in v:
        kw["extension"] = v["extension"]
    if "chunk_size" in v:
        kw["chunk_size"] = v["chunk_size"]
    return kw


@pytest.fixture
def vectors():
    return VECTORS
