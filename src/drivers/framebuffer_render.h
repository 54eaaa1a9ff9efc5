#pragma once
// Draws a TextGrid onto a linear RGB framebuffer with the built-in 8x16 font, so a
// UEFI machine's screen shows exactly what the VGA text console shows on a BIOS one:
// the same cells, the same colours (the VGA text palette), an underline cursor on the
// last two pixel rows of the cursor cell, as the VGA console sets its hardware cursor.
//
// Generic (no arch headers): the pixels are any caller-supplied memory, the physmap in
// the Heartwood, plain arrays in host tests. Only changed cells are redrawn: the
// renderer keeps a shadow copy of what is on screen, compares it with the grid on each
// sync and draws the differences. A scroll therefore redraws the cells whose contents
// moved, never the whole screen per character, and it never reads the framebuffer back
// (on real hardware framebuffer reads are uncached and very slow).
#include <stddef.h>
#include <stdint.h>

#include "drivers/display.h"
#include "drivers/text_grid.h"
#include "lib/expected.h"

namespace drivers {

enum class FramebufferError : uint8_t {
    Indexed,          // palette colours: no fixed RGB layout to draw with
    EgaText,          // character cells, not pixels (the VGA text console's business)
    UnsupportedDepth, // not 15, 16, 24 or 32 bits per pixel
    BadColourLayout,  // a colour field empty, wider than 16 bits, outside the pixel, or overlapping another
    TooSmall,         // not even one 8x16 cell
    TooLarge,         // beyond kMaxFramebufferSide pixels a side or kMaxFramebufferBytes in all
    BadPitch,         // a line shorter than width pixels
    NotMapped,        // (kernel) outside the memory the physmap maps at boot
};

const char* to_string(FramebufferError error);

inline constexpr uint32_t kMaxFramebufferSide = 16384;
inline constexpr uint64_t kMaxFramebufferBytes = 1ull << 30;

// A validated pixel layout.
struct PixelLayout {
    uint32_t width = 0;          // pixels
    uint32_t height = 0;         // pixels
    uint32_t pitch = 0;          // bytes from one line to the next
    uint8_t bytes_per_pixel = 0; // 2, 3 or 4 (little-endian pixel values)
    ColorField red;
    ColorField green;
    ColorField blue;

    uint64_t size_bytes() const { return static_cast<uint64_t>(pitch) * height; }
};

// Checks what the loader reported and says why it cannot be drawn on.
lib::Expected<PixelLayout, FramebufferError> check_framebuffer(const FramebufferInfo& fb);

struct Rgb {
    uint8_t r, g, b;
};
// The VGA text-mode palette, indexed by attribute nibble (0 black ... 7 light grey,
// 8 dark grey ... 15 white), with the DAC values a VGA card loads by default.
extern const Rgb kVgaPalette[16];

// The pixel value of an 8-bit-per-channel colour in `layout` (fields scaled to their width).
uint32_t encode_pixel(const PixelLayout& layout, Rgb colour);

class FramebufferRenderer {
public:
    static constexpr uint16_t kCursorFirstRow = 14; // the cursor: pixel rows 14 and 15 of its cell
    static constexpr uint16_t kCursorLastRow = 15;

    constexpr FramebufferRenderer() = default;
    FramebufferRenderer(const FramebufferRenderer&) = delete;
    FramebufferRenderer& operator=(const FramebufferRenderer&) = delete;

    // `pixels` is the top-left pixel of a framebuffer laid out as `layout`; the grid of
    // `columns` x `rows` cells is drawn from there, `shadow` (columns * rows cells) keeps
    // what is on screen. The dimensions are clamped to what fits. Nothing is drawn yet:
    // call clear_screen(). A null pointer or a zero dimension leaves it detached.
    void attach(const PixelLayout& layout, uint8_t* pixels, uint16_t* shadow, uint16_t columns, uint16_t rows);
    bool attached() const { return m_pixels != nullptr; }

    // Paints the whole framebuffer black, including the margin the grid does not
    // cover, and makes the next sync draw every cell.
    void clear_screen();

    // Brings the screen up to date with `grid` (cells beyond either size are ignored):
    // draws every cell that differs from what is on screen, and the cells the cursor
    // left and reached. Returns how many cells it drew.
    size_t sync(const TextGrid& grid);

    uint16_t columns() const { return m_columns; }
    uint16_t rows() const { return m_rows; }
    const PixelLayout& layout() const { return m_layout; }
    uint32_t pixel_for_attribute_nibble(uint8_t index) const { return m_palette[index & 0x0f]; }
    uint64_t cells_drawn() const { return m_cells_drawn; } // since attach

private:
    template <unsigned BytesPerPixel>
    void draw_cell(uint16_t column, uint16_t row, uint16_t cell, bool cursor);
    void draw(uint16_t column, uint16_t row, uint16_t cell, bool cursor);

    PixelLayout m_layout;
    uint8_t* m_pixels = nullptr;
    uint16_t* m_shadow = nullptr;
    uint16_t m_columns = 0;
    uint16_t m_rows = 0;
    uint32_t m_palette[16] = {};
    bool m_full_redraw = true;
    bool m_cursor_shown = false; // drawn at m_cursor_column/row
    uint16_t m_cursor_column = 0;
    uint16_t m_cursor_row = 0;
    uint64_t m_cells_drawn = 0;
};

} // namespace drivers
