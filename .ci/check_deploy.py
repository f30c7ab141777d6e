#!/usr/bin/env python3
"""Cross-file consistency checks for docker/ and k8s/ (used by .ci/lint-deploy.sh).

Schema validators check each object on its own; these checks catch the mistakes they
cannot see: a selector that matches no pod, a ServiceMonitor naming a port the Service
does not have, a compose service waiting on a healthcheck that does not exist, a
variable the compose file needs but .env.example does not define, a dashboard panel
without a query, and the properties the deployment promises (non-root 10001,
read-only root, probes, drain timing).

    check_deploy.py compose  docker/docker-compose.yml docker/.env.example docker/gen-env.sh
    check_deploy.py k8s      <rendered kustomize output>...
    check_deploy.py secret   k8s/base/secret.example.yaml k8s/base/kustomization.yaml
    check_deploy.py dashboard docker/grafana/dashboards/imago.json
    check_deploy.py promql   docker/grafana/dashboards/imago.json OUT_RULES_FILE
    check_deploy.py dockerfile docker/Dockerfile
    check_deploy.py vcl-ladder src/config/raw.rs docker/varnish/default.vcl docker/varnish/lb.vcl
    check_deploy.py vcl-accept src/negotiate.rs docker/varnish/default.vcl docker/varnish/lb.vcl
    check_deploy.py aws      docs/aws/*.json

Exit status 0 when every check passes, 1 otherwise; each problem is printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

problems: list[str] = []


def fail(msg: str) -> None:
    problems.append(msg)
    print(f"  problem: {msg}")


def expect(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


# --------------------------------------------------------------------------- compose
VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def env_file_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keys.add(line.split("=", 1)[0])
    return keys


def check_compose(compose: Path, env_example: Path, gen_env: Path) -> None:
    raw = compose.read_text()
    doc = yaml.safe_load(raw)
    # Variable references in values only, not in comments.
    text = "\n".join(line for line in raw.splitlines() if not line.lstrip().startswith("#"))
    services = doc.get("services", {})
    expect(
        {"imago", "garage", "varnish", "prometheus", "grafana"} <= set(services),
        "compose must define imago, garage, varnish, prometheus and grafana",
    )
    for name, svc in services.items():
        expect("test" in (svc.get("healthcheck") or {}), f"compose service {name} has no healthcheck test")
        for dep, cond in (svc.get("depends_on") or {}).items():
            expect(dep in services, f"{name} depends on unknown service {dep}")
            if isinstance(cond, dict) and cond.get("condition") == "service_healthy":
                expect(
                    "test" in (services.get(dep, {}).get("healthcheck") or {}),
                    f"{name} waits for {dep} to be healthy but {dep} has no healthcheck",
                )
        for port in svc.get("ports", []):
            if name != "varnish":
                expect(
                    str(port).startswith("127.0.0.1:"),
                    f"{name} publishes {port} on all interfaces (only the edge should)",
                )

    imago = services.get("imago", {})
    expect(imago.get("read_only") is True, "imago must run with a read-only root filesystem")
    env = imago.get("environment", {})
    expect(env.get("IMAGO_BIND") == "0.0.0.0:8080", "imago IMAGO_BIND must be 0.0.0.0:8080")
    # A wildcard bind with uploads on: tickets need the URL clients reach (imago refuses to start
    # without it); here the edge, which is what the compose stack publishes.
    expect(str(env.get("IMAGO_PUBLIC_URL", "")).startswith("${IMAGO_PUBLIC_URL:-http://localhost:6081}"),
           "imago must set IMAGO_PUBLIC_URL (default: the edge, http://localhost:6081)")
    expect(str(env.get("IMAGO_MEMORY_LIMIT_MB", "")) != "0", "imago must keep RSS shedding on")
    expect(str(env.get("IMAGO_S3_ENDPOINT", "")).startswith("http://garage:"), "imago must use the garage S3 endpoint")
    varnish_ports = [str(p) for p in services.get("varnish", {}).get("ports", [])]
    expect("6081:80" in varnish_ports, "varnish must publish 6081 -> 80")

    used = {m.group(1) for m in VAR_RE.finditer(text)}
    required = {m.group(1) for m in VAR_RE.finditer(text) if (m.group(2) or "").lstrip(":").startswith("?")}
    with_default = {m.group(1) for m in VAR_RE.finditer(text) if (m.group(2) or "").lstrip(":").startswith("-")}
    example = env_file_keys(env_example)
    for var in sorted(used - with_default - example):
        fail(f"compose uses ${{{var}}} without a default, but .env.example does not define it")
    for var in sorted(example - used - {"COMPOSE_PROJECT_NAME"}):
        fail(f".env.example defines {var}, which docker-compose.yml never uses")
    generated = set()
    out = subprocess.run(["bash", str(gen_env)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            generated.add(key)
            expect(value != "", f"gen-env.sh produced an empty {key}")
            if key == "IMAGO_S3_ACCESS_KEY_ID":
                expect(re.fullmatch(r"GK[0-9a-f]{24}", value) is not None, "Garage key ids must be GK + 24 hex")
            if key in ("IMAGO_S3_SECRET_ACCESS_KEY", "GARAGE_RPC_SECRET"):
                expect(re.fullmatch(r"[0-9a-f]{64}", value) is not None, f"{key} must be 64 hex characters")
    for var in sorted(required - generated):
        fail(f"gen-env.sh does not generate the required variable {var}")


# ------------------------------------------------------------------------------ k8s
def load_all(paths: list[Path]) -> list[dict]:
    docs = []
    for p in paths:
        docs.extend(d for d in yaml.safe_load_all(p.read_text()) if d)
    return docs


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_k8s(paths: list[Path]) -> None:
    docs = load_all(paths)
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "NetworkPolicy", "ServiceMonitor", "ConfigMap", "ServiceAccount"]:
        expect(kind in by_kind, f"rendered manifests have no {kind}")
    if "Deployment" not in by_kind:
        return
    dep = by_kind["Deployment"][0]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    pod = spec["template"]
    pod_labels = pod["metadata"]["labels"]
    pspec = pod["spec"]
    expect(matches(spec["selector"]["matchLabels"], pod_labels), "Deployment selector does not match its pod labels")
    if "replicas" in spec:
        expect(spec["replicas"] == 3, "Deployment replicas must be 3")
    expect(pspec.get("terminationGracePeriodSeconds") == 30, "terminationGracePeriodSeconds must be 30")
    expect(pspec.get("enableServiceLinks") is False, "enableServiceLinks must be false (IMAGO_* env collisions)")
    expect(pspec.get("automountServiceAccountToken") is False, "service account token must not be mounted")
    psc = pspec.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001, "pod must run as non-root uid 10001")
    expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile must be RuntimeDefault")
    keys = {c.get("topologyKey") for c in pspec.get("topologySpreadConstraints", [])}
    expect({"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, "spread across zones and hosts")
    for c in pspec.get("topologySpreadConstraints", []):
        expect(matches(c["labelSelector"]["matchLabels"], pod_labels), "topology spread selector does not match pods")

    cont = pspec["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in cont.get("ports", [])}
    expect(port_names.get("http") == 8080, "container port http must be 8080")
    expect("metrics" in port_names, "container must expose a metrics port")
    csc = cont.get("securityContext", {})
    expect(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
    expect(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    expect(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities must drop ALL")
    res = cont.get("resources", {})
    expect(str(res.get("requests", {}).get("cpu")) == "2", "cpu request must be 2")
    expect(res.get("requests", {}).get("memory") == "1Gi", "memory request must be 1Gi")
    expect(res.get("limits", {}).get("memory") == "2Gi", "memory limit must be 2Gi")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        pr = cont.get(probe, {}).get("httpGet", {})
        expect(pr.get("path") == path, f"{probe} must GET {path}")
        expect(pr.get("port") in port_names or pr.get("port") in port_names.values(), f"{probe} port is not a container port")
    pre = cont.get("lifecycle", {}).get("preStop", {})
    expect("exec" in pre or "sleep" in pre, "a preStop sleep is required")
    mounts = {m["mountPath"] for m in cont.get("volumeMounts", [])}
    expect("/tmp" in mounts, "/tmp must be a writable volume")

    configmaps = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    env_from = cont.get("envFrom", [])
    cm_refs = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
    secret_refs = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
    for ref in cm_refs:
        expect(ref in configmaps, f"envFrom references ConfigMap {ref}, which is not rendered")
    expect(any(r.startswith("imago-config") for r in cm_refs), "env must come from ConfigMap imago-config")
    expect(secret_refs == ["imago-secrets"], "env must come from Secret imago-secrets")
    expect("Secret" not in by_kind, "no Secret may be rendered (secret.example.yaml stays out)")
    for cm in by_kind.get("ConfigMap", []):
        if cm["metadata"]["name"].startswith("imago-config"):
            data = cm.get("data", {})
            expect(data.get("IMAGO_BIND") == "0.0.0.0:8080", "ConfigMap IMAGO_BIND must be 0.0.0.0:8080")
            expect("IMAGO_WORKERS" in data, "ConfigMap must pin IMAGO_WORKERS (no CPU limit)")
            # Uploads are on (IMAGO_API_KEYS in the Secret) and the bind is a wildcard: imago
            # refuses to start without the URL clients reach it at.
            public = data.get("IMAGO_PUBLIC_URL", "")
            expect(re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", public) is not None,
                   "ConfigMap must set IMAGO_PUBLIC_URL to an http(s) URL")
            for ing in by_kind.get("Ingress", []):
                hosts = {r.get("host") for r in ing["spec"].get("rules", [])}
                expect(re.sub(r"^https?://([^/:]+).*$", r"\1", public) in hosts,
                       f"IMAGO_PUBLIC_URL {public} is not a host of Ingress {ing['metadata']['name']} {sorted(hosts)}")
            # Unset: 85 % of the pod's memory limit (cgroup). 0 would turn RSS shedding off.
            expect(data.get("IMAGO_MEMORY_LIMIT_MB") != "0", "ConfigMap must not turn RSS shedding off")
            for key in ("IMAGO_KEY", "IMAGO_SALT", "IMAGO_API_KEYS", "IMAGO_S3_ACCESS_KEY_ID",
                        "IMAGO_S3_SECRET_ACCESS_KEY"):
                expect(key not in data, f"secret {key} must not be in the ConfigMap")

    svc_ports: set[str] = set()
    for svc in by_kind.get("Service", []):
        expect(matches(svc["spec"]["selector"], pod_labels), f"Service {svc['metadata']['name']} selects no imago pod")
        for p in svc["spec"]["ports"]:
            svc_ports.add(p["name"])
            tp = p.get("targetPort")
            expect(tp in port_names or tp in port_names.values(), f"Service port {p['name']} targets unknown port {tp}")
        http = [p for p in svc["spec"]["ports"] if p["name"] == "http"]
        expect(bool(http) and http[0]["port"] == 80, "Service must map port 80 to http")
    for sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"]["matchLabels"]
        expect(any(matches(sel, s["metadata"].get("labels", {})) for s in by_kind.get("Service", [])),
               "ServiceMonitor selects no Service")
        for ep in sm["spec"]["endpoints"]:
            expect(ep.get("port") in svc_ports, f"ServiceMonitor endpoint port {ep.get('port')} is not a Service port")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        expect(ref["kind"] == "Deployment" and ref["name"] == name, "HPA does not target the Deployment")
        expect(hpa["spec"].get("minReplicas", 1) >= 3, "HPA minReplicas must keep 3 pods")
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        expect(kinds.get("Resource", {}).get("resource", {}).get("target", {}).get("averageUtilization") == 65,
               "HPA must target 65% CPU")
        expect(kinds.get("Pods", {}).get("pods", {}).get("metric", {}).get("name") == "imago_worker_queue_depth",
               "HPA must use the imago_worker_queue_depth Pods metric")
    for ing in by_kind.get("Ingress", []):
        # Each pod's memory cache only adds up across pods when a URL always lands on the same
        # pod (docs/cdn.md, k8s/README.md "Origin routing").
        ann = ing["metadata"].get("annotations", {})
        expect(ann.get("nginx.ingress.kubernetes.io/upstream-hash-by") == "$request_uri",
               f"Ingress {ing['metadata']['name']} must route by a consistent hash of $request_uri")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        expect(matches(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PDB selects no imago pod")
    for np in by_kind.get("NetworkPolicy", []):
        expect(matches(np["spec"]["podSelector"]["matchLabels"], pod_labels), "NetworkPolicy selects no imago pod")
        expect(set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy must restrict both directions")
        for rule in np["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                expect(p["port"] in port_names or p["port"] in port_names.values(),
                       f"NetworkPolicy ingress port {p['port']} is not a container port")


def check_secret(secret: Path, kustomization: Path) -> None:
    doc = yaml.safe_load(secret.read_text())
    expect(doc["kind"] == "Secret" and doc["metadata"]["name"] == "imago-secrets", "example must be Secret imago-secrets")
    for key, value in doc.get("stringData", {}).items():
        expect("EXAMPLE" in value, f"secret.example.yaml value {key} is not marked as an example")
    expect({"IMAGO_KEY", "IMAGO_SALT", "IMAGO_API_KEYS", "IMAGO_S3_ACCESS_KEY_ID", "IMAGO_S3_SECRET_ACCESS_KEY"}
           <= set(doc.get("stringData", {})), "secret example lacks one of the imago secret keys")
    kust = yaml.safe_load(kustomization.read_text())
    expect(secret.name not in kust.get("resources", []), "secret.example.yaml must not be a kustomize resource")


# ------------------------------------------------------------------------ dashboard
def check_dashboard(path: Path) -> list[str]:
    dash = json.loads(path.read_text())
    expect(dash.get("schemaVersion", 0) >= 36, "dashboard schemaVersion must be >= 36")
    expect(bool(dash.get("uid")) and bool(dash.get("title")), "dashboard needs uid and title")
    ids = [p["id"] for p in dash["panels"]]
    expect(len(ids) == len(set(ids)), "panel ids must be unique")
    exprs = []
    occupied: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        expect(g["x"] + g["w"] <= 24, f"panel '{p['title']}' is wider than the grid")
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        expect(not (cells & occupied), f"panel '{p['title']}' overlaps another panel")
        occupied |= cells
        if p["type"] == "row":
            continue
        expect(bool(p.get("targets")), f"panel '{p['title']}' has no query")
        for t in p.get("targets", []):
            expect(bool(t.get("expr")), f"panel '{p['title']}' has an empty query")
            exprs.append(t.get("expr", ""))
    text = " ".join(exprs)
    for metric in ["imago_http_requests_total", "imago_request_seconds_bucket", "imago_image_responses_total",
                   "imago_bytes_served_total", "imago_bytes_saved_total", "imago_fetch_seconds_bucket",
                   "imago_transform_seconds_bucket", "imago_encode_seconds_bucket", "imago_worker_queue_depth",
                   "imago_worker_in_flight", "imago_shed_total", "imago_upload_tickets_total",
                   "imago_upload_refusals_total", "imago_analytics_events_dropped_total"]:
        expect(metric in text, f"dashboard never queries {metric}")
    return exprs


def write_promql_rules(dashboard: Path, out: Path) -> None:
    """Turn every dashboard query into a recording rule so `promtool check rules`
    parses it (Grafana variables replaced by concrete values)."""
    exprs = check_dashboard(dashboard)
    rules = []
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$instance", ".*")
        rules.append({"record": f"imago_dashboard:query{i}", "expr": e})
    out.write_text(yaml.safe_dump({"groups": [{"name": "imago-dashboard", "rules": rules}]}, sort_keys=False))


def check_dockerfile(path: Path) -> None:
    text = path.read_text()
    expect(re.search(r"^FROM rust:1-bookworm AS ", text, re.M) is not None, "build stage must be rust:1-bookworm")
    expect(re.search(r"^FROM debian:bookworm-slim AS ", text, re.M) is not None, "runtime must be debian:bookworm-slim")
    expect("libvips-dev" in text and "libvips42" in text, "libvips-dev (build) and libvips42 (runtime) are required")
    expect("--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text, "apt hygiene")
    expect("cargo build --release --locked -p imago" in text, "binary must be built with --release --locked -p imago")
    expect(re.search(r"^USER 10001", text, re.M) is not None, "must run as uid 10001")
    expect(re.search(r'^ENTRYPOINT \["imago"\]', text, re.M) is not None, 'ENTRYPOINT ["imago"]')
    expect(re.search(r'^CMD \["serve"\]', text, re.M) is not None, 'CMD ["serve"]')
    expect(re.search(r"^HEALTHCHECK .*\n?.*imago", text, re.M) is not None, "HEALTHCHECK must use the imago binary")
    expect("IMAGO_BIND=0.0.0.0:8080" in text and "MALLOC_ARENA_MAX=2" in text, "container env defaults")
    expect(re.search(r"^EXPOSE 8080", text, re.M) is not None, "EXPOSE 8080")


def check_vcl_ladder(src_config: Path, vcls: list[Path]) -> int:
    """The edge snaps width hints to the origin's default IMAGO_WIDTH_LADDER and rounds
    DPR to at most IMAGO_MAX_DPR; both must match src/config/raw.rs. Defaults that cannot
    be found there are a failure (the check must not go quiet when raw.rs changes shape)."""
    if not src_config.exists():
        print(f"  {src_config} not found")
        return 3
    src = src_config.read_text()
    m = re.search(r"width_ladder:\s*(?:Num)?List::from_strs\(&\[(.*?)\]\)", src, re.S)
    d = re.search(r"max_dpr:\s*([0-9.]+)", src)
    if not m or not d:
        print("  default width_ladder / max_dpr not found in src/config/raw.rs: update this parser")
        return 1
    origin = [int(x) for x in re.findall(r'"(\d+)"', m.group(1))]
    for vcl in vcls:
        text = vcl.read_text()
        sub = re.search(r"sub imago_snap_width \{(.*?)\n\}", text, re.S)
        if not sub:
            fail(f"{vcl}: no sub imago_snap_width")
            continue
        edge = [int(x) for x in re.findall(r'set req\.http\.X-Imago-Hint = "(\d+)";', sub.group(1))]
        missing = sorted(set(origin) - set(edge))
        expect(not missing, f"{vcl.name}: origin ladder steps {missing} missing from the edge ladder")
        expect(edge == sorted(edge), f"{vcl.name}: edge ladder is not ascending")
        dsub = re.search(r"sub imago_round_dpr \{(.*?)\n\}", text, re.S)
        top = max(int(x) for x in re.findall(r'X-Imago-Hint = "(\d+)"', dsub.group(1))) if dsub else 0
        expect(top == int(float(d.group(1))), f"{vcl.name}: DPR cap {top} differs from max_dpr {d.group(1)}")
    print(f"  origin ladder {origin}, max_dpr {d.group(1)}")
    return 1 if problems else 0


def origin_chain(negotiate_rs: str) -> list[tuple[list[str], str]] | None:
    """AcceptClass::from_accept's if/else chain as [(media types that must all be listed, class)],
    the last entry ([], fallback). None when its shape is not the one this parser reads."""
    body = re.search(r"fn from_accept\(.*?\n    \}\n", negotiate_rs, re.S)
    if not body:
        return None
    chain = []
    for cond, cls in re.findall(r"(?:\bif|else if) (.*?) \{\s*AcceptClass::(\w+)", body.group(0), re.S):
        terms = [t.strip() for t in cond.split("&&")]
        mimes = [re.fullmatch(r'has\("([^"]+)"\)', t) for t in terms]
        if not all(mimes):
            return None
        chain.append(([m.group(1) for m in mimes], cls))
    last = re.search(r"\} else \{\s*AcceptClass::(\w+)\s*\}\s*\}\s*$", body.group(0))
    if not chain or not last:
        return None
    chain.append(([], last.group(1)))
    return chain


def origin_has(accept: str, mime: str) -> bool:
    """negotiate.rs' `has`: a list element is `mime` (any case) without a q (any case) of 0 or
    less."""
    for part in accept.split(","):
        params = part.split(";")
        q_zero = False
        for p in params[1:]:
            p = p.strip()
            if p[:2].lower() == "q=":
                try:
                    q_zero = q_zero or float(p[2:].strip()) <= 0.0
                except ValueError:
                    pass
        if params[0].strip().lower() == mime.lower() and not q_zero:
            return True
    return False


def origin_class(chain: list[tuple[list[str], str]], accept: str) -> str:
    return next(cls for mimes, cls in chain if all(origin_has(accept, m) for m in mimes))


def vcl_chain(vcl: str) -> list[tuple[list[str], str]]:
    """The VCL's Accept normalisation: [(regexes that must all match, value set)]; the last
    entry ([], value) is its `else`."""
    block = re.search(r"\n    if \(req\.http\.Accept ~.*?\n    \}\n", vcl, re.S)
    if not block:
        return []
    chain = []
    for cond, value in re.findall(r"(?:if|elsif) \((.*?)\) \{\s*set req\.http\.Accept = \"([^\"]*)\";",
                                  block.group(0), re.S):
        chain.append((re.findall(r'req\.http\.Accept ~ "([^"]*)"', cond), value))
    last = re.search(r"\} else \{\s*set req\.http\.Accept = \"([^\"]*)\";\s*\}\n$", block.group(0))
    if last:
        chain.append(([], last.group(1)))
    return chain


def vcl_normalise(chain: list[tuple[list[str], str]], accept: str) -> str:
    for regexes, value in chain:
        if all(re.search(r, accept) for r in regexes):
            return value
    return accept


# Real browsers' image Accept headers, and edge cases of the media-type and q=0 rules.
ACCEPTS = [
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",  # Chromium
    "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",  # Chromium + JPEG XL
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,"
    "image/*;q=0.8,*/*;q=0.5",  # Safari 17
    "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",  # Safari 15
    "image/avif,image/webp,*/*",  # Firefox
    "image/png,image/*;q=0.8,*/*;q=0.5",
    "",
    "*/*",
    "image/jxl",
    "image/jxl,image/webp",
    "IMAGE/JXL , Image/AVIF",
    "image/jxl;q=0,image/avif",
    "image/jxl;q=0.0,image/avif,image/webp",
    "image/jxl;q=.0,image/avif",
    "image/jxl;q=0.5,image/avif;q=0.1",
    "image/jxl; q=0 ,image/avif",
    "image/jxl,image/avif;q=0",
    "image/jxlx,image/avif",
    "image/avif;q=0, image/webp",
    "text/html,image/jxl;level=1;q=0.9,image/avif",
    "image/jxl,image/avif;q=0,image/webp",
    "image/avif; q=0,image/webp",  # was avif at the edge, webp at the origin
    "image/avif;Q=0,image/webp",  # was webp at the edge, avif at the origin
]


def check_vcl_accept(negotiate_rs: Path, vcls: list[Path]) -> int:
    """The edge's Accept normalisation agrees with the origin's classes (AcceptClass): for each
    Accept above and random mixes of media types and q values, the value the VCL sets classifies
    at the origin exactly as the raw header does, and each class has its own VCL value."""
    chain = origin_chain(negotiate_rs.read_text())
    if chain is None:
        print("  AcceptClass::from_accept not found in its expected shape: update this parser")
        return 1
    import random

    rng = random.Random(20)
    parts = ["image/jxl", "image/avif", "image/webp", "IMAGE/JXL", "image/png", "image/*", "*/*", "image/jxl-x"]
    qs = ["", ";q=0", ";q=0.0", ";q=.0", ";q=0.5", ";q=1", "; q=0 ", ";level=1;q=0", ";Q=0", "; q=0.5"]
    accepts = ACCEPTS + [
        ",".join(rng.choice(parts) + rng.choice(qs) for _ in range(rng.randint(1, 5))) for _ in range(500)
    ]
    classes = [cls for _, cls in chain]
    for vcl in vcls:
        vchain = vcl_chain(vcl.read_text())
        if not vchain:
            fail(f"{vcl.name}: no Accept normalisation chain found")
            continue
        values = {}
        for accept in accepts:
            origin, edge = origin_class(chain, accept), vcl_normalise(vchain, accept)
            got = origin_class(chain, edge)
            if got != origin:
                fail(f"{vcl.name}: Accept {accept!r} -> {edge!r} is class {got} at the origin, the raw header {origin}")
                break
            values.setdefault(origin, set()).add(edge)
        missing = [c for c in classes if c not in values]
        expect(not missing, f"{vcl.name}: the Accept cases never reach origin classes {missing}")
        expect(all(len(v) == 1 for v in values.values()), f"{vcl.name}: a class has several edge values {values}")
    print(f"  origin classes {classes}, {len(accepts)} Accept headers")
    return 1 if problems else 0


# --------------------------------------------------------------------------- aws policies
def actions_of(stmt: dict) -> list[str]:
    a = stmt.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def check_aws(files: list[Path]) -> None:
    """docs/aws/*.json (durable originals, docs/design.md §7): valid JSON, IAM documents with a
    Version and Statements; only the imago role may delete originals, no role deletes versions;
    the lifecycle expires noncurrent originals; replication carries delete markers."""
    by_name = {}
    for f in files:
        try:
            by_name[f.name] = json.loads(f.read_text())
        except ValueError as e:
            fail(f"{f}: not JSON: {e}")
    for name, doc in by_name.items():
        if name.startswith("iam-") or name == "bucket-policy.json":
            expect(doc.get("Version") == "2012-10-17", f"{name}: Version must be 2012-10-17")
            expect(isinstance(doc.get("Statement"), list) and doc["Statement"], f"{name}: no Statement list")
        if name.startswith("iam-"):
            for st in doc.get("Statement", []):
                acts = actions_of(st)
                expect("s3:*" not in acts, f"{name}: s3:* is not least privilege")
                expect("s3:DeleteObjectVersion" not in acts, f"{name}: no role deletes object versions")
                originals = any("/uploads/" in r for r in st.get("Resource", []))
                if "s3:DeleteObject" in acts and originals:
                    expect(name == "iam-imago.json", f"{name}: only imago deletes originals (through its API)")
    lc = by_name.get("lifecycle.json", {})
    ups = [r for r in lc.get("Rules", []) if r.get("Filter", {}).get("Prefix") == "uploads/"]
    expect(any("NoncurrentVersionExpiration" in r for r in ups), "lifecycle.json: no noncurrent expiry for uploads/")
    rep = by_name.get("replication.json", {})
    expect(all(r.get("DeleteMarkerReplication", {}).get("Status") == "Enabled" for r in rep.get("Rules", [{}])),
           "replication.json: purges must replicate (DeleteMarkerReplication)")
    print(f"  {len(by_name)} AWS documents")


def main(argv: list[str]) -> int:
    cmd, args = argv[1], [Path(a) for a in argv[2:]]
    if cmd == "compose":
        check_compose(*args)
    elif cmd == "k8s":
        check_k8s(args)
    elif cmd == "secret":
        check_secret(*args)
    elif cmd == "dashboard":
        check_dashboard(args[0])
    elif cmd == "promql":
        write_promql_rules(args[0], args[1])
    elif cmd == "vcl-ladder":
        return check_vcl_ladder(args[0], args[1:])
    elif cmd == "vcl-accept":
        return check_vcl_accept(args[0], args[1:])
    elif cmd == "dockerfile":
        check_dockerfile(args[0])
    elif cmd == "aws":
        check_aws(args)
    else:
        print(f"unknown check {cmd}", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
