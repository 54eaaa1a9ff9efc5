// The Loom of Fate's trace ring and its Chrome trace-event JSON writer. See trace.h.
#include "sched/trace.h"

#include "lib/math.h"
#include "lib/string.h"

namespace sched::trace {

namespace {
void put(lib::FormatSink& out, const char* text) { out.write(text, lib::c_string_length(text)); }
} // namespace

const char* to_string(EventKind kind)
{
    switch (kind) {
    case EventKind::Start: return "trace start";
    case EventKind::Stop: return "trace stop";
    case EventKind::Switch: return "switch";
    case EventKind::Preempt: return "preempt";
    case EventKind::Wake: return "wake";
    case EventKind::Block: return "block";
    case EventKind::Spawn: return "spawn";
    case EventKind::Tick: return "tick";
    case EventKind::IrqEnter: return "irq enter";
    case EventKind::IrqExit: return "irq exit";
    }
    return "unknown";
}

const char* to_string(SwitchCause cause)
{
    switch (cause) {
    case SwitchCause::Yield: return "yield";
    case SwitchCause::Block: return "block";
    case SwitchCause::IrqExit: return "preempted at irq exit";
    case SwitchCause::Deferred: return "preempted at preempt_enable";
    }
    return "unknown";
}

const char* to_string(WakeCause cause)
{
    switch (cause) {
    case WakeCause::Unpark: return "unpark";
    case WakeCause::Timer: return "timer";
    case WakeCause::Join: return "joined thread exited";
    }
    return "unknown";
}

const char* to_string(BlockCause cause)
{
    switch (cause) {
    case BlockCause::Park: return "park";
    case BlockCause::Sleep: return "sleep";
    case BlockCause::Join: return "join";
    case BlockCause::Exit: return "exit";
    }
    return "unknown";
}

// ---- Ring ----

void Ring::attach(Event* storage, size_t capacity)
{
    m_events = storage;
    m_capacity = storage != nullptr ? capacity : 0;
    clear();
}

void Ring::clear()
{
    m_next = 0;
    m_pushed = 0;
}

// ---- ThreadNames ----

bool ThreadNames::add(uint64_t id, const char* name)
{
    const lib::StringView text(name != nullptr ? name : "?");
    for (size_t i = 0; i < m_count; ++i) {
        if (m_entries[i].id == id) {
            lib::copy_string(m_entries[i].name, sizeof(m_entries[i].name), text);
            return true;
        }
    }
    if (m_count == kCapacity) {
        ++m_missed;
        return false;
    }
    m_entries[m_count].id = id;
    lib::copy_string(m_entries[m_count].name, sizeof(m_entries[m_count].name), text);
    ++m_count;
    return true;
}

const char* ThreadNames::find(uint64_t id) const
{
    for (size_t i = 0; i < m_count; ++i)
        if (m_entries[i].id == id)
            return m_entries[i].name;
    return nullptr;
}

void ThreadNames::clear()
{
    m_count = 0;
    m_missed = 0;
}

// ---- JSON ----

void write_json_string(lib::FormatSink& out, const char* text)
{
    static constexpr char kHex[] = "0123456789abcdef";
    put(out, "\"");
    if (text != nullptr) {
        const char* run = text; // start of the pending run of bytes that need no escape
        const char* p = text;
        for (; *p != '\0'; ++p) {
            const auto c = static_cast<unsigned char>(*p);
            const char* escape = nullptr;
            char unicode[7] = {'\\', 'u', '0', '0', 0, 0, 0};
            switch (c) {
            case '"': escape = "\\\""; break;
            case '\\': escape = "\\\\"; break;
            case '\n': escape = "\\n"; break;
            case '\r': escape = "\\r"; break;
            case '\t': escape = "\\t"; break;
            case '\b': escape = "\\b"; break;
            case '\f': escape = "\\f"; break;
            default:
                // Control bytes must be escaped; bytes >= 0x80 are read as Latin-1 so that any
                // name (not necessarily UTF-8) still makes valid, pure-ASCII JSON.
                if (c < 0x20 || c >= 0x7f) {
                    unicode[4] = kHex[c >> 4];
                    unicode[5] = kHex[c & 0xf];
                    escape = unicode;
                }
            }
            if (escape == nullptr)
                continue;
            if (p > run)
                out.write(run, static_cast<size_t>(p - run));
            out.write(escape, lib::c_string_length(escape));
            run = p + 1;
        }
        if (p > run)
            out.write(run, static_cast<size_t>(p - run));
    }
    put(out, "\"");
}

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// Cycle-counter stamps to uptime nanoseconds, for events visited in ring order (see trace.h).
class StampClock {
public:
    StampClock(const Ring& ring, const JsonOptions& options) : m_ring(ring), m_options(options)
    {
        m_next = find_tick(0);
        m_second = m_next == kNone ? kNone : find_tick(m_next + 1);
        for (size_t i = 0; i < ring.size(); ++i)
            if (ring.at(i).kind == EventKind::Tick)
                ++m_anchors;
        // No tick at all: anchor on the Start event (its uptime has tick resolution) or on zero.
        for (size_t i = 0; i < ring.size() && m_next == kNone; ++i) {
            if (ring.at(i).kind == EventKind::Start) {
                m_fixed_stamp = ring.at(i).stamp;
                m_fixed_ns = ring.at(i).value;
                break;
            }
        }
        if (m_next == kNone && m_fixed_stamp == 0 && ring.size() > 0)
            m_fixed_stamp = ring.at(0).stamp;
    }

    size_t anchors() const { return m_anchors; }
    bool interpolated() const { return m_anchors >= 2; }

    // Event `index` is about to be converted (indices visited in increasing order).
    uint64_t ns_at(size_t index)
    {
        const Event& event = m_ring.at(index);
        if (event.kind == EventKind::Tick && index == m_next) {
            m_before_prev = m_prev;
            m_prev = m_next;
            m_next = find_tick(m_next + 1);
        }
        uint64_t ns;
        if (m_prev != kNone && m_next != kNone)
            ns = between(m_prev, m_next, event.stamp, m_prev);
        else if (m_prev == kNone && m_next != kNone) // before the first tick
            ns = m_second != kNone ? between(m_next, m_second, event.stamp, m_next) : fixed_rate(m_next, event.stamp);
        else if (m_prev != kNone) // after the last tick
            ns = m_before_prev != kNone ? between(m_before_prev, m_prev, event.stamp, m_prev)
                                        : fixed_rate(m_prev, event.stamp);
        else
            ns = extrapolate(m_fixed_stamp, m_fixed_ns, event.stamp, m_options.fallback_ns_per_kcycle, 1000);
        if (ns < m_last)
            ns = m_last; // never backwards, even if stamps were
        m_last = ns;
        return ns;
    }

private:
    size_t find_tick(size_t from) const
    {
        for (size_t i = from; i < m_ring.size(); ++i)
            if (m_ring.at(i).kind == EventKind::Tick)
                return i;
        return kNone;
    }
    uint64_t tick_ns(size_t index) const { return m_ring.at(index).value; }
    // The line through ticks a and b, evaluated at `stamp`, measured from tick `base`.
    uint64_t between(size_t a, size_t b, uint64_t stamp, size_t base) const
    {
        const uint64_t stamp_a = m_ring.at(a).stamp, stamp_b = m_ring.at(b).stamp;
        const uint64_t ns_a = tick_ns(a), ns_b = tick_ns(b);
        if (stamp_b <= stamp_a || ns_b <= ns_a)
            return fixed_rate(base, stamp);
        return extrapolate(m_ring.at(base).stamp, tick_ns(base), stamp, ns_b - ns_a, stamp_b - stamp_a);
    }
    uint64_t fixed_rate(size_t base, uint64_t stamp) const
    {
        return extrapolate(m_ring.at(base).stamp, tick_ns(base), stamp, m_options.fallback_ns_per_kcycle, 1000);
    }
    // base_ns + (stamp - base_stamp) * num / den, clamped at 0.
    static uint64_t extrapolate(uint64_t base_stamp, uint64_t base_ns, uint64_t stamp, uint64_t num, uint64_t den)
    {
        if (den == 0)
            return base_ns;
        if (stamp >= base_stamp)
            return base_ns + lib::mul_div(stamp - base_stamp, num, den);
        const uint64_t back = lib::mul_div(base_stamp - stamp, num, den);
        return back < base_ns ? base_ns - back : 0;
    }

    const Ring& m_ring;
    JsonOptions m_options;
    size_t m_before_prev = kNone;
    size_t m_prev = kNone;
    size_t m_next = kNone;
    size_t m_second = kNone; // the second tick of the ring
    size_t m_anchors = 0;
    uint64_t m_fixed_stamp = 0;
    uint64_t m_fixed_ns = 0;
    uint64_t m_last = 0;
};

class JsonWriter {
public:
    JsonWriter(const ThreadNames& names, lib::FormatSink& out) : m_names(names), m_out(out) { }

    // `"ts":` in microseconds with three decimals.
    void write_ts(const char* key, uint64_t ns)
    {
        lib::format_to(m_out, ",\"{}\":{}.{:03}", key, ns / 1000, ns % 1000);
    }

    // Opens one event object (after the separator), up to and including "tid".
    void begin(const char* name_prefix, uint64_t name_number, bool numbered, const char* ph, uint32_t tid)
    {
        put(m_out, m_first ? "\n" : ",\n");
        m_first = false;
        put(m_out, "{\"name\":");
        if (numbered) {
            lib::format_to(m_out, "\"{} {}\"", name_prefix, name_number);
        } else {
            write_json_string(m_out, name_prefix);
        }
        lib::format_to(m_out, ",\"ph\":\"{}\",\"pid\":1,\"tid\":{}", ph, tid);
    }
    void end() { put(m_out, "}"); }

    void instant(const char* name, uint32_t tid, uint64_t ns, bool global = false)
    {
        begin(name, 0, false, "i", tid);
        lib::format_to(m_out, ",\"s\":\"{}\"", global ? "g" : "t");
        write_ts("ts", ns);
        ++m_events;
    }
    void slice(const char* name, uint64_t number, bool numbered, uint32_t tid, uint64_t start_ns, uint64_t end_ns)
    {
        begin(name, number, numbered, "X", tid);
        write_ts("ts", start_ns);
        write_ts("dur", end_ns - start_ns);
        ++m_events;
    }
    void metadata(const char* kind, uint32_t tid, const char* value, bool with_tid = true)
    {
        put(m_out, m_first ? "\n" : ",\n");
        m_first = false;
        lib::format_to(m_out, "{{\"name\":\"{}\",\"ph\":\"M\",\"pid\":1", kind);
        if (with_tid)
            lib::format_to(m_out, ",\"tid\":{}", tid);
        put(m_out, ",\"args\":{\"name\":");
        write_json_string(m_out, value);
        put(m_out, "}}");
    }

    // The thread's name for slices; "thread N" when unknown.
    const char* thread_name(uint32_t tid, char (&buf)[kTraceNameBytes]) const
    {
        if (const char* name = m_names.find(tid))
            return name;
        lib::format(buf, sizeof(buf), "thread {}", tid);
        return buf;
    }

    lib::FormatSink& out() { return m_out; }
    size_t events() const { return m_events; }

private:
    const ThreadNames& m_names;
    lib::FormatSink& m_out;
    bool m_first = true;
    size_t m_events = 0;
};

struct Running {
    bool known = false;
    uint32_t tid = 0;
    uint64_t since_ns = 0;
    bool partial = false; // its start lies before the oldest event held
};

struct PendingIrq {
    uint8_t irq = 0;
    uint32_t thread = 0;
    uint64_t since_ns = 0;
};

} // namespace

JsonReport write_chrome_json(const Ring& ring, const ThreadNames& names, const JsonOptions& options,
                             lib::FormatSink& out)
{
    JsonReport report;
    StampClock clock(ring, options);
    report.anchors = clock.anchors();

    lib::format_to(out, "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"system\":");
    write_json_string(out, options.system != nullptr ? options.system : "");
    lib::format_to(out,
                   ",\"events_held\":{},\"events_overwritten\":{},\"tick_anchors\":{},\"clock\":\"{}\","
                   "\"thread_names_missed\":{}}},\n\"traceEvents\":[",
                   ring.size(), ring.overwritten(), clock.anchors(),
                   clock.interpolated() ? "cycle counter interpolated between timer ticks"
                                        : "cycle counter at an assumed fixed rate (fewer than two ticks held)",
                   names.missed());

    JsonWriter w(names, out);
    w.metadata("process_name", 0, options.system != nullptr ? options.system : "kernel", false);
    w.metadata("thread_name", kIrqTrackTid, "interrupts & ticks");
    for (size_t i = 0; i < names.size(); ++i)
        w.metadata("thread_name", static_cast<uint32_t>(names.id_at(i)), names.name_at(i));

    Running running;
    constexpr size_t kMaxIrqDepth = 4;
    PendingIrq irqs[kMaxIrqDepth];
    size_t irq_depth = 0;
    uint64_t first_ns = 0, last_ns = 0;
    char name_buf[kTraceNameBytes];

    auto close_running = [&](uint64_t ns, const char* left, bool has_next, uint32_t next) {
        if (!running.known)
            return;
        w.slice(w.thread_name(running.tid, name_buf), 0, false, running.tid, running.since_ns, ns);
        lib::format_to(out, ",\"cat\":\"running\",\"args\":{{\"left\":\"{}\"", left);
        if (has_next)
            lib::format_to(out, ",\"next\":{}", next);
        if (running.partial)
            lib::format_to(out, ",\"started_before_oldest_event\":true");
        put(out, "}}");
        ++report.slices;
        running.known = false;
    };

    for (size_t i = 0; i < ring.size(); ++i) {
        const Event& e = ring.at(i);
        const uint64_t ns = clock.ns_at(i);
        if (i == 0)
            first_ns = ns;
        last_ns = ns;
        switch (e.kind) {
        case EventKind::Start:
            w.instant("trace start", e.thread, ns, true);
            put(out, "}");
            running = {true, e.thread, ns, false};
            break;
        case EventKind::Stop:
            close_running(ns, "trace stop", false, 0);
            w.instant("trace stop", e.thread, ns, true);
            put(out, "}");
            break;
        case EventKind::Switch: {
            if (!running.known || running.tid != e.thread) // its start was overwritten (or lost)
                running = {true, e.thread, first_ns, true};
            close_running(ns, to_string(static_cast<SwitchCause>(e.detail)), true, static_cast<uint32_t>(e.value));
            running = {true, static_cast<uint32_t>(e.value), ns, false};
            break;
        }
        case EventKind::Preempt:
            w.instant("preempt", e.thread, ns);
            lib::format_to(out, ",\"args\":{{\"at\":\"{}\",\"next\":{}}}}}",
                           static_cast<SwitchCause>(e.detail) == SwitchCause::Deferred ? "preempt_enable" : "irq exit",
                           e.value);
            break;
        case EventKind::Wake:
            w.instant("wake", e.thread, ns);
            lib::format_to(out, ",\"args\":{{\"cause\":\"{}\"", to_string(static_cast<WakeCause>(e.detail)));
            if (e.value != 0)
                lib::format_to(out, ",\"by\":{}", e.value);
            put(out, "}}");
            break;
        case EventKind::Block:
            w.instant("block", e.thread, ns);
            lib::format_to(out, ",\"args\":{{\"cause\":\"{}\"", to_string(static_cast<BlockCause>(e.detail)));
            if (static_cast<BlockCause>(e.detail) == BlockCause::Sleep)
                lib::format_to(out, ",\"until_tick\":{}", e.value);
            put(out, "}}");
            break;
        case EventKind::Spawn:
            w.instant("spawn", e.thread, ns);
            lib::format_to(out, ",\"args\":{{\"by\":{}}}}}", e.value);
            break;
        case EventKind::Tick:
            w.instant("tick", kIrqTrackTid, ns);
            lib::format_to(out, ",\"args\":{{\"running\":{}}}}}", e.thread);
            break;
        case EventKind::IrqEnter:
            if (irq_depth == kMaxIrqDepth) { // deeper than the kernel ever nests: keep it as an instant
                w.instant("irq enter", kIrqTrackTid, ns);
                lib::format_to(out, ",\"args\":{{\"irq\":{}}}}}", e.detail);
                break;
            }
            irqs[irq_depth++] = {e.detail, e.thread, ns};
            break;
        case EventKind::IrqExit:
            if (irq_depth > 0 && irqs[irq_depth - 1].irq == e.detail) {
                const PendingIrq& p = irqs[--irq_depth];
                w.slice("irq", p.irq, true, kIrqTrackTid, p.since_ns, ns);
                lib::format_to(out, ",\"cat\":\"irq\",\"args\":{{\"interrupted\":{}}}}}", p.thread);
                ++report.irq_slices;
            } else { // its enter was overwritten
                w.instant("irq exit", kIrqTrackTid, ns);
                lib::format_to(out, ",\"args\":{{\"irq\":{}}}}}", e.detail);
            }
            break;
        default:
            w.instant("unknown", e.thread, ns);
            lib::format_to(out, ",\"args\":{{\"kind\":{}}}}}", static_cast<unsigned>(e.kind));
            break;
        }
    }
    // Whatever is still open ends with the last event held.
    close_running(last_ns, "end of trace", false, 0);
    while (irq_depth > 0) {
        const PendingIrq& p = irqs[--irq_depth];
        w.instant("irq enter", kIrqTrackTid, p.since_ns);
        lib::format_to(out, ",\"args\":{{\"irq\":{}}}}}", p.irq);
    }
    put(out, "\n]}\n");
    report.events = w.events();
    return report;
}

} // namespace sched::trace
