// The shell's spawnable workloads. See workloads.h.
#include "diag/workloads.h"

#include <atomic>

#include "arch/cpu.h"
#include "blocking/mutex.h"
#include "lib/format.h"
#include "lib/log.h"
#include "mm/kmalloc.h"
#include "sched/thread.h"
#include "time/time.h"

namespace kernel::workloads {

namespace {

// Who frees the thread depends on the phase (see workloads.h):
//   Free -> Running (spawn) -> Leaving (the workload, then it detaches itself) -> Free (the workload)
//                           -> Claimed (stop) -> Done (the workload) -> Free (stop, after join)
//                                            -> Running (stop timed out: handed back)
enum class Phase : uint8_t { Free, Running, Leaving, Claimed, Done };

struct Slot {
    std::atomic<Phase> phase{Phase::Free};
    std::atomic<bool> stop{false};
    Kind kind = Kind::Hog;
    uint64_t deadline_tick = 0; // the workload returns once time::ticks() reaches it
    uint64_t seed = 0;
    // Written by the spawning thread after sched::spawn, read only by it (spawn and stop run on
    // the same thread): the workload itself never needs them.
    sched::Thread* thread = nullptr;
    uint64_t thread_id = 0;
};

const char* const kNames[kKindCount] = {"hog", "churn", "sleeper", "contend"};
std::atomic<uint64_t> g_sequence[kKindCount] = {};
Slot g_slots[kMaxWorkloads];

// Once per iteration of every workload: its lifetime is over or kill asked it to stop.
bool should_end(const Slot& slot)
{
    return time::ticks() >= slot.deadline_tick || slot.stop.load(std::memory_order_relaxed);
}

uint64_t xorshift(uint64_t& s)
{
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

void fail(const char* what) { lib::log::error("workload '{}': {}", sched::current()->name(), what); }

void hog(const Slot& slot)
{
    // A volatile counter keeps the loop from being optimised away; it never yields or blocks.
    volatile uint64_t iterations = 0;
    while (!should_end(slot))
        iterations = iterations + 1;
}

constexpr size_t kChurnSlots = 32;

uint8_t pattern(size_t slot, size_t size) { return static_cast<uint8_t>(0x5a ^ slot ^ (size >> 3)); }

// Only the ends and a middle byte: the point is churn, not memory bandwidth.
bool check_pattern(const uint8_t* p, size_t size, uint8_t value)
{
    return p[0] == value && p[size / 2] == value && p[size - 1] == value;
}
void write_pattern(uint8_t* p, size_t size, uint8_t value) { p[0] = p[size / 2] = p[size - 1] = value; }

void churn(const Slot& slot)
{
    void* slots[kChurnSlots] = {};
    size_t sizes[kChurnSlots] = {};
    uint64_t s = slot.seed;
    bool reported_oom = false;
    while (!should_end(slot)) {
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
            if (!reported_oom)
                fail("kmalloc returned nullptr (out of memory under churn)");
            reported_oom = true;
            continue;
        }
        write_pattern(static_cast<uint8_t*>(p), size, pattern(i, size));
        slots[i] = p;
        sizes[i] = size;
    }
    for (size_t i = 0; i < kChurnSlots; ++i) {
        if (slots[i] == nullptr)
            continue;
        if (!check_pattern(static_cast<uint8_t*>(slots[i]), sizes[i], pattern(i, sizes[i])))
            fail("a churn block's contents changed while it was allocated");
        mm::kfree(slots[i]);
    }
}

void sleeper(const Slot& slot)
{
    uint64_t s = slot.seed;
    while (!should_end(slot)) {
        const uint64_t ms = 1 + xorshift(s) % 20;
        const uint64_t before = time::ticks();
        sched::sleep_for(ms);
        if (time::ticks() - before < time::ns_to_ticks(ms * 1'000'000))
            fail("sleep_for woke up early");
    }
}

constinit sync::Mutex g_contend_mutex{"spawn contend"};
bool g_inside = false;  // guarded by g_contend_mutex
uint64_t g_counter = 0; // guarded by g_contend_mutex

void contend(const Slot& slot)
{
    // The guard lives inside the loop body, so the mutex is released before the next check.
    while (!should_end(slot)) {
        auto guard = g_contend_mutex.lock();
        if (g_inside)
            fail("two threads inside the contend critical section");
        g_inside = true;
        const uint64_t seen = g_counter;
        for (int i = 0; i < 200; ++i)
            arch::cpu_relax(); // long enough that the timer often preempts the owner here
        g_counter = seen + 1;
        g_inside = false;
    }
}

// The workload's last act: decide, against a concurrent stop(), who frees this thread.
void leave(Slot& slot)
{
    for (;;) {
        Phase phase = Phase::Running;
        if (slot.phase.compare_exchange_strong(phase, Phase::Leaving, std::memory_order_acq_rel)) {
            sched::detach(sched::current()); // the Loom's reaper frees us after we return
            slot.phase.store(Phase::Free, std::memory_order_release);
            return; // the slot is not touched again
        }
        // stop() claimed us and will join us, unless it is handing the slot back right now.
        if (phase == Phase::Claimed &&
            slot.phase.compare_exchange_strong(phase, Phase::Done, std::memory_order_acq_rel))
            return;
    }
}

void workload_main(void* arg)
{
    Slot& slot = *static_cast<Slot*>(arg);
    switch (slot.kind) {
    case Kind::Hog: hog(slot); break;
    case Kind::Churn: churn(slot); break;
    case Kind::Sleeper: sleeper(slot); break;
    case Kind::Contend: contend(slot); break;
    }
    leave(slot);
}

Slot* claim_free_slot()
{
    for (Slot& slot : g_slots) {
        Phase phase = Phase::Free;
        if (slot.phase.compare_exchange_strong(phase, Phase::Running, std::memory_order_acq_rel))
            return &slot;
    }
    return nullptr;
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
    if (count > kMaxSpawnCount)
        count = kMaxSpawnCount;
    const uint64_t deadline = time::ticks() + time::ns_to_ticks(lifetime_ms * 1'000'000);
    for (unsigned i = 0; i < count; ++i) {
        Slot* slot = claim_free_slot();
        if (slot == nullptr) {
            result.failed = true;
            result.no_slot = true;
            break;
        }
        const uint64_t n = g_sequence[static_cast<unsigned>(kind)].fetch_add(1, std::memory_order_relaxed) + 1;
        slot->kind = kind;
        slot->deadline_tick = deadline;
        slot->seed = (0x9e3779b97f4a7c15ull ^ (n * 0x100000001b3ull) ^ time::ticks()) | 1;
        slot->thread = nullptr;
        slot->thread_id = 0;
        slot->stop.store(false, std::memory_order_relaxed);
        char name[32];
        lib::format(name, sizeof(name), "{}-{}", kind_name(kind), n);
        // Not detached: until it ends, a workload may be claimed by stop(), which joins it.
        auto thread = sched::spawn(&workload_main, slot, name, priority);
        if (!thread) {
            slot->phase.store(Phase::Free, std::memory_order_release);
            result.failed = true;
            result.error = thread.error();
            break;
        }
        slot->thread = *thread;
        slot->thread_id = (*thread)->id();
        result.ids[result.spawned++] = slot->thread_id;
    }
    return result;
}

StopResult stop(uint64_t thread_id, uint64_t timeout_ms)
{
    StopResult result;
    Slot* slot = nullptr;
    for (Slot& candidate : g_slots) {
        const Phase phase = candidate.phase.load(std::memory_order_acquire);
        if (phase != Phase::Free && candidate.thread_id == thread_id && candidate.thread != nullptr) {
            slot = &candidate;
            break;
        }
    }
    if (slot == nullptr)
        return result; // NotAWorkload
    Phase phase = Phase::Running;
    if (!slot->phase.compare_exchange_strong(phase, Phase::Claimed, std::memory_order_acq_rel)) {
        // Leaving: it detached itself (or is about to) and may be freed at any moment, so its
        // Thread is not touched.
        result.outcome = StopOutcome::AlreadyEnding;
        return result;
    }
    sched::Thread* thread = slot->thread; // claimed and not detached: it stays valid until joined
    lib::copy_string(result.name, sizeof(result.name), lib::StringView(thread->name()));
    slot->stop.store(true, std::memory_order_relaxed);

    const uint64_t start_ns = time::uptime_ns();
    auto elapsed_ms = [&] { return (time::uptime_ns() - start_ns) / 1'000'000; };
    while (slot->phase.load(std::memory_order_acquire) != Phase::Done && elapsed_ms() < timeout_ms)
        sched::sleep_for(5);
    phase = Phase::Claimed;
    if (slot->phase.compare_exchange_strong(phase, Phase::Running, std::memory_order_acq_rel)) {
        // Handed back with the stop request still set: the workload detaches itself when it
        // next looks, and the reaper frees it.
        result.outcome = StopOutcome::StillRunning;
        result.waited_ms = elapsed_ms();
        return result;
    }
    // Done: it only has to return from its entry; join waits for that, then frees its TCB and stack.
    // (A Low workload preempted between the two may wait for its turn: the starvation bound.)
    sched::join(thread);
    result.waited_ms = elapsed_ms();
    slot->thread = nullptr;
    slot->thread_id = 0;
    slot->phase.store(Phase::Free, std::memory_order_release);
    result.outcome = StopOutcome::Stopped;
    return result;
}

unsigned live_count()
{
    unsigned live = 0;
    for (const Slot& slot : g_slots)
        if (slot.phase.load(std::memory_order_acquire) != Phase::Free)
            ++live;
    return live;
}

} // namespace kernel::workloads
