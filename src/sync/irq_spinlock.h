#pragma once
// kernel::sync::IrqSpinLock: a test-and-test-and-set spinlock that is safe against this CPU's interrupt
// handlers and against preemption. Holding it means: interrupts disabled (the previous state saved),
// preemption disabled, the lock word set.
//
//   constinit kernel::sync::IrqSpinLock g_heap_lock { "heap", kernel::sync::LockRank::kHeap };
//   uint64_t g_heap_bytes AETHELOS_GUARDED_BY(g_heap_lock);
//   {
//       IrqSpinLock::Guard guard { g_heap_lock };   // IF saved, cli, preempt_disable, spin
//       ...
//   }                                               // unlock, IF restored, preempt_enable (may reschedule)
//
//   if (auto guard = g_heap_lock.try_lock()) { ... }   // empty guard when the lock is taken
//
// Lock ranks order the kernel's locks: while holding locks, a CPU may only acquire a lock of a
// strictly higher rank. With AETHELOS_DEBUG_CHECKS every misuse panics with a precise report
// (through kernel::panic, which throws kernel::HostPanic in the host tests):
//   - recursive acquisition by the same CPU (a certain deadlock),
//   - a rank inversion (both locks and where they were taken),
//   - spinning past the spin limit (the lock and the owner's name: a deadlock or a lost unlock),
//   - releasing a lock this CPU does not hold, or releasing it with interrupts re-enabled inside,
//   - more than kMaxHeldSpinLocks locks held at once.
// Release builds keep only the lock word and the IF save/restore (and the preempt count).
//
// On one CPU contention cannot resolve itself (the holder can be neither interrupted nor
// preempted), so the spin loop matters once there are more CPUs, and for the host tests' threads.
//
// The lock is a capability for clang's thread-safety analysis (lib/thread_safety.h): data marked
// AETHELOS_GUARDED_BY(lock) and functions marked AETHELOS_REQUIRES(lock) are checked at compile
// time (ctest check:thread-safety), and a REQUIRES function also calls assert_held() at run time.
// Clang 14 cannot follow a guard returned by a function, so checked code constructs the guard
// (`IrqSpinLock::Guard guard { lock };`); lock() and try_lock() stay for the host tests.
#include <atomic>
#include <source_location>
#include <stdint.h>

#include "arch/cpu.h"
#include "lib/thread_safety.h"
#include "sync/preempt.h"

namespace kernel::sync {

// A lock may only be acquired while every lock this CPU holds has a strictly lower rank. Values
// are spaced so subsystems can slot their own in between (static_cast<LockRank>(n) is fine).
enum class LockRank : uint16_t {
    kWaitQueue = 100,      // Loom of Fate: mutex/semaphore/condition wait queues (taken before the run queue)
    kScheduler = 200,      // Loom of Fate: run queues, the sleep queue, thread table
    kHeap = 300,           // Mana Pool: kmalloc and object caches (they refill from the frame allocator)
    kFrameAllocator = 400, // Mana Pool: physical frames (buddy allocator)
    kDevice = 500,         // driver state
    kConsole = 900,        // consoles and the log: innermost, so any code may log while holding locks
};

// The interrupt state a lock acquisition saved; release() restores it.
struct IrqState {
    bool interrupts_were_enabled = false;
};

// Debug builds: how many spin-loop iterations an acquisition may wait before reporting a deadlock
// (default kDefaultSpinLimit, several seconds). Returns the previous limit. Ignored in release builds.
inline constexpr uint64_t kDefaultSpinLimit = 1ull << 28;
uint64_t set_spin_limit(uint64_t iterations);
uint64_t spin_limit();

class AETHELOS_CAPABILITY("spinlock") IrqSpinLock {
public:
    // Owns the lock (or nothing, from a failed try_lock). Non-copyable and non-movable: the lock is
    // released exactly where it was taken. For a hand-off across a context switch use
    // acquire()/release().
    class [[nodiscard]] AETHELOS_SCOPED_CAPABILITY Guard {
    public:
        // Acquires `lock` (what lock() does, in a form the analysis can follow).
        explicit Guard(IrqSpinLock& lock, std::source_location where = std::source_location::current())
            AETHELOS_ACQUIRE(lock)
            : m_lock(&lock), m_state(lock.acquire(where))
        { }
        // The body's conditional release is beyond the analysis; callers see a plain release.
        ~Guard() AETHELOS_RELEASE() AETHELOS_NO_THREAD_SAFETY_ANALYSIS
        {
            if (m_lock != nullptr)
                m_lock->release(m_state);
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

        bool owns_lock() const { return m_lock != nullptr; }
        explicit operator bool() const { return owns_lock(); }
        // Releases early; the destructor then does nothing.
        void unlock() AETHELOS_RELEASE() AETHELOS_NO_THREAD_SAFETY_ANALYSIS
        {
            IrqSpinLock* lock = m_lock;
            m_lock = nullptr;
            if (lock != nullptr)
                lock->release(m_state);
        }
        bool interrupts_were_enabled() const { return m_state.interrupts_were_enabled; }

    private:
        friend class IrqSpinLock;
        Guard(IrqSpinLock* lock, IrqState state) : m_lock(lock), m_state(state) { }

        IrqSpinLock* m_lock;
        IrqState m_state;
    };

    // `name` must outlive the lock (a string literal).
    constexpr IrqSpinLock(const char* name, LockRank rank) : m_name(name), m_rank(rank) { }
    IrqSpinLock(const IrqSpinLock&) = delete;
    IrqSpinLock& operator=(const IrqSpinLock&) = delete;

    // Invisible to clang 14's analysis (see the top of the file): the kernel constructs Guard.
    [[nodiscard]] Guard
    lock(std::source_location where = std::source_location::current()) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
    {
        return Guard(this, acquire(where));
    }

    // Never spins. A lock this CPU already holds just fails (no report): that is what a panic path
    // trying the console lock wants. Not rank-checked either, since it cannot deadlock; the lock
    // still counts as held for the checks of later acquisitions.
    [[nodiscard]] Guard
    try_lock(std::source_location where = std::source_location::current()) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
    {
        IrqState state;
        if (!try_acquire(state, where))
            return Guard(nullptr, IrqState{});
        return Guard(this, state);
    }

    // The manual form, for what a scope cannot express (the Loom of Fate taking the run-queue lock
    // in one thread and releasing it in the thread it switched to). Every successful acquire()
    // or try_acquire() needs exactly one release() with the state it returned.
    [[nodiscard]] IrqState acquire(std::source_location where = std::source_location::current()) AETHELOS_ACQUIRE();
    [[nodiscard]] bool try_acquire(IrqState& state, std::source_location where = std::source_location::current())
        AETHELOS_TRY_ACQUIRE(true);
    void release(IrqState state) AETHELOS_RELEASE();

    // Debug builds: panics unless this CPU holds the lock ("caller must hold m_lock"). Release
    // builds: nothing. Every AETHELOS_REQUIRES(lock) function calls it first.
    void assert_held(std::source_location where = std::source_location::current()) const
        AETHELOS_ASSERT_CAPABILITY(this);

    // A snapshot: by the time the caller looks, it may have changed (unless it holds the lock).
    bool is_locked() const { return m_locked.load(std::memory_order_relaxed); }
    const char* name() const { return m_name; }
    LockRank rank() const { return m_rank; }

#if AETHELOS_SYNC_CHECKS
    // Debug builds: whether this CPU holds the lock.
    bool is_held_by_this_cpu() const { return m_owner.load(std::memory_order_relaxed) == &this_cpu(); }
    // Where the current holder acquired it (nullptr / 0 when unlocked).
    const char* acquired_file() const { return m_acquired_file.load(std::memory_order_relaxed); }
    uint32_t acquired_line() const { return m_acquired_line.load(std::memory_order_relaxed); }
#endif

private:
    void spin(IrqState state, std::source_location where);
#if AETHELOS_SYNC_CHECKS
    void check_acquire(std::source_location where) const;
    void check_capacity(std::source_location where) const;
    void note_acquired(std::source_location where);
    void check_release() const;
    void note_released();
    [[noreturn]] void report_spin_timeout(IrqState state, uint64_t spins, std::source_location where);
#endif

    std::atomic<bool> m_locked{false};
    const char* m_name;
    LockRank m_rank;
#if AETHELOS_SYNC_CHECKS
    // Who holds the lock, for the reports. Written by the holder, read by anyone (relaxed: the
    // reports are diagnostics, not synchronisation).
    std::atomic<const CpuLocal*> m_owner{nullptr};
    std::atomic<const char*> m_owner_name{nullptr};
    std::atomic<const char*> m_acquired_file{nullptr};
    std::atomic<uint32_t> m_acquired_line{0};
    std::atomic<uint64_t> m_acquired_ns{0};
#endif
};

// The primitives are what the analysis trusts, not what it checks.
inline IrqState IrqSpinLock::acquire(std::source_location where) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
#if AETHELOS_SYNC_CHECKS
    check_acquire(where); // before changing any state, so a report leaves everything as it was
#endif
    const IrqState state{arch::interrupts_enabled()};
    arch::interrupts_disable();
    preempt_disable();
    if (m_locked.exchange(true, std::memory_order_acquire)) [[unlikely]]
        spin(state, where);
#if AETHELOS_SYNC_CHECKS
    note_acquired(where);
#else
    (void)where;
#endif
    return state;
}

inline bool IrqSpinLock::try_acquire(IrqState& state, std::source_location where) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
#if AETHELOS_SYNC_CHECKS
    check_capacity(where);
#endif
    state.interrupts_were_enabled = arch::interrupts_enabled();
    arch::interrupts_disable();
    preempt_disable();
    if (m_locked.load(std::memory_order_relaxed) || m_locked.exchange(true, std::memory_order_acquire)) {
        if (state.interrupts_were_enabled)
            arch::interrupts_enable();
        preempt_enable();
        return false;
    }
#if AETHELOS_SYNC_CHECKS
    note_acquired(where);
#else
    (void)where;
#endif
    return true;
}

inline void IrqSpinLock::release(IrqState state) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
#if AETHELOS_SYNC_CHECKS
    check_release();
    note_released();
#endif
    m_locked.store(false, std::memory_order_release);
    // Interrupts first, then preemption: a reschedule that preempt_enable() triggers then runs
    // with interrupts on, as the resched hook expects.
    if (state.interrupts_were_enabled)
        arch::interrupts_enable();
    preempt_enable();
}

#if !AETHELOS_SYNC_CHECKS
inline void IrqSpinLock::assert_held(std::source_location) const { }
#endif

} // namespace kernel::sync
