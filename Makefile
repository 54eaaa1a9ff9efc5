# Thin wrapper over the CMake superbuild. Everything real lives in CMakeLists.txt.
BUILD      ?= build
BUILD_TYPE ?= Debug
FIRMWARE   ?= bios
MEMORY     ?= 512M
CMAKE      ?= cmake
CTEST      ?= ctest
GENERATOR  ?= Ninja

.PHONY: all deps configure build iso qemu run run-uefi debug test test-full test-asan toolchain clean distclean bench

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

qemu run: iso
	scripts/qemu.sh --iso $(BUILD)/aethelos.iso --firmware $(FIRMWARE) --memory $(MEMORY)

run-uefi: FIRMWARE = uefi
run-uefi: run

debug: iso
	@sed -e 's|@ELF@|$(abspath $(BUILD))/kernel/aethelos.elf|' scripts/aethelos.gdb.in > $(BUILD)/aethelos.gdb
	@echo "gdb script: $(BUILD)/aethelos.gdb  (run: gdb -x $(BUILD)/aethelos.gdb)"
	scripts/qemu.sh --iso $(BUILD)/aethelos.iso --firmware $(FIRMWARE) --memory $(MEMORY) --debug

test: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j2 -LE full

# Everything, including the tests labelled `full` (boot matrix, long soak, fuzzers).
test-full: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j2

# Host benchmarks (Mana Pool, then Loom of Fate): console tables here, Google Benchmark JSON in $(BUILD)/bench/.
bench: configure
	$(CMAKE) --build $(BUILD) --target aethelos_bench
	$(BUILD)/bench/aethelos_bench --benchmark_out=$(BUILD)/bench/mana_pool.json --benchmark_out_format=json $(BENCH_ARGS)
	$(CMAKE) --build $(BUILD) --target aethelos_sched_bench
	$(BUILD)/bench/sched/aethelos_sched_bench --benchmark_out=$(BUILD)/bench/loom_of_fate.json --benchmark_out_format=json $(BENCH_ARGS)
	@echo "JSON: $(BUILD)/bench/mana_pool.json $(BUILD)/bench/loom_of_fate.json"

# Host tests only, built with AddressSanitizer and UBSan in their own tree.
ASAN_BUILD ?= build-asan
test-asan: deps
	$(CMAKE) -S . -B $(ASAN_BUILD) -G $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DAETHELOS_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	$(CMAKE) --build $(ASAN_BUILD) --target aethelos_host_tests
	$(CTEST) --test-dir $(ASAN_BUILD) --output-on-failure -j2 -L host

clean:
	-$(CMAKE) --build $(BUILD) --target clean
	rm -rf $(BUILD)/kernel $(BUILD)/logs $(BUILD)/*.iso

# Removes the build tree. The cached toolchain (~/.cache/aethelos) is kept; delete it by hand to force a rebuild.
distclean:
	rm -rf $(BUILD) $(ASAN_BUILD) compile_commands.json
