#pragma once
// The Heartwood's keyboard-and-serial input: one byte stream for the Eldarin shell. Bytes from
// COM1 (receive interrupt, IRQ 4) and, decoded to the same ANSI/ASCII bytes, from the PS/2
// keyboard (IRQ 1) go into one bounded ring; readers sleep on a wait queue until a byte arrives.
// A push that does not fit (a whole escape sequence at once) is refused and counted, never cut;
// serial input is not refused but held back in the UART until the ring has room again.
#include <stddef.h>
#include <stdint.h>

namespace drivers {

// Bytes the ring holds at most.
inline constexpr size_t kInputCapacity = 256;

// Starts input: the COM1 receive interrupt and the PS/2 keyboard. Call once from the boot flow
// after the scheduler is up and interrupts are on. Logs which sources are live.
void init_input();

// Blocks the calling thread until a byte arrives and returns it.
uint8_t input_read_byte();
// Waits at most `timeout_ms` (rounded up to whole ticks); returns the byte (0..255) or -1 on timeout.
int input_read_byte_for(uint64_t timeout_ms);
// Non-blocking: a byte or -1.
int input_try_read_byte();

// Queues `byte` exactly as the serial receive interrupt does (for in-kernel tests; callable from
// any context, interrupt handlers included). False if the ring is full (the byte is counted dropped).
bool input_inject(uint8_t byte);

struct InputCounters {
    uint64_t serial_bytes = 0;   // received by the COM1 interrupt handler
    uint64_t keyboard_bytes = 0; // produced by the PS/2 keyboard's decoder
    uint64_t injected_bytes = 0; // input_inject
    uint64_t dropped_bytes = 0;  // refused because the ring was full (keyboard and injected bytes)
    uint64_t serial_pauses = 0;  // times serial input was held back in the UART by a full ring
    size_t queued = 0;           // waiting in the ring now
    bool serial_paused = false;  // serial input is held back now
    bool serial_irq = false;     // the COM1 receive interrupt is live
    bool keyboard = false;       // the PS/2 keyboard is live
};
InputCounters input_counters();

} // namespace drivers
