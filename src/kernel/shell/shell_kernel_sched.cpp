// Eldarin commands that steer the Loom of Fate's machinery: the preemption switch and the trace.
#include "arch/cpu.h"
#include "drivers/serial.h"
#include "kernel/shell/shell_commands.h"
#include "sched/scheduler.h"
#include "sync/preempt.h"
#include "time/time.h"

namespace kernel::shell {

namespace {

// The lines around a dump; scripts/trace-extract looks for them.
constexpr const char* kTraceBegin = "--- aethelos trace begin ---\n";
constexpr const char* kTraceEnd = "--- aethelos trace end ---\n";

// COM1 alone (the screens would only scroll JSON by), counting what it was given. The driver
// drops bytes once the transmitter has not drained for a while (so a dead port cannot hang the
// Heartwood); a dump is worth waiting for: a busy host can hold QEMU's serial backend up for long
// stretches. So every byte waits, up to kDrainWaitMs, for an empty transmitter before it goes to
// the driver, which then never has to spin (and never drops): one port read per byte.
class SerialSink final : public lib::FormatSink {
public:
    explicit SerialSink(drivers::SerialPort& port) : m_port(port) { }

    void write(const char* s, size_t n) override
    {
        for (size_t i = 0; i < n; ++i) {
            wait_for_room();
            m_port.write(&s[i], 1); // the driver turns "\n" into "\r\n", as on every console
        }
        m_bytes += n;
    }
    uint64_t bytes() const { return m_bytes; }
    bool gave_up() const { return m_gave_up; }

private:
    static constexpr uint64_t kDrainWaitMs = 10'000;
    static constexpr unsigned kSpinsBeforeHalt = 64;

    void wait_for_room()
    {
        if (m_gave_up)
            return; // the driver's own stall handling from here on
        uint64_t deadline = 0;
        for (unsigned spin = 0; !m_port.transmitter_empty(); ++spin) {
            if (spin < kSpinsBeforeHalt) {
                arch::cpu_relax();
                continue;
            }
            if (deadline == 0)
                deadline = time::ticks() + time::ns_to_ticks(kDrainWaitMs * 1'000'000);
            if (time::ticks() >= deadline) {
                m_gave_up = true;
                return;
            }
            arch::wait_for_interrupt(); // until the next tick: the host gets to drain meanwhile
        }
    }

    drivers::SerialPort& m_port;
    uint64_t m_bytes = 0;
    bool m_gave_up = false; // the port stayed full for kDrainWaitMs
};

void print_preempt_state(lib::FormatSink& out, bool on)
{
    if (on)
        lib::format_to(out,
                       "Timer preemption is on: a thread whose quantum runs out yields the loom to the\n"
                       "next of its priority at the following tick, and starving threads are boosted.\n");
    else
        lib::format_to(out,
                       "Timer preemption is off: a thread keeps the CPU until it blocks, yields or exits,\n"
                       "even past its quantum; threads of equal priority no longer take turns, and a\n"
                       "starvation boost no longer preempts (the boosted thread just goes first at the\n"
                       "next switch). A thread of more urgent base priority still preempts: this shell\n"
                       "(High) still wakes for your keys; Normal or Low hogs cannot hold it off.\n");
}

CommandStatus preempt_status(lib::FormatSink& out)
{
    print_preempt_state(out, sched::timer_preemption());
    const sched::SchedulerCounters c = sched::counters();
    lib::format_to(out, "  switches        {} ({} voluntary, {} involuntary)\n", c.context_switches,
                   c.voluntary_switches, c.involuntary_switches);
    lib::format_to(out, "  preemption      {} at interrupt exit, {} deferred to preempt_enable\n", c.irq_exit_switches,
                   c.deferred_switches);
    lib::format_to(out, "  requests        {} at interrupt exit, {} deferred to preempt_enable\n", c.irq_exit_requests,
                   c.deferred_requests);
    lib::format_to(out, "  reasons         {} quantum expiries, {} outranked with quantum left\n", c.quantum_expiries,
                   c.preemptions);
    lib::format_to(out, "  held back       {} switch requests while preemption was off\n", c.held_back);
    return CommandStatus::Ok;
}

CommandStatus trace_dump(lib::FormatSink& out)
{
    sched::TraceStatus status = sched::trace_status();
    if (status.on) {
        status = sched::trace_stop();
        lib::format_to(out, "trace: stopped the trace first ({} events held)\n", status.held);
    }
    if (status.capacity == 0) {
        lib::format_to(out, "trace: nothing recorded yet ('trace start' first)\n");
        return CommandStatus::Failed;
    }
    drivers::SerialPort& port = drivers::com1();
    if (!port.present()) {
        lib::format_to(out, "trace: no serial port to write the trace to\n");
        return CommandStatus::Failed;
    }
    const uint64_t dropped_before = port.dropped_bytes();
    SerialSink serial(port);
    lib::Expected<sched::trace::JsonReport, sched::TraceError> report = lib::unexpected(sched::TraceError::Busy);
    {
        // No other thread runs, so none can print into the JSON; interrupt handlers do not print.
        sync::PreemptGuard no_preemption;
        lib::format_to(serial, "\n{}", kTraceBegin);
        report = sched::trace_write_json(serial);
        lib::format_to(serial, "{}", kTraceEnd);
    }
    const uint64_t dropped = port.dropped_bytes() - dropped_before;
    if (!report) {
        lib::format_to(out, "trace: cannot dump: {}\n", sched::to_string(report.error()));
        return CommandStatus::Failed;
    }
    lib::format_to(out,
                   "trace: {} events ({} running slices, {} irq slices) as Chrome trace JSON, {} bytes\n"
                   "       on the serial port; scripts/trace-extract pulls it out of the log\n",
                   report->events, report->slices, report->irq_slices, serial.bytes());
    if (status.overwritten != 0)
        lib::format_to(out, "trace: the ring was full: the oldest {} events were overwritten\n", status.overwritten);
    if (dropped != 0 || serial.gave_up()) {
        lib::format_to(out, "trace: the serial port did not drain{}; {} bytes dropped: that dump is incomplete\n",
                       serial.gave_up() ? " for 10 s" : "", dropped);
        return CommandStatus::Failed;
    }
    return CommandStatus::Ok;
}

} // namespace

// `preempt [status|enable|disable]`
CommandStatus cmd_preempt(const Args& args, lib::FormatSink& out)
{
    if (args.count() > 2)
        return CommandStatus::Usage;
    const lib::StringView what = args.count() == 2 ? args[1] : lib::StringView("status");
    if (what == lib::StringView("status"))
        return preempt_status(out);
    bool enable;
    if (what == lib::StringView("enable"))
        enable = true;
    else if (what == lib::StringView("disable"))
        enable = false;
    else
        return CommandStatus::Usage;
    const bool was = sched::set_timer_preemption(enable);
    if (was == enable)
        lib::format_to(out, "(it already was {})\n", enable ? "on" : "off");
    print_preempt_state(out, enable);
    return CommandStatus::Ok;
}

// `trace start|stop|dump`
CommandStatus cmd_trace(const Args& args, lib::FormatSink& out)
{
    if (args.count() != 2)
        return CommandStatus::Usage;
    const lib::StringView what = args[1];
    if (what == lib::StringView("start")) {
        const bool was_on = sched::trace_status().on;
        auto started = sched::trace_start();
        if (!started) {
            lib::format_to(out, "trace: cannot start: {}\n", sched::to_string(started.error()));
            return CommandStatus::Failed;
        }
        lib::format_to(out, "trace: {} the Loom of Fate's events ({} held at most, the oldest overwritten)\n",
                       was_on ? "cleared; recording anew" : "recording", started->capacity);
        return CommandStatus::Ok;
    }
    if (what == lib::StringView("stop")) {
        const bool was_on = sched::trace_status().on;
        const sched::TraceStatus status = sched::trace_stop();
        if (!was_on) {
            lib::format_to(out, "trace: not recording ({} events held)\n", status.held);
            return CommandStatus::Ok;
        }
        lib::format_to(out, "trace: stopped; {} events recorded, {} held, {} overwritten\n", status.recorded,
                       status.held, status.overwritten);
        if (status.names_missed != 0)
            lib::format_to(out, "trace: {} thread names did not fit the name table\n", status.names_missed);
        return CommandStatus::Ok;
    }
    if (what == lib::StringView("dump"))
        return trace_dump(out);
    return CommandStatus::Usage;
}

} // namespace kernel::shell
