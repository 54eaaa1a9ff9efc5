// Input, first form: COM1 polled once a tick. To be replaced by interrupt-driven queues.
#include "drivers/input.h"

#include "drivers/console.h"
#include "kernel/time.h"
#include "sched/scheduler.h"

namespace drivers {

void init_input() {}

int input_try_read_byte() { return console_read_byte(); }

uint8_t input_read_byte()
{
    for (;;) {
        const int byte = console_read_byte();
        if (byte >= 0) return static_cast<uint8_t>(byte);
        sched::sleep_ticks(1);
    }
}

int input_read_byte_for(uint64_t timeout_ms)
{
    const uint64_t deadline = kernel::time::uptime_ns() + timeout_ms * 1'000'000;
    for (;;) {
        const int byte = console_read_byte();
        if (byte >= 0 || kernel::time::uptime_ns() >= deadline) return byte;
        sched::sleep_ticks(1);
    }
}

bool input_inject(uint8_t) { return false; }

} // namespace drivers
