// The Eldarin shell thread: input bytes in, the command table's replies out to every console.
#include "drivers/input.h"
#include "kernel/panic.h"
#include "kernel/shell/eldarin.h"
#include "kernel/shell/shell_commands.h"
#include "kernel/shell/shell_kernel.h"
#include "lib/log.h"
#include "sched/scheduler.h"

namespace kernel::shell {

namespace {

// Every console: lib::log's raw path (serial and the screens).
struct ConsoleSink final : lib::FormatSink {
    void write(const char* s, size_t n) override { lib::log::write_raw(s, n); }
};

ConsoleSink g_console;
Eldarin g_shell(eldarin_command_table(), g_console);

void shell_main(void*)
{
    lib::log::print("\nEldarin listens. Type 'help' for the commands; Tab completes, Up/Down recall.\n");
    run_shell_loop(g_shell, nullptr);
}

} // namespace

void run_shell_loop(Eldarin& shell, const std::atomic<bool>* stop)
{
    shell.print_prompt();
    if (stop == nullptr) {
        for (;;)
            shell.feed(drivers::input_read_byte());
    }
    while (!stop->load(std::memory_order_acquire)) {
        const int byte = drivers::input_read_byte_for(kShellStopCheckMs);
        if (byte >= 0)
            shell.feed(static_cast<uint8_t>(byte));
    }
}

sched::Thread* spawn_shell_thread()
{
    auto thread = sched::spawn(&shell_main, nullptr, "eldarin", sched::Priority::High);
    if (!thread)
        panic("cannot start the Eldarin shell thread: {}", sched::to_string(thread.error()));
    return *thread;
}

} // namespace kernel::shell
