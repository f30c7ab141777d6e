import base64
import math
import time
from datetime import datetime, timezone

import pytest

from imago_signing import (
    LADDER, OPTION_ALIASES, OPTION_TABLE, ImagoError, ImagoOptionError, ImagoParseError, ImagoSigner, build_path,
    encode_source, format_number, parse_path, percent_encode, serialize_options, sizes, srcset_widths,
)

KEY, SALT, SRC = "736563726574", "68656c6c6f", "local:///a.jpg"


@pytest.mark.parametrize("n,s", [
    (0, "0"), (-0.0, "0"), (0.0, "0"), (2, "2"), (2.0, "2"), (0.5, "0.5"), (-1.25, "-1.25"), (1e-7, "0.0000001"),
    (1.5e-10, "0.00000000015"), (1e21, "1000000000000000000000"), (1.5e22, "15000000000000000000000"),
    (0.1 + 0.2, "0.30000000000000004"), (123456789.125, "123456789.125"), (1e16, "10000000000000000"), (10**30, "1" + "0" * 30),
])
def test_format_number(n, s):
    assert format_number(n) == s


@pytest.mark.parametrize("bad", [math.nan, math.inf, True, "1"])
def test_format_number_rejects(bad):
    with pytest.raises((ValueError, TypeError)):
        format_number(bad)


def test_percent_encoding():
    assert percent_encode("http://a.b/c d?e=f&g@h%") == "http://a.b/c%20d%3Fe%3Df%26g%40h%25"
    assert percent_encode("local:///é~") == "local:///%C3%A9~"


def test_base64_and_chunks():
    s = encode_source("local:///a?>>.jpg")
    assert not set("+/=") & set(s)
    assert base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode() == "local:///a?>>.jpg"
    assert encode_source("http://example.com/images/curiosity.jpg", chunk_size=16, extension="png") == \
        "aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png"


@pytest.mark.parametrize("src", ["", "ftp://x/y", "local://a.jpg", "s3://bucket", "https://", "/etc/passwd", "local:///a\n"[:9], None])
def test_bad_sources(src):
    with pytest.raises(ImagoOptionError) as ei:
        encode_source(src)
    assert ei.value.option == "source"


def test_bad_source_options():
    with pytest.raises(ImagoOptionError, match="extension"):
        encode_source(SRC, extension="tiff")
    for kw in ({"chunk_size": 0}, {"chunk_size": True}, {"encoding": "plain", "chunk_size": 4}):
        with pytest.raises(ImagoOptionError) as ei:
            encode_source(SRC, **kw)
        assert ei.value.option == "chunk_size"
    with pytest.raises(ImagoOptionError) as ei:
        encode_source(SRC, encoding="hex")
    assert ei.value.option == "encoding"


BAD = [
    ({"width": -1}, "width"), ({"width": 1.5}, "width"), ({"width": "300"}, "width"), ({"width": True}, "width"),
    ({"height": math.nan}, "height"), ({"quality": 101}, "quality"), ({"quality": "best"}, "quality"), ({"rotate": 45}, "rotate"),
    ({"rotate": False}, "rotate"), ({"dpr": 0}, "dpr"), ({"dpr": -1}, "dpr"), ({"format": "tiff"}, "format"),
    ({"resizing_type": "stretch"}, "resizing_type"), ({"gravity": {"type": "up"}}, "gravity"),
    ({"gravity": {"type": "fp", "x": 2, "y": 0}}, "gravity"), ({"gravity": {"type": "sm", "x_offset": 1}}, "gravity"),
    ({"extend": {"extend": True, "gravity": {"type": "sm"}}}, "extend"), ({"enlarge": 1}, "enlarge"),
    ({"background": "#fff"}, "background"), ({"background": {"r": 256, "g": 0, "b": 0}}, "background"),
    ({"cachebuster": "a/b"}, "cachebuster"), ({"cachebuster": ""}, "cachebuster"), ({"preset": []}, "preset"),
    ({"preset": ["a:b"]}, "preset"), ({"resize": {}}, "resize"), ({"size": {}}, "size"), ({"padding": {}}, "padding"),
    ({"padding": -2}, "padding"), ({"trim": {"color": "fff"}}, "trim"), ({"trim": {"threshold": 1, "color": "ffff"}}, "trim"),
    ({"crop": {"width": 10}}, "crop"), ({"format_quality": []}, "format_quality"),
    ({"format_quality": [{"format": "auto", "quality": 1}]}, "format_quality"), ({"flip": {"horizontal": "yes"}}, "flip"),
    ({"resize": {"width": 10, "bogus": 1}}, "resize"), ({"blur": -0.5}, "blur"), ({"expires": 1.5}, "expires"),
    ({"wat": 1}, "wat"), ({"w": 100}, "w"),
]


@pytest.mark.parametrize("opts,key", BAD, ids=[repr(b[0]) for b in BAD])
def test_option_errors_name_the_option(opts, key):
    with pytest.raises(ImagoOptionError) as ei:
        serialize_options(opts)
    assert ei.value.option == key
    assert isinstance(ei.value, ImagoError)


def test_option_error_subpath_and_none_skipped():
    with pytest.raises(ImagoOptionError, match=r"resize\.width"):
        serialize_options({"resize": {"width": -3}})
    with pytest.raises(ImagoOptionError, match=r"format_quality\.1\.quality"):
        serialize_options({"format_quality": [{"format": "webp", "quality": 1}, {"format": "webp", "quality": 200}]})
    assert serialize_options({"width": None, "quality": 50}) == "q:50"


def test_integral_floats_are_accepted_for_ints():
    assert serialize_options({"width": 300.0, "rotate": 90.0}) == "rot:90/w:300"


def test_option_table_matches_js_order_and_aliases():
    assert [s for _, s, _ in OPTION_TABLE] == ["ar", "bg", "bl", "cb", "c", "dpr", "eth", "el", "exp", "ex", "exar", "fn", "fl",
                                               "f", "fq", "g", "h", "kcr", "mafr", "maf", "mb", "mrd", "msfs", "msr", "mh",
                                               "mw", "pd", "pix", "pr", "q", "raw", "rs", "ra", "rt", "att", "rot", "sh", "s",
                                               "skp", "scp", "sm", "t", "wm", "w", "z"]
    for key, short, _ in OPTION_TABLE:
        assert OPTION_ALIASES[short] == key
    assert OPTION_ALIASES["min-width"] == "min_width"
    # imgproxy-node writes `sp:` for skip_processing; imgproxy's own names are skp / skip_processing.
    assert OPTION_ALIASES["sp"] == "skip_processing"


def test_parser_aliases_and_loose_booleans():
    p = parse_path("/resize:fill:300:400:0/gravity:sm/quality:80/min-width:5/ext:webp/el:True/plain/local:///a.jpg@png")
    assert p.options == {"resize": {"resizing_type": "fill", "width": 300, "height": 400, "enlarge": False},
                         "gravity": {"type": "sm"}, "quality": 80, "min_width": 5, "format": "webp", "enlarge": True}
    assert build_path(p.source, p.options, encoding=p.encoding, extension=p.extension) == \
        "/el:t/f:webp/g:sm/mw:5/q:80/rs:fill:300:400:f/plain/local:///a.jpg@png"
    assert parse_path("/w:1/width:2/plain/local:///a.jpg").options["width"] == 2
    assert parse_path("/rs:fit:10::/plain/local:///a.jpg").options["resize"] == {"resizing_type": "fit", "width": 10}


def test_parser_rejects_unicode_digits_and_expiry():
    with pytest.raises(ImagoParseError) as ei:
        parse_path("/w:\u0663/plain/local:///a.jpg")  # Arabic-Indic digit three
    assert ei.value.code == "invalid-option"
    parse_path("/exp:1/plain/local:///a.jpg")
    with pytest.raises(ImagoParseError) as ei:
        parse_path("/exp:1699999999/plain/local:///a.jpg", now=1700000000)
    assert (ei.value.code, ei.value.status) == ("url-expired", 410)


def test_signer_basics():
    a = ImagoSigner(KEY, SALT).path(SRC, {"width": 10})
    b = ImagoSigner(SALT, KEY).path(SRC, {"width": 10})
    assert a != b
    full = ImagoSigner(KEY, SALT).sign("/x")
    short = ImagoSigner(KEY, SALT, signature_size=8).sign("/x")
    assert (len(full), len(short)) == (43, 11)
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert base64.urlsafe_b64decode(pad(short)) == base64.urlsafe_b64decode(pad(full))[:8]
    s = ImagoSigner(insecure=True, base_url="http://localhost:8080")
    assert s.url(SRC, {"width": 5}, encoding="plain") == "http://localhost:8080/insecure/w:5/plain/local:///a.jpg"
    assert ImagoSigner(pairs=[{"key": KEY, "salt": SALT}]).sign("/x") == full


@pytest.mark.parametrize("kw,opt", [
    ({}, "key"), ({"key": "zz", "salt": SALT}, "pairs[0].key"), ({"key": KEY, "salt": "abc"}, "pairs[0].salt"),
    ({"key": KEY, "salt": ""}, "pairs[0].salt"), ({"key": KEY, "salt": SALT, "signature_size": 33}, "signature_size"),
    ({"key": KEY, "salt": SALT, "signature_size": 0}, "signature_size"), ({"pairs": []}, "pairs"),
    ({"key": KEY, "salt": SALT, "insecure": True}, "insecure"), ({"pairs": [KEY]}, "pairs"),
])
def test_signer_config_errors(kw, opt):
    with pytest.raises(ImagoOptionError) as ei:
        ImagoSigner(**kw)
    assert ei.value.option == opt


def test_expiry():
    s = ImagoSigner(KEY, SALT)
    dt = datetime.fromtimestamp(1700000000.5, tz=timezone.utc)
    assert "/exp:1700000000/plain/" in s.path(SRC, {}, expires=dt, encoding="plain")
    before = math.floor(time.time())
    exp = int(s.path(SRC, {}, expires_in=3600, encoding="plain").split("exp:")[1].split("/")[0])
    assert before + 3600 <= exp <= before + 3601
    with pytest.raises(ImagoOptionError):
        s.path(SRC, {}, expires=1, expires_in=1)
    with pytest.raises(ImagoOptionError):
        s.path(SRC, {}, expires_in=-5)


def test_verify_garbage():
    s = ImagoSigner(KEY, SALT)
    good = s.path(SRC, {"width": 1})
    assert s.verify(good) is True
    assert s.verify(good.replace("w:1", "w:2")) is False
    assert s.verify("nope") is False
    assert s.verify("/") is False
    assert s.verify("/é" + good[1:]) is False


def test_builder():
    s = ImagoSigner(KEY, SALT, base_url="https://img.example.com")
    b = s.image("s3://bucket/cat.jpg").resize("fill", 300, 200).gravity("sm").format("auto").quality("auto").extension("webp")
    assert b.to_options() == {"resize": {"resizing_type": "fill", "width": 300, "height": 200}, "gravity": {"type": "sm"},
                              "format": "auto", "quality": "auto"}
    enc = base64.urlsafe_b64encode(b"s3://bucket/cat.jpg").decode().rstrip("=")
    assert b.unsigned_path() == f"/f:auto/g:sm/q:auto/rs:fill:300:200/{enc}.webp"
    assert b.url() == s.url("s3://bucket/cat.jpg", b.to_options(), extension="webp") == str(b)
    a = s.image(SRC).width(100)
    assert a.height(50).to_options() == {"width": 100, "height": 50} and a.to_options() == {"width": 100}


def test_builder_every_method_matches_js():
    s = ImagoSigner(KEY, SALT)
    b = (s.image(SRC, encoding="plain")
         .auto_rotate().background(1, 2, 3).blur(1).cachebuster("c").crop(10, 20, {"type": "ce"}).dpr(2).enlarge(False)
         .expires(4102444800).extend(True, {"type": "no", "x_offset": 1}).flip(True).format("png")
         .format_quality({"webp": 70, "avif": 50}).gravity("no", 10, 5).height(5).keep_copyright().max_bytes(9)
         .min_height(3).min_width(4).padding(1, 2).preset("a", "b").quality(70).resizing_type("fit").rotate(90)
         .sharpen(0.5).size(7, 8, True).strip_color_profile().strip_metadata(False).trim(5, color="fff").width(6))
    # Same string as the JS builder test.
    assert b.unsigned_path() == ("/ar:t/bg:1:2:3/bl:1/cb:c/c:10:20:ce/dpr:2/el:f/exp:4102444800/ex:t:no:1/fl:t:f/f:png/"
                                 "fq:webp:70:avif:50/g:no:10:5/h:5/kcr:t/mb:9/mh:3/mw:4/pd:1:2/pr:a:b/q:70/rt:fit/rot:90/"
                                 "sh:0.5/s:7:8:t/scp:t/sm:f/t:5:fff/w:6/plain/local:///a.jpg")
    assert s.image(SRC).gravity("fp", 0.5, 0.25).padding(7).unsigned_path().split("/")[1:3] == ["g:fp:0.5:0.25", "pd:7"]
    assert "exp:" not in s.image(SRC).expires(5).expires_in(60).expires(0).unsigned_path()


def test_srcset_helpers():
    assert srcset_widths(100) == [16, 32, 48, 64, 96]
    assert srcset_widths(3840) == list(LADDER)
    for kw in ({"widths": []}, {"widths": [10.5]}, {"max_width": 0}):
        with pytest.raises(ImagoOptionError):
            srcset_widths(**kw)
    s = ImagoSigner(KEY, SALT).srcset(SRC, {}, expires_in=60, max_width=1200)
    assert len({part.split("exp:")[1].split("/")[0] for part in s.split(", ")}) == 1
    assert ImagoSigner(KEY, SALT).image(SRC).format("auto").srcset(max_width=64).count("w, ") == 3


def test_sizes_validation():
    assert sizes([(640, "100vw")], 300) == "(max-width: 640px) 100vw, 300px"
    for bad in ([{"max_width": 0, "size": "1px"}], [(10, "1px"), (10, "2px")], [(10, "a, b")], [(True, "1px")]):
        with pytest.raises(ImagoOptionError):
            sizes(bad)
    with pytest.raises(ImagoOptionError):
        sizes([], -1)
