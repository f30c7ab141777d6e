# imago — `make run` starts the server with the embedded store; `make test` runs every test.
CARGO ?= cargo
IMAGO_BIND ?= 127.0.0.1:8080
export IMAGO_BIND
# cargo-deny and garage, built once per machine by scripts/deps.sh (outside CARGO_HOME).
IMAGO_TOOLS_DIR ?= $(HOME)/.cache/imago-tools
export IMAGO_TOOLS_DIR
export PATH := $(IMAGO_TOOLS_DIR)/bin:$(PATH)

.PHONY: run build deps test test-rust test-sdk sdk-prepare lint audit bench bench-load clean packages

deps:
	@scripts/deps.sh build

build: deps
	$(CARGO) build --release --locked -p imago

run: build
	./target/release/imago serve

test:
	@scripts/deps.sh test
	@scripts/test.sh

# npm packages, signing/js/dist and the Python venv (tests/imgproxy_interop.rs and
# tests/sdk_crosscheck.rs use them); `make test` does this before `cargo test`.
sdk-prepare:
	signing/test.sh --prepare

# Packs the SDKs and crates as the registries would receive them and checks the artefacts
# (LICENSE, no relative links in READMEs); `make test` runs it.
packages: sdk-prepare
	tests/report/prepare.sh
	python3 scripts/check_packages.py

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Dependency audit: fails on any known vulnerability (RustSec, fetched from GitHub) and when the
# database cannot be fetched. `make test` runs it only where the database is reachable.
audit:
	@scripts/deps.sh test
	$(CARGO) fetch --locked
	$(CARGO) deny fetch db
	$(CARGO) deny --offline check advisories licenses bans sources

bench:
	@scripts/deps.sh test
	$(CARGO) bench --locked -p imago --bench signing
	$(CARGO) bench --locked -p imago --bench upload_ticket
	$(CARGO) bench --locked -p imago --bench upload_load
	$(CARGO) bench --locked -p imago --bench analytics
	scripts/bench-load.sh
	scripts/bench-cache.sh
	$(CARGO) bench --locked -p imago --bench bandwidth
	$(CARGO) bench --locked -p imago --bench soak

bench-load: deps
	scripts/bench-load.sh

clean:
	$(CARGO) clean
