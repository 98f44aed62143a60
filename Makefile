# One gate: `make check` is what a change must pass.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GO_FILES := $(shell git ls-files '*.go')

.PHONY: all build test check fmt vet lint run-demo fuzz faults bench perf reconcile-scale

all: check

## build: a static binary with its version stamped, the same flags as deploy/Dockerfile
## (VERSION, COMMIT and BUILD_DATE may be given: make build VERSION=v1.2.3)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(BUILD_DATE)

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/paycomet-notify ./cmd/paycomet-notify

## test: the whole suite (installs redis-server if missing; starts its own Redis and NATS)
test:
	./scripts/test.sh

## fuzz: every fuzz target for FUZZTIME each (default 20s); .ci/run calls it after the tests
fuzz:
	./scripts/fuzz.sh

## faults: only the fault tests (NATS, Redis, receiver killed under load); make test runs them too
faults:
	go test -race -count=1 -v ./faulttest

## reconcile-scale: reconcile 100,000 operations against 100,000 events (time and peak memory)
reconcile-scale:
	RECONCILE_SCALE=1 go test -run TestReconcileScale -count=1 -v ./reconcile/

## bench: the hot-path benchmarks (events, and the handler over real Redis and NATS)
bench:
	go test -run '^$$' -bench . -benchmem ./events ./handler

## perf: loadgen against serve on private Redis and NATS (see docs/README-performance.md); ARGS=... for loadgen flags
perf:
	./scripts/perf.sh $(ARGS)

fmt:
	@out=$$(gofmt -l $(GO_FILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

lint:
	go run $(STATICCHECK) ./...

## check: gofmt, go vet, staticcheck, then the whole suite once (.ci/run calls it, then fuzz)
check: fmt vet lint test

run-demo:
	go run ./cmd/paycomet-notify serve --demo
