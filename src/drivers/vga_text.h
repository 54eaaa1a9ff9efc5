#pragma once
// The VGA text-mode console (80x25 at physical 0xB8000, reached through the physmap).
// Only valid when the firmware left the card in text mode (BIOS boots; UEFI machines
// have a framebuffer instead). The terminal logic, including the mapping of the log's
// ANSI colours onto VGA attributes, is the generic drivers::TextGrid; this class adds
// the buffer's address and the hardware cursor.
#include <stddef.h>
#include <stdint.h>

#include "drivers/text_grid.h"
#include "lib/log.h"

namespace drivers {

class VgaTextConsole final : public lib::log::Sink {
public:
    static constexpr uint16_t kWidth = 80;
    static constexpr uint16_t kHeight = 25;
    static constexpr uint64_t kBufferPhys = 0xb8000;

    constexpr VgaTextConsole() = default;
    VgaTextConsole(const VgaTextConsole&) = delete;
    VgaTextConsole& operator=(const VgaTextConsole&) = delete;

    // Attaches to the text buffer, clears the screen and shows an underline cursor.
    // The caller vouches that the display is in 80x25 text mode.
    void init();
    bool present() const { return m_present; }

    void write(const char* s, size_t n) override;
    TextGrid& grid() { return m_grid; }

    // The CRTC cursor location register (0x0E:0x0F): row * 80 + column.
    static uint16_t hardware_cursor_offset();

private:
    static void move_hardware_cursor(void* context, uint16_t column, uint16_t row);

    TextGrid m_grid;
    bool m_present = false;
};

// The single VGA text console object.
VgaTextConsole& vga_text();

} // namespace drivers
