# hookstep — see README.md. `make run` starts local mode; `make test` installs
# what the tests need and runs them.

GO       ?= go
PKGS     := ./...
DATA_DIR ?= .hookstep

.PHONY: run test deps lint fmt vet build-local clean

## run: start hookstep in local mode (API + workers + sweeper, SQLite in $(DATA_DIR))
run:
	HOOKSTEP_DATA_DIR=$(DATA_DIR) $(GO) run ./functions/local

## deps: download the Go modules the build and the tests need
deps:
	$(GO) mod download

## test: install what the tests need, then run every test
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## build-local: build the local-mode binary into build/local/hookstep
build-local:
	CGO_ENABLED=0 $(GO) build -trimpath -o build/local/hookstep ./functions/local

clean:
	rm -rf build
