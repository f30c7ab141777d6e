import time

import pytest

from imago_signing import ImagoParseError, ImagoSigner, LADDER, build_path, parse_path, sizes, srcset_widths

from conftest import VECTORS, path_kwargs, signer_kwargs


def ids(cases):
    return [c["name"] for c in cases]


def test_vector_file_shape():
    assert VECTORS["version"] == 1
    assert VECTORS["ladder"] == list(LADDER)
    assert len(VECTORS["build"]) >= 25
    assert len(VECTORS["invalid"]) >= 20
    keys = {k for c in VECTORS["build"] for k in c["options"]}
    assert len(keys) == 45, sorted(keys)
    assert len(VECTORS["encrypted"]) >= 4


@pytest.mark.parametrize("v", VECTORS["sign"], ids=ids(VECTORS["sign"]))
def test_sign(v):
    assert ImagoSigner(**signer_kwargs(v)).sign(v["path"]) == v["signature"]


@pytest.mark.parametrize("v", VECTORS["verify"], ids=ids(VECTORS["verify"]))
def test_verify(v):
    kw = {"pairs": [(p["key"], p["salt"]) for p in v["pairs"]]}
    if "signature_size" in v:
        kw["signature_size"] = v["signature_size"]
    assert ImagoSigner(**kw).verify(v["url_path"], allow_insecure=v.get("allow_insecure", False)) is v["valid"]


@pytest.mark.parametrize("v", VECTORS["build"], ids=ids(VECTORS["build"]))
def test_build(v):
    assert build_path(v["source"], v["options"], **path_kwargs(v)) == v["expected_path"]
    signer = ImagoSigner(**signer_kwargs(v, base_url="https://img.example.com/"))
    assert signer.path(v["source"], v["options"], **path_kwargs(v)) == v["expected_url_path"]
    assert signer.url(v["source"], v["options"], **path_kwargs(v)) == "https://img.example.com" + v["expected_url_path"]
    assert signer.verify(v["expected_url_path"]) is True
    # Reference-parser round trip.
    p = parse_path(v["expected_path"])
    assert (p.source, p.encoding, p.extension) == (v["source"], v["encoding"], v.get("extension"))
    rebuilt = build_path(p.source, p.options, encoding=p.encoding, extension=p.extension, chunk_size=v.get("chunk_size"))
    assert rebuilt == v["expected_path"]


@pytest.mark.parametrize("v", VECTORS["encrypted"], ids=ids(VECTORS["encrypted"]))
def test_encrypted(v):
    # AES is not in the standard library: the optional `cryptography` extra builds /enc/ paths.
    pytest.importorskip("cryptography")
    from imago_signing import encrypt_source, encrypted_source_part

    iv = bytes.fromhex(v["iv"]) if "iv" in v else None
    data = encrypt_source(v["source"], v["encryption_key"], iv)
    assert data[:16].hex() == v["expected_iv"]
    part = encrypted_source_part(v["source"], v["encryption_key"], extension=v.get("extension"),
                                 chunk_size=v.get("chunk_size"), iv=iv)
    assert v["expected_path"].endswith("/" + part)
    if iv is None:
        signer = ImagoSigner(v["key"], v["salt"], source_encryption_key=v["encryption_key"])
        kw = {k: v[k] for k in ("extension", "chunk_size") if k in v}
        assert signer.path(v["source"], v["options"], encoding="encrypted", **kw) == v["expected_url_path"]


@pytest.mark.parametrize("v", VECTORS["invalid"], ids=ids(VECTORS["invalid"]))
def test_invalid(v):
    with pytest.raises(ImagoParseError) as ei:
        parse_path(v["path"], now=time.time())
    assert ei.value.code == v["error_code"], str(ei.value)
    assert ei.value.status == v["status"]
    if "option" in v:
        assert ei.value.option == v["option"]


@pytest.mark.parametrize("v", VECTORS["srcset"], ids=ids(VECTORS["srcset"]))
def test_srcset(v):
    kw = {"encoding": v["encoding"]}
    if "max_width" in v:
        kw["max_width"] = v["max_width"]
    if "widths" in v:
        kw["widths"] = v["widths"]
    assert srcset_widths(kw.get("max_width"), kw.get("widths")) == v["expected_widths"]
    signer = ImagoSigner(v["key"], v["salt"], base_url=v["base_url"])
    assert signer.srcset(v["source"], v["options"], **kw) == v["expected"]


@pytest.mark.parametrize("v", VECTORS["sizes"], ids=ids(VECTORS["sizes"]))
def test_sizes(v):
    got = sizes(v["breakpoints"]) if "default" not in v else sizes(v["breakpoints"], v["default"])
    assert got == v["expected"]
