#include "drivers/console.h"

#include <atomic>

#include "drivers/display.h"
#include "drivers/framebuffer_console.h"
#include "drivers/serial.h"
#include "drivers/vga_text.h"
#include "lib/log.h"

namespace drivers {

namespace {

constinit kernel::sync::IrqSpinLock g_console_lock{"console", kernel::sync::LockRank::kConsole};
// Set once by a panic; never cleared, since the machine stops after its report.
constinit std::atomic<bool> g_panic_owns_consoles{false};

} // namespace

ConsoleGuard::ConsoleGuard() : m_locked(!g_panic_owns_consoles.load(std::memory_order_relaxed))
{
    if (m_locked)
        m_state = g_console_lock.acquire();
}

ConsoleGuard::~ConsoleGuard()
{
    if (m_locked)
        g_console_lock.release(m_state);
}

bool console_lock_held() { return g_console_lock.is_locked(); }

// The one deliberate break of the console lock. A panic runs with interrupts off on the only CPU,
// so if the lock is held, its holder is the very context the panic interrupted (a fault inside a
// console write), which will never run again to release it: waiting would hang the report and
// taking it would be a recursive acquisition. From here on only the panic writes, so it goes
// without the lock; a TextGrid keeps its cursor inside the grid even if it was cut off mid-write.
void take_over_consoles_for_panic() { g_panic_owns_consoles.store(true, std::memory_order_relaxed); }

void init_serial_console()
{
    SerialPort& port = com1();
    if (port.present())
        return; // re-programming a live port would only garble output
    if (port.init(kCom1Base, kDefaultBaud))
        lib::log::add_sink(&port);
}

void init_vga_text_console(bool vga_text_present)
{
    if (!vga_text_present)
        return;
    VgaTextConsole& screen = vga_text();
    if (screen.present())
        return; // clearing it again would lose what is on it
    screen.init();
    lib::log::add_sink(&screen);
}

void init_consoles(bool vga_text_present)
{
    init_serial_console();
    init_vga_text_console(vga_text_present);
}

bool has_vga_text(const FramebufferInfo* display)
{
    if (display == nullptr)
        return false;
    const FramebufferInfo& fb = *display;
    return fb.type == FramebufferType::EgaText && fb.phys_addr.get() == VgaTextConsole::kBufferPhys &&
        fb.width == VgaTextConsole::kWidth && fb.height == VgaTextConsole::kHeight &&
        fb.pitch == VgaTextConsole::kWidth * 2u;
}

void init_framebuffer_console(const FramebufferInfo* display)
{
    FramebufferConsole& screen = framebuffer_console();
    if (screen.present() || display == nullptr)
        return;
    const FramebufferInfo& fb = *display;
    if (auto status = screen.init(fb); !status) {
        lib::log::warn("display is a {}x{} {} framebuffer at {} bpp, phys {:#x}, pitch {}: {}; no screen console, "
                       "output is on serial only",
                       fb.width, fb.height, framebuffer_type_name(fb.type), static_cast<unsigned>(fb.bpp),
                       fb.phys_addr.get(), fb.pitch, to_string(status.error()));
        return;
    }
    lib::log::add_sink(&screen);
    lib::log::info("framebuffer console: {}x{} at {} bpp (pitch {}, phys {:#x}), {}x{} cells of 8x16", fb.width,
                   fb.height, static_cast<unsigned>(fb.bpp), fb.pitch, fb.phys_addr.get(), screen.grid().width(),
                   screen.grid().height());
}

void init_screen_consoles(const FramebufferInfo* display)
{
    const bool text = has_vga_text(display);
    init_vga_text_console(text);
    if (text)
        return;
    if (display == nullptr) {
        lib::log::info("the loader reports no text-mode screen: console output is on serial only");
        return;
    }
    const FramebufferInfo& fb = *display;
    if (fb.type == FramebufferType::EgaText)
        lib::log::warn("EGA text mode {}x{} at {} is not the 80x25 screen at {:#x}: no screen console", fb.width,
                       fb.height, fb.phys_addr, VgaTextConsole::kBufferPhys);
    else
        init_framebuffer_console(display);
}

bool serial_console_present() { return com1().present(); }
bool vga_text_console_present() { return vga_text().present(); }
bool framebuffer_console_present() { return framebuffer_console().present(); }

} // namespace drivers
