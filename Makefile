# One gate: `make check` is what a change must pass.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GO_FILES := $(shell git ls-files '*.go')

.PHONY: all build test check fmt vet lint run-demo

all: check

build:
	go build -o bin/paycomet-notify ./cmd/paycomet-notify

## test: the whole suite (installs redis-server if missing; starts its own Redis and NATS)
test:
	./scripts/test.sh

fmt:
	@out=$$(gofmt -l $(GO_FILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

lint:
	go run $(STATICCHECK) ./...

check: fmt vet lint test

run-demo:
	go run ./cmd/paycomet-notify serve --demo
