// The PS/2 scancode decoder (set 1, US layout) and the input byte ring, and the decoder's bytes as
// Eldarin's KeyDecoder reads them.
#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "drivers/byte_ring.h"
#include "drivers/keyboard_decoder.h"
#include "kernel/shell/line_editor.h"

using drivers::ByteRing;
using drivers::KeyboardDecoder;

namespace {

std::string feed(KeyboardDecoder& decoder, const std::vector<uint8_t>& scancodes)
{
    std::string out;
    for (uint8_t code : scancodes) {
        uint8_t bytes[KeyboardDecoder::kMaxOutput];
        const size_t n = decoder.feed(code, bytes);
        REQUIRE(n <= KeyboardDecoder::kMaxOutput);
        out.append(reinterpret_cast<const char*>(bytes), n);
    }
    return out;
}

// Press and release.
std::vector<uint8_t> tap(uint8_t make) { return {make, static_cast<uint8_t>(make | 0x80)}; }
std::vector<uint8_t> tap_extended(uint8_t make) { return {0xe0, make, 0xe0, static_cast<uint8_t>(make | 0x80)}; }

std::vector<uint8_t> operator+(std::vector<uint8_t> a, const std::vector<uint8_t>& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Set 1 make codes used below.
constexpr uint8_t kA = 0x1e, kC = 0x2e, kE = 0x12, kH = 0x23, kL = 0x26, kO = 0x18, kW = 0x11, kR = 0x13, kD = 0x20,
                  kZ = 0x2c, kQ = 0x10, kM = 0x32;
constexpr uint8_t k1 = 0x02, k0 = 0x0b, kMinus = 0x0c, kEquals = 0x0d, kSpace = 0x39, kEnter = 0x1c, kBackspace = 0x0e,
                  kTab = 0x0f, kEsc = 0x01, kF1 = 0x3b, kF12 = 0x58;
constexpr uint8_t kSemicolon = 0x27, kQuote = 0x28, kBacktick = 0x29, kBackslash = 0x2b, kComma = 0x33, kDot = 0x34,
                  kSlash = 0x35, kLBracket = 0x1a, kRBracket = 0x1b;
constexpr uint8_t kLShift = 0x2a, kRShift = 0x36, kLCtrl = 0x1d, kCaps = 0x3a, kNum = 0x45, kLAlt = 0x38;

std::vector<uint8_t> word(const std::string& text)
{
    std::vector<uint8_t> out;
    for (char c : text) {
        uint8_t code = 0;
        switch (c) {
        case 'a': code = kA; break;
        case 'c': code = kC; break;
        case 'd': code = kD; break;
        case 'e': code = kE; break;
        case 'h': code = kH; break;
        case 'l': code = kL; break;
        case 'm': code = kM; break;
        case 'o': code = kO; break;
        case 'q': code = kQ; break;
        case 'r': code = kR; break;
        case 'w': code = kW; break;
        case 'z': code = kZ; break;
        case ' ': code = kSpace; break;
        default: FAIL("no scancode for '" << c << "' in this test");
        }
        out = out + tap(code);
    }
    return out;
}

kernel::shell::Key key_of(const std::string& bytes)
{
    kernel::shell::KeyDecoder decoder;
    kernel::shell::KeyEvent last;
    int events = 0;
    for (unsigned char b : bytes) {
        const kernel::shell::KeyEvent e = decoder.feed(b);
        if (e.key != kernel::shell::Key::None) {
            last = e;
            ++events;
        }
    }
    REQUIRE(events == 1);
    return last.key;
}

} // namespace

TEST_CASE("keyboard decoder: plain keys give US ASCII, releases give nothing")
{
    KeyboardDecoder d;
    CHECK(feed(d, word("hello world")) == "hello world");
    CHECK(feed(d, tap(k1) + tap(k0) + tap(kMinus) + tap(kEquals)) == "10-=");
    CHECK(feed(d,
               tap(kSemicolon) + tap(kQuote) + tap(kBacktick) + tap(kBackslash) + tap(kComma) + tap(kDot) +
                   tap(kSlash) + tap(kLBracket) + tap(kRBracket)) == ";'`\\,./[]");
    CHECK(feed(d, {static_cast<uint8_t>(kA | 0x80), static_cast<uint8_t>(kEnter | 0x80)}).empty());
}

TEST_CASE("keyboard decoder: Enter, Backspace and Tab are what Eldarin expects from a terminal")
{
    KeyboardDecoder d;
    CHECK(feed(d, tap(kEnter)) == "\r");
    CHECK(feed(d, tap_extended(0x1c)) == "\r"); // keypad Enter
    CHECK(feed(d, tap(kBackspace)) == "\x7f");
    CHECK(feed(d, tap(kTab)) == "\t");
    CHECK(key_of(feed(d, tap(kEnter))) == kernel::shell::Key::Enter);
    CHECK(key_of(feed(d, tap(kBackspace))) == kernel::shell::Key::Backspace);
    CHECK(key_of(feed(d, tap(kTab))) == kernel::shell::Key::Tab);
}

TEST_CASE("keyboard decoder: both Shifts, held and released")
{
    KeyboardDecoder d;
    CHECK(feed(d, std::vector<uint8_t>{kLShift} + tap(kA) + tap(k1) + tap(kSlash) + tap(kQuote)) == "A!?\"");
    CHECK(d.shift());
    CHECK(feed(d, std::vector<uint8_t>{kLShift | 0x80} + tap(kA)) == "a");
    CHECK(feed(d, std::vector<uint8_t>{kRShift} + tap(kEquals) + std::vector<uint8_t>{kRShift | 0x80} + tap(kEquals)) ==
          "+=");
    // Both held, one released: still shifted.
    CHECK(feed(d, std::vector<uint8_t>{kLShift, kRShift, kLShift | 0x80} + tap(kZ)) == "Z");
    CHECK(feed(d, std::vector<uint8_t>{kRShift | 0x80} + tap(kZ)) == "z");
    CHECK_FALSE(d.shift());
}

TEST_CASE("keyboard decoder: Caps Lock changes letters only, Shift inverts it, repeat does not toggle")
{
    KeyboardDecoder d;
    CHECK(d.leds() == 0);
    CHECK(feed(d, tap(kCaps)).empty());
    CHECK(d.caps_lock());
    CHECK(d.take_leds_changed());
    CHECK_FALSE(d.take_leds_changed());
    CHECK(d.leds() == drivers::kLedCapsLock);
    CHECK(feed(d, tap(kA) + tap(k1) + tap(kSemicolon)) == "A1;");
    CHECK(feed(d, std::vector<uint8_t>{kLShift} + tap(kA) + tap(k1) + std::vector<uint8_t>{kLShift | 0x80}) == "a!");
    // A held Caps Lock repeats its make code: one toggle per press.
    CHECK(feed(d, {kCaps, kCaps, kCaps, kCaps | 0x80}).empty());
    CHECK_FALSE(d.caps_lock());
    CHECK(feed(d, tap(kA)) == "a");
}

TEST_CASE("keyboard decoder: Ctrl with a letter gives its control code")
{
    KeyboardDecoder d;
    CHECK(feed(d,
               std::vector<uint8_t>{kLCtrl} + tap(kC) + tap(kL) + tap(kA) + tap(kE) +
                   std::vector<uint8_t>{kLCtrl | 0x80}) == "\x03\x0c\x01\x05");
    CHECK(feed(d, tap(kC)) == "c");
    // Right Ctrl (E0 1D), and Caps Lock does not matter.
    CHECK(feed(d,
               tap(kCaps) + std::vector<uint8_t>{0xe0, kLCtrl} + tap(kC) + std::vector<uint8_t>{0xe0, kLCtrl | 0x80} +
                   tap(kCaps)) == "\x03");
    CHECK_FALSE(d.ctrl());
    CHECK(key_of(feed(d, std::vector<uint8_t>{kLCtrl} + tap(kC) + std::vector<uint8_t>{kLCtrl | 0x80})) ==
          kernel::shell::Key::CtrlC);
    CHECK(key_of(feed(d, std::vector<uint8_t>{kLCtrl} + tap(kL) + std::vector<uint8_t>{kLCtrl | 0x80})) ==
          kernel::shell::Key::CtrlL);
}

TEST_CASE("keyboard decoder: navigation keys become the ANSI sequences KeyDecoder knows")
{
    using kernel::shell::Key;
    KeyboardDecoder d;
    struct Case {
        uint8_t code;
        const char* bytes;
        Key key;
    };
    const Case cases[] = {
        {0x48, "\x1b[A", Key::Up},      {0x50, "\x1b[B", Key::Down}, {0x4d, "\x1b[C", Key::Right},
        {0x4b, "\x1b[D", Key::Left},    {0x47, "\x1b[H", Key::Home}, {0x4f, "\x1b[F", Key::End},
        {0x53, "\x1b[3~", Key::Delete},
    };
    for (const Case& c : cases) {
        const std::string out = feed(d, tap_extended(c.code));
        CHECK(out == c.bytes);
        CHECK(key_of(out) == c.key);
    }
    // Keypad slash is extended too; Insert, PgUp, PgDn, the GUI keys give nothing.
    CHECK(feed(d, tap_extended(0x35)) == "/");
    CHECK(feed(d, tap_extended(0x52) + tap_extended(0x49) + tap_extended(0x51) + tap_extended(0x5b)).empty());
}

TEST_CASE("keyboard decoder: the keypad follows Num Lock")
{
    KeyboardDecoder d;
    CHECK_FALSE(d.num_lock());
    CHECK(feed(d, tap(0x48)) == "\x1b[A");  // keypad 8 = Up
    CHECK(feed(d, tap(0x53)) == "\x1b[3~"); // keypad . = Delete
    CHECK(feed(d, tap(0x4c)).empty());      // keypad 5: nothing without Num Lock
    CHECK(feed(d, tap(0x4a) + tap(0x4e) + tap(0x37)) == "-+*");
    CHECK(feed(d, tap(kNum)).empty());
    CHECK(d.num_lock());
    CHECK(d.leds() == drivers::kLedNumLock);
    CHECK(feed(d,
               tap(0x47) + tap(0x48) + tap(0x49) + tap(0x4b) + tap(0x4c) + tap(0x4d) + tap(0x4f) + tap(0x50) +
                   tap(0x51) + tap(0x52) + tap(0x53)) == "7894561230.");
}

TEST_CASE("keyboard decoder: Esc, Alt, function keys, Print Screen and Pause give nothing and leave no state")
{
    KeyboardDecoder d;
    CHECK(feed(d, tap(kEsc) + tap(kF1) + tap(kF12) + tap(kLAlt) + tap_extended(kLAlt)).empty());
    // Print Screen: E0 2A E0 37 / E0 B7 E0 AA. The E0 2A "fake shift" is not Shift.
    CHECK(feed(d, {0xe0, 0x2a, 0xe0, 0x37}).empty());
    CHECK_FALSE(d.shift());
    CHECK(feed(d, tap(kA)) == "a");
    CHECK(feed(d, {0xe0, 0xb7, 0xe0, 0xaa}).empty());
    // Pause: E1 1D 45 E1 9D C5 (the 1D must not look like Ctrl).
    CHECK(feed(d, {0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}).empty());
    CHECK_FALSE(d.ctrl());
    CHECK_FALSE(d.num_lock());
    CHECK(feed(d, tap(kA)) == "a");
    // Shift + extended arrow (the keyboard wraps it in fake shift releases) is still an arrow.
    CHECK(feed(d, std::vector<uint8_t>{kLShift, 0xe0, 0xaa, 0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x2a, kLShift | 0x80}) ==
          "\x1b[A");
}

TEST_CASE("keyboard decoder: random bytes never overflow, only emit well-formed output, and recover")
{
    const std::set<std::string> sequences = {"\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D", "\x1b[H", "\x1b[F", "\x1b[3~"};
    std::mt19937 rng(20261125);
    KeyboardDecoder d;
    for (int round = 0; round < 200; ++round) {
        for (int i = 0; i < 1000; ++i) {
            uint8_t bytes[KeyboardDecoder::kMaxOutput] = {};
            const size_t n = d.feed(static_cast<uint8_t>(rng()), bytes);
            REQUIRE(n <= KeyboardDecoder::kMaxOutput);
            if (n == 0)
                continue;
            const std::string out(reinterpret_cast<const char*>(bytes), n);
            if (n == 1) {
                const uint8_t b = bytes[0];
                const bool printable = b >= 0x20 && b < 0x7f;
                const bool control = (b >= 0x01 && b <= 0x1a) || b == 0x7f; // Ctrl-letters, \t, \r, DEL
                CHECK((printable || control));
                CHECK(b != 0x1b); // never a lone ESC
            } else {
                CHECK(sequences.count(out) == 1);
            }
        }
        // Whatever state the noise left: finish any prefix, release every modifier, then type.
        (void)feed(d, {0x00, 0x00, 0x00}); // ends a pending E0 or the two-byte tail of an E1
        (void)feed(d, {0xaa, 0xb6, 0x9d, 0xe0, 0x9d, 0x00});
        const std::string typed = feed(d, word("ae"));
        CHECK((typed == "ae" || typed == "AE"));
        CHECK(typed == (d.caps_lock() ? "AE" : "ae"));
    }
}

TEST_CASE("keyboard decoder: reset_keys forgets held modifiers and prefixes, keeps the locks")
{
    KeyboardDecoder d;
    (void)feed(d, std::vector<uint8_t>{kLShift, kLCtrl} + tap(kCaps) + std::vector<uint8_t>{0xe0});
    d.reset_keys();
    CHECK_FALSE(d.shift());
    CHECK_FALSE(d.ctrl());
    CHECK(d.caps_lock());
    CHECK(feed(d, tap(kA)) == "A"); // after a kept E0 it would be E0 1E: nothing
}

TEST_CASE("byte ring: FIFO order across wrap-around, whole pushes or none, drops counted")
{
    ByteRing<8> ring;
    CHECK(ring.empty());
    CHECK(ring.pop() == -1);
    unsigned next_in = 0, next_out = 0;
    for (int round = 0; round < 100; ++round) {
        const size_t n = 1 + round % 4;
        uint8_t bytes[4];
        for (size_t i = 0; i < n; ++i)
            bytes[i] = static_cast<uint8_t>(next_in + i);
        const bool fits = n <= ring.free_space();
        const uint64_t dropped = ring.dropped();
        CHECK(ring.push(bytes, n) == fits);
        if (fits) {
            next_in += static_cast<unsigned>(n);
        } else {
            CHECK(ring.dropped() == dropped + n);
        }
        for (int k = 0; k < round % 3 && !ring.empty(); ++k)
            CHECK(ring.pop() == static_cast<uint8_t>(next_out++));
    }
    while (!ring.empty())
        CHECK(ring.pop() == static_cast<uint8_t>(next_out++));
    CHECK(next_in == next_out);
    CHECK(ring.dropped() > 0);

    ByteRing<4> small;
    const uint8_t four[] = {1, 2, 3, 4};
    CHECK(small.push(four, 4));
    CHECK_FALSE(small.push(9));
    CHECK(small.size() == 4);
    CHECK(small.dropped() == 1);
    for (uint8_t b : four)
        CHECK(small.pop() == b);
    CHECK(small.pop() == -1);
}
