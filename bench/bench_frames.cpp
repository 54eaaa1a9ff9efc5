// Frame allocator pairs: mm::FrameAllocator over a host buffer that stands in
// for physical memory (virt = phys + offset, as the kernel's physmap).
#include <memory>
#include <vector>

#include "bench_support.h"
#include "mm/frame_allocator.h"

namespace bench {

namespace {

// A small PC-like map: conventional memory below 640 KiB and 64 MiB above
// 1 MiB, with the first 2 MiB above 1 MiB reserved as the "kernel image".
// That gives the two zones the kernel sees under QEMU.
constexpr uint64_t kPhysEnd = 65ull << 20;
constexpr mm::PhysRange kUsable[] = {
    mm::make_phys_range(0x1000, 0xa0000),
    mm::make_phys_range(1ull << 20, kPhysEnd),
};
constexpr mm::PhysRange kReserved[] = {mm::make_phys_range(1ull << 20, 3ull << 20)};

class FrameFixture {
public:
    FrameFixture() : m_memory(kPhysEnd, mm::kFrameMaxBlock), m_frames(reinterpret_cast<uintptr_t>(m_memory.data()))
    {
        if (m_memory.data() == nullptr)
            return;
        auto added =
            m_frames.init(lib::Span<const mm::PhysRange>(kUsable, 2), lib::Span<const mm::PhysRange>(kReserved, 1));
        m_ok = added.has_value() && m_frames.zone_count() == 2;
    }
    bool ok() const { return m_ok; }
    mm::FrameAllocator& frames() { return m_frames; }

private:
    HostBuffer m_memory; // phys 0 is m_memory.data(); 4 MiB aligned so the offset is too
    mm::FrameAllocator m_frames;
    bool m_ok = false;
};

enum class FrameSetup {
    Typical, // one free block at every order 0..9: a pair neither splits nor merges
    Worst,   // only fully coalesced 4 MiB blocks: order 0 splits ten times, the free merges ten times
};

void frame_pair(benchmark::State& state, unsigned order, FrameSetup setup, mm::Zero zero)
{
    // On the heap (the FrameAllocator's zone tables are ~70 KiB); rebuilt per run so
    // every run starts from the same state.
    auto fixture = std::make_unique<FrameFixture>();
    if (!fixture->ok()) {
        state.SkipWithError("frame allocator init failed");
        return;
    }
    mm::FrameAllocator& frames = fixture->frames();
    // Zone edges that are not 4 MiB aligned leave smaller free blocks. Hold the
    // 4 MiB blocks aside, take everything else, then give the 4 MiB blocks
    // back: only fully coalesced 4 MiB blocks are free afterwards.
    std::vector<PhysicalAddress> top_blocks;
    while (frames.stats().free_blocks[mm::kFrameMaxOrder] > 0) {
        auto block = frames.allocate(mm::kFrameMaxOrder);
        if (!block)
            break;
        top_blocks.push_back(*block);
    }
    for (unsigned o = mm::kFrameMaxOrder; o-- > 0;) {
        while (frames.allocate(o)) { }
    }
    for (PhysicalAddress block : top_blocks)
        (void)frames.free(block, mm::kFrameMaxOrder);
    if (top_blocks.empty() || frames.stats().free_blocks[mm::kFrameMaxOrder] != top_blocks.size()) {
        state.SkipWithError("frame setup failed");
        return;
    }
    // Typical: splitting one 4 MiB block for a pinned frame leaves exactly one
    // free block at each order 0..9.
    if (setup == FrameSetup::Typical && !frames.allocate(0)) {
        state.SkipWithError("frame pin failed");
        return;
    }
    auto pair = [&frames, order, zero] {
        auto frame = frames.allocate(order, zero);
        if (!frame) [[unlikely]]
            return false;
        benchmark::DoNotOptimize(*frame);
        return frames.free(*frame, order).has_value();
    };
    TscCounter tsc;
    for (auto _ : state) {
        if (!pair()) [[unlikely]] {
            state.SkipWithError("frame allocation or free failed");
            break;
        }
    }
    tsc.finish(state);
    sample_cycles(state, pair);
}

} // namespace

void register_frame_benchmarks()
{
    add("frame/pair/order0", [](benchmark::State& s) { frame_pair(s, 0, FrameSetup::Typical, mm::Zero::No); });
    add("frame/pair/order9", [](benchmark::State& s) { frame_pair(s, 9, FrameSetup::Typical, mm::Zero::No); });
    add("frame/worst-case/order0", [](benchmark::State& s) { frame_pair(s, 0, FrameSetup::Worst, mm::Zero::No); });
    add("frame/pair-zeroed/order0", [](benchmark::State& s) { frame_pair(s, 0, FrameSetup::Typical, mm::Zero::Yes); });
}

} // namespace bench
