#pragma once
// A character-cell terminal over a caller-supplied buffer of W x H VGA cells
// (low byte = code page 437 glyph, high byte = attribute). It knows nothing
// about the hardware, so the same code drives the live VGA screen in the
// Heartwood and plain arrays in host tests.
//
// Understood input:
//   printable ASCII            written with the current attribute; deferred wrap at the last column
//   \n                         new line (carriage return implied, as the log emits bare "\n")
//   \r  \t  \b                 column 0 / next multiple of 8 (at most the last column) /
//                              one column left (non-destructive, as on a terminal)
//   UTF-8 sequences            one '?' per code point (the VGA font is CP437, not Unicode)
//   ESC [ ... m                SGR: 0 reset, 1 bold (bright fg), 22 normal, 30-37/90-97 fg,
//                              39 default fg, 40-47/100-107 bg, 49 default bg
//   ESC [ n J / ESC [ n K      erase in display / line (n = 0, 1, 2)
//   ESC [ r ; c H  (or f)      cursor position, 1-based; ESC [ H homes
//   CAN (0x18), SUB (0x1a)     abandon an escape or UTF-8 sequence in progress
// Everything else (other CSI finals, private "ESC [ ?" sequences, two-byte escapes,
// other control bytes) is swallowed. Whatever the input, no cell outside the
// buffer is ever touched.
#include <stddef.h>
#include <stdint.h>

namespace drivers {

// VGA attribute byte: bits 0-3 foreground, 4-6 background. Bit 7 is never set:
// depending on the mode it means blink rather than a bright background.
inline constexpr uint8_t kVgaLightGrey = 0x07;
inline constexpr uint8_t kDefaultAttribute = kVgaLightGrey; // light grey on black

constexpr uint16_t make_cell(char glyph, uint8_t attribute)
{
    return static_cast<uint16_t>(static_cast<uint8_t>(glyph) | (static_cast<uint16_t>(attribute) << 8));
}
constexpr char cell_glyph(uint16_t cell) { return static_cast<char>(cell & 0xff); }
constexpr uint8_t cell_attribute(uint16_t cell) { return static_cast<uint8_t>(cell >> 8); }

class TextGrid {
public:
    // Called after a write/clear/set_cursor that moved the cursor (once per call,
    // not per byte, because updating a hardware cursor costs port I/O).
    using CursorCallback = void (*)(void* context, uint16_t column, uint16_t row);

    static constexpr uint16_t kTabWidth = 8;

    // An unattached grid: every operation is a harmless no-op until attach().
    constexpr TextGrid() = default;
    // `cells` must hold width * height cells; it is cleared.
    TextGrid(uint16_t* cells, uint16_t width, uint16_t height) { attach(cells, width, height); }

    TextGrid(const TextGrid&) = delete;
    TextGrid& operator=(const TextGrid&) = delete;

    // Points the grid at a new buffer, resets the colour and escape state and clears it.
    // A null buffer or a zero dimension leaves the grid detached.
    void attach(uint16_t* cells, uint16_t width, uint16_t height);

    void write(const char* s, size_t n);
    void put_char(char c) { write(&c, 1); }

    // Fills the grid with blanks in the current attribute and homes the cursor.
    void clear();
    // Clamped to the grid.
    void set_cursor(uint16_t column, uint16_t row);
    void set_cursor_callback(CursorCallback callback, void* context);

    uint16_t width() const { return m_width; }
    uint16_t height() const { return m_height; }
    uint16_t cursor_column() const { return m_column; }
    uint16_t cursor_row() const { return m_row; }
    // Linear cell index of the cursor (row * width + column), what the VGA CRTC wants.
    uint16_t cursor_offset() const { return static_cast<uint16_t>(m_row * m_width + m_column); }
    // True after a glyph landed in the last column: the next glyph starts a new line.
    bool wrap_pending() const { return m_wrap_pending; }

    uint8_t attribute() const { return m_attribute; }
    // Replaces the current colours (an SGR reset returns to kDefaultAttribute).
    void set_attribute(uint8_t attribute);

    // Out-of-range coordinates read as 0.
    uint16_t cell(uint16_t column, uint16_t row) const;
    // All width * height cells, row by row (null while detached): what a renderer draws from.
    const uint16_t* cells() const { return m_cells; }

private:
    enum class State : uint8_t { Ground, Escape, Csi, Utf8 };
    static constexpr size_t kMaxParams = 8;
    static constexpr uint16_t kMaxParamValue = 9999;

    void feed(uint8_t byte);
    void ground(uint8_t byte);
    void csi(uint8_t byte);
    void dispatch_csi(uint8_t final_byte);
    void apply_sgr();
    void erase_display(uint16_t mode);
    void erase_line(uint16_t mode);

    void put_glyph(uint8_t glyph);
    void line_feed();
    void scroll_up();
    void fill(size_t first, size_t count);
    void recompute_attribute();
    uint16_t param(size_t index, uint16_t fallback) const;
    uint16_t blank() const { return make_cell(' ', m_attribute); }

    uint16_t* m_cells = nullptr;
    uint16_t m_width = 0;
    uint16_t m_height = 0;
    uint16_t m_column = 0;
    uint16_t m_row = 0;
    bool m_wrap_pending = false;
    bool m_cursor_moved = false;

    // Colour state as SGR sees it; m_attribute is derived from it.
    uint8_t m_attribute = kDefaultAttribute;
    uint8_t m_fg = 7; // VGA colour index 0-15
    uint8_t m_bg = 0; // VGA colour index 0-7
    bool m_bold = false;

    // Escape parser.
    State m_state = State::Ground;
    uint16_t m_params[kMaxParams] = {};
    uint8_t m_param_index = 0; // == kMaxParams once extra parameters are being ignored
    bool m_private = false;    // "ESC [ ?" or an intermediate byte: parsed, never acted on
    uint8_t m_utf8_remaining = 0;

    CursorCallback m_callback = nullptr;
    void* m_callback_context = nullptr;
};

} // namespace drivers
