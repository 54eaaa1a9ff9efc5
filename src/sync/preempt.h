#pragma once
// Per-CPU preemption control for the Loom of Fate.
//
// The timer interrupt only *requests* a reschedule (set_need_resched()); the switch itself happens
// at a safe point:
//   - at the interrupt-exit hook, when the preempt count is 0 and no interrupt is nested, or
//   - in preempt_enable(), when the count drops back to 0 with a request pending (the request was
//     deferred because the interrupted code had preemption disabled).
// Code between preempt_disable() and preempt_enable() (a PreemptGuard, an IrqSpinLock) is therefore
// never switched away from midway, and destructors running under such guards complete.
//
// State lives in one CpuLocal per CPU. The Heartwood runs on one CPU for now, so there is a single
// instance; in the host tests (AETHELOS_HOST_TEST) it is thread_local, so every std::thread acts as
// its own CPU (matching the host arch layer, whose interrupt flag is per-thread too).
#include <atomic>
#include <stdint.h>

#include "arch/cpu.h"

#if defined(AETHELOS_DEBUG_CHECKS) && AETHELOS_DEBUG_CHECKS
#define AETHELOS_SYNC_CHECKS 1
#else
#define AETHELOS_SYNC_CHECKS 0
#endif

namespace kernel::sync {

class IrqSpinLock;

// How many spinlocks one CPU may hold at once before the debug checker reports it (debug builds).
inline constexpr uint32_t kMaxHeldSpinLocks = 16;

struct CpuLocal {
    // preempt_disable() nesting. Only this CPU writes it; an interrupt handler may change it in
    // between but always restores it, so plain load + store (no locked instruction) is enough.
    std::atomic<uint32_t> preempt_count{0};
    // A reschedule was requested (by the tick or a wake-up) and not yet acted upon.
    std::atomic<bool> need_resched{false};
    // Interrupt nesting is not duplicated here: it is arch's count (arch::interrupt_nesting_depth()).
#if AETHELOS_SYNC_CHECKS
    // Spinlocks held by this CPU in acquisition order, for the lock-rank and sleep checks.
    const IrqSpinLock* held_locks[kMaxHeldSpinLocks]{};
    uint32_t held_count = 0;
#endif
};

namespace detail {
#if defined(AETHELOS_HOST_TEST)
extern thread_local constinit CpuLocal t_cpu_local;
inline CpuLocal& this_cpu() { return t_cpu_local; }
#else
extern constinit CpuLocal g_cpu_local;
inline CpuLocal& this_cpu() { return g_cpu_local; }
#endif

// Keeps the compiler from moving memory accesses across a preempt count change. Only this CPU
// (and its own interrupt handlers) look at the count, so no hardware fence is needed.
inline void compiler_barrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

void preempt_resched(); // the slow path of preempt_enable()
[[noreturn]] void preempt_underflow();
} // namespace detail

// This CPU's state.
inline CpuLocal& this_cpu() { return detail::this_cpu(); }

inline uint32_t preempt_count() { return this_cpu().preempt_count.load(std::memory_order_relaxed); }

inline void preempt_disable()
{
    CpuLocal& cpu = this_cpu();
    cpu.preempt_count.store(cpu.preempt_count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    detail::compiler_barrier();
}

namespace detail {
// Decrements the count and returns the new value.
inline uint32_t preempt_count_decrement()
{
    compiler_barrier();
    CpuLocal& cpu = sync::this_cpu();
    const uint32_t count = cpu.preempt_count.load(std::memory_order_relaxed);
#if AETHELOS_SYNC_CHECKS
    if (count == 0) [[unlikely]]
        preempt_underflow();
#endif
    cpu.preempt_count.store(count - 1, std::memory_order_relaxed);
    return count - 1;
}
} // namespace detail

// Re-enables preemption without acting on a pending reschedule request. For the Loom of Fate's own
// paths that are about to switch anyway; everyone else uses preempt_enable().
inline void preempt_enable_no_resched() { detail::preempt_count_decrement(); }

// When the count returns to 0 with a reschedule pending, calls the resched hook, provided this
// CPU is preemptible (interrupts enabled, not in an interrupt handler); otherwise the request stays
// pending for the interrupt-exit path or the next preempt_enable().
inline void preempt_enable()
{
    if (detail::preempt_count_decrement() == 0 && this_cpu().need_resched.load(std::memory_order_relaxed)) [[unlikely]]
        detail::preempt_resched();
}

// Inside a hardware interrupt handler on this CPU.
inline bool in_interrupt() { return arch::interrupt_nesting_depth() != 0; }

// The running code may be switched away from right now.
inline bool preemptible() { return preempt_count() == 0 && !in_interrupt() && arch::interrupts_enabled(); }

// Reschedule requests (the Loom of Fate's tick and wake-up paths set it; it clears it when it
// switches). Safe from interrupt handlers.
inline void set_need_resched() { this_cpu().need_resched.store(true, std::memory_order_relaxed); }
inline void clear_need_resched() { this_cpu().need_resched.store(false, std::memory_order_relaxed); }
inline bool need_resched() { return this_cpu().need_resched.load(std::memory_order_relaxed); }

// The Loom of Fate's "switch now" entry, called by preempt_enable() as described above, with the
// preempt count 0 and interrupts enabled. need_resched is cleared just before the call (so the
// locks the hook itself takes and drops do not call it again). nullptr (the default) means no
// scheduler: requests just stay pending. Returns the previous hook.
using PreemptReschedHook = void (*)();
PreemptReschedHook set_preempt_resched_hook(PreemptReschedHook hook);

// Disables preemption for its lifetime; nests.
class [[nodiscard]] PreemptGuard {
public:
    PreemptGuard() { preempt_disable(); }
    ~PreemptGuard() { preempt_enable(); }
    PreemptGuard(const PreemptGuard&) = delete;
    PreemptGuard& operator=(const PreemptGuard&) = delete;
};

// Who is running on this CPU, for debug reports ("held by 'shell'"). The Loom of Fate installs a
// hook returning the current thread's name; until then it is "boot". The hook must be callable
// from any context (interrupt handlers included) and must not take locks. Returns the previous hook.
using OwnerNameHook = const char* (*)();
OwnerNameHook set_owner_name_hook(OwnerNameHook hook);
// The hook's answer (never nullptr).
const char* current_owner_name();

// Debug builds: panics with the reason if the caller may not block or sleep here: inside an
// interrupt handler, holding a spinlock (named in the report), or with preemption disabled.
// `operation` names what was attempted ("Mutex::lock", "sleep_for"). Release builds: nothing.
#if AETHELOS_SYNC_CHECKS
void assert_may_sleep(const char* operation = "sleep");
#else
inline void assert_may_sleep(const char* = "sleep") { }
#endif

} // namespace kernel::sync
