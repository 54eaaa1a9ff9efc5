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
    g_shell.print_prompt();
    for (;;) g_shell.feed(drivers::input_read_byte());
}

} // namespace

sched::Thread* spawn_shell_thread()
{
    auto thread = sched::spawn(&shell_main, nullptr, "eldarin", sched::Priority::High);
    if (!thread) panic("cannot start the Eldarin shell thread: {}", sched::to_string(thread.error()));
    return *thread;
}

} // namespace kernel::shell
