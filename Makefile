# The commands people type.  CMake does the building; this file only names
# the steps.  Every target first runs the idempotent bootstrap, which installs
# the Debian packages the build and tests need when they are missing.

PREFIX ?= /usr/local
JOBS   ?= 2
BUILD  ?= build
ASAN   ?= build-asan
CMAKE_FLAGS ?=

.PHONY: all bootstrap build asan demo test test-release test-asan bench soak install clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRCGC_DEBUG_LEVEL=0 $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN)/CMakeCache.txt:
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DRCGC_DEBUG_LEVEL=2 -DRCGC_SANITIZE=ON \
	      -DRCGC_BUILD_BENCH=OFF $(CMAKE_FLAGS)

asan: bootstrap $(ASAN)/CMakeCache.txt
	cmake --build $(ASAN) -j $(JOBS)

# The tour: every seed example in C, its output explained.
demo: build
	./$(BUILD)/examples/rcgc-tour

# Everything CI runs: the release build's suite, then the whole suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer with debug checks on.
test: test-release test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE soak

test-asan: asan
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) -LE 'soak|nosan'

# Side-by-side benchmarks; results in $(BUILD)/bench/results.json.
bench: build
	bash bench/run.sh $(BUILD)

# Long runs: thousands of differential scenarios, long fuzzing.
soak: build
	cd $(BUILD) && ctest --output-on-failure -L soak

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN)
