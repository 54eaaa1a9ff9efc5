#pragma once
// The Heartwood's consoles: COM1 and the screen, which is the VGA text console on
// machines booted in text mode (BIOS) and the framebuffer console on machines left in a
// pixel mode (UEFI). Every present console is a lib::log sink, so log output reaches all.
//
// Every write to a console device takes the console lock (a ConsoleGuard): threads, interrupt
// handlers and the log may all write at once, and each write() reaches each device whole.
#include <stdint.h>

#include "drivers/display.h"
#include "sync/irq_spinlock.h"

namespace drivers {

// Brings up COM1 (115200 8N1) and, when `vga_text_present`, the VGA text screen,
// and registers each one that is present with lib::log. Safe to call again: a
// console already running is left as it is.
void init_consoles(bool vga_text_present);

// The two halves of init_consoles, for a boot that wants serial output before it
// knows whether the machine has a text screen (that is in the boot information).
void init_serial_console();
void init_vga_text_console(bool vga_text_present);
// The boot flow's entry point once the Multiboot2 information has been parsed, given the
// display the loader reported (nullptr: none): the VGA text console when has_vga_text(display),
// else the framebuffer console when it is an RGB framebuffer it can draw on (a warning says why
// when it cannot).
void init_screen_consoles(const FramebufferInfo* display);
// The framebuffer half of init_screen_consoles. Safe to call again.
void init_framebuffer_console(const FramebufferInfo* display);
// True when the display is 80x25 EGA text mode at 0xB8000 (GRUB's on BIOS machines; under
// UEFI it reports a pixel framebuffer and there is no text mode).
bool has_vga_text(const FramebufferInfo* display);

bool serial_console_present();
bool vga_text_console_present();
bool framebuffer_console_present();

// Input (serial and keyboard) is read through drivers/input.h.

// Holds the console lock (rank kConsole, the innermost, so code holding any other lock may still
// print): interrupts off and preemption disabled, since interrupt handlers print too. Once a panic
// has taken the consoles over it takes nothing.
class [[nodiscard]] ConsoleGuard {
public:
    ConsoleGuard();
    ~ConsoleGuard();
    ConsoleGuard(const ConsoleGuard&) = delete;
    ConsoleGuard& operator=(const ConsoleGuard&) = delete;

private:
    kernel::sync::IrqState m_state;
    bool m_locked;
};

// Whether some context holds the console lock now (a snapshot).
bool console_lock_held();
// For the panic path only, with interrupts off: from now on console writes bypass the lock.
void take_over_consoles_for_panic();

} // namespace drivers
