# Thin wrapper over the CMake superbuild. Everything real lives in CMakeLists.txt.
BUILD      ?= build
BUILD_TYPE ?= Debug
FIRMWARE   ?= bios
MEMORY     ?= 512M
CMAKE      ?= cmake
CTEST      ?= ctest
GENERATOR  ?= Ninja

.PHONY: all deps configure build iso qemu run run-uefi run-test debug test test-full test-asan fuzz fuzzers toolchain clean distclean bench

all: build

# Installs missing Debian packages (a quick no-op when all are present).
deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	$(CMAKE) --build $(BUILD)

toolchain: configure
	$(CMAKE) --build $(BUILD) --target toolchain

iso: configure
	$(CMAKE) --build $(BUILD) --target kernel
	@echo "ISO: $(BUILD)/aethelos.iso"

# SERIAL_LOG=<file> also keeps what the serial console prints (for scripts/trace-extract, plot-memory).
SERIAL_LOG ?=
qemu run: iso
	scripts/qemu.sh --iso $(BUILD)/aethelos.iso --firmware $(FIRMWARE) --memory $(MEMORY) $(if $(SERIAL_LOG),--serial-log $(SERIAL_LOG))

run-uefi: FIRMWARE = uefi
run-uefi: run

# The test image (ktests, stress, workloads, faults) booted to Eldarin: `spawn`, `kill`, `ktest`.
run-test: iso
	scripts/qemu.sh --iso $(BUILD)/aethelos-test-shell.iso --firmware $(FIRMWARE) --memory $(MEMORY) $(if $(SERIAL_LOG),--serial-log $(SERIAL_LOG))

debug: iso
	@sed -e 's|@ELF@|$(abspath $(BUILD))/kernel/aethelos.elf|' scripts/aethelos.gdb.in > $(BUILD)/aethelos.gdb
	@echo "gdb script: $(BUILD)/aethelos.gdb  (run: gdb -x $(BUILD)/aethelos.gdb)"
	scripts/qemu.sh --iso $(BUILD)/aethelos.iso --firmware $(FIRMWARE) --memory $(MEMORY) --debug

# Every test but the long `full` ones, then the host tests again under ASan and UBSan.
test: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j2 -LE full
	$(MAKE) --no-print-directory test-asan

# Everything, including the tests labelled `full` (boot matrix, long soak, 30 s per fuzzer).
test-full: build fuzzers
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j2

# libFuzzer harnesses (test/fuzz, built with clang into $(BUILD)/fuzz). A long run of one:
#   make fuzz FUZZER=heap SECONDS=600
# Its corpus grows in $(BUILD)/fuzz/run/<name>/corpus; crashes land in .../artifacts/.
FUZZERS := buddy slab heap multiboot2 cmdline shell_parser eldarin
FUZZER  ?=
SECONDS ?= 600
fuzzers: configure
	$(CMAKE) --build $(BUILD) --target fuzzers

fuzz:
	@if [ -z "$(FUZZER)" ] || [ -z "$(filter $(FUZZER),$(FUZZERS))" ]; then \
	  echo "usage: make fuzz FUZZER=<$(subst $(eval) ,|,$(FUZZERS))> [SECONDS=600]" >&2; exit 2; fi
	$(MAKE) --no-print-directory fuzzers
	test/fuzz/run-fuzzer.sh --fuzzer $(BUILD)/fuzz/fuzz_$(FUZZER) --seeds test/fuzz/corpus/$(FUZZER) \
	  --work $(BUILD)/fuzz/run/$(FUZZER) --seconds $(SECONDS)

# Host benchmarks (Mana Pool, then Loom of Fate): console tables here, Google Benchmark JSON in $(BUILD)/bench/.
bench: configure
	$(CMAKE) --build $(BUILD) --target aethelos_bench
	$(BUILD)/bench/aethelos_bench --benchmark_out=$(BUILD)/bench/mana_pool.json --benchmark_out_format=json $(BENCH_ARGS)
	$(CMAKE) --build $(BUILD) --target aethelos_sched_bench
	$(BUILD)/bench/sched/aethelos_sched_bench --benchmark_out=$(BUILD)/bench/loom_of_fate.json --benchmark_out_format=json $(BENCH_ARGS)
	@echo "JSON: $(BUILD)/bench/mana_pool.json $(BUILD)/bench/loom_of_fate.json"

# Host tests only, built with AddressSanitizer and UBSan in their own tree. -O1: the randomized
# models run 5-20x faster than at -O0 (whole run ~45 s instead of ~250 s), for ~2x compile time.
ASAN_BUILD ?= build-asan
test-asan: deps
	$(CMAKE) -S . -B $(ASAN_BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DAETHELOS_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	$(CMAKE) --build $(ASAN_BUILD) --target aethelos_host_tests
	@# Two processes (the randomized models, and the rest) side by side, not one per test case as
	@# ctest runs them: an ASan process costs ~0.1 s to start, and 321 of them took 47 s where the two
	@# halves take ~12 s each. `ctest --test-dir $(ASAN_BUILD) -L host` still runs them one by one.
	@bin=$(ASAN_BUILD)/test/aethelos_host_tests; \
	  $$bin "[model]" > $(ASAN_BUILD)/host-models.log 2>&1 & models=$$!; \
	  $$bin "~[model]" > $(ASAN_BUILD)/host-rest.log 2>&1 & rest=$$!; \
	  status=0; wait $$models || status=1; wait $$rest || status=1; \
	  for half in models rest; do \
	    log=$(ASAN_BUILD)/host-$$half.log; \
	    if grep -q "^All tests passed" $$log; then echo "test-asan ($$half): $$(grep '^All tests passed' $$log)"; \
	    else cat $$log; status=1; fi; \
	  done; \
	  exit $$status

clean:
	-$(CMAKE) --build $(BUILD) --target clean
	rm -rf $(BUILD)/kernel $(BUILD)/logs $(BUILD)/*.iso

# Removes the build tree. The cached toolchain (~/.cache/aethelos) is kept; delete it by hand to force a rebuild.
distclean:
	rm -rf $(BUILD) $(ASAN_BUILD) compile_commands.json
