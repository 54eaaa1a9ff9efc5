// The Loom of Fate's trace and its timer-preemption switch on the real CPU: a traced ping-pong
// comes out as Chrome JSON with the right slices and events, and with timer preemption off a
// compute-bound thread keeps the CPU while a more urgent sleeper still wakes on time.
// They run in the boot thread "heartwood" (Normal priority).
#include <atomic>

#include "diag/ktest.h"
#include "lib/format.h"
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "time/time.h"

namespace {

using sched::Priority;
using sched::Thread;

bool contains(const char* text, size_t length, const char* needle)
{
    const size_t n = lib::c_string_length(needle);
    for (size_t i = 0; i + n <= length; ++i)
        if (lib::mem_compare(text + i, needle, n) == 0)
            return true;
    return false;
}

// Braces and brackets balance outside strings, and strings close: a cheap structural check (the
// host tests parse the writer's output strictly).
bool balanced(const char* text, size_t length)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < length; ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            ++depth;
        else if (c == '}' || c == ']') {
            if (--depth < 0)
                return false;
        }
    }
    return depth == 0 && !in_string;
}

std::atomic<int> g_pings{0};

void ping(void*)
{
    for (int i = 0; i < 50; ++i) {
        g_pings.fetch_add(1, std::memory_order_relaxed);
        sched::yield();
    }
    sched::sleep_for(3);
}

} // namespace

KTEST(sched_trace, traced_switches_come_out_as_chrome_json)
{
    KASSERT(sched::initialized());
    auto started = sched::trace_start();
    KASSERT(started.has_value());
    KEXPECT(started->on);
    KEXPECT_EQ(started->capacity, sched::kTraceCapacity);

    g_pings = 0;
    auto t = sched::spawn(&ping, nullptr, "trace-probe", Priority::Normal);
    KASSERT(t.has_value());
    const uint64_t probe_id = (*t)->id();
    while (g_pings.load() < 50)
        sched::yield();
    sched::join(*t);
    sched::sleep_for(2); // a few ticks for the record

    // Dumping while recording is refused; stopping keeps the events.
    char tiny[8];
    lib::BufferSink refused(tiny, sizeof(tiny));
    auto busy = sched::trace_write_json(refused);
    KEXPECT(!busy.has_value());
    KEXPECT_EQ(refused.length(), 0u);
    const sched::TraceStatus status = sched::trace_stop();
    KEXPECT(!status.on);
    KEXPECT(status.held >= 100); // 100 switches alone, plus ticks and interrupts
    KEXPECT_EQ(status.overwritten, 0u);

    constexpr size_t kBytes = 1 << 20;
    char* buffer = static_cast<char*>(mm::kmalloc(kBytes));
    KASSERT(buffer != nullptr);
    lib::BufferSink sink(buffer, kBytes);
    auto report = sched::trace_write_json(sink);
    KASSERT(report.has_value());
    const size_t length = sink.length();
    KEXPECT(length < kBytes); // not truncated
    KEXPECT(report->slices >= 100);
    KEXPECT(report->anchors >= 2);
    KEXPECT(balanced(buffer, length));
    KEXPECT(contains(buffer, length, "\"traceEvents\":["));
    KEXPECT(contains(buffer, length, "{\"name\":\"trace-probe\",\"ph\":\"X\""));
    KEXPECT(contains(buffer, length, "\"left\":\"yield\""));
    KEXPECT(contains(buffer, length, "\"cause\":\"sleep\""));
    KEXPECT(contains(buffer, length, "\"cause\":\"exit\""));
    KEXPECT(contains(buffer, length, "\"cause\":\"timer\""));
    KEXPECT(contains(buffer, length, "\"name\":\"irq 0\""));
    KEXPECT(contains(buffer, length, "\"name\":\"tick\""));
    char name_line[96];
    lib::format(name_line, sizeof(name_line), "\"tid\":{},\"args\":{{\"name\":\"trace-probe\"}}", probe_id);
    KEXPECT(contains(buffer, length, name_line)); // named although it is gone by now
    mm::kfree(buffer);

    // The ring goes back to the Mana Pool (the runner's leak check would see it otherwise).
    KEXPECT(sched::trace_release());
    KEXPECT_EQ(sched::trace_status().capacity, 0u);
    lib::BufferSink empty(tiny, sizeof(tiny));
    KEXPECT(sched::trace_write_json(empty).has_value()); // an empty trace, still valid JSON
}

namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_progress[2];

void low_hog(void* arg)
{
    auto& progress = g_progress[reinterpret_cast<uintptr_t>(arg)];
    while (!g_stop.load(std::memory_order_relaxed))
        progress.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

KTEST(sched_trace, timer_preemption_off_keeps_the_cpu)
{
    KASSERT(sched::initialized());
    KASSERT(sched::timer_preemption());
    g_stop = false;
    g_progress[0] = 0;
    g_progress[1] = 0;
    Thread* hogs[2] = {};
    for (uintptr_t i = 0; i < 2; ++i) {
        auto t = sched::spawn(&low_hog, reinterpret_cast<void*>(i), "low-hog", Priority::Low);
        KASSERT(t.has_value());
        hogs[i] = *t;
    }
    const uint64_t held_before = sched::counters().held_back;

    // Off: whichever hog gets the CPU keeps it for all 60 ms (6 quanta); heartwood (Normal)
    // still wakes on time, since it outranks them.
    KEXPECT(sched::set_timer_preemption(false));
    const uint64_t due = kernel::time::ticks() + kernel::time::ns_to_ticks(60'000'000) + 1;
    sched::sleep_for(60);
    const uint64_t woke = kernel::time::ticks();
    const uint64_t a = g_progress[0].load(), b = g_progress[1].load();
    KEXPECT((a > 0) != (b > 0)); // exactly one of them ran
    KEXPECT(woke <= due + 2);
    KEXPECT(sched::counters().held_back > held_before);

    // On again: they take turns.
    KEXPECT(!sched::set_timer_preemption(true));
    sched::sleep_for(60);
    KEXPECT(g_progress[0].load() > a);
    KEXPECT(g_progress[1].load() > b);

    g_stop = true;
    for (Thread* t : hogs)
        sched::join(t);
}
