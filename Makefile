# emupanel — `make run` and `make test` are the two commands a new user needs (README.md).
# Both install missing Debian packages when run as root, so a fresh clone works as is.

SWIFT        ?= swift
CONFIG       ?= Config/emupanel.json
# Built and run with these; `make test` adds the reference tools the tests compare against.
RUN_PACKAGES  = libmicrohttpd-dev pkg-config libsqlite3-dev libxxhash-dev opensbi u-boot-qemu
TEST_PACKAGES = $(RUN_PACKAGES) qemu-system-misc device-tree-compiler curl chromium chromium-driver python3-venv
BENCH_PACKAGES = $(TEST_PACKAGES) wrk hyperfine

.PHONY: run build test test-browser fuzz deps test-deps bench bench-http clean

run: deps build
	.build/release/emupanel serve --config $(CONFIG)

build: deps
	$(SWIFT) build -c release --product emupanel

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	FUZZ_SECONDS=60 ./scripts/fuzz
	./scripts/browser-tests

# libFuzzer on the QEVM stream reader and inspector (FUZZ_SECONDS, default 60; its own
# scratch path .build-fuzz, so it never invalidates the normal build).
fuzz:
	./scripts/fuzz

# Only the browser tests (needs a built emupanel: `swift build`).
test-browser: test-deps
	$(SWIFT) build --product emupanel
	./scripts/browser-tests

bench: bench-http

bench-http: bench-deps
	bash bench/http.sh

deps:
	@./scripts/apt-ensure $(RUN_PACKAGES)

test-deps:
	@./scripts/apt-ensure $(TEST_PACKAGES)

bench-deps:
	@./scripts/apt-ensure $(BENCH_PACKAGES)

clean:
	rm -rf .build .build-fuzz bench/out
