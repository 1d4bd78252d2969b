# meshcar: every entry point a person or CI needs. Each target installs what it needs itself.

SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
TAP_BUILT_STAMP := node_modules/.tap-plugins-built
BUILD_STAMP := dist/.built
TRUST_DOMAIN ?= mesh.local
CA_DIR ?= certs/ca
CERTS ?= certs
SERVICE ?=
# TTL: lifetime of what make cert or make token makes (defaults: 24h for a certificate, 1h for a token)
TTL ?=
# FORCE=1: let make ca and make cert replace what is already there, and make clean remove certs/
FORCE ?=

.PHONY: setup tools tools-demo build test demo ca cert token clean bench-ca bench-metrics bench-identity image help

## setup: install the locked npm dependencies (npm ci) when the lockfile changed
setup: $(NODE_MODULES_STAMP)

$(NODE_MODULES_STAMP): package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $(NODE_MODULES_STAMP)

## help: this list: every target, from the ## lines above each in this Makefile (plain `make` is setup)
# the variables a line names are shown with their values (make help CA_DIR=x shows x), not as $(CA_DIR)
help:
	@sed -n 's/^## //p' $(firstword $(MAKEFILE_LIST)) | sed -e 's|$$(TRUST_DOMAIN)|$(TRUST_DOMAIN)|g' -e 's|$$(CA_DIR)|$(CA_DIR)|g' -e 's|$$(CERTS)|$(CERTS)|g'

## tools: the command-line programs the tests drive as real clients (openssl, curl, and Debian's
## prometheus package for prometheus + promtool: test/e2e/prometheus.test.ts scrapes for real,
## test/e2e/workers.test.ts checks the aggregated page with promtool;
## python3-h2, the independent HTTP/2 peer of test/h2/conformance-python.test.ts; iproute2 and
## dnsmasq-base for test/e2e/multihost.test.ts: network namespaces and a real DNS server (iproute2
## also for test/outbound/dns-no-ipv6.test.ts);
## nghttp2-client (nghttp, h2load) and haproxy: the HTTP/2 peers of test/e2e/interop-h2-peers.test.ts)
tools:
	@missing=""; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing="$$missing prometheus"; \
	{ python3 -c 'import h2' 2>/dev/null || /usr/bin/python3 -c 'import h2' 2>/dev/null; } || missing="$$missing python3-h2"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v dnsmasq >/dev/null || missing="$$missing dnsmasq-base"; \
	{ command -v nghttp >/dev/null && command -v h2load >/dev/null; } || missing="$$missing nghttp2-client"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
	fi

## tools-demo: what make demo needs besides Node: openssl and curl (Debian packages, when missing)
tools-demo:
	@missing=""; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
	fi

## build: compile TypeScript to dist/ (only when a file under src/, tsconfig.json or the packages changed)
build: $(BUILD_STAMP)

# every make target that runs meshcar builds first; a full tsc run takes ~7 s even when nothing
# changed, so dist/ is rebuilt only when a source file (or a folder of them: a file added or
# removed), the compiler settings or the installed packages are newer than the last build
#
# tsc checks the types and writes every module to dist/ as it is (the demo runner and tests load
# some of them by path); then esbuild writes the command itself, dist/cli.js, as one bundle of
# meshcar's own modules (chunks dist/chunk-*.js for what loads only when used: the CA, the node
# codec, the spec worker's code). Loading ~300 small modules one by one cost a sidecar's start
# ~80 ms of CPU (330 -> 250 ms to ready, median of 7; RSS 67.4 -> 62.8 MB). The two packages
# every `meshcar run` loads whole at start (yaml, pino: ~100 CommonJS files, each found, read and
# compiled on its own) go into the bundle too: 0.405 -> 0.355 s of CPU to ready, median of 8
# alternated, RSS -0.9 MB. prom-client stays out: src/metrics/prom-parts.ts loads its parts one
# by one from node_modules (never its index, which pulls @opentelemetry/api), and a bundled copy
# beside them would be a second prom-client. The packages loaded only when used (undici,
# node-forge, Ajv, the OpenAPI parser, http2-wrapper) stay in node_modules, so a start that never
# needs them never reads them; the banner gives bundled CommonJS code a `require` for Node's own
# modules. Per request it changes nothing measurable (make bench, interleaved runs). dist/spec-load-worker.js is the worker's bundle, next to the chunks, so the
# path a chunk asks for (./spec-load-worker.js) is there as it is for the module per file.
$(BUILD_STAMP): $(shell find src -name '*.ts' -o -type d) tsconfig.json package.json $(NODE_MODULES_STAMP)
	npx tsc -p tsconfig.json
	@npm run -s bundle
	@touch $(BUILD_STAMP)

## test: every test (tap), after setup and build
# what it needs is made by a sub-make with three jobs: tsc (~10 s) and tap's plugin build (~7 s)
# are independent, and on two cores side by side they end ~7 s sooner (both wait for npm ci)
test:
	@$(MAKE) --no-print-directory -j3 build tools $(TAP_BUILT_STAMP)
	@files="$$(node test/helpers/plan-test-run.mjs)" && \
	  echo "npx tap -R terse <$$(echo $$files | wc -w) files in test/.groups/: whole-mesh groups taking turns with a folder's unit tests, the unit files that run alone last>" && \
	  npx tap -R terse $$files

# test/helpers/plan-test-run.mjs says which files share a process and why: tap starts a process
# per file at ~0.85 s of CPU each, and most unit test files take less than that themselves

# tap compiles its plugin set (package.json "tap.plugin": ours drops @tapjs/typescript, .ts
# loads with test/helpers/ts-loader.mjs) into node_modules; a run that finds the set out of
# date rebuilds it but still runs with the old loaders, so it is built once here, first
$(TAP_BUILT_STAMP): package.json $(NODE_MODULES_STAMP)
	npx tap build >/dev/null
	@touch $(TAP_BUILT_STAMP)

## image: the container image (Dockerfile) as meshcar:<version>, with docker or podman; IMAGE=name:tag to
## rename. Without a working engine (a client alone is not enough) it says so and skips.
IMAGE ?= meshcar:$(shell node -p "require('./package.json').version" 2>/dev/null || echo latest)
image:
	@engine=""; \
	for e in docker podman; do \
	  if command -v $$e >/dev/null && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then \
	  echo "make image: skipped: no docker or podman engine is available here (test/deploy/image.test.ts checks the build files without one)"; \
	  exit 0; \
	fi; \
	echo "building $(IMAGE) with $$engine"; \
	$$engine build -t $(IMAGE) .

## demo: a whole local mesh (CA, frontend → orders, their sidecars, traffic); DEMO_SECONDS=N stops after N s;
## DEMO_PORT_BASE=N moves every demo port (N to N+3443; default 15000)
demo: build tools-demo
	DEMO_PORT_BASE='$(DEMO_PORT_BASE)' node dist/demo/run-demo.js

## rotate-demo: the demo mesh with 5 s certificates while the CA root rotates (root add, activate, retire); prints each sidecar's roots per step and the failed requests (zero)
.PHONY: rotate-demo
rotate-demo: build
	node dist/demo/rotate-demo.js

## ca: a new CA for $(TRUST_DOMAIN) in $(CA_DIR) (refuses to overwrite an existing one; FORCE=1 replaces it)
ca: build
	@if [ -e $(CA_DIR)/root.crt ] && [ "$(FORCE)" != 1 ]; then echo "make ca: $(CA_DIR) already holds a CA; FORCE=1 make ca replaces it (every certificate it issued stops being trusted)" >&2; exit 1; fi
	node dist/cli.js ca init --dir $(CA_DIR) --trust-domain $(TRUST_DOMAIN)$(if $(filter 1,$(FORCE)), --force)

## cert SERVICE=name [TTL=24h]: an SVID for one service, offline, into $(CERTS)/<name>/ (FORCE=1 replaces one there)
cert: build
	@if [ -z "$(SERVICE)" ]; then echo "make cert: say which service, e.g. make cert SERVICE=orders" >&2; exit 2; fi
	@if [ -e $(CERTS)/$(SERVICE) ] && [ "$(FORCE)" != 1 ]; then echo "make cert: $(CERTS)/$(SERVICE) already exists (it may be a sidecar's identity.dir); FORCE=1 make cert SERVICE=$(SERVICE) replaces its files" >&2; exit 1; fi
	@test -f $(CA_DIR)/root.crt || node dist/cli.js ca init --dir $(CA_DIR) --trust-domain $(TRUST_DOMAIN)
	node dist/cli.js ca issue --dir $(CA_DIR) --service $(SERVICE) --out $(CERTS)/$(SERVICE) --ttl $(or $(TTL),24h)

## token SERVICE=name [TTL=1h]: a join token for one service into $(CERTS)/<name>.token
# CERTS is made when missing, 0700 (it holds tokens), as make cert makes it: the command itself
# refuses an --out in a missing folder (a mistyped path), but this folder is the target's own
token: build
	@if [ -z "$(SERVICE)" ]; then echo "make token: say which service, e.g. make token SERVICE=orders" >&2; exit 2; fi
	@if [ ! -e $(CA_DIR) ]; then echo "make token: there is no CA in $(CA_DIR) yet: make ca makes one (CA_DIR=DIR names another)" >&2; exit 1; fi
	@test -d $(CERTS) || mkdir -p -m 700 $(CERTS)
	node dist/cli.js ca token --dir $(CA_DIR) --service $(SERVICE) --ttl $(or $(TTL),1h) --out $(CERTS)/$(SERVICE).token

## bench: sidecar overhead: the same load direct to an app and through an outbound+inbound pair (bench/README.md)
.PHONY: bench
bench: build
	node bench/run.mjs

## bench-identity: time from sidecar start to ready against a running CA (first start and restart)
bench-identity: build
	node bench/identity-ready.mjs

## bench-ca: CA signing throughput and latency
bench-ca: build
	taskset -c 0 node bench/ca-sign.mjs

## bench-metrics: /metrics render time and size with 100 routes × 4 peers × 2 directions populated
bench-metrics: build
	node bench/metrics-scrape.mjs

## clean: remove build output (and the test run's group files); $(CERTS)/ (the CA, SVIDs, tokens) is kept, as make ca keeps a CA (FORCE=1 removes it too, but certs/README.md)
clean:
	rm -rf dist .tap test/.groups
	@if [ "$(FORCE)" = 1 ]; then find $(CERTS) -mindepth 1 ! -name README.md -exec rm -rf {} +; \
	elif [ -n "$$(find $(CERTS) -mindepth 1 ! -name README.md -print -quit 2>/dev/null)" ]; then \
	  echo "make clean: $(CERTS)/ is kept (it holds the CA and the certificates it issued); FORCE=1 make clean removes it too" >&2; fi
