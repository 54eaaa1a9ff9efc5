#pragma once
// The Heartwood's consoles: COM1 and the screen, which is the VGA text console on
// machines booted in text mode (BIOS) and the framebuffer console on machines left in a
// pixel mode (UEFI). Every present console is a lib::log sink, so log output reaches all.
#include <stdint.h>

namespace kernel {
struct BootInfo;
}

namespace drivers {

// Brings up COM1 (115200 8N1) and, when `vga_text_present`, the VGA text screen,
// and registers each one that is present with lib::log. Safe to call again: a
// console already running is left as it is.
void init_consoles(bool vga_text_present);

// The two halves of init_consoles, for a boot that wants serial output before it
// knows whether the machine has a text screen (that is in the boot information).
void init_serial_console();
void init_vga_text_console(bool vga_text_present);
// The boot flow's entry point once the Multiboot2 information has been parsed: the VGA
// text console when has_vga_text(info), else the framebuffer console when the loader
// reports an RGB framebuffer it can draw on (a warning says why when it cannot).
void init_screen_consoles(const kernel::BootInfo& info);
// The framebuffer half of init_screen_consoles. Safe to call again.
void init_framebuffer_console(const kernel::BootInfo& info);
// True when the loader reports the display in 80x25 EGA text mode at 0xB8000 (GRUB does on
// BIOS machines; under UEFI it reports a pixel framebuffer and there is no text mode).
bool has_vga_text(const kernel::BootInfo& info);

bool serial_console_present();
bool vga_text_console_present();
bool framebuffer_console_present();

// Input (serial and keyboard) is read through drivers/input.h.

} // namespace drivers
