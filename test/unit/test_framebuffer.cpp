// Host tests for drivers::FramebufferRenderer: the VGA console's TextGrid drawn into
// in-memory framebuffers of several depths and pitches, checked pixel by pixel against
// the generated font.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "drivers/font.h"
#include "drivers/framebuffer_render.h"
#include "drivers/text_grid.h"

using drivers::FramebufferError;
using drivers::FramebufferRenderer;
using drivers::kFontCellHeight;
using drivers::kFontCellWidth;
using drivers::PixelLayout;
using drivers::TextGrid;

namespace {

constexpr uint8_t kCanary = 0xa5;
constexpr size_t kGuardBytes = 64;

drivers::FramebufferInfo rgb_info(uint32_t width, uint32_t height, uint32_t pitch, uint8_t bpp)
{
    drivers::FramebufferInfo fb;
    fb.phys_addr = PhysicalAddress(0x80000000);
    fb.width = width;
    fb.height = height;
    fb.pitch = pitch;
    fb.bpp = bpp;
    fb.type = drivers::FramebufferType::Rgb;
    if (bpp >= 24) {
        fb.red = {16, 8}; // the usual x86 BGR(x) byte order
        fb.green = {8, 8};
        fb.blue = {0, 8};
    } else {
        fb.red = {11, 5}; // RGB565
        fb.green = {5, 6};
        fb.blue = {0, 5};
    }
    return fb;
}

// A framebuffer in a vector, canary bytes around it and in every line's pitch padding,
// a TextGrid of its full size, and a renderer between them.
struct Screen {
    Screen(uint32_t width, uint32_t height, uint32_t pitch, uint8_t bpp, uint16_t max_columns = 0xffff,
           uint16_t max_rows = 0xffff)
    {
        auto checked = drivers::check_framebuffer(rgb_info(width, height, pitch, bpp));
        REQUIRE(checked);
        layout = *checked;
        memory.assign(kGuardBytes * 2 + layout.size_bytes(), kCanary);
        columns = static_cast<uint16_t>(std::min<uint32_t>(width / kFontCellWidth, max_columns));
        rows = static_cast<uint16_t>(std::min<uint32_t>(height / kFontCellHeight, max_rows));
        cells.assign(size_t(columns) * rows, 0);
        shadow.assign(size_t(columns) * rows, 0);
        renderer.attach(layout, pixels(), shadow.data(), columns, rows);
        REQUIRE(renderer.attached());
        renderer.clear_screen();
        grid.attach(cells.data(), columns, rows);
        first_sync = renderer.sync(grid);
    }

    uint8_t* pixels() { return memory.data() + kGuardBytes; }
    const uint8_t* pixels() const { return memory.data() + kGuardBytes; }

    size_t write(const std::string& s)
    {
        grid.write(s.data(), s.size());
        return renderer.sync(grid);
    }

    uint32_t pixel(uint32_t x, uint32_t y) const
    {
        const uint8_t* p = pixels() + size_t(y) * layout.pitch + size_t(x) * layout.bytes_per_pixel;
        uint32_t value = 0;
        for (unsigned b = 0; b < layout.bytes_per_pixel; ++b)
            value |= uint32_t(p[b]) << (8 * b);
        return value;
    }

    // Whether cell (c, r) shows `cell` exactly (and the cursor when `cursor`).
    bool shows(uint16_t c, uint16_t r, uint16_t cell, bool cursor) const
    {
        const uint8_t attribute = drivers::cell_attribute(cell);
        const uint32_t fg = renderer.pixel_for_attribute_nibble(attribute & 0x0f);
        const uint32_t bg = renderer.pixel_for_attribute_nibble((attribute >> 4) & 0x07);
        const uint8_t* glyph = drivers::font_glyph(static_cast<uint8_t>(drivers::cell_glyph(cell)));
        for (uint32_t y = 0; y < kFontCellHeight; ++y) {
            uint8_t bits = glyph[y];
            if (cursor && y >= FramebufferRenderer::kCursorFirstRow && y <= FramebufferRenderer::kCursorLastRow)
                bits = 0xff;
            for (uint32_t x = 0; x < kFontCellWidth; ++x) {
                const uint32_t want = (bits & (0x80u >> x)) ? fg : bg;
                if (pixel(c * kFontCellWidth + x, r * kFontCellHeight + y) != want)
                    return false;
            }
        }
        return true;
    }

    // Every cell of the grid is on screen as the grid has it, the cursor where the grid's is.
    bool shows_grid() const
    {
        for (uint16_t r = 0; r < rows; ++r)
            for (uint16_t c = 0; c < columns; ++c) {
                const bool cursor = c == grid.cursor_column() && r == grid.cursor_row();
                if (!shows(c, r, grid.cell(c, r), cursor))
                    return false;
            }
        return true;
    }

    // Guard bytes, pitch padding, and (when the grid is smaller than the screen) the black margin.
    bool outside_untouched() const
    {
        for (size_t i = 0; i < kGuardBytes; ++i)
            if (memory[i] != kCanary || memory[memory.size() - 1 - i] != kCanary)
                return false;
        const size_t line = size_t(layout.width) * layout.bytes_per_pixel;
        for (uint32_t y = 0; y < layout.height; ++y) {
            for (size_t i = line; i < layout.pitch; ++i)
                if (pixels()[size_t(y) * layout.pitch + i] != kCanary)
                    return false;
            for (uint32_t x = 0; x < layout.width; ++x) {
                const bool in_grid = x < uint32_t(columns) * kFontCellWidth && y < uint32_t(rows) * kFontCellHeight;
                if (!in_grid && pixel(x, y) != 0)
                    return false;
            }
        }
        return true;
    }

    PixelLayout layout;
    std::vector<uint8_t> memory;
    std::vector<uint16_t> cells;
    std::vector<uint16_t> shadow;
    uint16_t columns = 0;
    uint16_t rows = 0;
    TextGrid grid;
    FramebufferRenderer renderer;
    size_t first_sync = 0;
};

} // namespace

TEST_CASE("check_framebuffer accepts RGB layouts and names what it refuses", "[framebuffer]")
{
    CHECK(drivers::check_framebuffer(rgb_info(1024, 768, 4096, 32)));
    CHECK(drivers::check_framebuffer(rgb_info(800, 600, 2400, 24)));
    CHECK(drivers::check_framebuffer(rgb_info(640, 480, 1280, 16)));
    CHECK(drivers::check_framebuffer(rgb_info(8, 16, 24, 24))->bytes_per_pixel == 3);

    auto refused = [](const drivers::FramebufferInfo& fb) {
        auto r = drivers::check_framebuffer(fb);
        REQUIRE_FALSE(r);
        return r.error();
    };
    drivers::FramebufferInfo fb = rgb_info(1024, 768, 4096, 32);
    fb.type = drivers::FramebufferType::Indexed;
    CHECK(refused(fb) == FramebufferError::Indexed);
    fb.type = drivers::FramebufferType::EgaText;
    CHECK(refused(fb) == FramebufferError::EgaText);
    CHECK(refused(rgb_info(1024, 768, 1024, 8)) == FramebufferError::UnsupportedDepth);
    CHECK(refused(rgb_info(7, 768, 4096, 32)) == FramebufferError::TooSmall);
    CHECK(refused(rgb_info(1024, 15, 4096, 32)) == FramebufferError::TooSmall);
    CHECK(refused(rgb_info(16385, 768, 16385 * 4, 32)) == FramebufferError::TooLarge);
    CHECK(refused(rgb_info(16384, 16384, 16384 * 4 + 64, 32)) == FramebufferError::TooLarge); // > 1 GiB
    CHECK(refused(rgb_info(1024, 768, 4095, 32)) == FramebufferError::BadPitch);
    CHECK(refused(rgb_info(1024, 768, 3071, 24)) == FramebufferError::BadPitch);

    fb = rgb_info(1024, 768, 4096, 32);
    fb.green = {12, 8}; // overlaps red at 16..23
    CHECK(refused(fb) == FramebufferError::BadColourLayout);
    fb = rgb_info(1024, 768, 4096, 32);
    fb.blue = {0, 0};
    CHECK(refused(fb) == FramebufferError::BadColourLayout);
    fb = rgb_info(1024, 768, 3072, 24);
    fb.red = {20, 8}; // past bit 23
    CHECK(refused(fb) == FramebufferError::BadColourLayout);

    for (auto e : {FramebufferError::Indexed, FramebufferError::EgaText, FramebufferError::UnsupportedDepth,
                   FramebufferError::BadColourLayout, FramebufferError::TooSmall, FramebufferError::TooLarge,
                   FramebufferError::BadPitch, FramebufferError::NotMapped})
        CHECK(std::string(drivers::to_string(e)) != "?");
}

TEST_CASE("encode_pixel places and scales each channel", "[framebuffer]")
{
    const PixelLayout bgrx = *drivers::check_framebuffer(rgb_info(64, 64, 256, 32));
    CHECK(drivers::encode_pixel(bgrx, {0xff, 0xff, 0xff}) == 0x00ffffffu);
    CHECK(drivers::encode_pixel(bgrx, {0xaa, 0x55, 0x00}) == 0x00aa5500u);
    CHECK(drivers::encode_pixel(bgrx, {0, 0, 0}) == 0u);

    drivers::FramebufferInfo info = rgb_info(64, 64, 256, 32);
    info.red = {0, 8}; // RGBx: red in the lowest byte
    info.blue = {16, 8};
    CHECK(drivers::encode_pixel(*drivers::check_framebuffer(info), {0x12, 0x34, 0x56}) == 0x00563412u);

    const PixelLayout rgb565 = *drivers::check_framebuffer(rgb_info(64, 64, 128, 16));
    CHECK(drivers::encode_pixel(rgb565, {0xff, 0xff, 0xff}) == 0xffffu);
    CHECK(drivers::encode_pixel(rgb565, {0xff, 0, 0}) == 0xf800u);
    CHECK(drivers::encode_pixel(rgb565, {0xaa, 0xaa, 0xaa}) == ((21u << 11) | (42u << 5) | 21u)); // 2/3 of full scale

    info = rgb_info(64, 64, 256, 32);
    info.red = {20, 10}; // 10 bits a channel
    info.green = {10, 10};
    info.blue = {0, 10};
    CHECK(drivers::encode_pixel(*drivers::check_framebuffer(info), {0xff, 0, 0xff}) == ((1023u << 20) | 1023u));
}

TEST_CASE("the font has printable ASCII and a visible fallback", "[framebuffer]")
{
    auto ink = [](uint8_t byte) {
        int n = 0;
        for (uint16_t y = 0; y < kFontCellHeight; ++y)
            n += __builtin_popcount(drivers::font_glyph(byte)[y]);
        return n;
    };
    CHECK(ink(' ') == 0);
    for (int c = 0x21; c <= 0x7e; ++c)
        CHECK(ink(static_cast<uint8_t>(c)) > 0);
    // Distinct glyphs for distinct characters, so text can be read back off the screen.
    for (int a = 0x21; a <= 0x7e; ++a)
        for (int b = a + 1; b <= 0x7e; ++b)
            CHECK(std::memcmp(drivers::font_glyph(uint8_t(a)), drivers::font_glyph(uint8_t(b)), kFontCellHeight) != 0);
    CHECK(ink(0x00) > 0);
    CHECK(ink(0xff) > 0);
    CHECK(std::memcmp(drivers::font_glyph(0x01), drivers::font_glyph('?'), kFontCellHeight) != 0);
    // 'A' from GNU Unifont: a 6x10 glyph, its apex on cell row 4.
    CHECK(drivers::font_glyph('A')[3] == 0x00);
    CHECK(drivers::font_glyph('A')[4] == 0x18);
    CHECK(drivers::font_glyph('A')[9] == 0x7e);
}

TEST_CASE("text is drawn at 32, 24 and 16 bpp with odd pitches", "[framebuffer]")
{
    struct Case {
        uint32_t width, height, pitch;
        uint8_t bpp;
    };
    const Case cases[] = {
        {160, 64, 160 * 4, 32},      // tight
        {163, 70, 163 * 4 + 12, 32}, // width not a multiple of 8, a margin, padded lines
        {160, 64, 160 * 3 + 5, 24},  // odd pitch: pixels straddle alignment
        {85, 50, 85 * 3 + 1, 24},    {96, 48, 96 * 2 + 6, 16},
    };
    for (const Case& k : cases) {
        CAPTURE(k.width, k.height, k.pitch, k.bpp);
        Screen s(k.width, k.height, k.pitch, k.bpp);
        CHECK(s.first_sync == size_t(s.columns) * s.rows); // the first sync draws everything
        CHECK(s.shows_grid());
        s.write("Heartwood\n\x1b[1;31mred\x1b[0m \x1b[44mblue bg\x1b[0m");
        CHECK(s.shows_grid());
        CHECK(s.shows(0, 0, drivers::make_cell('H', 0x07), false));
        CHECK(s.shows(0, 1, drivers::make_cell('r', 0x0c), false)); // bold red = light red
        if (s.columns > 5)
            CHECK(s.shows(4, 1, drivers::make_cell('b', 0x17), false)); // grey on blue
        CHECK(s.outside_untouched());
    }
}

TEST_CASE("colours follow the VGA palette in the framebuffer's layout", "[framebuffer]")
{
    Screen s(256, 32, 1024, 32);
    s.write("\x1b[1;37;41mW");
    // Bright white on red: the cell's pixels are exactly those two palette entries.
    bool saw_fg = false, saw_bg = false;
    for (uint32_t y = 0; y < kFontCellHeight; ++y)
        for (uint32_t x = 0; x < kFontCellWidth; ++x) {
            const uint32_t p = s.pixel(x, y);
            saw_fg |= p == 0x00ffffffu;
            saw_bg |= p == 0x00aa0000u;
            CHECK((p == 0x00ffffffu || p == 0x00aa0000u));
        }
    CHECK(saw_fg);
    CHECK(saw_bg);
    // The default colours: light grey on black.
    CHECK(s.renderer.pixel_for_attribute_nibble(7) == 0x00aaaaaau);
    CHECK(s.renderer.pixel_for_attribute_nibble(0) == 0u);
}

TEST_CASE("only the cells that change are redrawn", "[framebuffer]")
{
    Screen s(640, 480, 2560, 32); // 80x30
    CHECK(s.write("") == 0);
    CHECK(s.write("x") == 2); // 'x' where the cursor was, and the cursor's new cell
    CHECK(s.shows_grid());
    CHECK(s.write("yz") == 3); // y (old cursor), z, new cursor
    CHECK(s.write("\r") == 2); // cursor leaves column 3 for column 0: both cells
    CHECK(s.write("\x1b[2;5H") == 2);
    CHECK(s.renderer.sync(s.grid) == 0);
    CHECK(s.shows_grid());
    CHECK(s.outside_untouched());
}

TEST_CASE("scrolling redraws from the grid, not the whole screen", "[framebuffer]")
{
    Screen s(320, 96, 320 * 3 + 3, 24); // 40x6 cells, 24 bpp, odd pitch
    for (int i = 0; i < 6; ++i)
        s.write("line " + std::to_string(i) + (i < 5 ? "\n" : ""));
    CHECK(s.shows_grid());
    const size_t drawn = s.write("\nnext");
    CHECK(s.shows_grid());
    CHECK(s.grid.cell(0, 0) == drivers::make_cell('l', 0x07));
    CHECK(s.grid.cell(5, 0) == drivers::make_cell('1', 0x07));
    // Rows of "line N" differ only in their digit after the scroll; blank cells stay.
    CHECK(drawn < size_t(s.columns) * s.rows / 4);
    CHECK(drawn >= 5);
    // A full screen of distinct text scrolled once redraws every changed cell.
    for (int i = 0; i < 12; ++i)
        s.write("\n" + std::string(40 - i, char('a' + i)));
    CHECK(s.shows_grid());
    CHECK(s.outside_untouched());
}

TEST_CASE("a grid smaller than the screen leaves the margin black; larger grids are clipped", "[framebuffer]")
{
    Screen small(200, 100, 800, 32, 10, 3);
    small.write("0123456789abc\ndef\nghi\njkl");
    CHECK(small.shows_grid());
    CHECK(small.outside_untouched());

    // A renderer narrower than the grid draws the part that fits.
    PixelLayout layout = *drivers::check_framebuffer(rgb_info(64, 32, 256, 32)); // 8x2 cells
    std::vector<uint8_t> pixels(layout.size_bytes(), kCanary);
    std::vector<uint16_t> shadow(8 * 2), cells(20 * 5);
    FramebufferRenderer r;
    r.attach(layout, pixels.data(), shadow.data(), 20, 5); // clamped to 8x2
    CHECK(r.columns() == 8);
    CHECK(r.rows() == 2);
    r.clear_screen();
    TextGrid grid(cells.data(), 20, 5);
    grid.write("a long line that does not fit", 29);
    CHECK(r.sync(grid) == 16);
    CHECK(r.sync(grid) == 0);
}

TEST_CASE("an unattached renderer does nothing", "[framebuffer]")
{
    FramebufferRenderer r;
    CHECK_FALSE(r.attached());
    r.clear_screen();
    std::vector<uint16_t> cells(80 * 25);
    TextGrid grid(cells.data(), 80, 25);
    CHECK(r.sync(grid) == 0);
    PixelLayout bad;
    bad.width = 64;
    bad.height = 32;
    bad.pitch = 64;
    bad.bytes_per_pixel = 1; // not a depth it draws
    std::vector<uint8_t> pixels(64 * 32);
    std::vector<uint16_t> shadow(16);
    r.attach(bad, pixels.data(), shadow.data(), 8, 2);
    CHECK_FALSE(r.attached());
    r.attach(*drivers::check_framebuffer(rgb_info(64, 32, 256, 32)), nullptr, shadow.data(), 8, 2);
    CHECK_FALSE(r.attached());
}

TEST_CASE("random terminal traffic always leaves the screen equal to the grid", "[framebuffer]")
{
    std::mt19937 rng(1234);
    Screen s(24 * 8 + 3, 7 * 16 + 9, (24 * 8 + 3) * 3 + 7, 24);
    const char* pieces[] = {
        "word ",    "\n",      "\r",     "\t",        "\b",       "\x1b[1;32m", "\x1b[0m",
        "\x1b[45m", "\x1b[2J", "\x1b[K", "\x1b[3;7H", "\xc3\xa9", "\x01",       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    for (int round = 0; round < 300; ++round) {
        std::string burst;
        const int n = int(rng() % 6) + 1;
        for (int i = 0; i < n; ++i)
            burst += pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
        s.write(burst);
        if (round % 10 == 0 || round == 299) {
            REQUIRE(s.shows_grid());
        }
    }
    CHECK(s.outside_untouched());
}
