# hookstep — see README.md. `make run` starts local mode; `make test` installs
# what the tests need and runs them.

GO       ?= go
PKGS     := ./...
SHELL    := bash
DATA_DIR ?= .hookstep

FUNCTIONS := api deliver sweeper
# The functions' instruction set (Go's GOARCH): arm64, Graviton, for AWS.
# localstack-deploy builds for this machine's instead, so that LocalStack
# runs the functions without emulation. The stack is told the same
# (-c architecture=...), and refuses a build of the other one.
ARCH     ?= arm64
# Lambda's name for it.
LAMBDA_ARCH = $(if $(filter amd64,$(ARCH)),x86_64,$(ARCH))
# The Lambda runtime emulator, pinned (the module proxy serves a pseudo-version).
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
TOOLS    := $(CURDIR)/build/tools
RIE      := $(TOOLS)/aws-lambda-rie
# The pinned Node tools (dynalite, the CDK CLI, Node 22 first on PATH for
# it and for jsii), installed by npm ci in infra/.
INFRA_NODE := infra/node_modules/.package-lock.json
# A file named by the pinned version: the emulator is installed once per
# version, and again when RIE_VERSION changes.
RIE_STAMP := $(TOOLS)/.aws-lambda-rie-$(RIE_VERSION)

.PHONY: help run test deps tools lint fmt vet build build-local clean

## help: list these targets
help:
	@awk '/^## [a-z0-9-]+:/ { sub(/^## /, ""); i = index($$0, ":"); printf "  %-18s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2) }' $(MAKEFILE_LIST)

## run: start hookstep in local mode (API + workers + sweeper, SQLite in $(DATA_DIR))
run:
	HOOKSTEP_DATA_DIR=$(DATA_DIR) $(GO) run ./functions/local

## deps: download the Go modules, install the pinned Node tools and the Lambda runtime emulator
# (npm ci runs only when infra's package files changed, the emulator's
# install only for a new RIE_VERSION: both are file targets.)
deps: $(INFRA_NODE) $(RIE_STAMP)
	$(GO) mod download

$(RIE_STAMP):
	GOBIN=$(TOOLS) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	@rm -f $(TOOLS)/.aws-lambda-rie-* && touch $@

# gotest runs go test -v on $(2) in the environment $(1), the whole output
# in the log $(3): it shows each package's result and each test that
# failed or skipped, and on a failure the failures' output. A skipped test
# proves nothing: with HOOKSTEP_NO_SKIPS=1 (CI, .ci/run) a skip fails the
# run; without, it is listed. Every test's skip is behind a tool that
# `make deps` installs (or Chromium, which .ci/run does) or a variable
# this Makefile clears or sets.
define gotest
set -o pipefail; $(1) $(GO) test -v -count=1 -timeout 15m $(2) 2>&1 | tee $(3) \
	| grep -E --line-buffered '^(ok|FAIL|--- FAIL|--- SKIP|panic:)'; rc=$$?; \
if [ $$rc -ne 0 ]; then grep -B40 -A20 -e '--- FAIL' -e '^panic:' $(3) | tail -400; echo "full output: $(3)"; exit $$rc; fi; \
if grep -q -e '--- SKIP' $(3); then \
	echo "skipped, so not proven (see $(3)):"; grep -B3 -e '--- SKIP' $(3) | head -60; \
	if [ "$$HOOKSTEP_NO_SKIPS" = 1 ]; then exit 1; fi; \
fi
endef

## test: install what the tests need, then run every test
test: deps
	$(GO) vet $(PKGS)
	@mkdir -p build
	@$(call gotest,HOOKSTEP_E2E_URL= HOOKSTEP_REQUIRE_DYNALITE=1 HOOKSTEP_REQUIRE_AWS_TOOLS=1 HOOKSTEP_RIE=$(RIE),$(PKGS),build/test.log)
	@$(MAKE) --no-print-directory infra-test

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## build-local: build the local-mode binary into build/local/hookstep
build-local:
	CGO_ENABLED=0 $(GO) build -trimpath -o build/local/hookstep ./functions/local

## build: cross-compile each Lambda function to build/<name>/bootstrap (linux/$(ARCH), default arm64), reproducibly
build:
	@case "$(ARCH)" in arm64|amd64) ;; *) echo "ARCH=$(ARCH): want arm64 or amd64" >&2; exit 1;; esac
	@for f in $(FUNCTIONS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
			-ldflags='-s -w -buildid=' -o build/$$f/bootstrap ./functions/$$f || exit 1; \
		printf '%-8s %s %s bytes  sha256 %s\n' $$f $(ARCH) $$(stat -c %s build/$$f/bootstrap) $$(sha256sum build/$$f/bootstrap | cut -c1-16); \
	done

clean:
	rm -rf build

# --- AWS: the CDK app in infra/ (its own Go module, so the root build never links jsii)

# (INFRA_NODE, the pinned Node tools, is set at the top: deps needs it.)
INFRA_PATH := $(CURDIR)/infra/node_modules/.bin:$(PATH)
# Extra CDK CLI arguments, e.g. CDK_ARGS='-c retrySchedule=0s,5s,10s -c removalPolicy=destroy'
# or CDK_ARGS='-c dispatch=queue -c api=http -c retentionDays=30' (infra/README.md lists the keys;
# LocalStack Community has no HTTP APIs, so localstack-deploy needs the default api=rest).
# (Set the architecture with ARCH, not -c architecture: the build follows ARCH.)
CDK_ARGS ?=
# What every CDK command passes before CDK_ARGS.
CDK_CONTEXT = -c architecture=$(LAMBDA_ARCH)
CDK := cd infra && PATH="$(INFRA_PATH)" CDK_DISABLE_CLI_TELEMETRY=1 CDK_DISABLE_VERSION_CHECK=1 npx --no cdk

.PHONY: synth diff deploy destroy infra-test

$(INFRA_NODE): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## synth: build the functions and synthesize the stack into infra/cdk.out (offline: no AWS account or lookups)
synth: build $(INFRA_NODE)
	$(CDK) synth -q --no-notices $(CDK_CONTEXT) $(CDK_ARGS)
	@echo "template: infra/cdk.out/Hookstep.template.json"

## diff: compare the stack with the deployed one (needs AWS credentials)
diff: build $(INFRA_NODE)
	$(CDK) diff --no-notices $(CDK_CONTEXT) $(CDK_ARGS)

## deploy: build the functions and deploy the stack (needs AWS credentials and a bootstrapped account)
deploy: build $(INFRA_NODE)
	$(CDK) deploy --no-notices $(CDK_CONTEXT) $(CDK_ARGS)

## destroy: delete the stack; the table, secret and logs are retained unless deployed with removalPolicy=destroy
destroy: build $(INFRA_NODE)
	$(CDK) destroy --no-notices $(CDK_CONTEXT) $(CDK_ARGS)

## infra-test: the CDK assertion tests and the ASL check of the generated state machine
infra-test: $(INFRA_NODE) $(RIE_STAMP)
	@mkdir -p build
	@start=$$(date +%s); \
	cd infra && { $(call gotest,PATH="$(INFRA_PATH)" HOOKSTEP_REQUIRE_AWS_TOOLS=1 HOOKSTEP_RIE=$(RIE),./...,../build/infra-test.log); } && \
	echo "infra tests (CDK): $$(( $$(date +%s) - start )) s wall time"

# --- LocalStack (needs Docker; see localstack/README.md)

LOCALSTACK_ENDPOINT := http://127.0.0.1:4566
CDKLOCAL := cd infra && PATH="$(INFRA_PATH)" CDK_DISABLE_CLI_TELEMETRY=1 AWS_ENDPOINT_URL=$(LOCALSTACK_ENDPOINT) \
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 npx --no cdklocal

.PHONY: localstack-up localstack-deploy localstack-e2e localstack-down

## localstack-up: start LocalStack Community on 127.0.0.1:4566 and wait until it is ready
localstack-up:
	docker compose -f localstack/docker-compose.yml up -d
	@for i in $$(seq 1 60); do \
		curl -fsS $(LOCALSTACK_ENDPOINT)/_localstack/health >/dev/null 2>&1 && { echo "LocalStack is ready"; exit 0; }; sleep 2; \
	done; echo "LocalStack did not become ready"; exit 1

## localstack-deploy: build the functions for this machine, bootstrap and deploy the stack to LocalStack (private/http receivers allowed)
# A target-specific ARCH also applies to the build this target runs; an
# ARCH given on the command line still wins.
localstack-deploy: ARCH = $(shell $(GO) env GOHOSTARCH)
localstack-deploy: build $(INFRA_NODE)
	$(CDKLOCAL) bootstrap --no-notices
	$(CDKLOCAL) deploy --no-notices --require-approval never $(CDK_CONTEXT) -c removalPolicy=destroy -c allowPrivateTargets=true -c allowHTTP=true $(CDK_ARGS)

## localstack-e2e: run the Svix SDK end-to-end suite against the API deployed to LocalStack
localstack-e2e:
	AWS_ENDPOINT_URL=$(LOCALSTACK_ENDPOINT) localstack/e2e.sh

## localstack-down: stop and remove LocalStack
localstack-down:
	docker compose -f localstack/docker-compose.yml down

# --- Benchmarks: internal/bench measures, functions/bench runs it (see README, Performance)

# Extra arguments, e.g. BENCH_ARGS='-scale 5' for a longer run, or
# BENCH_ARGS='-aws=false -scenarios fanout10 -profile 10s'.
BENCH_ARGS ?=
BENCH_DIR  := build/bench
# The state machine's definition, synthesized from the Go schedule by the
# CDK app; regenerated only when the stack or the schedule changes.
BENCH_DEF  := $(BENCH_DIR)/definition.json

.PHONY: bench

## bench: local-mode throughput/latency/CPU, Lambda footprint and AWS cost per 1M deliveries; JSON under build/bench/
bench: $(INFRA_NODE) $(RIE_STAMP) $(BENCH_DEF)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BENCH_DIR)/hookstep ./functions/local
	$(GO) run ./functions/bench -server $(BENCH_DIR)/hookstep -out $(BENCH_DIR) -rie $(RIE) \
		-dynalite infra/node_modules/.bin/dynalite -definition $(BENCH_DEF) $(BENCH_ARGS)

$(BENCH_DEF): $(INFRA_NODE) $(wildcard infra/stack/*.go infra/cmd/definition/*.go internal/webhook/schedule.go)
	@mkdir -p $(BENCH_DIR)
	cd infra && PATH="$(INFRA_PATH)" $(GO) run ./cmd/definition -o ../$(BENCH_DEF)
