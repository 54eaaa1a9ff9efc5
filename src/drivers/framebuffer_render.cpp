#include "drivers/framebuffer_render.h"

#include "drivers/font.h"

namespace drivers {

const Rgb kVgaPalette[16] = {
    {0x00, 0x00, 0x00}, {0x00, 0x00, 0xaa}, {0x00, 0xaa, 0x00}, {0x00, 0xaa, 0xaa}, // black blue green cyan
    {0xaa, 0x00, 0x00}, {0xaa, 0x00, 0xaa}, {0xaa, 0x55, 0x00}, {0xaa, 0xaa, 0xaa}, // red magenta brown grey
    {0x55, 0x55, 0x55}, {0x55, 0x55, 0xff}, {0x55, 0xff, 0x55}, {0x55, 0xff, 0xff}, // the bright eight
    {0xff, 0x55, 0x55}, {0xff, 0x55, 0xff}, {0xff, 0xff, 0x55}, {0xff, 0xff, 0xff},
};

const char* to_string(FramebufferError error)
{
    switch (error) {
    case FramebufferError::Indexed: return "an indexed (palette) framebuffer has no RGB layout to draw with";
    case FramebufferError::EgaText: return "EGA text mode holds characters, not pixels";
    case FramebufferError::UnsupportedDepth: return "only 15, 16, 24 and 32 bits per pixel are drawn";
    case FramebufferError::BadColourLayout: return "the colour fields are empty, too wide, overlap or leave the pixel";
    case FramebufferError::TooSmall: return "smaller than one 8x16 character cell";
    case FramebufferError::TooLarge: return "larger than 16384 pixels a side or 1 GiB in all";
    case FramebufferError::BadPitch: return "the pitch is shorter than a line of pixels";
    case FramebufferError::NotMapped: return "it lies outside the first 4 GiB that the physmap maps at boot";
    }
    return "?";
}

namespace {

constexpr uint64_t field_mask(ColorField f) { return ((uint64_t{1} << f.size) - 1) << f.position; }

// Scales an 8-bit channel to a field of `bits` bits, rounding: 0xff -> all ones.
constexpr uint32_t scale_channel(uint8_t value, uint8_t bits)
{
    const uint32_t max = (uint32_t{1} << bits) - 1;
    return (value * max + 127) / 255;
}

} // namespace

lib::Expected<PixelLayout, FramebufferError> check_framebuffer(const FramebufferInfo& fb)
{
    if (fb.type == FramebufferType::Indexed)
        return lib::unexpected(FramebufferError::Indexed);
    if (fb.type != FramebufferType::Rgb)
        return lib::unexpected(FramebufferError::EgaText);
    if (fb.bpp != 15 && fb.bpp != 16 && fb.bpp != 24 && fb.bpp != 32)
        return lib::unexpected(FramebufferError::UnsupportedDepth);
    uint64_t used = 0;
    const ColorField fields[] = {fb.red, fb.green, fb.blue};
    for (const ColorField& f : fields) {
        if (f.size == 0 || f.size > 16 || f.position + f.size > fb.bpp || (used & field_mask(f)) != 0)
            return lib::unexpected(FramebufferError::BadColourLayout);
        used |= field_mask(f);
    }
    if (fb.width < kFontCellWidth || fb.height < kFontCellHeight)
        return lib::unexpected(FramebufferError::TooSmall);
    if (fb.width > kMaxFramebufferSide || fb.height > kMaxFramebufferSide)
        return lib::unexpected(FramebufferError::TooLarge);
    PixelLayout layout;
    layout.bytes_per_pixel = static_cast<uint8_t>((fb.bpp + 7) / 8);
    if (static_cast<uint64_t>(fb.pitch) < static_cast<uint64_t>(fb.width) * layout.bytes_per_pixel)
        return lib::unexpected(FramebufferError::BadPitch);
    if (fb.size_bytes() > kMaxFramebufferBytes)
        return lib::unexpected(FramebufferError::TooLarge);
    layout.width = fb.width;
    layout.height = fb.height;
    layout.pitch = fb.pitch;
    layout.red = fb.red;
    layout.green = fb.green;
    layout.blue = fb.blue;
    return layout;
}

uint32_t encode_pixel(const PixelLayout& layout, Rgb colour)
{
    return (scale_channel(colour.r, layout.red.size) << layout.red.position) |
        (scale_channel(colour.g, layout.green.size) << layout.green.position) |
        (scale_channel(colour.b, layout.blue.size) << layout.blue.position);
}

void FramebufferRenderer::attach(const PixelLayout& layout, uint8_t* pixels, uint16_t* shadow, uint16_t columns,
                                 uint16_t rows)
{
    const uint32_t fit_columns = layout.width / kFontCellWidth;
    const uint32_t fit_rows = layout.height / kFontCellHeight;
    if (columns > fit_columns)
        columns = static_cast<uint16_t>(fit_columns);
    if (rows > fit_rows)
        rows = static_cast<uint16_t>(fit_rows);
    const bool depth_ok = layout.bytes_per_pixel >= 2 && layout.bytes_per_pixel <= 4;
    const bool usable = pixels != nullptr && shadow != nullptr && columns != 0 && rows != 0 && depth_ok;
    m_layout = layout;
    m_pixels = usable ? pixels : nullptr;
    m_shadow = usable ? shadow : nullptr;
    m_columns = usable ? columns : 0;
    m_rows = usable ? rows : 0;
    for (unsigned i = 0; i < 16; ++i)
        m_palette[i] = encode_pixel(layout, kVgaPalette[i]);
    m_full_redraw = true;
    m_cursor_shown = false;
    m_cells_drawn = 0;
}

void FramebufferRenderer::clear_screen()
{
    if (!m_pixels)
        return;
    // Black is all fields zero in every RGB layout, so bytes of zero whatever the depth.
    const size_t line = static_cast<size_t>(m_layout.width) * m_layout.bytes_per_pixel;
    for (uint32_t y = 0; y < m_layout.height; ++y) {
        uint8_t* p = m_pixels + static_cast<size_t>(y) * m_layout.pitch;
        for (size_t i = 0; i < line; ++i)
            p[i] = 0;
    }
    m_full_redraw = true;
    m_cursor_shown = false;
}

template <unsigned BytesPerPixel>
void FramebufferRenderer::draw_cell(uint16_t column, uint16_t row, uint16_t cell, bool cursor)
{
    const uint8_t attribute = cell_attribute(cell);
    const uint32_t fg = m_palette[attribute & 0x0f];
    const uint32_t bg = m_palette[(attribute >> 4) & 0x07]; // bit 7 is blink on a VGA, never a colour
    const uint8_t* glyph = font_glyph(static_cast<uint8_t>(cell_glyph(cell)));
    uint8_t* line = m_pixels + static_cast<size_t>(row) * kFontCellHeight * m_layout.pitch +
        static_cast<size_t>(column) * kFontCellWidth * BytesPerPixel;
    for (uint16_t y = 0; y < kFontCellHeight; ++y, line += m_layout.pitch) {
        const uint8_t bits = (cursor && y >= kCursorFirstRow && y <= kCursorLastRow) ? 0xff : glyph[y];
        // One cell row is assembled in registers/stack and stored with one copy: the
        // framebuffer sees plain sequential writes (write-combining friendly).
        uint8_t out[kFontCellWidth * BytesPerPixel];
        for (unsigned x = 0; x < kFontCellWidth; ++x) {
            const uint32_t value = (bits & (0x80u >> x)) ? fg : bg;
            for (unsigned b = 0; b < BytesPerPixel; ++b)
                out[x * BytesPerPixel + b] = static_cast<uint8_t>(value >> (8 * b));
        }
        __builtin_memcpy(line, out, sizeof(out));
    }
}

void FramebufferRenderer::draw(uint16_t column, uint16_t row, uint16_t cell, bool cursor)
{
    switch (m_layout.bytes_per_pixel) {
    case 4: draw_cell<4>(column, row, cell, cursor); break;
    case 3: draw_cell<3>(column, row, cell, cursor); break;
    default: draw_cell<2>(column, row, cell, cursor); break;
    }
    ++m_cells_drawn;
}

size_t FramebufferRenderer::sync(const TextGrid& grid)
{
    if (!m_pixels)
        return 0;
    const uint16_t columns = grid.width() < m_columns ? grid.width() : m_columns;
    const uint16_t rows = grid.height() < m_rows ? grid.height() : m_rows;
    const uint16_t* cells = grid.cells();
    if (!cells)
        return 0;
    const uint16_t cursor_column = grid.cursor_column();
    const uint16_t cursor_row = grid.cursor_row();
    const bool cursor_visible = cursor_column < columns && cursor_row < rows;
    const bool cursor_moved =
        m_cursor_shown != cursor_visible || cursor_column != m_cursor_column || cursor_row != m_cursor_row;

    size_t drawn = 0;
    for (uint16_t r = 0; r < rows; ++r) {
        const uint16_t* source = cells + static_cast<size_t>(r) * grid.width();
        uint16_t* shown = m_shadow + static_cast<size_t>(r) * m_columns;
        const bool cursor_here =
            cursor_moved && ((m_cursor_shown && r == m_cursor_row) || (cursor_visible && r == cursor_row));
        for (uint16_t c = 0; c < columns; ++c) {
            const bool old_cursor = cursor_here && m_cursor_shown && r == m_cursor_row && c == m_cursor_column;
            const bool new_cursor = cursor_visible && r == cursor_row && c == cursor_column;
            if (!m_full_redraw && source[c] == shown[c] && !(cursor_here && (old_cursor || new_cursor)))
                continue;
            draw(c, r, source[c], new_cursor);
            shown[c] = source[c];
            ++drawn;
        }
    }
    m_full_redraw = false;
    m_cursor_shown = cursor_visible;
    m_cursor_column = cursor_column;
    m_cursor_row = cursor_row;
    return drawn;
}

} // namespace drivers
