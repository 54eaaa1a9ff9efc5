// Host tests for drivers::TextGrid, the hardware-free core of the VGA text console.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "drivers/text_grid.h"

using drivers::cell_attribute;
using drivers::cell_glyph;
using drivers::TextGrid;

namespace {

constexpr uint16_t kCanary = 0xdead;
constexpr size_t kGuardCells = 64;

// A W x H cell buffer with canary cells on both sides, so any write out of bounds is seen.
struct Screen {
    Screen(uint16_t w, uint16_t h) : width(w), height(h), storage(kGuardCells * 2 + size_t(w) * h, kCanary)
    {
        grid.attach(storage.data() + kGuardCells, w, h);
    }

    void write(const std::string& s) { grid.write(s.data(), s.size()); }

    // The row's glyphs with trailing blanks dropped.
    std::string row(uint16_t r) const
    {
        std::string text;
        for (uint16_t c = 0; c < width; ++c)
            text += cell_glyph(grid.cell(c, r));
        text.erase(text.find_last_not_of(' ') + 1);
        return text;
    }

    uint8_t attr(uint16_t c, uint16_t r) const { return cell_attribute(grid.cell(c, r)); }

    bool canaries_intact() const
    {
        for (size_t i = 0; i < kGuardCells; ++i)
            if (storage[i] != kCanary || storage[storage.size() - 1 - i] != kCanary)
                return false;
        return true;
    }

    uint16_t width;
    uint16_t height;
    std::vector<uint16_t> storage;
    TextGrid grid;
};

} // namespace

TEST_CASE("TextGrid starts blank, light grey on black, cursor home", "[text_grid]")
{
    Screen s(80, 25);
    for (uint16_t r = 0; r < 25; ++r)
        for (uint16_t c = 0; c < 80; ++c)
            REQUIRE(s.grid.cell(c, r) == drivers::make_cell(' ', 0x07));
    CHECK(s.grid.cursor_column() == 0);
    CHECK(s.grid.cursor_row() == 0);
    CHECK(s.grid.attribute() == drivers::kDefaultAttribute);
    CHECK(s.canaries_intact());
}

TEST_CASE("TextGrid writes text, newlines and carriage returns", "[text_grid]")
{
    Screen s(80, 25);
    s.write("Heartwood");
    CHECK(s.row(0) == "Heartwood");
    CHECK(s.attr(0, 0) == 0x07);
    CHECK(s.grid.cursor_column() == 9);

    s.write("\nsecond line\nthird");
    CHECK(s.row(1) == "second line");
    CHECK(s.row(2) == "third");
    CHECK(s.grid.cursor_row() == 2);
    CHECK(s.grid.cursor_column() == 5);

    s.write("\rTH");
    CHECK(s.row(2) == "THird");
    CHECK(s.grid.cursor_column() == 2);
    CHECK(s.grid.cursor_offset() == 2 * 80 + 2);
}

TEST_CASE("TextGrid wraps at 80 columns without doubling exact-width lines", "[text_grid]")
{
    Screen s(80, 25);
    const std::string full(80, 'a');
    s.write(full);
    CHECK(s.row(0) == full);
    CHECK(s.grid.cursor_row() == 0);
    CHECK(s.grid.cursor_column() == 79);
    CHECK(s.grid.wrap_pending());

    SECTION("a newline after a full line moves down exactly one row")
    {
        s.write("\nb");
        CHECK(s.row(1) == "b");
        CHECK(s.grid.cursor_row() == 1);
    }
    SECTION("the 81st glyph starts the next row")
    {
        s.write("bc");
        CHECK(s.row(0) == full);
        CHECK(s.row(1) == "bc");
        CHECK(s.grid.cursor_row() == 1);
        CHECK(s.grid.cursor_column() == 2);
    }
    SECTION("a carriage return cancels the pending wrap")
    {
        s.write("\rZ");
        CHECK(s.row(0) == "Z" + std::string(79, 'a'));
        CHECK(s.grid.cursor_row() == 0);
    }
}

TEST_CASE("TextGrid scrolling keeps the last lines", "[text_grid]")
{
    Screen s(80, 25);
    for (int i = 0; i < 30; ++i)
        s.write("line " + std::to_string(i) + "\n");
    // 30 newlines on 25 rows: lines 6..29 on rows 0..23, the cursor on the blank last row.
    CHECK(s.row(0) == "line 6");
    CHECK(s.row(23) == "line 29");
    CHECK(s.row(24).empty());
    CHECK(s.grid.cursor_row() == 24);
    CHECK(s.grid.cursor_column() == 0);

    SECTION("long wrapped output scrolls too")
    {
        s.write(std::string(80 * 3, 'x') + "end");
        CHECK(s.row(24) == "end");
        CHECK(s.row(23) == std::string(80, 'x'));
        CHECK(s.row(20) == "line 29");
    }
    CHECK(s.canaries_intact());
}

TEST_CASE("TextGrid scrolling blanks the new row with the current colours", "[text_grid]")
{
    Screen s(10, 2);
    s.write("a\nb\n\x1b[44m");
    CHECK(s.row(0) == "b");
    CHECK(s.attr(0, 1) == 0x07); // filled before the colour changed
    s.write("\n");
    CHECK(s.attr(5, 1) == 0x17); // grey on blue
}

TEST_CASE("TextGrid backspace moves left without erasing", "[text_grid]")
{
    Screen s(80, 25);
    s.write("abc\b\bX");
    CHECK(s.row(0) == "aXc");
    CHECK(s.grid.cursor_column() == 2);

    s.write("\r\b\b");
    CHECK(s.grid.cursor_column() == 0); // stops at column 0

    s.write("\nxyz\b \b");
    CHECK(s.row(1) == "xy"); // the usual erase idiom
    CHECK(s.grid.cursor_column() == 2);
}

TEST_CASE("TextGrid tabs stop at multiples of 8", "[text_grid]")
{
    Screen s(80, 25);
    s.write("\tx");
    CHECK(s.grid.cell(8, 0) == drivers::make_cell('x', 0x07));
    s.write("\nabc\ty");
    CHECK(s.row(1) == "abc     y");
    s.write("\n12345678\tz");
    CHECK(s.grid.cell(16, 2) == drivers::make_cell('z', 0x07));
    s.write("\n" + std::string(75, '.') + "\t");
    CHECK(s.grid.cursor_row() == 3);
    CHECK(s.grid.cursor_column() == 79); // no stop left on the line: the last column
}

TEST_CASE("TextGrid SGR escapes set VGA attributes", "[text_grid]")
{
    Screen s(80, 25);
    SECTION("foreground, reset")
    {
        s.write("\x1b[31mR\x1b[0mN");
        CHECK(s.row(0) == "RN");
        CHECK(s.attr(0, 0) == 0x04); // ANSI red is VGA colour 4
        CHECK(s.attr(1, 0) == 0x07);
    }
    SECTION("all eight ANSI colours map onto the VGA palette")
    {
        const uint8_t expected[8] = {0x0, 0x4, 0x2, 0x6, 0x1, 0x5, 0x3, 0x7};
        for (int i = 0; i < 8; ++i) {
            s.write("\x1b[" + std::to_string(30 + i) + "m#");
            CHECK(s.attr(uint16_t(i), 0) == expected[i]);
        }
    }
    SECTION("bold and 90-97 give the bright colours")
    {
        s.write("\x1b[1;32mG\x1b[22mg\x1b[0m\x1b[91mr\x1b[1mR");
        CHECK(s.attr(0, 0) == 0x0a);
        CHECK(s.attr(1, 0) == 0x02);
        CHECK(s.attr(2, 0) == 0x0c);
        CHECK(s.attr(3, 0) == 0x0c);
    }
    SECTION("backgrounds, defaults and combined parameters")
    {
        s.write("\x1b[97;41mW\x1b[39mw\x1b[49md\x1b[104mb\x1b[mz");
        CHECK(s.attr(0, 0) == 0x4f);
        CHECK(s.attr(1, 0) == 0x47);
        CHECK(s.attr(2, 0) == 0x07);
        CHECK(s.attr(3, 0) == 0x17); // bright backgrounds fall back to normal ones (bit 7 blinks)
        CHECK(s.attr(4, 0) == 0x07); // an empty SGR is a reset
    }
    SECTION("a coloured log line renders its level word in colour")
    {
        s.write("[    1.234567] \x1b[33mwarn \x1b[0m Mana Pool low\n");
        CHECK(s.row(0) == "[    1.234567] warn  Mana Pool low");
        CHECK(s.attr(0, 0) == 0x07);
        CHECK(s.attr(15, 0) == 0x06); // 'w' in brown/yellow
        CHECK(s.attr(21, 0) == 0x07);
        CHECK(s.grid.attribute() == 0x07);
    }
    SECTION("unsupported SGR forms leave the colour alone")
    {
        s.write("\x1b[32m\x1b[38;5;196mX\x1b[4;3mY");
        CHECK(s.attr(0, 0) == 0x02);
        CHECK(s.attr(1, 0) == 0x02);
    }
}

TEST_CASE("TextGrid erase-display and home escapes clear and home", "[text_grid]")
{
    Screen s(80, 25);
    s.write("one\ntwo\nthree");
    s.write("\x1b[2J");
    for (uint16_t r = 0; r < 3; ++r)
        CHECK(s.row(r).empty());
    CHECK(s.grid.cursor_row() == 2); // 2J alone does not move the cursor
    s.write("\x1b[H");
    CHECK(s.grid.cursor_row() == 0);
    CHECK(s.grid.cursor_column() == 0);
    s.write("top");
    CHECK(s.row(0) == "top");
}

TEST_CASE("TextGrid cursor position and erase sequences", "[text_grid]")
{
    Screen s(80, 25);
    s.write("\x1b[5;10H*");
    CHECK(s.grid.cell(9, 4) == drivers::make_cell('*', 0x07));
    s.write("\x1b[999;999H");
    CHECK(s.grid.cursor_row() == 24);
    CHECK(s.grid.cursor_column() == 79);
    s.write("\x1b[0;0H");
    CHECK(s.grid.cursor_offset() == 0);

    s.write("\x1b[3;1Habcdef\x1b[3;3H\x1b[K");
    CHECK(s.row(2) == "ab");
    s.write("\x1b[3;1Habcdef\x1b[3;3H\x1b[1K");
    CHECK(s.row(2) == "   def");
    s.write("\x1b[2K");
    CHECK(s.row(2).empty());
}

TEST_CASE("TextGrid swallows unknown escapes", "[text_grid]")
{
    Screen s(80, 25);
    s.write("\x1b[?25lA"); // private mode
    s.write("\x1b(BB");    // two-byte escape with an intermediate
    s.write("\x1b"
            "7C");                        // save cursor
    s.write("\x1b[2;3;4;5;6;7;8;9;31mD"); // more parameters than kept: the 9th (31) is dropped
    s.write("\x1b[99999999999mE");        // a huge parameter saturates
    s.write("\x1b[12zF");                 // unknown final byte
    s.write("\x1b\x1b[32mG");             // ESC restarts a sequence
    CHECK(s.row(0) == "ABCDEFG");
    CHECK(s.attr(3, 0) == 0x07); // the 31 was past the kept parameters
    CHECK(s.attr(6, 0) == 0x02);

    SECTION("a control byte inside an escape still takes effect")
    {
        s.write("\x1b[31\nmX");
        CHECK(s.grid.cursor_row() == 1);
        CHECK(s.row(1) == "X"); // the newline moved, the 'm' still ended the sequence
        CHECK(s.attr(0, 1) == 0x04);
        s.write("\x1b\nx");
        CHECK(s.row(2) == "x");
    }
}

TEST_CASE("TextGrid abandons a sequence at CAN or SUB (a panic report starts with CAN)", "[text_grid]")
{
    Screen s(80, 25);
    s.write("\x1b[31\x18PANIC"); // cut off inside a CSI: the text after CAN is shown
    s.write("\x1b\x1a"
            "A"); // inside a bare ESC
    s.write("\xe2\x80\x18"
            "B"); // inside a UTF-8 sequence: no placeholder either
    s.write("\x18"
            "C\x1a"
            "D"); // outside any sequence: nothing shown, nothing moved
    CHECK(s.row(0) == "PANICABCD");
    CHECK(s.attr(0, 0) == 0x07); // the abandoned SGR set no colour
    CHECK(s.grid.cursor_column() == 9);
}

TEST_CASE("TextGrid shows one placeholder per UTF-8 character", "[text_grid]")
{
    Screen s(80, 25);
    s.write("a\xe2\x80\x94"
            "b\xc3\xa9"
            "c\xf0\x9f\x8c\xb3"
            "d\x80"
            "e\xe2\x80"
            "f");
    CHECK(s.row(0) == "a?b?c?d?e?f");
}

TEST_CASE("TextGrid reports cursor moves once per write", "[text_grid]")
{
    Screen s(80, 25);
    struct Seen {
        int calls = 0;
        uint16_t column = 0, row = 0;
    } seen;
    s.grid.set_cursor_callback(
        [](void* ctx, uint16_t column, uint16_t row) {
            auto* p = static_cast<Seen*>(ctx);
            ++p->calls;
            p->column = column;
            p->row = row;
        },
        &seen);
    s.write("hello\nworld");
    CHECK(seen.calls == 1);
    CHECK(seen.column == 5);
    CHECK(seen.row == 1);
    s.write("\x1b[31m");
    CHECK(seen.calls == 1); // colour only: the cursor did not move
    s.grid.clear();
    CHECK(seen.calls == 2);
    CHECK(seen.column == 0);
    CHECK(seen.row == 0);
}

TEST_CASE("TextGrid clear blanks everything and homes the cursor", "[text_grid]")
{
    Screen s(80, 25);
    for (int i = 0; i < 40; ++i)
        s.write("\x1b[3" + std::to_string(i % 8) + "mtext " + std::to_string(i) + "\n");
    s.write("\x1b[0m");
    s.grid.clear();
    for (uint16_t r = 0; r < 25; ++r)
        for (uint16_t c = 0; c < 80; ++c)
            REQUIRE(s.grid.cell(c, r) == drivers::make_cell(' ', 0x07));
    CHECK(s.grid.cursor_offset() == 0);
    CHECK_FALSE(s.grid.wrap_pending());
    CHECK(s.canaries_intact());
}

TEST_CASE("TextGrid without a usable buffer does nothing", "[text_grid]")
{
    TextGrid detached;
    detached.write("abc\n\x1b[2J", 8);
    detached.clear();
    detached.set_cursor(3, 3);
    CHECK(detached.width() == 0);
    CHECK(detached.cell(0, 0) == 0);

    uint16_t one = kCanary;
    TextGrid zero_width(&one, 0, 5);
    zero_width.write("x", 1);
    CHECK(one == kCanary);
    TextGrid null_buffer(nullptr, 80, 25);
    null_buffer.write("x", 1);
    CHECK(null_buffer.height() == 0);
}

TEST_CASE("TextGrid never writes out of bounds, whatever the bytes", "[text_grid][fuzz]")
{
    // Bytes weighted towards what stresses the parser: ESC, '[', digits, ';', finals, controls, UTF-8.
    const std::string interesting = "\x1b\x1b\x1b[[[;;0123456789?mHJKf\n\r\t\b \x7f\x80\xbf\xc3\xe2\xf0\xff"
                                    "A";
    std::mt19937 rng(0xae7e1);
    const uint16_t sizes[][2] = {{1, 1}, {2, 1}, {1, 3}, {7, 3}, {8, 2}, {80, 25}};
    for (const auto& size : sizes) {
        Screen s(size[0], size[1]);
        for (int round = 0; round < 200; ++round) {
            std::string soup;
            const size_t length = rng() % 300;
            for (size_t i = 0; i < length; ++i) {
                soup += (rng() % 4 == 0) ? static_cast<char>(rng() & 0xff) : interesting[rng() % interesting.size()];
            }
            s.write(soup);
            REQUIRE(s.grid.cursor_column() < size[0]);
            REQUIRE(s.grid.cursor_row() < size[1]);
            REQUIRE((s.grid.attribute() & 0x80) == 0);
            REQUIRE(s.canaries_intact());
        }
        // Whatever state the soup left, a reset and a clear bring the grid back.
        s.write("\x18\x1b[0m");
        s.write("x\x1b[0m\x1b[2J\x1b[H");
        CHECK(s.grid.cursor_offset() == 0);
        CHECK(s.grid.attribute() == 0x07);
        s.write("k");
        CHECK(cell_glyph(s.grid.cell(0, 0)) == 'k');
        CHECK(s.canaries_intact());
    }
}
