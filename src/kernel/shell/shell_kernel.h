#pragma once
// The Eldarin shell as a Heartwood thread: reads the serial console, writes to every console.
#include "sched/thread.h"

namespace kernel::shell {

// Spawns the shell thread ("eldarin", High priority, so it answers keys even when Normal work
// keeps the CPU busy). Panics if the thread cannot be created: without it nobody can be heard.
sched::Thread* spawn_shell_thread();

// The Heartwood (boot) thread's last duty: it parks, and wakes only to run `ktest` for the shell
// on its own large stack at its Normal priority (see shell_kernel.cpp). Call from the boot thread.
[[noreturn]] void serve_heartwood_forever();

} // namespace kernel::shell
