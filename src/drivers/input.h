#pragma once
// The Heartwood's keyboard-and-serial input: one byte stream for the Eldarin shell. Bytes from
// COM1 and (decoded to the same ANSI/ASCII bytes) from the PS/2 keyboard arrive here.
#include <stdint.h>

namespace drivers {

// Starts input. Call once from the boot flow after the scheduler is up.
void init_input();

// Blocks the calling thread until a byte arrives and returns it.
uint8_t input_read_byte();
// Waits at most `timeout_ms`; returns the byte (0..255) or -1 on timeout.
int input_read_byte_for(uint64_t timeout_ms);
// Non-blocking: a byte or -1.
int input_try_read_byte();

// Queues `byte` exactly as the serial receive path would (for in-kernel tests). False if full.
bool input_inject(uint8_t byte);

} // namespace drivers
