#include "drivers/console.h"

#include "drivers/serial.h"
#include "drivers/vga_text.h"
#include "kernel/boot_info.h"
#include "lib/log.h"

namespace drivers {

void init_serial_console()
{
    SerialPort& port = com1();
    if (port.present()) return; // re-programming a live port would only garble output
    if (port.init(kCom1Base, kDefaultBaud)) lib::log::add_sink(&port);
}

void init_vga_text_console(bool vga_text_present)
{
    if (!vga_text_present) return;
    VgaTextConsole& screen = vga_text();
    if (screen.present()) return; // clearing it again would lose what is on it
    screen.init();
    lib::log::add_sink(&screen);
}

void init_consoles(bool vga_text_present)
{
    init_serial_console();
    init_vga_text_console(vga_text_present);
}

bool has_vga_text(const kernel::BootInfo& info)
{
    const kernel::FramebufferInfo& fb = info.framebuffer;
    return info.has_framebuffer && fb.type == kernel::FramebufferType::EgaText &&
           fb.phys_addr.get() == VgaTextConsole::kBufferPhys && fb.width == VgaTextConsole::kWidth &&
           fb.height == VgaTextConsole::kHeight && fb.pitch == VgaTextConsole::kWidth * 2u;
}

void init_screen_consoles(const kernel::BootInfo& info)
{
    const bool text = has_vga_text(info);
    init_vga_text_console(text);
    if (text) return;
    if (!info.has_framebuffer) {
        lib::log::info("the loader reports no text-mode screen: console output is on serial only");
        return;
    }
    const kernel::FramebufferInfo& fb = info.framebuffer;
    if (fb.type == kernel::FramebufferType::EgaText)
        lib::log::warn("EGA text mode {}x{} at {} is not the 80x25 screen at {:#x}: no screen console", fb.width,
                       fb.height, fb.phys_addr, VgaTextConsole::kBufferPhys);
    else
        lib::log::info("display is a {}x{} {} framebuffer, not text mode: console output is on serial only",
                       fb.width, fb.height, kernel::framebuffer_type_name(fb.type));
}

bool serial_console_present() { return com1().present(); }
bool vga_text_console_present() { return vga_text().present(); }

int console_read_byte() { return com1().read_byte(); }

} // namespace drivers
