# The whole test suite is `make test`; `.ci/run` calls it on a fresh machine.
GO        ?= go
# Node suites, each with package-lock.json and `npm test`: the Socket.IO interop
# tests, the JS client (builds, then tests against a real ecb demo), the demo
# web app (type-checks; fails when the committed web/dist is stale), and the
# browser tests (Debian's chromium through playwright-core), and the Node
# backend SDK (unit, contract and end-to-end tests against a real ecb serve).
NODE_DIRS := test/interop clients/js web test/browser sdk/node
STATICCHECK_VERSION := v0.8.2
# Debian's interpreter, where apt-get installs python3-socketio (not a pyenv
# python3 that may come first on PATH).
PYTHON    ?= /usr/bin/python3

.PHONY: test check node-deps go-test node-test python-test demo build clean fuzz bench bench-cluster bench-sqlite release

# node-deps comes before go-test: the multi-node Go tests drive the official
# socket.io-client from test/interop (test/e2e/balancer_test.go).
test: check node-deps go-test node-test python-test

build:
	$(GO) build -o bin/ecb ./cmd/ecb

# The README's first command: build with a visible step (a cold build cache
# takes about 70 s on 2 cores, docs/decisions.md "SQLite driver"), then run
# the demo. DEMO_ARGS are passed on, e.g. make demo DEMO_ARGS='--nodes 3'.
DEMO_ARGS ?=
demo:
	@echo "== building ecb into bin/ecb (the first build takes about 70 s on 2 cores, later ones a few seconds)..."
	@$(GO) build -o bin/ecb ./cmd/ecb
	@echo "== starting bin/ecb demo $(DEMO_ARGS)"
	bin/ecb demo $(DEMO_ARGS)

# The Go SDK is its own module (sdk/ecbserver/go.mod), which ./... of the
# main module does not reach: vet, staticcheck, tests and fuzzing run in it too.
SDK_DIR := sdk/ecbserver

# Static checks: formatting, vet, staticcheck.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(SDK_DIR) && $(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$$( command -v staticcheck || echo $$($(GO) env GOPATH)/bin/staticcheck ) ./...
	cd $(SDK_DIR) && $$( command -v staticcheck || echo $$($(GO) env GOPATH)/bin/staticcheck ) ./...

# Go tests with the race detector; fuzz targets run their seed corpus.
go-test:
	$(GO) test -race -count=1 -timeout 15m ./...
	cd $(SDK_DIR) && $(GO) test -race -count=1 -timeout 5m ./...

# Node suites against real ECB processes (official socket.io-client, ...).
# Each installs exactly its lockfile with `npm ci` (skipped when node_modules is
# already newer than the lockfile).
node-deps:
	@for d in $(NODE_DIRS); do \
	  ( cd $$d && { [ node_modules/.package-lock.json -nt package-lock.json ] || { echo "== npm ci in $$d"; npm ci --no-audit --no-fund; }; } ) || exit 1; \
	done

node-test: node-deps
	@for d in $(NODE_DIRS); do \
	  echo "== $$d"; \
	  ( cd $$d && timeout 900 npm test ) || exit 1; \
	done

# The Python interop suite: Debian's python3-socketio client against a real
# ecb demo, over WebSocket, long-polling and polling with upgrade. Without the
# package it is skipped, except under CI=true, where it fails.
python-test:
	cd test/interop-python && timeout 600 $(PYTHON) -W ignore::ResourceWarning -m unittest -v test_ecb

# Run every fuzz target for FUZZTIME each (not part of `make test`).
FUZZTIME ?= 30s
fuzz:
	@for dir in . $(SDK_DIR); do \
	  for pkg in $$(cd $$dir && $(GO) list ./...); do \
	    for f in $$(cd $$dir && $(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	      echo "== $$pkg $$f"; (cd $$dir && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg) || exit 1; \
	    done; \
	  done; \
	done

clean:
	rm -rf bin dist

# Static binaries (no cgo) for each platform into dist/, with SHA256SUMS.
# VERSION defaults to the git tag (`git describe`); `ecb version` prints it.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64 windows/amd64
release:
	rm -rf dist && mkdir -p dist
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/ecb-$(VERSION)-$$os-$$arch$$ext; echo "== $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
	    -ldflags "-s -w -X github.com/ecbridge/ecb/internal/cli.Version=$(VERSION)" \
	    -o $$out ./cmd/ecb || exit 1; \
	done
	cd dist && sha256sum ecb-* > SHA256SUMS && cat SHA256SUMS

# Fan-out against Node socket.io 4.8, side by side (docs/performance.md).
bench: build
	bin/ecb bench fanout --clients 1000 --messages 5000 --window 16 --rounds 3

# The SQLite drivers of the reference backend side by side: cold-cache build
# time of ./cmd/ecb, then run time of its typical calls (docs/decisions.md).
bench-sqlite:
	bench/sqlite/build.sh 1
	bench/sqlite/run.sh 3

# The cluster scenario: 1 and 2 nodes on a private Redis, ECB and Node
# socket.io + @socket.io/redis-adapter (docs/performance.md).
bench-cluster: build
	bin/ecb bench fanout --cluster --redis own
