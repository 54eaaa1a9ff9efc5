#include "drivers/vga_text.h"

#include "arch/x86_64/io.h"
#include "arch/x86_64/memory_layout.h"
#include "drivers/console.h"

namespace drivers {

namespace {

// CRT controller, colour mode addresses (the misc output register's I/O select bit is
// set in every colour text mode the firmware leaves us).
constexpr uint16_t kCrtcIndex = 0x3d4;
constexpr uint16_t kCrtcData = 0x3d5;
constexpr uint8_t kCrtcMaxScanLine = 0x09;
constexpr uint8_t kCrtcCursorStart = 0x0a;
constexpr uint8_t kCrtcCursorEnd = 0x0b;
constexpr uint8_t kCrtcCursorHigh = 0x0e;
constexpr uint8_t kCrtcCursorLow = 0x0f;
constexpr uint8_t kCursorDisable = 0x20;

uint8_t crtc_read(uint8_t reg)
{
    arch::outb(kCrtcIndex, reg);
    return arch::inb(kCrtcData);
}

void crtc_write(uint8_t reg, uint8_t value)
{
    arch::outb(kCrtcIndex, reg);
    arch::outb(kCrtcData, value);
}

constinit VgaTextConsole g_vga_text;

} // namespace

VgaTextConsole& vga_text() { return g_vga_text; }

void VgaTextConsole::init()
{
    auto* cells = arch::phys_to_virt(PhysicalAddress(kBufferPhys)).as_ptr<uint16_t>();
    m_grid.attach(cells, kWidth, kHeight);

    // Underline cursor on the last two scan lines of the character cell, whatever font
    // height the firmware chose; clearing bit 5 of the start register shows it.
    const uint8_t last_line = crtc_read(kCrtcMaxScanLine) & 0x1f;
    const uint8_t start = last_line > 0 ? static_cast<uint8_t>(last_line - 1) : 0;
    crtc_write(kCrtcCursorStart, static_cast<uint8_t>((crtc_read(kCrtcCursorStart) & 0xc0) | start));
    crtc_write(kCrtcCursorEnd, static_cast<uint8_t>((crtc_read(kCrtcCursorEnd) & 0xe0) | last_line));

    m_grid.set_cursor_callback(&move_hardware_cursor, this);
    m_grid.set_cursor(0, 0); // puts the hardware cursor where the grid's is
    m_present = true;
}

void VgaTextConsole::write(const char* s, size_t n)
{
    if (!m_present)
        return;
    ConsoleGuard guard;
    m_grid.write(s, n);
}

void VgaTextConsole::move_hardware_cursor(void* context, uint16_t column, uint16_t row)
{
    auto* self = static_cast<VgaTextConsole*>(context);
    const uint16_t offset = static_cast<uint16_t>(row * self->m_grid.width() + column);
    crtc_write(kCrtcCursorLow, static_cast<uint8_t>(offset & 0xff));
    crtc_write(kCrtcCursorHigh, static_cast<uint8_t>(offset >> 8));
}

uint16_t VgaTextConsole::hardware_cursor_offset()
{
    const uint8_t high = crtc_read(kCrtcCursorHigh);
    const uint8_t low = crtc_read(kCrtcCursorLow);
    return static_cast<uint16_t>((high << 8) | low);
}

} // namespace drivers
