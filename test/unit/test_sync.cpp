// Host tests of src/sync: the interrupt guard, the preempt count and its resched hook, the
// IRQ-saving spinlock, and every report of the debug lock checker.
//
// On the host the interrupt flag (arch host layer) and sync's per-CPU state are thread_local, so
// each std::thread behaves as its own CPU. Every thread starts with "interrupts" disabled.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "arch/cpu.h"
#include "support/host_panic.h"
#include "sync/interrupt_guard.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"

// The sync namespace is kernel::sync (a top-level `sync` would clash with POSIX ::sync()).
using namespace kernel;
using sync::IrqSpinLock;
using sync::LockRank;

namespace {

// Sets this thread's interrupt flag for one scope, then restores it.
class ScopedInterrupts {
public:
    explicit ScopedInterrupts(bool enabled) : m_previous(arch::interrupts_enabled()) { set(enabled); }
    ~ScopedInterrupts() { set(m_previous); }
    ScopedInterrupts(const ScopedInterrupts&) = delete;
    ScopedInterrupts& operator=(const ScopedInterrupts&) = delete;

private:
    static void set(bool enabled)
    {
        if (enabled)
            arch::interrupts_enable();
        else
            arch::interrupts_disable();
    }
    bool m_previous;
};

// The owner name the lock checker reports: per thread, so a second thread can be "holder".
thread_local const char* t_owner_name = "main";
const char* test_owner_name() { return t_owner_name; }

class ScopedOwnerNames {
public:
    ScopedOwnerNames() : m_previous(sync::set_owner_name_hook(&test_owner_name)) { }
    ~ScopedOwnerNames() { sync::set_owner_name_hook(m_previous); }
    ScopedOwnerNames(const ScopedOwnerNames&) = delete;
    ScopedOwnerNames& operator=(const ScopedOwnerNames&) = delete;

private:
    sync::OwnerNameHook m_previous;
};

class ScopedSpinLimit {
public:
    explicit ScopedSpinLimit(uint64_t limit) : m_previous(sync::set_spin_limit(limit)) { }
    ~ScopedSpinLimit() { sync::set_spin_limit(m_previous); }
    ScopedSpinLimit(const ScopedSpinLimit&) = delete;
    ScopedSpinLimit& operator=(const ScopedSpinLimit&) = delete;

private:
    uint64_t m_previous;
};

// A resched hook that records how and when it was called.
struct ReschedRecord {
    int calls = 0;
    uint32_t count_seen = ~0u;
    bool interrupts_seen = false;
    bool need_resched_seen = true;
};
thread_local ReschedRecord t_resched;
void record_resched()
{
    ++t_resched.calls;
    t_resched.count_seen = sync::preempt_count();
    t_resched.interrupts_seen = arch::interrupts_enabled();
    t_resched.need_resched_seen = sync::need_resched();
}

class ScopedReschedHook {
public:
    explicit ScopedReschedHook(sync::PreemptReschedHook hook) : m_previous(sync::set_preempt_resched_hook(hook))
    {
        t_resched = ReschedRecord{};
    }
    ~ScopedReschedHook()
    {
        sync::set_preempt_resched_hook(m_previous);
        sync::clear_need_resched();
    }
    ScopedReschedHook(const ScopedReschedHook&) = delete;
    ScopedReschedHook& operator=(const ScopedReschedHook&) = delete;

private:
    sync::PreemptReschedHook m_previous;
};

// Pretends to be inside a hardware interrupt handler on this thread.
class ScopedIrq {
public:
    ScopedIrq() { arch::host_irq_enter(); }
    ~ScopedIrq() { arch::host_irq_exit(); }
    ScopedIrq(const ScopedIrq&) = delete;
    ScopedIrq& operator=(const ScopedIrq&) = delete;
};

// Runs `fn`, which must panic, and returns the panic message.
template <typename Fn>
std::string panic_text(Fn&& fn)
{
    try {
        fn();
    } catch (const kernel::HostPanic& panic) {
        return panic.what();
    }
    FAIL("expected a kernel panic");
    return {};
}

// A second "CPU": a thread named `name` that takes `lock` (with its interrupts enabled) and holds
// it until release() or destruction.
class HolderThread {
public:
    HolderThread(IrqSpinLock& lock, const char* name)
        : m_thread([this, &lock, name] {
              t_owner_name = name;
              arch::interrupts_enable();
              {
                  auto guard = lock.lock();
                  m_holding.store(true);
                  while (!m_release.load())
                      std::this_thread::yield();
              }
              m_clean.store(sync::preempt_count() == 0 && arch::interrupts_enabled());
          })
    {
        while (!m_holding.load())
            std::this_thread::yield();
    }
    ~HolderThread() { release(); }
    HolderThread(const HolderThread&) = delete;
    HolderThread& operator=(const HolderThread&) = delete;

    // Lets go of the lock and waits for the thread; returns whether it ended with a clean state.
    bool release()
    {
        m_release.store(true);
        if (m_thread.joinable())
            m_thread.join();
        return m_clean.load();
    }

private:
    std::atomic<bool> m_holding{false};
    std::atomic<bool> m_release{false};
    std::atomic<bool> m_clean{false};
    std::thread m_thread;
};

// This file as the lock reports print source positions: its last two path components.
const std::string kThisFile = [] {
    const std::string path = __FILE__;
    const size_t last = path.rfind('/');
    const size_t before = last == std::string::npos || last == 0 ? std::string::npos : path.rfind('/', last - 1);
    return (before == std::string::npos ? path : path.substr(before + 1)) + ":";
}();

// Whether this thread's "CPU" holds `lock` (release builds can only tell whether it is locked).
bool held_here(const IrqSpinLock& lock)
{
#if AETHELOS_SYNC_CHECKS
    return lock.is_held_by_this_cpu();
#else
    return lock.is_locked();
#endif
}

// Each test starts and must end with this thread's "CPU" at rest.
void require_cpu_at_rest()
{
    REQUIRE(sync::preempt_count() == 0);
    REQUIRE_FALSE(sync::in_interrupt());
    REQUIRE_FALSE(sync::need_resched());
}

} // namespace

// ---- InterruptGuard --------------------------------------------------------------------------

static_assert(std::is_same_v<sync::InterruptGuard, arch::InterruptGuard>, "one implementation");
static_assert(!std::is_copy_constructible_v<sync::InterruptGuard>);
static_assert(!std::is_move_constructible_v<sync::InterruptGuard>);
static_assert(!std::is_copy_assignable_v<sync::InterruptGuard>);
static_assert(!std::is_copy_constructible_v<sync::PreemptGuard>);
static_assert(!std::is_move_constructible_v<sync::PreemptGuard>);
static_assert(!std::is_copy_constructible_v<IrqSpinLock::Guard>);
static_assert(!std::is_move_constructible_v<IrqSpinLock::Guard>);
static_assert(!std::is_copy_constructible_v<IrqSpinLock>);

TEST_CASE("sync: InterruptGuard disables and restores an enabled flag", "[sync]")
{
    ScopedInterrupts on(true);
    {
        sync::InterruptGuard guard;
        CHECK(guard.were_enabled());
        CHECK_FALSE(arch::interrupts_enabled());
    }
    CHECK(arch::interrupts_enabled());
}

TEST_CASE("sync: InterruptGuard leaves a disabled flag disabled", "[sync]")
{
    ScopedInterrupts off(false);
    {
        sync::InterruptGuard guard;
        CHECK_FALSE(guard.were_enabled());
        CHECK_FALSE(arch::interrupts_enabled());
    }
    CHECK_FALSE(arch::interrupts_enabled());
}

TEST_CASE("sync: nested InterruptGuards restore in order", "[sync]")
{
    for (const bool initially : {true, false}) {
        ScopedInterrupts initial(initially);
        {
            sync::InterruptGuard outer;
            CHECK(outer.were_enabled() == initially);
            {
                sync::InterruptGuard inner;
                CHECK_FALSE(inner.were_enabled());
                CHECK_FALSE(arch::interrupts_enabled());
            }
            CHECK_FALSE(arch::interrupts_enabled()); // the inner guard must not re-enable
        }
        CHECK(arch::interrupts_enabled() == initially);
    }
}

// ---- preempt count ---------------------------------------------------------------------------

TEST_CASE("sync: preempt count nests and decides preemptible()", "[sync]")
{
    require_cpu_at_rest();
    ScopedInterrupts on(true);
    CHECK(sync::preemptible());
    {
        sync::PreemptGuard outer;
        CHECK(sync::preempt_count() == 1);
        CHECK_FALSE(sync::preemptible());
        {
            sync::PreemptGuard inner;
            CHECK(sync::preempt_count() == 2);
        }
        CHECK(sync::preempt_count() == 1);
    }
    CHECK(sync::preempt_count() == 0);
    CHECK(sync::preemptible());

    sync::preempt_disable();
    sync::preempt_disable();
    CHECK(sync::preempt_count() == 2);
    sync::preempt_enable_no_resched();
    sync::preempt_enable();
    CHECK(sync::preempt_count() == 0);

    {
        ScopedInterrupts off(false);
        CHECK_FALSE(sync::preemptible());
    }
    {
        ScopedIrq irq;
        CHECK(sync::in_interrupt());
        CHECK(arch::interrupt_nesting_depth() == 1);
        CHECK_FALSE(sync::preemptible());
    }
    CHECK_FALSE(sync::in_interrupt());
    CHECK(sync::preemptible());
}

TEST_CASE("sync: per-CPU state is per thread on the host", "[sync]")
{
    sync::PreemptGuard guard;
    uint32_t other_count = ~0u;
    const sync::CpuLocal* other_cpu = nullptr;
    std::thread([&] {
        other_count = sync::preempt_count();
        other_cpu = &sync::this_cpu();
    }).join();
    CHECK(other_count == 0);
    CHECK(other_cpu != &sync::this_cpu());
    CHECK(sync::preempt_count() == 1);
}

TEST_CASE("sync: the resched hook fires exactly when the count returns to zero", "[sync]")
{
    require_cpu_at_rest();
    ScopedReschedHook hook(&record_resched);
    ScopedInterrupts on(true);

    SECTION("nested disables")
    {
        sync::preempt_disable();
        sync::preempt_disable();
        sync::set_need_resched();
        sync::preempt_enable();
        CHECK(t_resched.calls == 0);
        CHECK(sync::need_resched());
        sync::preempt_enable();
        CHECK(t_resched.calls == 1);
        CHECK(t_resched.count_seen == 0);
        CHECK(t_resched.interrupts_seen);
        CHECK_FALSE(t_resched.need_resched_seen); // consumed before the call
        CHECK_FALSE(sync::need_resched());
    }
    SECTION("no request, no call")
    {
        {
            sync::PreemptGuard guard;
        }
        CHECK(t_resched.calls == 0);
    }
    SECTION("a request made while preemptible waits for the next safe point")
    {
        sync::set_need_resched();
        CHECK(t_resched.calls == 0);
        {
            sync::PreemptGuard guard;
        }
        CHECK(t_resched.calls == 1);
    }
    SECTION("deferred while interrupts are disabled")
    {
        {
            ScopedInterrupts off(false);
            sync::PreemptGuard guard;
            sync::set_need_resched();
        }
        CHECK(t_resched.calls == 0);
        CHECK(sync::need_resched()); // still pending for the interrupt exit
        sync::clear_need_resched();
    }
    SECTION("deferred inside an interrupt handler")
    {
        {
            ScopedIrq irq;
            sync::PreemptGuard guard;
            sync::set_need_resched();
        }
        CHECK(t_resched.calls == 0);
        CHECK(sync::need_resched());
        sync::clear_need_resched();
    }
    SECTION("an IrqSpinLock defers it until after interrupts are restored")
    {
        IrqSpinLock lock("resched", LockRank::kScheduler);
        {
            auto guard = lock.lock();
            sync::set_need_resched(); // a tick arriving in the critical section
            CHECK(t_resched.calls == 0);
        }
        CHECK(t_resched.calls == 1);
        CHECK(t_resched.interrupts_seen);
        CHECK(t_resched.count_seen == 0);
    }
    SECTION("a hook that takes locks is not re-entered")
    {
        static IrqSpinLock s_run_queue("run queue", LockRank::kScheduler);
        const auto locking_hook = [] {
            record_resched();
            auto guard = s_run_queue.lock();
        };
        sync::set_preempt_resched_hook(locking_hook);
        sync::set_need_resched();
        {
            sync::PreemptGuard guard;
        }
        CHECK(t_resched.calls == 1);
    }
    require_cpu_at_rest();
}

// ---- IrqSpinLock -----------------------------------------------------------------------------

TEST_CASE("sync: IrqSpinLock lock and unlock", "[sync]")
{
    require_cpu_at_rest();
    IrqSpinLock lock("heap", LockRank::kHeap);
    CHECK(lock.name() == std::string("heap"));
    CHECK(lock.rank() == LockRank::kHeap);

    for (const bool initially : {true, false}) {
        ScopedInterrupts initial(initially);
        CHECK_FALSE(lock.is_locked());
        {
            auto guard = lock.lock();
            CHECK(guard.owns_lock());
            CHECK(guard.interrupts_were_enabled() == initially);
            CHECK(lock.is_locked());
            CHECK(held_here(lock));
            CHECK_FALSE(arch::interrupts_enabled());
            CHECK(sync::preempt_count() == 1);
            lock.assert_held();
        }
        CHECK_FALSE(lock.is_locked());
        CHECK_FALSE(held_here(lock));
        CHECK(arch::interrupts_enabled() == initially);
        CHECK(sync::preempt_count() == 0);
    }
}

TEST_CASE("sync: IrqSpinLock guards nest over locks of increasing rank", "[sync]")
{
    IrqSpinLock outer("outer", LockRank::kScheduler);
    IrqSpinLock inner("inner", LockRank::kHeap);
    ScopedInterrupts on(true);
    {
        auto a = outer.lock();
        {
            auto b = inner.lock();
            CHECK_FALSE(b.interrupts_were_enabled());
            CHECK(sync::preempt_count() == 2);
        }
        CHECK_FALSE(arch::interrupts_enabled()); // still inside `outer`
        CHECK(sync::preempt_count() == 1);
        // The released inner lock may be taken again while `outer` is held.
        auto again = inner.lock();
    }
    CHECK(arch::interrupts_enabled());
    require_cpu_at_rest();
}

TEST_CASE("sync: Guard::unlock releases early", "[sync]")
{
    IrqSpinLock lock("early", LockRank::kHeap);
    ScopedInterrupts on(true);
    auto guard = lock.lock();
    guard.unlock();
    CHECK_FALSE(guard.owns_lock());
    CHECK_FALSE(lock.is_locked());
    CHECK(arch::interrupts_enabled());
    CHECK(sync::preempt_count() == 0);
    guard.unlock(); // a second unlock is a no-op
    CHECK(sync::preempt_count() == 0);
}

TEST_CASE("sync: IrqSpinLock try_lock", "[sync]")
{
    require_cpu_at_rest();
    IrqSpinLock lock("try", LockRank::kHeap);
    ScopedInterrupts on(true);

    SECTION("free: succeeds like lock()")
    {
        auto guard = lock.try_lock();
        REQUIRE(guard);
        CHECK(held_here(lock));
        CHECK_FALSE(arch::interrupts_enabled());
        CHECK(sync::preempt_count() == 1);
    }
    SECTION("held by this CPU: fails without a report and changes nothing")
    {
        auto guard = lock.lock();
        {
            auto second = lock.try_lock();
            CHECK_FALSE(second);
            CHECK_FALSE(second.owns_lock());
        }
        CHECK(held_here(lock));
        CHECK_FALSE(arch::interrupts_enabled());
        CHECK(sync::preempt_count() == 1);
    }
    SECTION("held by another CPU: fails and restores interrupts and preemption")
    {
        HolderThread holder(lock, "holder");
        {
            auto guard = lock.try_lock();
            CHECK_FALSE(guard);
            CHECK(arch::interrupts_enabled());
            CHECK(sync::preempt_count() == 0);
        }
        CHECK(holder.release());
        auto guard = lock.try_lock();
        CHECK(guard);
    }
    CHECK_FALSE(lock.is_locked());
    CHECK(arch::interrupts_enabled());
    require_cpu_at_rest();
}

TEST_CASE("sync: manual acquire/release, also out of order", "[sync]")
{
    ScopedOwnerNames names;
    IrqSpinLock a("a", LockRank::kScheduler);
    IrqSpinLock b("b", LockRank::kHeap);
    IrqSpinLock c("c", LockRank::kFrameAllocator);
    ScopedInterrupts on(true);

    const sync::IrqState sa = a.acquire();
    const sync::IrqState sb = b.acquire();
    CHECK(sa.interrupts_were_enabled);
    CHECK_FALSE(sb.interrupts_were_enabled);
    // Out of order, handing the outermost saved state to the last release.
    a.release(sb);
    CHECK(sync::preempt_count() == 1);
    CHECK_FALSE(arch::interrupts_enabled());
    CHECK(held_here(b));
    CHECK_FALSE(a.is_locked());
    // Only `b` (rank 300) is held now: `c` (400) is fine, `a` (200) an inversion.
    {
        auto guard = c.lock();
    }
#if AETHELOS_SYNC_CHECKS
    CHECK_THAT(panic_text([&] { auto guard = a.lock(); }),
               Catch::Contains("acquires spinlock 'a' (rank 200)") &&
                   Catch::Contains("while holding spinlock 'b' (rank 300)"));
#endif
    b.release(sa);
    CHECK(arch::interrupts_enabled());
    require_cpu_at_rest();
}

TEST_CASE("sync: IrqSpinLock contention across threads keeps the invariant", "[sync]")
{
    constexpr int kThreads = 4;
    constexpr int kIterations = 20000;
    IrqSpinLock lock("counter", LockRank::kHeap);
    uint64_t counter = 0;           // protected by `lock`
    std::atomic<int> inside{0};     // how many threads are in the critical section
    std::atomic<int> violations{0}; // anything a thread saw go wrong

    std::atomic<int> ready{0}; // start together, so the threads really overlap

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            arch::interrupts_enable();
            ready.fetch_add(1);
            while (ready.load() < kThreads)
                std::this_thread::yield();
            for (int i = 0; i < kIterations; ++i) {
                const bool use_try = (i + t) % 7 == 0;
                auto guard = use_try ? lock.try_lock() : lock.lock();
                if (!guard) {
                    // A failed try must leave the state as it was; then take the lock for real.
                    if (!arch::interrupts_enabled() || sync::preempt_count() != 0)
                        violations.fetch_add(1);
                    auto retry = lock.lock();
                    if (inside.fetch_add(1) != 0)
                        violations.fetch_add(1);
                    ++counter;
                    inside.fetch_sub(1);
                    continue;
                }
                if (inside.fetch_add(1) != 0)
                    violations.fetch_add(1);
                if (arch::interrupts_enabled() || sync::preempt_count() != 1)
                    violations.fetch_add(1);
                const uint64_t seen = counter;
                for (int spin = 0; spin < 8 + (i % 8); ++spin) // long enough for the others to pile up
                    arch::cpu_relax();
                counter = seen + 1;
                inside.fetch_sub(1);
            }
            if (!arch::interrupts_enabled() || sync::preempt_count() != 0)
                violations.fetch_add(1);
        });
    }
    for (auto& thread : threads)
        thread.join();
    CHECK(violations.load() == 0);
    CHECK(counter == uint64_t(kThreads) * kIterations);
    CHECK_FALSE(lock.is_locked());
}

#if AETHELOS_SYNC_CHECKS

// ---- debug reports ---------------------------------------------------------------------------

TEST_CASE("sync: recursive acquisition is reported", "[sync][debug]")
{
    ScopedOwnerNames names;
    ScopedInterrupts on(true);
    IrqSpinLock lock("heap", LockRank::kHeap);
    auto guard = lock.lock();
    const std::string text = panic_text([&] { auto again = lock.lock(); });
    CHECK_THAT(text, Catch::StartsWith("recursive acquisition of spinlock 'heap' (rank 300) held since "));
    CHECK_THAT(text, Catch::Contains("s by 'main', acquired at " + kThisFile));
    CHECK_THAT(text, Catch::Contains("; acquired again at " + kThisFile));
    // The report came before any state changed.
    CHECK(sync::preempt_count() == 1);
    CHECK(held_here(lock));
}

TEST_CASE("sync: lock order inversions are reported with both locks", "[sync][debug]")
{
    ScopedOwnerNames names;
    ScopedInterrupts on(true);
    IrqSpinLock heap("heap", LockRank::kHeap);
    IrqSpinLock frames("frames", LockRank::kFrameAllocator);
    IrqSpinLock other_heap("other heap", LockRank::kHeap);

    SECTION("lower rank")
    {
        auto guard = frames.lock();
        const std::string text = panic_text([&] { auto g = heap.lock(); });
        CHECK_THAT(
            text,
            Catch::StartsWith("lock order inversion: 'main' acquires spinlock 'heap' (rank 300) at " + kThisFile));
        CHECK_THAT(text, Catch::Contains(" while holding spinlock 'frames' (rank 400), acquired at " + kThisFile));
        CHECK(sync::preempt_count() == 1);
    }
    SECTION("equal rank")
    {
        auto guard = heap.lock();
        const std::string text = panic_text([&] { auto g = other_heap.lock(); });
        CHECK_THAT(text, Catch::Contains("acquires spinlock 'other heap' (rank 300)"));
        CHECK_THAT(text, Catch::Contains("while holding spinlock 'heap' (rank 300)"));
    }
    SECTION("the highest held rank counts, including try_lock'ed locks")
    {
        IrqSpinLock scheduler("scheduler", LockRank::kScheduler);
        IrqSpinLock between("between", static_cast<LockRank>(350));
        auto a = heap.lock();
        auto b = scheduler.try_lock(); // rank 200 under 300: try_lock is not rank-checked
        REQUIRE(b);
        auto c = frames.try_lock();
        REQUIRE(c);
        const std::string text = panic_text([&] { auto g = between.lock(); });
        CHECK_THAT(text, Catch::Contains("acquires spinlock 'between' (rank 350)"));
        CHECK_THAT(text, Catch::Contains("while holding spinlock 'frames' (rank 400)"));
    }
    require_cpu_at_rest();
}

TEST_CASE("sync: spinning past the bound names the lock and the owner", "[sync][debug]")
{
    ScopedOwnerNames names;
    ScopedInterrupts on(true);
    IrqSpinLock lock("contended", LockRank::kDevice);
    HolderThread holder(lock, "holder");
    {
        ScopedSpinLimit limit(1000);
        const char* saved_name = t_owner_name;
        t_owner_name = "waiter";
        const std::string text = panic_text([&] { auto guard = lock.lock(); });
        t_owner_name = saved_name;
        CHECK_THAT(text,
                   Catch::StartsWith("spinlock 'contended' (rank 500) not acquired after 1000 spins by "
                                     "'waiter' at " +
                                     kThisFile));
        CHECK_THAT(text, Catch::Contains(": held by 'holder' since "));
        CHECK_THAT(text, Catch::Contains("acquired at " + kThisFile));
        CHECK_THAT(text, Catch::EndsWith("(deadlock or missing unlock?)"));
    }
    // The failed attempt left this "CPU" as it found it.
    CHECK(arch::interrupts_enabled());
    CHECK(sync::preempt_count() == 0);
    CHECK(holder.release());
    auto guard = lock.lock();
    CHECK(held_here(lock));
}

TEST_CASE("sync: releasing a lock that is not held is reported", "[sync][debug]")
{
    ScopedOwnerNames names;
    IrqSpinLock lock("heap", LockRank::kHeap);

    SECTION("free lock")
    {
        const std::string text = panic_text([&] { lock.release(sync::IrqState{}); });
        CHECK(text == "release of spinlock 'heap' (rank 300) by 'main', which does not hold it: the lock is free");
    }
    SECTION("held by another CPU")
    {
        HolderThread holder(lock, "holder");
        const std::string text = panic_text([&] { lock.release(sync::IrqState{}); });
        CHECK_THAT(text,
                   Catch::StartsWith("release of spinlock 'heap' (rank 300) by 'main', which does not hold "
                                     "it: held by 'holder' since "));
        CHECK_THAT(text, Catch::Contains("acquired at " + kThisFile));
        CHECK(lock.is_locked()); // untouched
        CHECK(holder.release());
    }
    SECTION("interrupts re-enabled inside the critical section")
    {
        ScopedInterrupts on(true);
        const sync::IrqState state = lock.acquire();
        arch::interrupts_enable(); // the bug
        const std::string text = panic_text([&] { lock.release(state); });
        CHECK_THAT(text,
                   Catch::StartsWith("spinlock 'heap' (rank 300) released by 'main' with interrupts "
                                     "enabled: something re-enabled them inside the critical section "
                                     "that began at " +
                                     kThisFile));
        arch::interrupts_disable();
        lock.release(state);
    }
    require_cpu_at_rest();
}

TEST_CASE("sync: assert_held", "[sync][debug]")
{
    ScopedOwnerNames names;
    IrqSpinLock lock("queue", LockRank::kScheduler);
    CHECK_THAT(panic_text([&] { lock.assert_held(); }),
               Catch::StartsWith("spinlock 'queue' (rank 200) must be held by 'main' at " + kThisFile) &&
                   Catch::EndsWith(", but it is free"));
    {
        auto guard = lock.lock();
        lock.assert_held();
    }
    HolderThread holder(lock, "holder");
    CHECK_THAT(panic_text([&] { lock.assert_held(); }), Catch::Contains(", but 'holder' holds it (acquired at "));
    CHECK(holder.release());
}

TEST_CASE("sync: holding too many spinlocks is reported", "[sync][debug]")
{
    ScopedOwnerNames names;
    std::vector<std::unique_ptr<IrqSpinLock>> locks;
    std::vector<sync::IrqState> states;
    for (uint32_t i = 0; i <= sync::kMaxHeldSpinLocks; ++i)
        locks.push_back(std::make_unique<IrqSpinLock>("nested", static_cast<LockRank>(1000 + i)));
    for (uint32_t i = 0; i < sync::kMaxHeldSpinLocks; ++i)
        states.push_back(locks[i]->acquire());
    const std::string text = panic_text([&] { (void)locks.back()->acquire(); });
    CHECK_THAT(text,
               Catch::StartsWith("'main' already holds 16 spinlocks (the most the lock checker tracks) and "
                                 "acquires spinlock 'nested' (rank 1016) at " +
                                 kThisFile));
    CHECK_THAT(panic_text([&] {
                   sync::IrqState state;
                   (void)locks.back()->try_acquire(state);
               }),
               Catch::StartsWith("'main' already holds 16 spinlocks"));
    for (uint32_t i = sync::kMaxHeldSpinLocks; i-- > 0;)
        locks[i]->release(states[i]);
    require_cpu_at_rest();
}

TEST_CASE("sync: preempt_enable without preempt_disable is reported", "[sync][debug]")
{
    ScopedOwnerNames names;
    require_cpu_at_rest();
    CHECK(panic_text([] { sync::preempt_enable(); }) ==
          "preempt_enable() without a matching preempt_disable() on 'main' (preempt count already 0)");
    CHECK(sync::preempt_count() == 0);
}

TEST_CASE("sync: assert_may_sleep reports each context that may not sleep", "[sync][debug]")
{
    ScopedOwnerNames names;
    ScopedInterrupts on(true);

    SECTION("allowed")
    {
        sync::assert_may_sleep("Mutex::lock");
        ScopedInterrupts off(false); // not one of the checked contexts
        sync::assert_may_sleep();
    }
    SECTION("holding a spinlock")
    {
        IrqSpinLock outer("run queue", LockRank::kScheduler);
        IrqSpinLock inner("heap", LockRank::kHeap);
        auto a = outer.lock();
        auto b = inner.lock();
        const std::string text = panic_text([] { sync::assert_may_sleep("Mutex::lock"); });
        CHECK_THAT(text,
                   Catch::StartsWith("'main' may not sleep (Mutex::lock) while holding spinlock 'heap' "
                                     "(rank 300), acquired at " +
                                     kThisFile));
        CHECK_THAT(text, Catch::EndsWith(" (2 spinlock(s) held)"));
    }
    SECTION("preemption disabled")
    {
        sync::PreemptGuard guard;
        CHECK(panic_text([] { sync::assert_may_sleep("sleep_for"); }) ==
              "'main' may not sleep (sleep_for) with preemption disabled (preempt count 1)");
    }
    SECTION("in interrupt context")
    {
        ScopedIrq irq;
        CHECK(panic_text([] { sync::assert_may_sleep(); }) ==
              "'main' may not sleep (sleep) in interrupt context (IRQ nesting depth 1)");
    }
    require_cpu_at_rest();
}

TEST_CASE("sync: the default owner name is boot", "[sync][debug]")
{
    const sync::OwnerNameHook previous = sync::set_owner_name_hook(nullptr);
    CHECK(sync::current_owner_name() == std::string("boot"));
    sync::set_owner_name_hook([]() -> const char* { return nullptr; });
    CHECK(sync::current_owner_name() == std::string("boot"));
    sync::set_owner_name_hook(previous);
}

#endif // AETHELOS_SYNC_CHECKS
