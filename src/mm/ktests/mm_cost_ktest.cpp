// The Mana Pool's in-kernel cost: instructions per allocate/free pair.
//
// Under QEMU TCG with `-icount shift=0` the guest's TSC is the virtual clock,
// which advances exactly 1 ns per executed instruction, so a TSC delta *is* an
// instruction count and the figures are the same on every run and every host
// (scripts/mm-cost.sh boots this suite that way, twice, and compares). Each
// figure is measured with interrupts disabled, after one warm-up pair, over
// kPairs pairs; the cost of reading the counter is subtracted, the loop's own
// few instructions per pair are included.
//
// The suite first checks whether the counter really counts instructions (adding
// exactly 2 * kCalibrationLoops instructions must add exactly that many ticks)
// and says "insns" or "TSC ticks" accordingly. Only instruction counts are held
// to bounds, loose ones that only a pathological regression breaks; booted
// normally (ctest, no -icount) the suite is a smoke test that prints ticks.
#include <new>

#include "arch/cpu.h"
#include "diag/cost_counter.h"
#include "diag/ktest.h"
#include "lib/log.h"
#include "mm/frames.h"
#include "mm/heap.h"
#include "mm/kmalloc.h"

namespace {

constexpr uint64_t kPairs = 10000;
using kernel::diag::counter_counts_instructions;
using kernel::diag::kCalibrationLoops;

struct Measurement {
    uint64_t total = 0;    // counter ticks for all pairs, read overhead removed
    uint64_t per_pair = 0; // rounded to nearest
};

template <typename Pair>
Measurement measure(Pair&& pair)
{
    const bool irq = arch::interrupts_enabled();
    arch::interrupts_disable();
    pair(); // warm-up: the first pair may create a slab or a chunk
    const uint64_t overhead = kernel::diag::counter_read_overhead();
    const uint64_t t0 = arch::read_cycle_counter();
    for (uint64_t i = 0; i < kPairs; ++i)
        pair();
    const uint64_t t1 = arch::read_cycle_counter();
    if (irq)
        arch::interrupts_enable();
    Measurement m;
    m.total = t1 - t0 - overhead;
    m.per_pair = (m.total + kPairs / 2) / kPairs;
    return m;
}

const char* g_unit = nullptr;
bool g_exact = false;

// The runner does not keep this file's case order: whichever case runs first calibrates.
void calibrate()
{
    if (g_unit != nullptr)
        return;
    uint64_t extra = 0;
    const bool exact = counter_counts_instructions(&extra);
    g_unit = exact ? "insns" : "TSC ticks";
    g_exact = exact;
    lib::log::print("mm-cost: counter {} (+{} ticks for +{} instructions); debug checks {}; {} pairs per figure\n",
                    exact ? "counts instructions (-icount shift=0)" : "is a cycle counter (no -icount)", extra,
                    2 * kCalibrationLoops, mm::kSlabDebugAvailable && mm::kSlabDebugDefault ? "on" : "off", kPairs);
}

void report(const char* what, const Measurement& m)
{
    calibrate();
    lib::log::print("mm-cost: {}: {} {}/pair ({} for {} pairs)\n", what, m.per_pair, g_unit, m.total, kPairs);
}

// The bound: generous for the O(1) paths; debug builds also fill and check
// poison and red zones over the whole object, so their bound grows with it.
// Only instruction counts are bounded: a cycle counter under TCG (no -icount)
// or KVM says nothing stable, so booted normally the figures are just printed.
uint64_t bound(size_t object_bytes)
{
    const bool debug = mm::kSlabDebugAvailable && mm::kSlabDebugDefault;
    return 5000 + (debug ? 8 * object_bytes : 0);
}

bool within(const Measurement& m, uint64_t limit)
{
    calibrate();
    return !g_exact || m.per_pair < limit;
}

// Keeps the compiler from treating the pointer as dead.
void sink(void* p) { asm volatile("" : : "r"(p) : "memory"); }

struct Sample {
    uint64_t value[8];
};

mm::ObjectCache<Sample> g_samples;

} // namespace

KTEST(mm_cost, counter_calibration)
{
    calibrate();
    uint64_t extra = 0;
    (void)counter_counts_instructions(&extra);
    KEXPECT(extra > 0);
}

KTEST(mm_cost, kmalloc_small)
{
    KASSERT(mm::heap_ready());
    const size_t sizes[] = {16, 64, 256, 1024, 2048};
    for (size_t size : sizes) {
        const Measurement m = measure([size] {
            void* p = mm::kmalloc(size);
            sink(p);
            mm::kfree(p);
        });
        char what[48];
        lib::format(what, sizeof(what), "kmalloc/kfree {}B (slab)", size);
        report(what, m);
        KEXPECT(m.per_pair > 0);
        KEXPECT(within(m, bound(size)));
    }
}

KTEST(mm_cost, kmalloc_medium_and_large)
{
    KASSERT(mm::heap_ready());
    struct Case {
        size_t size;
        const char* what;
    };
    const Case cases[] = {
        {4096, "kmalloc/kfree 4KiB (medium buddy)"},
        {16384, "kmalloc/kfree 16KiB (medium buddy)"},
        {1024 * 1024, "kmalloc/kfree 1MiB (large, frames)"},
    };
    for (const Case& c : cases) {
        const Measurement m = measure([size = c.size] {
            void* p = mm::kmalloc(size);
            sink(p);
            mm::kfree(p);
        });
        report(c.what, m);
        KEXPECT(m.per_pair > 0);
        // Medium blocks are poisoned (debug builds) over their whole block, up to
        // twice the request; large blocks are not, but their page tags are set
        // and cleared page by page.
        const uint64_t limit = c.size <= 64 * 1024 ? bound(2 * c.size) : bound(0) + 64 * (c.size / 4096);
        KEXPECT(within(m, limit));
    }
}

KTEST(mm_cost, new_delete_and_object_cache)
{
    KASSERT(mm::heap_ready());
    const Measurement n = measure([] {
        auto* p = new Sample{};
        sink(p);
        delete p;
    });
    report("new/delete 64B", n);
    KEXPECT(within(n, bound(sizeof(Sample)) + 1000));

    KASSERT(g_samples.init(mm::kernel_object_cache_host(), "mm-cost-sample").has_value());
    const Measurement o = measure([] {
        Sample* s = g_samples.create();
        sink(s);
        (void)g_samples.destroy(s);
    });
    report("ObjectCache create/destroy 64B", o);
    KEXPECT(within(o, bound(sizeof(Sample))));
    mm::heap_shrink();
    KEXPECT(g_samples.destroy_cache().has_value());
}

KTEST(mm_cost, frames)
{
    KASSERT(mm::frames_ready());
    const unsigned orders[] = {0, 9};
    for (unsigned order : orders) {
        bool ok = true;
        const Measurement m = measure([order, &ok] {
            auto frame = mm::frames_allocate(order);
            if (!frame) {
                ok = false;
                return;
            }
            mm::frames_free(*frame, order);
        });
        KEXPECT(ok);
        char what[48];
        lib::format(what, sizeof(what), "frames order {} alloc/free", order);
        report(what, m);
        KEXPECT(m.per_pair > 0);
        KEXPECT(within(m, bound(0)));
    }
}
