// The Loom of Fate's trace control: start, stop, release, status, the JSON dump, the recording
// slow path and the IRQ observer. The ring and its format are sched/trace.h. Kernel glue beside
// scheduler.cpp (see there).
#include "sched/scheduler.h"

#include "arch/cpu.h"
#include "lib/thread_safety.h"
#include "mm/kmalloc.h"
#include "sched/scheduler_state.h"
#include "sched/trace.h"
#include "sync/irq_spinlock.h"
#include "time/time.h"

namespace sched {

using namespace detail;

namespace detail {

// Under the lock or in an IRQ hook with interrupts off (scheduler_state.h): not expressible as a
// REQUIRES.
[[gnu::cold, gnu::noinline]] void trace_record(trace::EventKind kind, uint64_t thread, uint64_t value,
                                               uint8_t detail) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    trace::Event event;
    event.stamp = arch::read_cycle_counter();
    event.value = value;
    event.thread = static_cast<uint32_t>(thread);
    event.kind = kind;
    event.detail = detail;
    g_sched.m_trace_ring.push(event);
}

} // namespace detail

namespace {

// Around every real IRQ (interrupts off); installed only while tracing.
void trace_irq(uint8_t irq, bool entering)
{
    if (!g_sched.m_trace_on)
        return;
    Thread* running = g_current;
    trace_record(entering ? trace::EventKind::IrqEnter : trace::EventKind::IrqExit,
                 running != nullptr ? running->id() : 0, 0, irq);
}

TraceStatus trace_status_locked() AETHELOS_REQUIRES(g_sched.m_lock)
{
    g_sched.m_lock.assert_held();
    TraceStatus status;
    status.on = g_sched.m_trace_on;
    status.capacity = g_sched.m_trace_ring.capacity();
    status.held = g_sched.m_trace_ring.size();
    status.recorded = g_sched.m_trace_ring.pushed();
    status.overwritten = g_sched.m_trace_ring.overwritten();
    status.names_missed = g_sched.m_trace_names.missed();
    return status;
}

} // namespace

const char* to_string(TraceError error)
{
    switch (error) {
    case TraceError::NotInitialized: return "the Loom of Fate is not initialised";
    case TraceError::OutOfMemory: return "no memory for the trace ring";
    case TraceError::Busy: return "the trace is busy";
    }
    return "unknown trace error";
}

lib::Expected<TraceStatus, TraceError> trace_start()
{
    if (!g_initialized)
        return lib::unexpected(TraceError::NotInitialized);
    trace::Event* storage = nullptr;
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        storage = g_sched.m_trace_storage;
    }
    if (storage == nullptr) { // first start: allocate outside the lock, keep it for good
        storage = static_cast<trace::Event*>(mm::kmalloc(kTraceRingBytes));
        if (storage == nullptr)
            return lib::unexpected(TraceError::OutOfMemory);
        bool kept = false;
        {
            IrqSpinLock::Guard guard{g_sched.m_lock};
            if (g_sched.m_trace_storage == nullptr) {
                g_sched.m_trace_storage = storage;
                kept = true;
            }
        }
        if (!kept)
            mm::kfree(storage); // another start won the race
    }
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (g_sched.m_trace_dumping)
        return lib::unexpected(TraceError::Busy);
    g_sched.m_trace_ring.attach(g_sched.m_trace_storage, kTraceCapacity);
    g_sched.m_trace_names.clear();
    for (Thread* t = g_sched.m_all; t != nullptr; t = A::all_next(*t))
        g_sched.m_trace_names.add(t->id(), A::name(t));
    g_sched.m_trace_on = true;
    trace_record(trace::EventKind::Start, g_current->id(), kernel::time::uptime_ns());
    arch::set_irq_observer(&trace_irq);
    return trace_status_locked();
}

TraceStatus trace_stop()
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    if (g_sched.m_trace_on) {
        trace_record(trace::EventKind::Stop, g_current != nullptr ? g_current->id() : 0, kernel::time::uptime_ns());
        g_sched.m_trace_on = false;
        arch::set_irq_observer(nullptr);
    }
    return trace_status_locked();
}

bool trace_release()
{
    trace::Event* storage;
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        if (g_sched.m_trace_on || g_sched.m_trace_dumping)
            return false;
        storage = g_sched.m_trace_storage;
        g_sched.m_trace_storage = nullptr;
        g_sched.m_trace_ring.attach(nullptr, 0);
        g_sched.m_trace_names.clear();
    }
    if (storage != nullptr)
        mm::kfree(storage);
    return true;
}

TraceStatus trace_status()
{
    IrqSpinLock::Guard guard{g_sched.m_lock};
    return trace_status_locked();
}

// Reads the ring and the names without the lock, which g_sched.m_trace_dumping makes safe: the analysis
// cannot see that protocol.
lib::Expected<trace::JsonReport, TraceError> trace_write_json(lib::FormatSink& out) AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    {
        IrqSpinLock::Guard guard{g_sched.m_lock};
        if (g_sched.m_trace_on || g_sched.m_trace_dumping)
            return lib::unexpected(TraceError::Busy);
        g_sched.m_trace_dumping = true;
    }
    // Off and marked as dumping: nothing writes the ring or the names until we are done.
    trace::JsonOptions options;
    const trace::JsonReport report =
        trace::write_chrome_json(g_sched.m_trace_ring, g_sched.m_trace_names, options, out);
    IrqSpinLock::Guard guard{g_sched.m_lock};
    g_sched.m_trace_dumping = false;
    return report;
}

} // namespace sched
