// The random-size churn trace (bench_support.h: ChurnTrace), replayed on every
// general-purpose allocator: each operation frees one live block and allocates
// its replacement, so the working set stays at ChurnTrace::kSlots blocks. The
// first 8 bytes of each new block are written, so memory is really handed out.
#include <vector>

#include "bench_support.h"

namespace bench {

namespace {

struct Live {
    void* ptr;
    uint32_t size;
};

template <typename Allocator>
void churn(benchmark::State& state, Allocator& allocator)
{
    const ChurnTrace& trace = ChurnTrace::get();
    std::vector<Live> live(ChurnTrace::kSlots);
    for (uint32_t i = 0; i < ChurnTrace::kSlots; ++i) {
        live[i] = {allocator.allocate(trace.initial[i]), trace.initial[i]};
        if (live[i].ptr == nullptr) {
            state.SkipWithError("allocation failed while filling the working set");
            return;
        }
    }
    const ChurnOp* ops = trace.ops.data();
    const size_t op_count = trace.ops.size();
    size_t next = 0;
    TscCounter tsc;
    for (auto _ : state) {
        const ChurnOp op = ops[next];
        next = next + 1 == op_count ? 0 : next + 1;
        Live& slot = live[op.slot];
        allocator.release(slot.ptr, slot.size);
        void* p = allocator.allocate(op.size);
        if (p == nullptr) [[unlikely]] {
            slot.ptr = nullptr;
            state.SkipWithError("allocation failed during the trace");
            break;
        }
        *static_cast<volatile uint64_t*>(p) = op.size;
        slot = {p, op.size};
    }
    tsc.finish(state);
    for (Live& slot : live) {
        if (slot.ptr != nullptr)
            allocator.release(slot.ptr, slot.size);
    }
}

template <typename Allocator>
void churn_malloc(benchmark::State& state)
{
    Allocator allocator;
    if (!allocator.ready()) {
        state.SkipWithError("allocator not loaded");
        return;
    }
    churn(state, allocator);
}

void churn_heap(benchmark::State& state)
{
    // The trace holds ~30 MiB live; the rest is room for fragmentation.
    HeapFixture fixture(256 * 1024 * 1024);
    if (!fixture.ok()) {
        state.SkipWithError("heap init failed");
        return;
    }
    HeapPolicy allocator{&fixture.heap()};
    churn(state, allocator);
    const mm::HeapStats stats = fixture.heap().stats();
    state.counters["heap_MiB"] = static_cast<double>(stats.peak_pages_held) * mm::kHeapPageSize / (1024.0 * 1024.0);
}

} // namespace

void register_churn_benchmarks()
{
    add("churn/heap", churn_heap);
    add(std::string("churn/") + Mimalloc::kName, churn_malloc<Mimalloc>);
    add(std::string("churn/") + Jemalloc::kName, churn_malloc<Jemalloc>);
    add(std::string("churn/") + GlibcMalloc::kName, churn_malloc<GlibcMalloc>);
}

} // namespace bench
