# emupanel — `make run` and `make test` are the two commands a new user needs (README.md).
# Both install missing Debian packages when run as root, so a fresh clone works as is.

SWIFT        ?= swift
CONFIG       ?= Config/emupanel.json
# Built and run with these; `make test` adds the reference tools the tests compare against
# (and the modules ESLint's report needs: Debian's eslint only recommends them).
RUN_PACKAGES  = libmicrohttpd-dev pkg-config libsqlite3-dev libxxhash-dev opensbi u-boot-qemu e2fsprogs esbuild node-xterm
TEST_PACKAGES = $(RUN_PACKAGES) qemu-system-misc qemu-system-x86 qemu-utils e2fsprogs device-tree-compiler curl chromium chromium-driver python3-venv eslint node-chalk node-strip-ansi node-text-table
BENCH_PACKAGES = $(TEST_PACKAGES) wrk hyperfine
# The Linux guest (guests/linux/build.sh): kernel and initramfs, built once into ~/.cache/emupanel/linux.
LINUX_PACKAGES = $(shell guests/linux/build.sh --packages)

.PHONY: run build test test-browser screenshots test-tsan lint fuzz deps test-deps bench bench-http clean linux linux-deps terminal

run: deps build linux
	.build/release/emupanel serve --config $(CONFIG)

build: deps terminal
	$(SWIFT) build -c release --product emupanel

# The console's terminal: Debian's node-xterm bundled with Debian's esbuild into the ignored
# Public/vendor/ (a no-op when up to date).
terminal: deps
	@./scripts/bundle-terminal

# A test run that hangs fails instead (a crashed test process's helpers once held CI's output
# open for good); a whole run takes 3-6 minutes.
TEST_TIMEOUT ?= timeout --kill-after=30 1500

test: test-deps linux terminal
	$(SWIFT) build --build-tests
	$(TEST_TIMEOUT) $(SWIFT) test --skip-build
	FUZZ_SECONDS=60 ./scripts/fuzz
	./scripts/browser-tests

# ESLint (Debian's, with Debian's module path) over the web UI; swift-format's lint over the
# Swift sources with the project's .swift-format.
lint: test-deps
	NODE_PATH=/usr/share/nodejs eslint --no-eslintrc -c .eslintrc.json 'Public/js/**/*.js'
	$(SWIFT) format lint --strict --configuration .swift-format -r Sources Tests Package.swift

# The HTTP server, panel and migration tests under ThreadSanitizer, in their own scratch path
# (CI runs it; about ten minutes with a warm scratch path, docs/DECISIONS.md).
# Swift's crash backtracer is off there: forked under TSan it hung, holding the output open.
TSAN_FILTER ?= HTTPServerTests|PanelTests|MigrationTests
test-tsan: test-deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/Tests/tsan-suppressions.txt" \
		SWIFT_BACKTRACE=enable=no \
		$(TEST_TIMEOUT) $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --filter '$(TSAN_FILTER)'

# libFuzzer on the QEVM stream reader and inspector (FUZZ_SECONDS, default 60; its own
# scratch path .build-fuzz, so it never invalidates the normal build).
fuzz:
	./scripts/fuzz

# Only the browser tests (needs a built emupanel: `swift build`).
test-browser: test-deps
	$(SWIFT) build --product emupanel
	./scripts/browser-tests

# The Linux guest's kernel and initramfs: a no-op when the cache already holds this build.
linux: linux-deps
	@guests/linux/build.sh >/dev/null

# The browser tests again, writing their screenshots over the tracked ones in docs/screenshots
# (a plain run writes them under the ignored .build-browser/screenshots).
screenshots: test-deps
	$(SWIFT) build --product emupanel
	EMUPANEL_SCREENSHOTS=$(CURDIR)/docs/screenshots ./scripts/browser-tests

# Every figure of bench/RESULTS.md, each script running its anchor side by side.
bench: bench-deps linux
	swift build -c release --product emupanel
	for script in bench/*.sh; do case $$script in */prepare.sh) ;; *) echo "== $$script"; bash $$script || exit 1;; esac; done

bench-http: bench-deps
	bash bench/http.sh

deps:
	@./scripts/apt-ensure $(RUN_PACKAGES)

test-deps:
	@./scripts/apt-ensure $(TEST_PACKAGES)

linux-deps:
	@./scripts/apt-ensure $(LINUX_PACKAGES)

bench-deps:
	@./scripts/apt-ensure $(BENCH_PACKAGES)

clean:
	rm -rf .build .build-fuzz bench/out Public/vendor
