#pragma once
// The Eldarin shell as a Heartwood thread: reads drivers/input (serial and PS/2 keyboard), writes to
// every console.
#include <atomic>
#include <stdint.h>

#include "sched/thread.h"

namespace kernel::shell {

class Eldarin;

// Spawns the shell thread ("eldarin", High priority, so it answers keys even when Normal work
// keeps the CPU busy). Panics if the thread cannot be created: without it nobody can be heard.
sched::Thread* spawn_shell_thread();

// How often a stoppable shell loop looks at its stop flag while no key arrives.
inline constexpr uint64_t kShellStopCheckMs = 20;

// The shell thread's loop, on the calling thread: prints the prompt, then blocks on drivers::input
// and feeds every byte to `shell` (whose sink gets the echo and the replies). With `stop` null it
// never returns; otherwise it returns within about kShellStopCheckMs once *stop is true (a key
// being handled is finished first). The in-kernel latency test runs one with a recording sink.
void run_shell_loop(Eldarin& shell, const std::atomic<bool>* stop);

// The Heartwood (boot) thread's last duty: it parks, and wakes only to run `ktest` for the shell
// on its own large stack at its Normal priority (see shell_kernel.cpp). Call from the boot thread.
[[noreturn]] void serve_heartwood_forever();

} // namespace kernel::shell
