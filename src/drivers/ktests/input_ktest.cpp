// In-kernel tests of the input path (drivers/input.h) and of the Eldarin shell's responsiveness:
//  - the ring: order, all-or-nothing overflow that is counted, timeouts, a blocked reader woken;
//  - latency: a High-priority shell thread (run_shell_loop over a sink that notes the tick of
//    each write) is typed at from the timer interrupt, the way a serial or keyboard IRQ arrives,
//    while 20 compute-bound Normal threads never yield. Every key must be echoed within one
//    default quantum; the measured latencies are printed.
// They run in the boot thread "heartwood" (Normal priority), before any shell thread exists.
#include <atomic>
#include <new>

#include "diag/ktest.h"
#include "drivers/input.h"
#include "kernel/shell/eldarin.h"
#include "kernel/shell/shell_commands.h"
#include "kernel/shell/shell_kernel.h"
#include "lib/log.h"
#include "lib/string.h"
#include "sched/scheduler.h"
#include "time/time.h"

namespace {

using sched::Priority;
using sched::Thread;

uint64_t now_ticks() { return kernel::time::ticks(); }

// Takes whatever a previous test or a stray serial byte left behind. The timed wait also installs
// the wait queues' tick listener, so a tick callback stacked after it unstacks in order.
void drain_input()
{
    while (drivers::input_read_byte_for(1) >= 0) { }
}

// ---- The ring ----

KTEST(input, ring_keeps_order_and_counts_overflow)
{
    drain_input();
    const drivers::InputCounters before = drivers::input_counters();
    KASSERT(before.queued == 0);
    constexpr size_t kExtra = 10;
    size_t accepted = 0;
    for (size_t i = 0; i < drivers::kInputCapacity + kExtra; ++i)
        if (drivers::input_inject(static_cast<uint8_t>(i * 7)))
            ++accepted;
    const drivers::InputCounters full = drivers::input_counters();
    KEXPECT_EQ(accepted, drivers::kInputCapacity);
    KEXPECT_EQ(full.queued, drivers::kInputCapacity);
    KEXPECT_EQ(full.dropped_bytes - before.dropped_bytes, kExtra);
    KEXPECT_EQ(full.injected_bytes - before.injected_bytes, drivers::kInputCapacity);
    bool in_order = true;
    for (size_t i = 0; i < drivers::kInputCapacity; ++i)
        in_order &= drivers::input_try_read_byte() == static_cast<uint8_t>(i * 7);
    KEXPECT(in_order);
    KEXPECT_EQ(drivers::input_try_read_byte(), -1);
    KEXPECT_EQ(drivers::input_counters().queued, 0u);
}

KTEST(input, read_times_out_after_the_asked_time)
{
    drain_input();
    const uint64_t wait_ms = 30;
    const uint64_t start = now_ticks();
    KEXPECT_EQ(drivers::input_read_byte_for(wait_ms), -1);
    const uint64_t waited = now_ticks() - start;
    const uint64_t asked = kernel::time::ns_to_ticks(wait_ms * 1'000'000);
    KEXPECT(waited >= asked);
    KEXPECT(waited <= asked + 2 + asked / 2); // not much later either (the test image is idle here)
    KEXPECT_EQ(drivers::input_read_byte_for(0), -1);
}

std::atomic<int> g_reader_got{-2};
std::atomic<uint64_t> g_reader_tick{0};

void reader(void*)
{
    const int byte = drivers::input_read_byte_for(2000);
    g_reader_tick.store(now_ticks());
    g_reader_got.store(byte);
}

KTEST(input, blocked_reader_is_woken_by_a_byte)
{
    drain_input();
    g_reader_got = -2;
    auto t = sched::spawn(&reader, nullptr, "input-reader", Priority::High);
    KASSERT(t.has_value());
    sched::sleep_for(5); // the High reader runs first and blocks
    KEXPECT((*t)->state() == sched::ThreadState::Blocked);
    const uint64_t sent = now_ticks();
    KEXPECT(drivers::input_inject('q'));
    // It outranks us: it has run by the time input_inject returns.
    KEXPECT_EQ(g_reader_got.load(), 'q');
    sched::join(*t);
    KEXPECT_EQ(g_reader_got.load(), 'q');
    KEXPECT(g_reader_tick.load() - sent <= 1);
}

// ---- Echo latency under load ----

constexpr int kHogs = 20;
constexpr char kTyped[] = "echo the heartwood listens\r";
constexpr size_t kKeys = sizeof(kTyped) - 1;
constexpr size_t kTextCapacity = 2048;

std::atomic<bool> g_hogs_stop{false};
std::atomic<uint64_t> g_hog_progress[kHogs];
Thread* g_hog_threads[kHogs];

void hog(void* arg)
{
    auto& progress = g_hog_progress[reinterpret_cast<uintptr_t>(arg)];
    while (!g_hogs_stop.load(std::memory_order_relaxed))
        progress.fetch_add(1, std::memory_order_relaxed); // never yields, never blocks
}

// What the shell writes, with the tick at which each key's echo began.
struct RecordingSink final : lib::FormatSink {
    char text[kTextCapacity] = {};
    size_t length = 0;
    bool overflowed = false;
    uint64_t echo_tick[kKeys] = {};
    bool echo_matched[kKeys] = {};

    void write(const char* s, size_t n) override;
};

struct Session {
    RecordingSink sink;
    kernel::shell::Eldarin shell{kernel::shell::eldarin_command_table(), sink};
    std::atomic<bool> stop{false};
};

// Shared between the tick (injector), the shell thread (sink) and the test.
std::atomic<bool> g_injecting{false};
std::atomic<bool> g_echo_pending{false}; // a key was injected and its echo not yet written
std::atomic<size_t> g_next_key{0};
std::atomic<uint64_t> g_next_inject_tick{0};
std::atomic<unsigned> g_inject_failures{0};
std::atomic<unsigned> g_keys_over_hogs{0}; // keys that arrived while a hog held the CPU
uint64_t g_inject_tick[kKeys];
kernel::time::TickCallback g_chained_tick = nullptr;

void RecordingSink::write(const char* s, size_t n)
{
    if (g_echo_pending.load(std::memory_order_acquire) && n > 0) {
        const size_t key = g_next_key.load(std::memory_order_relaxed) - 1;
        echo_tick[key] = now_ticks();
        // A printable key echoes itself; Enter starts a new line.
        const char expected = kTyped[key] == '\r' ? '\n' : kTyped[key];
        echo_matched[key] = s[0] == expected;
        g_echo_pending.store(false, std::memory_order_release);
    }
    const size_t room = kTextCapacity - 1 - length;
    if (n > room)
        overflowed = true;
    const size_t take = n < room ? n : room;
    for (size_t i = 0; i < take; ++i)
        text[length + i] = s[i];
    length += take;
}

bool running_a_hog()
{
    const Thread* running = sched::current();
    for (const Thread* h : g_hog_threads)
        if (h == running)
            return true;
    return false;
}

// Timer interrupt: types the next key once the previous one was echoed and its gap has passed.
// The gaps (1..5 ticks) move the keys across different points of the hogs' quanta.
void injecting_tick()
{
    if (g_chained_tick != nullptr)
        g_chained_tick();
    if (!g_injecting.load(std::memory_order_acquire) || g_echo_pending.load(std::memory_order_acquire))
        return;
    const size_t key = g_next_key.load(std::memory_order_relaxed);
    const uint64_t now = now_ticks();
    if (key >= kKeys || now < g_next_inject_tick.load(std::memory_order_relaxed))
        return;
    g_inject_tick[key] = now;
    if (running_a_hog())
        g_keys_over_hogs.fetch_add(1, std::memory_order_relaxed);
    g_next_key.store(key + 1, std::memory_order_relaxed);
    g_echo_pending.store(true, std::memory_order_release);
    if (!drivers::input_inject(static_cast<uint8_t>(kTyped[key]))) {
        g_inject_failures.fetch_add(1, std::memory_order_relaxed);
        g_echo_pending.store(false, std::memory_order_release);
    }
    g_next_inject_tick.store(now + 1 + key % 5, std::memory_order_relaxed);
}

void shell_thread(void* arg)
{
    Session* session = static_cast<Session*>(arg);
    kernel::shell::run_shell_loop(session->shell, &session->stop);
}

bool contains(const RecordingSink& sink, const char* needle)
{
    const lib::StringView hay(sink.text, sink.length);
    const lib::StringView what(needle);
    for (size_t i = 0; i + what.size() <= hay.size(); ++i)
        if (hay.substr(i, what.size()) == what)
            return true;
    return false;
}

KTEST(input, shell_echoes_within_a_quantum_under_20_hogs)
{
    drain_input();
    const uint64_t quantum = kernel::time::ns_to_ticks(sched::kDefaultQuantumMs * 1'000'000);

    Session* session = new (std::nothrow) Session;
    KASSERT(session != nullptr);
    g_injecting = false;
    g_echo_pending = false;
    g_next_key = 0;
    g_next_inject_tick = 0;
    g_inject_failures = 0;
    g_keys_over_hogs = 0;
    g_hogs_stop = false;

    auto shell = sched::spawn(&shell_thread, session, "eldarin-test", Priority::High);
    if (!shell) {
        delete session;
        KASSERT(shell.has_value());
    }
    // It outranks us, so it has printed its prompt and blocked in input by now.
    KEXPECT(contains(session->sink, kernel::shell::kPrompt));

    int spawned = 0;
    for (int i = 0; i < kHogs; ++i) {
        g_hog_progress[i] = 0;
        g_hog_threads[i] = nullptr;
        auto t = sched::spawn(&hog, reinterpret_cast<void*>(uintptr_t(i)), "hog", Priority::Normal);
        if (!t)
            break;
        g_hog_threads[i] = *t;
        ++spawned;
    }
    KEXPECT_EQ(spawned, kHogs);

    g_chained_tick = kernel::time::set_tick_callback(&injecting_tick);
    g_next_inject_tick = now_ticks() + 2;
    g_injecting = true;
    // We share the CPU with the hogs (about one quantum in 21), so look rarely; give up after 20 s.
    const uint64_t give_up_at = now_ticks() + kernel::time::ns_to_ticks(20'000'000'000ull);
    while ((g_next_key.load() < kKeys || g_echo_pending.load() || !contains(session->sink, "listens\naethel> ")) &&
           now_ticks() < give_up_at)
        sched::sleep_for(10);
    g_injecting = false;
    const kernel::time::TickCallback ours = kernel::time::set_tick_callback(g_chained_tick);
    KEXPECT(ours == &injecting_tick);

    g_hogs_stop = true;
    for (Thread* t : g_hog_threads)
        if (t != nullptr)
            sched::join(t);
    session->stop.store(true, std::memory_order_release);
    sched::join(*shell);

    const RecordingSink& sink = session->sink;
    uint64_t worst = 0, total = 0;
    size_t measured = 0, matched = 0;
    const size_t typed = g_next_key.load();
    for (size_t k = 0; k < typed; ++k) {
        if (sink.echo_tick[k] == 0)
            continue;
        const uint64_t latency = sink.echo_tick[k] - g_inject_tick[k];
        worst = latency > worst ? latency : worst;
        total += latency;
        ++measured;
        matched += sink.echo_matched[k] ? 1 : 0;
    }
    int hogs_ran = 0;
    for (int i = 0; i < kHogs; ++i)
        hogs_ran += g_hog_progress[i].load() > 0 ? 1 : 0;
    const uint64_t mean_x100 = measured > 0 ? total * 100 / measured : 0;
    lib::log::print("shell-latency: {} keys echoed under {} hogs ({} typed while a hog ran): max {} ticks, "
                    "mean {}.{}{} ticks; bound {} ticks (one quantum at {} Hz)\n",
                    measured, spawned, g_keys_over_hogs.load(), worst, mean_x100 / 100, mean_x100 / 10 % 10,
                    mean_x100 % 10, quantum, kernel::time::hz());

    // Each key's latency, so an outlier can be told from a trend.
    char each[8 * kKeys] = {};
    size_t at = 0;
    for (size_t k = 0; k < typed && at + 8 < sizeof(each); ++k)
        at += lib::format(each + at, sizeof(each) - at, "{}{}", k == 0 ? "" : " ",
                          sink.echo_tick[k] != 0 ? sink.echo_tick[k] - g_inject_tick[k] : 999);
    lib::log::print("shell-latency: per key (ticks): {}\n", static_cast<const char*>(each));

    KEXPECT_EQ(g_inject_failures.load(), 0u);
    KEXPECT_EQ(typed, kKeys);
    KEXPECT_EQ(measured, kKeys);
    KEXPECT_EQ(matched, kKeys);
    KEXPECT(worst <= quantum);
    // The load was real: every hog ran, and most keys interrupted one.
    KEXPECT_EQ(hogs_ran, kHogs);
    KEXPECT(g_keys_over_hogs.load() * 2 >= kKeys);
    // The shell really ran the command it was typed.
    KEXPECT(contains(sink, "\nthe heartwood listens\naethel> "));
    KEXPECT_EQ(session->shell.commands_run(), 1u);
    KEXPECT(!sink.overflowed);

    delete session;
}

} // namespace
