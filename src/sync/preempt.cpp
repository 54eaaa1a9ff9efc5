#include "sync/preempt.h"

#include "lib/panic.h"

namespace kernel::sync {

namespace detail {
#if defined(AETHELOS_HOST_TEST)
thread_local constinit CpuLocal t_cpu_local;
#else
constinit CpuLocal g_cpu_local;
#endif
} // namespace detail

namespace {

constinit std::atomic<PreemptReschedHook> g_resched_hook{nullptr};
constinit std::atomic<OwnerNameHook> g_owner_name_hook{nullptr};

} // namespace

void detail::preempt_resched()
{
    // Not a safe point: inside an interrupt handler the interrupt-exit path decides; with
    // interrupts disabled the caller is in a section that must not switch. Either way the request
    // stays pending and is honoured at the next interrupt exit or preempt_enable().
    if (in_interrupt() || !arch::interrupts_enabled())
        return;
    CpuLocal& cpu = sync::this_cpu();
    const PreemptReschedHook hook = g_resched_hook.load(std::memory_order_acquire);
    if (hook == nullptr)
        return;
    cpu.need_resched.store(false, std::memory_order_relaxed);
    hook();
}

void detail::preempt_underflow()
{
    kernel::panic("preempt_enable() without a matching preempt_disable() on '{}' (preempt count already 0)",
                  current_owner_name());
}

PreemptReschedHook set_preempt_resched_hook(PreemptReschedHook hook)
{
    return g_resched_hook.exchange(hook, std::memory_order_acq_rel);
}

OwnerNameHook set_owner_name_hook(OwnerNameHook hook)
{
    return g_owner_name_hook.exchange(hook, std::memory_order_acq_rel);
}

const char* current_owner_name()
{
    const OwnerNameHook hook = g_owner_name_hook.load(std::memory_order_acquire);
    const char* name = hook != nullptr ? hook() : nullptr;
    return name != nullptr ? name : "boot";
}

} // namespace kernel::sync
