#pragma once
// The Loom of Fate's trace: a fixed-capacity ring of scheduler events and the writer that turns it
// into Chrome trace-event JSON (opens in Perfetto, ui.perfetto.dev, and chrome://tracing).
//
//   trace::Ring ring;  ring.attach(storage, capacity);      // storage: capacity Events
//   ring.push({tsc, value, thread, EventKind::Switch, cause});
//   trace::write_chrome_json(ring, names, options, sink);
//
// Generic code (no arch headers, no globals, no allocation): the kernel glue owns the one kernel
// instance (in sched/scheduler_state.h; sched/scheduler_trace.cpp controls it), fills it from its
// hooks and serialises every writer by running them with interrupts disabled on the one CPU; the
// host tests drive private instances.
//
// ## The ring
// Overwrite-oldest: once full, each new event replaces the oldest one, so the ring always holds the
// newest `capacity` events (a flight recorder: what happened just before `trace stop`), and
// overwritten() says how many were lost. Events are stored in the order they are pushed, which on
// one CPU with interrupts off around every push is also timestamp order.
//
// ## Time
// Events carry a raw cycle-counter stamp (x86_64: TSC; under QEMU TCG it follows the host's TSC,
// under -icount it counts instructions). The writer converts stamps to nanoseconds of uptime by
// linear interpolation between the Tick events, whose uptime is exact (kernel::time counts whole
// tick periods): sub-tick resolution, no calibration, and order preserved. Before the first and after
// the last tick it extrapolates with the nearest pair's rate; with fewer than two ticks it uses
// options.fallback_ns_per_kcycle.
#include <stddef.h>
#include <stdint.h>

#include "lib/format.h"

namespace sched::trace {

enum class EventKind : uint8_t {
    Start,    // tracing began: thread = the running thread, value = uptime ns
    Stop,     // tracing ended: thread = the running thread, value = uptime ns
    Switch,   // thread = from, value = to, detail = SwitchCause
    Preempt,  // an involuntary switch: thread = the preempted one, value = next, detail = SwitchCause
    Wake,     // thread = woken, value = the waker's id (0: the timer), detail = WakeCause
    Block,    // thread = blocking, value = wake tick for a sleep (else 0), detail = BlockCause
    Spawn,    // thread = new, value = the spawner's id
    Tick,     // timer tick: thread = running thread, value = uptime ns at that tick (exact)
    IrqEnter, // thread = the interrupted thread, detail = IRQ line
    IrqExit,
};
inline constexpr unsigned kEventKindCount = 10;

enum class SwitchCause : uint8_t {
    Yield,    // sched::yield
    Block,    // the thread left the CPU because it blocked, slept or exited
    IrqExit,  // preemption at interrupt exit (quantum expiry or a more urgent thread)
    Deferred, // preemption deferred to preempt_enable()
};
enum class WakeCause : uint8_t { Unpark, Timer, Join };
enum class BlockCause : uint8_t { Park, Sleep, Join, Exit };

const char* to_string(EventKind kind);
const char* to_string(SwitchCause cause);
const char* to_string(WakeCause cause);
const char* to_string(BlockCause cause);

struct Event {
    uint64_t stamp = 0;  // cycle counter
    uint64_t value = 0;  // per kind, see EventKind
    uint32_t thread = 0; // thread id (ids beyond 2^32 are truncated)
    EventKind kind = EventKind::Start;
    uint8_t detail = 0; // per kind, see EventKind
    uint16_t reserved = 0;
};
static_assert(sizeof(Event) == 24);

class Ring {
public:
    constexpr Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // Uses `storage` (capacity events, caller-owned) from now on, empty. capacity 0 or a null
    // storage detaches: push() then drops everything.
    void attach(Event* storage, size_t capacity);
    bool attached() const { return m_capacity != 0; }
    // Forgets every event (and the overwritten count).
    void clear();

    void push(const Event& event)
    {
        if (m_capacity == 0) [[unlikely]]
            return;
        m_events[m_next] = event;
        if (++m_next == m_capacity)
            m_next = 0;
        ++m_pushed;
    }

    size_t capacity() const { return m_capacity; }
    // Events held: min(pushed, capacity).
    size_t size() const { return m_pushed < m_capacity ? static_cast<size_t>(m_pushed) : m_capacity; }
    uint64_t pushed() const { return m_pushed; }
    uint64_t overwritten() const { return m_pushed - size(); }
    // The i-th event held, oldest first (i < size()).
    const Event& at(size_t i) const
    {
        const size_t first = m_pushed > m_capacity ? m_next : 0;
        size_t index = first + i;
        if (index >= m_capacity)
            index -= m_capacity;
        return m_events[index];
    }

private:
    Event* m_events = nullptr;
    size_t m_capacity = 0;
    size_t m_next = 0; // where the next push goes
    uint64_t m_pushed = 0;
};

inline constexpr size_t kTraceNameBytes = 32;

// Thread names for the trace's metadata, captured while tracing: a thread may have exited and been
// freed by the time the trace is written.
class ThreadNames {
public:
    static constexpr size_t kCapacity = 256;

    constexpr ThreadNames() = default;
    // Records (or renames) `id`; false when the table is full (counted in missed()).
    bool add(uint64_t id, const char* name);
    // nullptr when unknown.
    const char* find(uint64_t id) const;
    void clear();
    size_t size() const { return m_count; }
    uint64_t id_at(size_t i) const { return m_entries[i].id; }
    const char* name_at(size_t i) const { return m_entries[i].name; }
    uint64_t missed() const { return m_missed; }

private:
    struct Entry {
        uint64_t id = 0;
        char name[kTraceNameBytes] = {};
    };
    Entry m_entries[kCapacity] = {};
    size_t m_count = 0;
    uint64_t m_missed = 0;
};

struct JsonOptions {
    // Nanoseconds per 1000 counter cycles when the ring holds fewer than two ticks.
    uint64_t fallback_ns_per_kcycle = 1000;
    // Written into "otherData" (may be nullptr).
    const char* system = "AethelOS";
};

struct JsonReport {
    size_t events = 0;     // trace events written (metadata excluded)
    size_t slices = 0;     // running slices ("X" on thread tracks)
    size_t irq_slices = 0; // interrupt slices on the interrupt track
    size_t anchors = 0;    // ticks used to convert stamps to time
};

// The interrupt track's tid (thread ids start at 1).
inline constexpr uint32_t kIrqTrackTid = 0;

// Writes the whole ring as one JSON object: {"displayTimeUnit":..., "otherData":{...},
// "traceEvents":[...]}, one event per line. pid 1; tid = thread id. Running intervals come from
// the Switch events as "X" slices named after the thread (args: how it left the CPU); wake, block,
// preempt and spawn are thread-scoped "i" events; ticks and IRQ enter/exit pairs ("X" slices
// "irq N") go on the interrupt track (tid 0); "M" events name the process and every known thread.
// Names are escaped (quotes, backslashes, control and non-ASCII bytes), so the output is always
// valid ASCII JSON. Timestamps are microseconds of uptime with nanosecond decimals.
JsonReport write_chrome_json(const Ring& ring, const ThreadNames& names, const JsonOptions& options,
                             lib::FormatSink& out);

// Writes `text` as a JSON string literal (with the quotes), escaped as above.
void write_json_string(lib::FormatSink& out, const char* text);

} // namespace sched::trace
