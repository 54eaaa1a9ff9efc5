#include "sync/irq_spinlock.h"

#include "lib/format.h"
#include "lib/panic.h"
#include "lib/string.h"
#include "time/time.h"

namespace kernel::sync {
namespace {
constinit std::atomic<uint64_t> g_spin_limit{kDefaultSpinLimit};
} // namespace
} // namespace kernel::sync

#if AETHELOS_SYNC_CHECKS

// Pieces of the debug reports, each printable with {}.
namespace kernel::sync::report {

// A lock: "spinlock 'heap' (rank 300)".
struct LockName {
    const IrqSpinLock* lock;
};

// An uptime: "12.345678s".
struct Seconds {
    uint64_t ns;
};

// A source position, by the last two components of its path: "mm/heap.cpp:42". Enough to find the
// line, short enough for a panic message that quotes several.
struct Where {
    const char* file;
    uint32_t line;
};

inline Where where_of(std::source_location location)
{
    return Where{location.file_name(), static_cast<uint32_t>(location.line())};
}

} // namespace kernel::sync::report

template <>
struct lib::Formatter<kernel::sync::report::LockName> {
    static void format(lib::FormatSink& sink, const lib::FormatSpec&, const kernel::sync::report::LockName& value)
    {
        lib::format_to(sink, "spinlock '{}' (rank {})", value.lock->name(), value.lock->rank());
    }
};

template <>
struct lib::Formatter<kernel::sync::report::Seconds> {
    static void format(lib::FormatSink& sink, const lib::FormatSpec&, const kernel::sync::report::Seconds& value)
    {
        lib::format_to(sink, "{}.{:06}s", value.ns / 1000000000, (value.ns % 1000000000) / 1000);
    }
};

template <>
struct lib::Formatter<kernel::sync::report::Where> {
    static void format(lib::FormatSink& sink, const lib::FormatSpec&, const kernel::sync::report::Where& value)
    {
        lib::format_to(sink, "{}:{}", lib::short_path(value.file), value.line);
    }
};

#endif // AETHELOS_SYNC_CHECKS

namespace kernel::sync {

#if AETHELOS_SYNC_CHECKS
using report::LockName;
using report::Seconds;
using report::Where;
using report::where_of;
#endif

uint64_t set_spin_limit(uint64_t iterations) { return g_spin_limit.exchange(iterations, std::memory_order_relaxed); }
uint64_t spin_limit() { return g_spin_limit.load(std::memory_order_relaxed); }

void IrqSpinLock::spin([[maybe_unused]] IrqState state, [[maybe_unused]] std::source_location where)
{
#if AETHELOS_SYNC_CHECKS
    const uint64_t limit = spin_limit();
    uint64_t spins = 0;
#endif
    do {
        // Wait with plain loads so the cache line stays shared until the holder lets go.
        while (m_locked.load(std::memory_order_relaxed)) {
            arch::cpu_relax();
#if AETHELOS_SYNC_CHECKS
            if (++spins > limit) [[unlikely]]
                report_spin_timeout(state, spins - 1, where);
#endif
        }
    } while (m_locked.exchange(true, std::memory_order_acquire));
}

#if AETHELOS_SYNC_CHECKS

void IrqSpinLock::check_capacity(std::source_location where) const
{
    const CpuLocal& cpu = this_cpu();
    if (cpu.held_count >= kMaxHeldSpinLocks) [[unlikely]]
        kernel::panic("'{}' already holds {} spinlocks (the most the lock checker tracks) and acquires {} at {}",
                      current_owner_name(), cpu.held_count, LockName{this}, where_of(where));
}

void IrqSpinLock::check_acquire(std::source_location where) const
{
    const CpuLocal& cpu = this_cpu();
    if (m_owner.load(std::memory_order_relaxed) == &cpu) [[unlikely]]
        kernel::panic("recursive acquisition of {} held since {} by '{}', acquired at {}; acquired again at {}",
                      LockName{this}, Seconds{m_acquired_ns.load(std::memory_order_relaxed)},
                      m_owner_name.load(std::memory_order_relaxed), Where{acquired_file(), acquired_line()},
                      where_of(where));
    check_capacity(where);

    const IrqSpinLock* highest = nullptr;
    for (uint32_t i = 0; i < cpu.held_count; ++i)
        if (highest == nullptr || cpu.held_locks[i]->m_rank > highest->m_rank)
            highest = cpu.held_locks[i];
    if (highest != nullptr && m_rank <= highest->m_rank) [[unlikely]]
        kernel::panic("lock order inversion: '{}' acquires {} at {} while holding {}, acquired at {}; "
                      "a lock's rank must exceed the rank of every lock held",
                      current_owner_name(), LockName{this}, where_of(where), LockName{highest},
                      Where{highest->acquired_file(), highest->acquired_line()});
}

void IrqSpinLock::note_acquired(std::source_location where)
{
    CpuLocal& cpu = this_cpu();
    m_owner.store(&cpu, std::memory_order_relaxed);
    m_owner_name.store(current_owner_name(), std::memory_order_relaxed);
    m_acquired_file.store(where.file_name(), std::memory_order_relaxed);
    m_acquired_line.store(static_cast<uint32_t>(where.line()), std::memory_order_relaxed);
    m_acquired_ns.store(kernel::time::uptime_ns(), std::memory_order_relaxed);
    // Interrupts are off, so nothing on this CPU interleaves with the push; capacity was checked.
    cpu.held_locks[cpu.held_count++] = this;
}

void IrqSpinLock::check_release() const
{
    const CpuLocal& cpu = this_cpu();
    const CpuLocal* owner = m_owner.load(std::memory_order_relaxed);
    if (!m_locked.load(std::memory_order_relaxed)) [[unlikely]]
        kernel::panic("release of {} by '{}', which does not hold it: the lock is free", LockName{this},
                      current_owner_name());
    if (owner != &cpu) [[unlikely]]
        kernel::panic("release of {} by '{}', which does not hold it: held by '{}' since {}, acquired at {}",
                      LockName{this}, current_owner_name(), m_owner_name.load(std::memory_order_relaxed),
                      Seconds{m_acquired_ns.load(std::memory_order_relaxed)}, Where{acquired_file(), acquired_line()});
    if (arch::interrupts_enabled()) [[unlikely]]
        kernel::panic("{} released by '{}' with interrupts enabled: something re-enabled them inside the "
                      "critical section that began at {}",
                      LockName{this}, current_owner_name(), Where{acquired_file(), acquired_line()});
}

void IrqSpinLock::note_released()
{
    CpuLocal& cpu = this_cpu();
    // Usually the innermost lock, but the manual API may release out of order.
    for (uint32_t i = cpu.held_count; i-- > 0;) {
        if (cpu.held_locks[i] != this)
            continue;
        for (uint32_t j = i; j + 1 < cpu.held_count; ++j)
            cpu.held_locks[j] = cpu.held_locks[j + 1];
        cpu.held_locks[--cpu.held_count] = nullptr;
        break;
    }
    m_owner.store(nullptr, std::memory_order_relaxed);
    m_owner_name.store(nullptr, std::memory_order_relaxed);
    m_acquired_file.store(nullptr, std::memory_order_relaxed);
    m_acquired_line.store(0, std::memory_order_relaxed);
}

void IrqSpinLock::report_spin_timeout([[maybe_unused]] IrqState state, uint64_t spins, std::source_location where)
{
    // Read the holder first: it may let go at any moment.
    const char* owner_name = m_owner_name.load(std::memory_order_relaxed);
    const uint64_t since = m_acquired_ns.load(std::memory_order_relaxed);
    const Where acquired{acquired_file(), acquired_line()};
#if defined(AETHELOS_HOST_TEST)
    // The host panic throws: leave this "CPU" as it was before lock() so the test can carry on.
    preempt_enable_no_resched();
    if (state.interrupts_were_enabled)
        arch::interrupts_enable();
#endif
    kernel::panic("{} not acquired after {} spins by '{}' at {}: held by '{}' since {}, acquired at {} "
                  "(deadlock or missing unlock?)",
                  LockName{this}, spins, current_owner_name(), where_of(where),
                  owner_name != nullptr ? owner_name : "?", Seconds{since}, acquired);
}

void IrqSpinLock::assert_held(std::source_location where) const
{
    if (m_owner.load(std::memory_order_relaxed) == &this_cpu())
        return;
    if (!is_locked())
        kernel::panic("{} must be held by '{}' at {}, but it is free", LockName{this}, current_owner_name(),
                      where_of(where));
    kernel::panic("{} must be held by '{}' at {}, but '{}' holds it (acquired at {})", LockName{this},
                  current_owner_name(), where_of(where), m_owner_name.load(std::memory_order_relaxed),
                  Where{acquired_file(), acquired_line()});
}

void assert_may_sleep(const char* operation)
{
    if (in_interrupt())
        kernel::panic("'{}' may not sleep ({}) in interrupt context (IRQ nesting depth {})", current_owner_name(),
                      operation, arch::interrupt_nesting_depth());
    const CpuLocal& cpu = this_cpu();
    if (cpu.held_count != 0) {
        const IrqSpinLock* innermost = cpu.held_locks[cpu.held_count - 1];
        kernel::panic("'{}' may not sleep ({}) while holding {}, acquired at {} ({} spinlock(s) held)",
                      current_owner_name(), operation, LockName{innermost},
                      Where{innermost->acquired_file(), innermost->acquired_line()}, cpu.held_count);
    }
    if (const uint32_t count = preempt_count(); count != 0)
        kernel::panic("'{}' may not sleep ({}) with preemption disabled (preempt count {})", current_owner_name(),
                      operation, count);
}

#endif // AETHELOS_SYNC_CHECKS

} // namespace kernel::sync
