#!/usr/bin/env python3
"""Packs every publishable package as its registry would receive it and checks the artefacts.

* `npm pack` (signing/js), `python -m build` (signing/python: sdist and wheel), `cargo package`
  (imago-signing and imago, verified: each packed crate must build on its own);
* each artefact holds the README and a LICENSE byte-identical to the repository's (the Apache-2.0
  text, checked against its published SHA-256);
* no README (nor the wheel's long description) has a relative link: a registry page (npm, PyPI,
  crates.io) has no repository beside it, so `../SPEC.md` is a dead link there. Links must be
  absolute (https://github.com/imago-rs/imago/…) or in-page anchors (`#…`).

Usage: scripts/check_packages.py [--python PY]   (PY needs `build`: tests/report/prepare.sh)
Exits non-zero on any failure, listing every finding.
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt (the full Apache License 2.0 text).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

# Markdown inline links and images `[text](target "title")`, reference definitions
# `[ref]: target`, and HTML `href=`/`src=` attributes.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#)", re.I)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def relative_links(markdown: str) -> list:
    """Link targets of `markdown` that are not absolute URLs or in-page anchors (code blocks and
    code spans are not links)."""
    text = CODE_SPAN.sub("", FENCE.sub("", markdown))
    targets = INLINE.findall(text) + REFDEF.findall(text) + HTML.findall(text)
    return [t for t in targets if not ABSOLUTE.match(t)]


def self_test() -> None:
    """The link finder finds what it must (a checker that cannot fail is no check)."""
    sample = (
        "See [the spec](../SPEC.md), ![logo](img/logo.png) and [vectors].\n\n"
        "[vectors]: ../test-vectors.json\n"
        '<a href="docs/x.md">x</a>\n'
        "Fine: [abs](https://github.com/imago-rs/imago), [anchor](#install), `[no](code.md)`\n"
        "```\n[not](a-link.md)\n```\n"
    )
    found = relative_links(sample)
    want = ["../SPEC.md", "img/logo.png", "../test-vectors.json", "docs/x.md"]
    assert sorted(found) == sorted(want), f"link finder self-test: found {found}, want {want}"


def run(cmd, cwd, findings):
    """Runs a packing command; a failure is a finding (its output's tail is printed)."""
    line = " ".join(str(c) for c in cmd)
    print("+", line, f"(in {cwd.relative_to(ROOT) if cwd != ROOT else '.'})", flush=True)
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(f"  ({time.monotonic() - t:.0f} s)", flush=True)
    if r.returncode != 0:
        sys.stdout.write(r.stdout[-6000:])
        findings.append(f"`{line}` failed ({r.returncode})")


def members_tar(path: Path) -> dict:
    out = {}
    with tarfile.open(path, "r:*") as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = t.extractfile(m).read()
    return out


def members_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def check_artefact(name: str, files: dict, license_bytes: bytes, findings: list) -> None:
    """`files`: path in the artefact -> bytes. README(s) without relative links, a LICENSE equal
    to the repository's."""
    readmes = [p for p in files if re.search(r"(^|/)README(\.md)?$", p, re.I) and p.count("/") <= 1]
    has_metadata = any(p.endswith(".dist-info/METADATA") for p in files)
    if not readmes and not has_metadata:  # a wheel carries its README as METADATA's body
        findings.append(f"{name}: no README in the artefact")
    for p in readmes:
        for link in relative_links(files[p].decode("utf-8", "replace")):
            findings.append(f"{name}: {p}: relative link `{link}` (dead on the registry page: use an absolute URL)")
    licenses = [p for p in files if re.search(r"(^|/)(LICENSE|licenses/LICENSE)$", p)]
    if not licenses:
        findings.append(f"{name}: no LICENSE in the artefact")
    for p in licenses:
        if files[p] != license_bytes:
            findings.append(f"{name}: {p} differs from the repository's LICENSE")
    # The wheel's (and sdist's PKG-INFO) long description is the README as PyPI shows it.
    for p in files:
        if p.endswith(".dist-info/METADATA") or re.fullmatch(r"[^/]+/PKG-INFO", p):
            meta = Parser().parsestr(files[p].decode("utf-8", "replace"))
            body = meta.get_payload() or meta.get("Description") or ""
            if not body.strip():
                findings.append(f"{name}: {p} has no long description (readme)")
            for link in relative_links(body):
                findings.append(f"{name}: {p} description: relative link `{link}`")
            for field in ("License-Expression", "Project-URL"):
                if not meta.get_all(field):
                    findings.append(f"{name}: {p} has no {field}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=os.environ.get("IMAGO_TEST_PYTHON") or str(ROOT / ".tools/analytics-venv/bin/python"))
    args = ap.parse_args()
    self_test()
    license_bytes = (ROOT / "LICENSE").read_bytes() if (ROOT / "LICENSE").exists() else b""
    findings = []
    if hashlib.sha256(license_bytes).hexdigest() != APACHE_2_SHA256:
        findings.append("LICENSE at the root is not the Apache License 2.0 text (SHA-256 differs)")
    for d in ("signing/js", "signing/python", "signing/rust"):
        p = ROOT / d / "LICENSE"
        if not p.exists() or p.read_bytes() != license_bytes:
            findings.append(f"{d}/LICENSE is missing or differs from the root LICENSE")
    with tempfile.TemporaryDirectory(prefix="imago-pack-") as tmp:
        out = Path(tmp)
        # npm: what `npm publish` would upload (prepack builds dist/).
        run(["npm", "pack", "--pack-destination", str(out), "--silent"], ROOT / "signing/js", findings)
        # PyPI: sdist and wheel, in an isolated build environment.
        run([args.python, "-m", "build", "--sdist", "--wheel", "--outdir", str(out / "py"), "."], ROOT / "signing/python", findings)
        # crates.io: both crates, verified (each packed crate is built on its own). `--allow-dirty`:
        # this runs in working trees with uncommitted changes (make test during development); the
        # check is of what the artefact holds, not of the VCS state.
        run(["cargo", "package", "--locked", "--allow-dirty", "-p", "imago-signing", "-p", "imago"], ROOT, findings)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        if not target.is_absolute():
            target = ROOT / target
        crates = [target / "package" / f"{n}-{v}.crate" for n, v in crate_versions()]
        artefacts = sorted(out.glob("*.tgz")) + sorted((out / "py").glob("*")) + crates
        for a in artefacts:
            if not a.exists():
                findings.append(f"{a.name}: not produced")
                continue
            files = members_zip(a) if a.suffix == ".whl" else members_tar(a)
            # Strip the top directory of tarballs (package/, name-version/).
            if a.suffix != ".whl":
                files = {p.split("/", 1)[1] if "/" in p else p: b for p, b in files.items()}
            check_artefact(a.name, files, license_bytes, findings)
            print(f"  {a.name}: {a.stat().st_size:,} bytes, {len(files)} files")
    if findings:
        print("check_packages: FAILED")
        for f in findings:
            print("  -", f)
        sys.exit(1)
    print(f"check_packages: {len(artefacts)} artefacts packed and checked")


def crate_versions():
    """(name, version) of the two crates, from their manifests."""
    out = []
    for manifest in (ROOT / "signing/rust/Cargo.toml", ROOT / "Cargo.toml"):
        text = manifest.read_text()
        pkg = text[text.index("[package]"):]
        name = re.search(r'^name\s*=\s*"([^"]+)"', pkg, re.M).group(1)
        version = re.search(r'^version\s*=\s*"([^"]+)"', pkg, re.M).group(1)
        out.append((name, version))
    return out


if __name__ == "__main__":
    main()
