# The two commands of the quick start:
#   make run    install what is missing, build, start the gateway on the
#               embedded store with the Incrementor example host
#   make test   install what is missing, build, run every test (plain,
#               under ASan+UBSan, the runtime tests under TSan, and each
#               fuzz target for FUZZ_SMOKE_SECONDS)
#   make cluster  the same with three gateways in one cluster on a private
#               PostgreSQL (scripts/cluster.sh; README, "Trying a cluster")
# Longer runs (docs/testing.md): make fuzz (FUZZ_SECONDS per target, 600 by
# default), make torture (100 gateway SIGKILLs under load, SQLite and
# PostgreSQL), make test-cluster (issue 11's cluster-mode scenarios, not in
# make test until its routing lands).
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
TORTURE_KILLS ?= 100
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DSPAWN_WERROR=ON
endif

.PHONY: all deps build run cluster test test-plain test-asan test-tsan test-fuzz fuzz fuzz-build \
        fuzz-seeds torture test-cluster bench bench-stores bench-cluster bench-actors-10m clean format-check

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@bash scripts/run-example.sh $(BUILD)

cluster: build
	@bash scripts/cluster.sh start $(BUILD)

test: deps test-plain test-asan test-tsan test-fuzz

# The six cluster-mode scenarios of issue 11 (tests/cluster/cluster_mode_test.py)
# on private PostgreSQL and MariaDB servers, as root (nftables, cgroups), ~5 min.
# Their short versions (cluster_lease_test_*, cluster_drain_test) run in make
# test (docs/testing.md). CHAOS_SECONDS: the load run (60).
test-cluster: build
	tests/cluster/run-cluster-mode.sh $(BUILD)

test-plain: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSPAWN_SANITIZE=ON -DSPAWN_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/store/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2

# ThreadSanitizer over the runtime tests that need no gRPC (tests/unit).
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSPAWN_TSAN=ON -DSPAWN_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target tsan_tests
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -j 2 -L tsan

# The libFuzzer targets (tests/fuzz), built with clang in their own dir.
fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSPAWN_FUZZ=ON -DSPAWN_TESTS=OFF -DSPAWN_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all

# Each target for FUZZ_SMOKE_SECONDS from its committed seeds (make test).
test-fuzz: fuzz-build
	cd $(FUZZ_BUILD) && FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) ctest --output-on-failure -L fuzz

# Each target for FUZZ_SECONDS (default 600); new inputs stay in
# $(FUZZ_BUILD)/fuzz-work/<target>/corpus, crashes beside them.
fuzz: fuzz-build
	@for t in client_request host_message stored_row state; do \
	  FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz/fuzz_$$t $$t \
	    tests/fuzz/corpus/$$t $(FUZZ_BUILD)/fuzz-work/$$t || exit 1; \
	done

# Regenerate the seed corpus (tests/fuzz/corpus) from tests/fuzz/seeds.c.
fuzz-seeds: fuzz-build
	$(FUZZ_BUILD)/tests/fuzz/fuzz_seeds tests/fuzz/corpus

# The long torture profile: TORTURE_KILLS SIGKILLs of the gateway under
# load on SQLite and on the fixture's private PostgreSQL server.
torture: build
	cd $(BUILD) && IT_TORTURE_KILLS=$(TORTURE_KILLS) ctest --output-on-failure -R 'integration_torture'

bench: build
	@bash bench/run.sh $(BUILD)

bench-stores: build
	@bash bench/stores.sh $(BUILD)

# Issue 11 §6: failover after kill -9 (20 kills) and the view change on a
# graceful leave, on a private PostgreSQL (root; docs/benchmarks.md).
bench-cluster: build
	@sh bench/cluster.sh $(BUILD)

# The long profile of the actors scenario (docs/benchmarks.md, "Memory per
# actor"): 10,000,000 actors, about two hours on a 2-vCPU machine.
bench-actors-10m: build
	@BENCH_SCENARIOS=actors BENCH_MEM_ACTORS=10000000 bash bench/run.sh $(BUILD)

format-check: build
	cmake --build $(BUILD) --target format-check

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
