# The two commands: `make demo` and `make test`. Both install what is missing first.
# Builds go to build/ (optimised; the program is build/mutual) and build/asan/ (tests,
# under AddressSanitizer + UndefinedBehaviorSanitizer).

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build/asan
DEMO_OUT ?= demo-out

.PHONY: all build demo test test-build check-format format bootstrap fuzz bench clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)/mutual $(DEMO_OUT)

test-build: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMUTUAL_SANITIZE=ON -DMUTUAL_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test: test-build check-format
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

check-format:
	@scripts/check-format

format:
	@scripts/check-format --fix

fuzz: bootstrap
	@scripts/fuzz

bench: build
	@echo "benchmarks live in bench/; see bench/README.md"

clean:
	rm -rf $(BUILD)
