#pragma once
// The PS/2 keyboard behind an 8042 controller (ports 0x60/0x64, IRQ 1).
//
// Scancode choice: the controller's translation stays ON, so whatever set the keyboard speaks
// (set 2 after a reset) reaches us as set 1, which KeyboardDecoder understands. Should a
// controller refuse translation, the keyboard is asked to switch to set 1 itself.
//
// Every wait on the controller or the keyboard is bounded in time: a machine without an 8042
// (some UEFI systems, or nothing plugged in) gets a clear log line and the Heartwood carries on
// with serial input alone.
#include <stddef.h>
#include <stdint.h>

namespace drivers {

enum class Ps2Status : uint8_t {
    Ready,          // keyboard reset, scanning, IRQ 1 delivering decoded keys
    NoController,   // no 8042 answered (status port floats, or commands never drained)
    SelfTestFailed, // the controller's self-test (0xAA) did not answer 0x55
    PortTestFailed, // the first port's interface test (0xAB) reported a fault
    NoKeyboard,     // the controller is there but no keyboard acknowledged a reset
    KeyboardFailed, // the keyboard answered its reset with a self-test failure
    IrqUnavailable, // IRQ 1 already had another handler
};
const char* to_string(Ps2Status status);

// Decoded key bytes go here, from the IRQ handler (interrupts off; must not block).
using KeyBytesSink = void (*)(const uint8_t* bytes, size_t n);

// Initialises the controller and the keyboard (polled, bounded waits, IRQs off at the controller),
// then registers IRQ 1, whose handler decodes scancodes and passes the bytes to `sink`. Call once,
// from a thread, with the timer running. Logs what it found.
Ps2Status init_ps2_keyboard(KeyBytesSink sink);

// Scancode bytes the IRQ handler has read (keyboard only) since init.
uint64_t ps2_scancodes_received();

} // namespace drivers
