// The shell's spawnable workloads. See workloads.h.
#include "kernel/workloads.h"

#include <atomic>

#include "arch/cpu.h"
#include "kernel/time.h"
#include "lib/format.h"
#include "lib/log.h"
#include "mm/kmalloc.h"
#include "sync/mutex.h"

namespace kernel::workloads {

namespace {

struct Job {
    Kind kind;
    uint64_t deadline_tick; // the thread returns once time::ticks() reaches it
    uint64_t seed;
};

const char* const kNames[kKindCount] = { "hog", "churn", "sleeper", "contend" };
std::atomic<uint64_t> g_sequence[kKindCount] = {};

bool expired(uint64_t deadline) { return time::ticks() >= deadline; }

uint64_t xorshift(uint64_t& s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

void fail(const char* what) { lib::log::error("workload '{}': {}", sched::current()->name(), what); }

void hog(uint64_t deadline)
{
    // A volatile counter keeps the loop from being optimised away; it never yields or blocks.
    volatile uint64_t iterations = 0;
    while (!expired(deadline)) iterations = iterations + 1;
}

constexpr size_t kChurnSlots = 32;

uint8_t pattern(size_t slot, size_t size) { return static_cast<uint8_t>(0x5a ^ slot ^ (size >> 3)); }

// Only the ends and a middle byte: the point is churn, not memory bandwidth.
bool check_pattern(const uint8_t* p, size_t size, uint8_t value)
{
    return p[0] == value && p[size / 2] == value && p[size - 1] == value;
}
void write_pattern(uint8_t* p, size_t size, uint8_t value) { p[0] = p[size / 2] = p[size - 1] = value; }

void churn(uint64_t deadline, uint64_t seed)
{
    void* slots[kChurnSlots] = {};
    size_t sizes[kChurnSlots] = {};
    uint64_t s = seed;
    bool reported_oom = false;
    while (!expired(deadline)) {
        const size_t i = xorshift(s) % kChurnSlots;
        if (slots[i] != nullptr) {
            if (!check_pattern(static_cast<uint8_t*>(slots[i]), sizes[i], pattern(i, sizes[i])))
                fail("a churn block's contents changed while it was allocated");
            mm::kfree(slots[i]);
            slots[i] = nullptr;
            continue;
        }
        const uint64_t r = xorshift(s);
        // Mostly small (slabs), some medium (buddy chunks), a few large (whole pages).
        const size_t size = (r % 16 == 0) ? 4096 + r % (60 * 1024) : (r % 4 == 0) ? 256 + r % 3840 : 1 + r % 256;
        void* p = mm::kmalloc(size);
        if (p == nullptr) {
            if (!reported_oom) fail("kmalloc returned nullptr (out of memory under churn)");
            reported_oom = true;
            continue;
        }
        write_pattern(static_cast<uint8_t*>(p), size, pattern(i, size));
        slots[i] = p;
        sizes[i] = size;
    }
    for (size_t i = 0; i < kChurnSlots; ++i) {
        if (slots[i] == nullptr) continue;
        if (!check_pattern(static_cast<uint8_t*>(slots[i]), sizes[i], pattern(i, sizes[i])))
            fail("a churn block's contents changed while it was allocated");
        mm::kfree(slots[i]);
    }
}

void sleeper(uint64_t deadline, uint64_t seed)
{
    uint64_t s = seed;
    while (!expired(deadline)) {
        const uint64_t ms = 1 + xorshift(s) % 20;
        const uint64_t before = time::ticks();
        sched::sleep_for(ms);
        if (time::ticks() - before < time::ns_to_ticks(ms * 1'000'000)) fail("sleep_for woke up early");
    }
}

constinit sync::Mutex g_contend_mutex{ "spawn contend" };
bool g_inside = false;     // guarded by g_contend_mutex
uint64_t g_counter = 0;    // guarded by g_contend_mutex

void contend(uint64_t deadline)
{
    while (!expired(deadline)) {
        auto guard = g_contend_mutex.lock();
        if (g_inside) fail("two threads inside the contend critical section");
        g_inside = true;
        const uint64_t seen = g_counter;
        for (int i = 0; i < 200; ++i)
            arch::cpu_relax(); // long enough that the timer often preempts the owner here
        g_counter = seen + 1;
        g_inside = false;
    }
}

void workload_main(void* arg)
{
    const Job job = *static_cast<Job*>(arg);
    mm::kfree(arg);
    switch (job.kind) {
    case Kind::Hog: hog(job.deadline_tick); break;
    case Kind::Churn: churn(job.deadline_tick, job.seed); break;
    case Kind::Sleeper: sleeper(job.deadline_tick, job.seed); break;
    case Kind::Contend: contend(job.deadline_tick); break;
    }
}

} // namespace

const char* kind_name(Kind kind) { return kNames[static_cast<unsigned>(kind)]; }

bool parse_kind(lib::StringView text, Kind& out)
{
    for (unsigned i = 0; i < kKindCount; ++i) {
        if (text == lib::StringView(kNames[i])) {
            out = static_cast<Kind>(i);
            return true;
        }
    }
    return false;
}

SpawnResult spawn(Kind kind, unsigned count, sched::Priority priority, uint64_t lifetime_ms)
{
    SpawnResult result;
    const uint64_t deadline = time::ticks() + time::ns_to_ticks(lifetime_ms * 1'000'000);
    for (unsigned i = 0; i < count; ++i) {
        auto* job = static_cast<Job*>(mm::kmalloc(sizeof(Job)));
        if (job == nullptr) {
            result.failed = true;
            result.error = sched::SpawnError::OutOfMemory;
            break;
        }
        const uint64_t n = g_sequence[static_cast<unsigned>(kind)].fetch_add(1, std::memory_order_relaxed) + 1;
        *job = Job{ kind, deadline, 0x9e3779b97f4a7c15ull ^ (n * 0x100000001b3ull) ^ time::ticks() };
        job->seed |= 1;
        char name[32];
        lib::format(name, sizeof(name), "{}-{}", kind_name(kind), n);
        auto thread = sched::spawn(&workload_main, job, name, priority);
        if (!thread) {
            mm::kfree(job);
            result.failed = true;
            result.error = thread.error();
            break;
        }
        sched::detach(*thread);
        ++result.spawned;
    }
    return result;
}

} // namespace kernel::workloads
