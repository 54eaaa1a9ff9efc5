// aethelos_fragmentation_trace: how fragmented do the Mana Pool's buddies get?
//
// Runs a random alloc/free trace with a fixed seed against the generic buddy
// code, exactly as the kernel compiles it, and prints the final state in the
// style of /proc/buddyinfo plus Linux's unusable free index and
// __fragmentation_index per order (both in thousandths, as the allocator
// computes them).
//
//   heap    mm::BuddyAllocator, 64 B .. 64 KiB blocks, over a 4 MiB region (a
//           heap that is one buddy alone, no slabs), twice: request orders
//           log-uniform (uniform over 0..10) and geometric (as for frames,
//           below); the byte size is then uniform in (block / 2, block] and
//           goes through allocate(size).
//   frames  mm::FrameAllocator (4 KiB .. 4 MiB, orders 0..10) over 512 MiB of
//           fake physical memory; orders geometric: order k with probability
//           2^-(k+1) for k < 10, the remainder order 10.
//
// Policy per operation: while the allocated bytes (whole blocks) are below 70%
// of the managed bytes, allocate; otherwise free a uniformly chosen live block.
// An allocation that fails (fragmentation) is counted and a free is done
// instead. 10^7 operations per configuration, seed 0x4d414e41 ("MANA").
//
//   cmake --build build --target aethelos_fragmentation_trace
//   build/test/aethelos_fragmentation_trace [ops] [seed]
//
// The figures in docs/memory.md come from exactly this run.
#include <sys/mman.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mm/buddy_allocator.h"
#include "mm/fragmentation.h"
#include "mm/frame_allocator.h"

namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr double kOccupancy = 0.70;

// SplitMix64: tiny, fast, and the same sequence on every host.
class Rng {
public:
    explicit Rng(uint64_t seed) : m_state(seed) { }
    uint64_t next()
    {
        uint64_t z = (m_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }

private:
    uint64_t m_state;
};

struct TraceCounters {
    uint64_t ops = 0;
    uint64_t allocations = 0;
    uint64_t frees = 0;
    uint64_t failures = 0;
    uint64_t failures_by_order[mm::kBuddyMaxOrders] = {};
    double occupancy_sum = 0; // sampled after every op once the target was first reached
    uint64_t occupancy_samples = 0;
};

struct Live {
    uintptr_t address;
    unsigned order;
};

// Per-order table: buddyinfo, unusable free index, fragmentation index.
void print_orders(const char* unit_name, uint64_t min_block, unsigned order_count, const uint64_t* free_blocks,
                  const int32_t* unusable, const int32_t* fragmentation)
{
    std::printf("  %-5s %9s %10s %12s %9s %9s\n", "order", unit_name, "free", "free bytes", "unusable", "frag");
    for (unsigned k = 0; k < order_count; ++k) {
        const uint64_t block = min_block << k;
        char size[32];
        if (block >= MiB)
            std::snprintf(size, sizeof size, "%" PRIu64 " MiB", block / MiB);
        else if (block >= KiB)
            std::snprintf(size, sizeof size, "%" PRIu64 " KiB", block / KiB);
        else
            std::snprintf(size, sizeof size, "%" PRIu64 " B", block);
        std::printf("  %-5u %9s %10" PRIu64 " %12" PRIu64 " %9.3f %9.3f\n", k, size, free_blocks[k],
                    free_blocks[k] * block, unusable[k] / 1000.0, fragmentation[k] / 1000.0);
    }
    std::printf("  buddyinfo:");
    for (unsigned k = 0; k < order_count; ++k)
        std::printf(" %" PRIu64, free_blocks[k]);
    std::printf("\n");
}

void print_counters(const TraceCounters& c, unsigned order_count)
{
    std::printf("  ops %" PRIu64 ": %" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu64
                " failed allocations (by order:",
                c.ops, c.allocations, c.frees, c.failures);
    for (unsigned k = 0; k < order_count; ++k)
        std::printf(" %" PRIu64, c.failures_by_order[k]);
    std::printf(")\n  mean occupancy in steady state %.2f%%\n",
                c.occupancy_samples ? 100.0 * c.occupancy_sum / c.occupancy_samples : 0.0);
}

// Generic trace driver. alloc(order) -> address or 0; release(address, order).
template <typename Alloc, typename Release, typename Used, typename PickOrder>
TraceCounters run_trace(uint64_t ops, uint64_t total_bytes, Rng& rng, Alloc&& alloc, Release&& release, Used&& used,
                        PickOrder&& pick_order, std::vector<Live>& live)
{
    TraceCounters c;
    const uint64_t target = static_cast<uint64_t>(kOccupancy * static_cast<double>(total_bytes));
    bool steady = false;
    auto free_random = [&] {
        if (live.empty())
            return;
        const uint64_t i = rng.below(live.size());
        const Live victim = live[i];
        live[i] = live.back();
        live.pop_back();
        release(victim.address, victim.order);
        ++c.frees;
    };
    for (uint64_t op = 0; op < ops; ++op) {
        if (used() < target) {
            const unsigned order = pick_order();
            const uintptr_t address = alloc(order);
            if (address != 0) {
                live.push_back(Live{address, order});
                ++c.allocations;
            } else {
                ++c.failures;
                ++c.failures_by_order[order];
                free_random();
            }
        } else {
            steady = true;
            free_random();
        }
        if (steady) {
            c.occupancy_sum += static_cast<double>(used()) / static_cast<double>(total_bytes);
            ++c.occupancy_samples;
        }
        ++c.ops;
    }
    return c;
}

int run_heap(uint64_t ops, uint64_t seed, bool geometric)
{
    constexpr size_t kRegion = 4 * MiB;
    constexpr size_t kMin = 64;
    constexpr size_t kMax = 64 * KiB;
    void* region = std::aligned_alloc(kMax, kRegion);
    const size_t meta_bytes = mm::BuddyAllocator::metadata_bytes_needed(region, kRegion, kMin, kMax);
    void* meta = std::malloc(meta_bytes);
    mm::BuddyAllocator buddy;
    if (region == nullptr || meta == nullptr || !buddy.init(region, kRegion, kMin, kMax, meta, meta_bytes)) {
        std::fprintf(stderr, "heap: init failed\n");
        return 1;
    }
    const unsigned orders = buddy.order_count();
    Rng rng(seed);
    std::vector<Live> live;
    live.reserve(kRegion / kMin);

    std::printf("== heap buddy: 64 B .. 64 KiB blocks over 4 MiB, %s request sizes, 70%% target ==\n",
                geometric ? "geometric" : "log-uniform");
    const TraceCounters c = run_trace(
        ops, buddy.bytes_total(), rng,
        [&](unsigned order) -> uintptr_t {
            // A byte size in (block / 2, block] (or 1..64 at order 0), through allocate(size).
            const size_t block = buddy.block_size(order);
            const size_t low = order == 0 ? 1 : block / 2 + 1;
            const size_t size = low + rng.below(block - low + 1);
            auto p = buddy.allocate(size);
            return p ? reinterpret_cast<uintptr_t>(*p) : 0;
        },
        [&](uintptr_t address, unsigned order) {
            if (!buddy.free_sized(reinterpret_cast<void*>(address), buddy.block_size(order))) {
                std::fprintf(stderr, "heap: free failed\n");
                std::exit(1);
            }
        },
        [&] { return buddy.bytes_used(); },
        [&] {
            if (!geometric)
                return static_cast<unsigned>(rng.below(orders));
            const uint64_t r = rng.next() | (uint64_t{1} << (orders - 1));
            return static_cast<unsigned>(__builtin_ctzll(r));
        },
        live);

    const mm::BuddyStats s = buddy.stats();
    print_counters(c, orders);
    std::printf("  final: %" PRIu64 " live blocks, %" PRIu64 " of %" PRIu64 " bytes used (%.2f%%), %" PRIu64 " free\n",
                static_cast<uint64_t>(live.size()), s.bytes_used, s.bytes_total,
                100.0 * static_cast<double>(s.bytes_used) / static_cast<double>(s.bytes_total), s.bytes_free);
    print_orders("block", s.min_block, s.order_count, s.free_blocks, s.unusable_index, s.fragmentation_index);
    const mm::BuddyCheckReport check = buddy.check_invariants();
    std::printf("  invariants: %s\n", check.ok() ? "ok" : mm::to_string(check.first));

    // Everything back: must coalesce to the initial state.
    for (const Live& l : live)
        (void)buddy.free(reinterpret_cast<void*>(l.address));
    std::printf("  after freeing all: %" PRIu64 " bytes used, %" PRIu64 " free max blocks, invariants %s\n\n",
                buddy.bytes_used(), buddy.free_blocks(orders - 1), buddy.check_invariants().ok() ? "ok" : "BROKEN");
    const bool ok = check.ok() && buddy.bytes_used() == 0;
    std::free(meta);
    std::free(region);
    return ok ? 0 : 1;
}

int run_frames(uint64_t ops, uint64_t seed)
{
    constexpr uint64_t kMemory = 512 * MiB;
    // Fake physical 0..512 MiB: an anonymous mapping aligned to the largest block
    // (the allocator's phys->virt offset must be a multiple of it).
    const size_t map_bytes = kMemory + mm::kFrameMaxBlock;
    void* raw = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        std::fprintf(stderr, "frames: mmap failed\n");
        return 1;
    }
    const uintptr_t base = (reinterpret_cast<uintptr_t>(raw) + mm::kFrameMaxBlock - 1) & ~(mm::kFrameMaxBlock - 1);
    auto* frames = new mm::FrameAllocator(base);
    // Like a small PC: the first MiB is reserved, the rest usable.
    const mm::PhysRange usable = mm::make_phys_range(0, kMemory);
    const mm::PhysRange reserved = mm::make_phys_range(0, 1 * MiB);
    auto added = frames->init(lib::Span<const mm::PhysRange>(&usable, 1), lib::Span<const mm::PhysRange>(&reserved, 1));
    if (!added) {
        std::fprintf(stderr, "frames: init failed: %s\n", mm::to_string(added.error()));
        return 1;
    }
    Rng rng(seed ^ 0x4652414d45ull);
    std::vector<Live> live;
    live.reserve(kMemory / mm::kFrameSize);

    std::printf("== frames: 4 KiB .. 4 MiB (orders 0..10) over 512 MiB (first MiB reserved), geometric orders, "
                "70%% target ==\n");
    std::printf("  zones %zu, managed %" PRIu64 " bytes, metadata %" PRIu64 " bytes\n", frames->zone_count(),
                frames->bytes_total(), frames->stats().metadata_bytes);
    const TraceCounters c = run_trace(
        ops, frames->bytes_total(), rng,
        [&](unsigned order) -> uintptr_t {
            auto p = frames->allocate(order);
            return p ? p->get() : 0;
        },
        [&](uintptr_t address, unsigned order) {
            if (!frames->free(PhysicalAddress(address), order)) {
                std::fprintf(stderr, "frames: free failed\n");
                std::exit(1);
            }
        },
        [&] { return frames->bytes_used(); },
        [&] {
            // Order k with probability 2^-(k+1), k < 10; the remainder is order 10.
            const uint64_t r = rng.next() | (uint64_t{1} << mm::kFrameMaxOrder);
            return static_cast<unsigned>(__builtin_ctzll(r));
        },
        live);
    // Physical address 0 is reserved, so allocate() never returns 0 as a success.

    const mm::FrameStats s = frames->stats();
    int32_t unusable[mm::kFrameOrders];
    for (unsigned k = 0; k < mm::kFrameOrders; ++k)
        unusable[k] = mm::unusable_free_index(s.free_blocks, mm::kFrameOrders, k);
    print_counters(c, mm::kFrameOrders);
    std::printf("  final: %" PRIu64 " live blocks, %" PRIu64 " of %" PRIu64 " bytes used (%.2f%%), %" PRIu64 " free\n",
                static_cast<uint64_t>(live.size()), s.bytes_used, s.bytes_total,
                100.0 * static_cast<double>(s.bytes_used) / static_cast<double>(s.bytes_total), s.bytes_free);
    print_orders("block", mm::kFrameSize, mm::kFrameOrders, s.free_blocks, unusable, s.fragmentation_index);
    const mm::FrameCheckReport check = frames->check_invariants();
    std::printf("  invariants: %s\n", check.ok() ? "ok" : "BROKEN");
    for (const Live& l : live)
        (void)frames->free(PhysicalAddress(l.address));
    std::printf("  after freeing all: %" PRIu64 " bytes used, %" PRIu64 " free max blocks, invariants %s\n",
                frames->bytes_used(), frames->stats().free_blocks[mm::kFrameMaxOrder],
                frames->check_invariants().ok() ? "ok" : "BROKEN");
    const bool ok = check.ok() && frames->bytes_used() == 0;
    delete frames;
    munmap(raw, map_bytes);
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    const uint64_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 10'000'000ull;
    const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : 0x4d414e41ull;
    std::printf("Mana Pool fragmentation trace: %" PRIu64 " operations per configuration, seed %#" PRIx64
                ", occupancy target %.0f%%\n"
                "unusable = Linux unusable_free_index, frag = Linux __fragmentation_index (-1 = a block of that "
                "order is free)\n\n",
                ops, seed, kOccupancy * 100);
    int rc = run_heap(ops, seed, false);
    rc |= run_heap(ops, seed, true);
    rc |= run_frames(ops, seed);
    return rc;
}
