// Host tests for lib/format.h, including randomised comparisons with snprintf.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "lib/format.h"

namespace {

// Formats into a roomy buffer and returns the text as std::string.
template <typename... Args>
std::string fmt(const char* f, const Args&... args)
{
    char buf[512];
    const size_t n = lib::format(buf, sizeof(buf), f, args...);
    REQUIRE(n < sizeof(buf));
    REQUIRE(std::strlen(buf) == n);
    return std::string(buf, n);
}

// Records every write() so tests can see exactly what a sink receives.
struct StringSink final : lib::FormatSink {
    std::string text;
    int writes = 0;
    void write(const char* s, size_t n) override
    {
        text.append(s, n);
        ++writes;
    }
};

struct Rgb {
    uint8_t r, g, b;
};

enum class Colour : uint8_t { Red = 1, Green = 2 };
enum Plain { kPlainA = -3 };

} // namespace

template <>
struct lib::Formatter<Rgb> {
    static void format(lib::FormatSink& sink, const lib::FormatSpec& spec, const Rgb& c)
    {
        char buf[16];
        const size_t n = lib::format(buf, sizeof(buf), "#{:02x}{:02x}{:02x}", c.r, c.g, c.b);
        lib::write_padded(sink, spec, lib::StringView(buf, n));
    }
};

TEST_CASE("format: plain text and escapes", "[lib][format]")
{
    CHECK(fmt("") == "");
    CHECK(fmt("hello") == "hello");
    CHECK(fmt("{{}}") == "{}");
    CHECK(fmt("{{{}}}", 5) == "{5}");
    CHECK(fmt("a}b") == "a}b"); // a lone '}' is printed as is
    CHECK(fmt("}}{{") == "}{");
}

TEST_CASE("format: integers of every type", "[lib][format]")
{
    CHECK(fmt("{}", 0) == "0");
    CHECK(fmt("{}", -1) == "-1");
    CHECK(fmt("{}", INT8_MIN) == "-128");
    CHECK(fmt("{}", static_cast<int8_t>(-128)) == "-128");
    CHECK(fmt("{}", static_cast<uint8_t>(255)) == "255"); // uint8_t is a number, not a char
    CHECK(fmt("{}", static_cast<int16_t>(-32768)) == "-32768");
    CHECK(fmt("{}", static_cast<uint16_t>(65535)) == "65535");
    CHECK(fmt("{}", INT32_MIN) == "-2147483648");
    CHECK(fmt("{}", UINT32_MAX) == "4294967295");
    CHECK(fmt("{}", INT64_MIN) == "-9223372036854775808");
    CHECK(fmt("{}", INT64_MAX) == "9223372036854775807");
    CHECK(fmt("{}", UINT64_MAX) == "18446744073709551615");
    CHECK(fmt("{}", LLONG_MIN) == "-9223372036854775808");
    CHECK(fmt("{}", ULLONG_MAX) == "18446744073709551615");
    CHECK(fmt("{}", size_t{12345}) == "12345");
    CHECK(fmt("{:x}", INT64_MIN) == "-8000000000000000");
    CHECK(fmt("{:#x}", -255) == "-0xff");
    CHECK(fmt("{:b}", INT8_MIN) == "-10000000");
    CHECK(fmt("{:X}", UINT64_MAX) == "FFFFFFFFFFFFFFFF");
    CHECK(fmt("{:b}", UINT64_MAX) == std::string(64, '1'));
    CHECK(fmt("{:#b}", 5u) == "0b101");
    CHECK(fmt("{:#B}", 5u) == "0B101");
    CHECK(fmt("{:o}", 8) == "10");
    CHECK(fmt("{:#o}", 8) == "010");
    CHECK(fmt("{:#o}", 0) == "0");
    CHECK(fmt("{:#x}", 0) == "0x0");
    CHECK(fmt("{:d}", 0x10) == "16");
}

TEST_CASE("format: width, alignment, fill, zero padding, sign", "[lib][format]")
{
    CHECK(fmt("{:5}", 42) == "   42");   // numbers default right
    CHECK(fmt("{:5}", "ab") == "ab   "); // text defaults left
    CHECK(fmt("{:<5}", 42) == "42   ");
    CHECK(fmt("{:>5}", "ab") == "   ab");
    CHECK(fmt("{:^6}", "ab") == "  ab  ");
    CHECK(fmt("{:^5}", "ab") == " ab  ");
    CHECK(fmt("{:*^7}", 1) == "***1***");
    CHECK(fmt("{:->4}", 'x') == "---x");
    CHECK(fmt("{:>10}", "abc") == "       abc");
    CHECK(fmt("{:<10}|", "abc") == "abc       |");
    CHECK(fmt("{:08x}", 0xbeefu) == "0000beef");
    CHECK(fmt("{:#010x}", 0xbeefu) == "0x0000beef");
    CHECK(fmt("{:06}", -42) == "-00042");
    CHECK(fmt("{:<06}", -42) == "-42   "); // explicit alignment disables zero padding
    CHECK(fmt("{:0>6}", 42) == "000042");  // '0' as fill character
    CHECK(fmt("{:+}", 5) == "+5");
    CHECK(fmt("{:+}", -5) == "-5");
    CHECK(fmt("{: }", 5) == " 5");
    CHECK(fmt("{:+05}", 5) == "+0005");
    CHECK(fmt("{:2}", 12345) == "12345"); // width is a minimum, never truncates
    CHECK(fmt("{:.3}", "abcdef") == "abc");
    CHECK(fmt("{:>5.2}", "abcdef") == "   ab");
    CHECK(fmt("{:.0}", "abc") == "");
    // Width is capped, so a silly width cannot run away.
    CHECK(fmt("{:99999}", 1).size() == lib::kMaxFormatWidth);
}

TEST_CASE("format: bool, char, strings, StringView", "[lib][format]")
{
    CHECK(fmt("{} {}", true, false) == "true false");
    CHECK(fmt("{:d}", true) == "1");
    CHECK(fmt("{:>6}", false) == " false");
    CHECK(fmt("{}", 'A') == "A");
    CHECK(fmt("{:x}", 'A') == "41");
    CHECK(fmt("{:d}", 'A') == "65");
    CHECK(fmt("{:c}", 65) == "A");

    const char* null_str = nullptr;
    CHECK(fmt("{}", null_str) == "(null)");
    char mutable_str[] = "mutable";
    char* mp = mutable_str;
    CHECK(fmt("{}", mp) == "mutable");
    CHECK(fmt("{}", mutable_str) == "mutable");
    // A char array without a NUL is read up to its extent only.
    char unterminated[3] = {'a', 'b', 'c'};
    CHECK(fmt("{}|", unterminated) == "abc|");
    char early[8] = "hi";
    CHECK(fmt("{}|", early) == "hi|");

    const char raw[] = {'x', 'y', 'z', 'w'};
    CHECK(fmt("[{}]", lib::StringView(raw, 3)) == "[xyz]");
    CHECK(fmt("[{:>5}]", lib::StringView(raw, 2)) == "[   xy]");
    CHECK(fmt("[{}]", lib::StringView()) == "[]");
}

TEST_CASE("format: pointers and addresses", "[lib][format]")
{
    int x = 0;
    char ref[64];
    std::snprintf(ref, sizeof(ref), "%p", static_cast<void*>(&x)); // glibc: 0x + lowercase hex
    CHECK(fmt("{}", &x) == ref);
    CHECK(fmt("{:p}", &x) == ref);
    const void* cvp = &x;
    CHECK(fmt("{}", cvp) == ref);
    CHECK(fmt("{}", nullptr) == "0x0");
    int* null_ptr = nullptr;
    CHECK(fmt("{}", null_ptr) == "0x0");
    CHECK(fmt("{:x}", reinterpret_cast<void*>(0xabc)) == "abc");
    CHECK(fmt("{:018p}", reinterpret_cast<void*>(0xabc)) == "0x0000000000000abc");
    CHECK(fmt("{:p}", 255) == "0xff");

    CHECK(fmt("{}", PhysicalAddress(0x100000)) == "0x100000");
    CHECK(fmt("{}", VirtualAddress(0xffffffff80000000)) == "0xffffffff80000000");
    CHECK(fmt("{:#018x}", PhysicalAddress(0x1000)) == "0x0000000000001000");
    CHECK(fmt("{:x}", PhysicalAddress(0x1000)) == "1000");

    void (*fn)() = nullptr;
    CHECK(fmt("{}", fn) == "0x0");
}

TEST_CASE("format: enums and custom formatters", "[lib][format]")
{
    CHECK(fmt("{}", Colour::Green) == "2");
    CHECK(fmt("{}", kPlainA) == "-3");
    CHECK(fmt("{}", Rgb{255, 0, 16}) == "#ff0010");
    CHECK(fmt("[{:>9}]", Rgb{1, 2, 3}) == "[  #010203]");
}

TEST_CASE("format: argument-count mistakes are visible", "[lib][format]")
{
    CHECK(fmt("{} {}", 1) == "1 {?}");
    CHECK(fmt("{}", 1, 2, 3) == "1{+2?}");
    CHECK(fmt("none", 1) == "none{+1?}");
    CHECK(fmt("{:q} {}", 1, 2) == "{!} 2"); // malformed spec consumes its argument
    CHECK(fmt("{0} {}", 1, 2) == "{!} 2");  // positional indices are not supported
    CHECK(fmt("{:5.}", 1) == "{!}");
    CHECK(fmt("tail {", 1) == "tail {!}");
    CHECK(fmt("tail {:x", 1) == "tail {!}");
    CHECK(fmt(nullptr) == "");
}

TEST_CASE("format: truncation is safe and reports the full length (randomised)", "[lib][format]")
{
    const std::string full = fmt("{} and {:#x} and {:>12}", -123456789, 0xdeadbeefu, "padded");
    std::mt19937 rng(11);
    for (int i = 0; i < 2000; ++i) {
        const size_t cap = rng() % (full.size() + 4);
        char buf[128];
        std::memset(buf, '#', sizeof(buf));
        const size_t n =
            lib::format(cap ? buf : nullptr, cap, "{} and {:#x} and {:>12}", -123456789, 0xdeadbeefu, "padded");
        REQUIRE(n == full.size());
        if (cap == 0)
            continue;
        const size_t kept = cap - 1 < full.size() ? cap - 1 : full.size();
        REQUIRE(std::string(buf) == full.substr(0, kept));
        REQUIRE(buf[kept] == '\0');
        REQUIRE(buf[cap] == '#'); // nothing written past cap
    }

    // Long outputs going through a sink are never truncated.
    StringSink sink;
    lib::format_to(sink, "{:>200}|{:<200}|", 1, 2);
    CHECK(sink.text.size() == 402);
    CHECK(lib::format(nullptr, 0, "{}", 12345) == 5);
}

TEST_CASE("format: random integers match snprintf", "[lib][format]")
{
    std::mt19937_64 rng(0xAE7E105);
    for (int i = 0; i < 50000; ++i) {
        const uint64_t bits = rng() >> (rng() % 64);
        const bool is_signed = rng() % 2;
        const int64_t sv = static_cast<int64_t>(rng() % 8 == 0 ? rng() : bits) * (rng() % 2 ? 1 : -1);
        const uint64_t uv = rng() % 16 == 0 ? UINT64_MAX - rng() % 3 : bits;

        const unsigned width = rng() % 4 == 0 ? 0 : static_cast<unsigned>(rng() % 30);
        const int align = static_cast<int>(rng() % 3); // 0 default, 1 '<', 2 '>'
        const bool zero = rng() % 3 == 0;
        const bool alt = rng() % 3 == 0;
        const char plus = "\0+ "[rng() % 3];
        const char type = is_signed ? 'd' : "dxXo"[rng() % 4];

        // Our spec, and the printf spec with the same meaning.
        std::string ours = "{:";
        std::string theirs = "%";
        if (align == 1) {
            ours += '<';
            theirs += '-';
        } else if (align == 2) {
            ours += '>';
        }
        if (is_signed && plus) {
            ours += plus;
            theirs += plus;
        }
        const bool use_alt = alt && type != 'd' && !(uv == 0 && (type == 'x' || type == 'X'));
        if (use_alt) {
            ours += '#';
            theirs += '#';
        }
        if (zero) {
            ours += '0';
            if (align == 0)
                theirs += '0';
        }
        if (width) {
            ours += std::to_string(width);
            theirs += std::to_string(width);
        }
        if (type != 'd')
            ours += type;
        ours += '}';
        theirs += "ll";
        theirs += (type == 'd' && !is_signed) ? 'u' : type;

        char expected[128], got[128];
        if (is_signed) {
            std::snprintf(expected, sizeof(expected), theirs.c_str(), static_cast<long long>(sv));
            lib::format(got, sizeof(got), ours.c_str(), sv);
        } else {
            std::snprintf(expected, sizeof(expected), theirs.c_str(), static_cast<unsigned long long>(uv));
            lib::format(got, sizeof(got), ours.c_str(), uv);
        }
        INFO("ours=" << ours << " printf=" << theirs << " value=" << (is_signed ? sv : static_cast<int64_t>(uv)));
        REQUIRE(std::string(got) == expected);
    }
}

TEST_CASE("format: random 32/16/8-bit values match snprintf", "[lib][format]")
{
    std::mt19937 rng(77);
    char expected[64], got[64];
    for (int i = 0; i < 20000; ++i) {
        const uint32_t r = rng();
        const auto i32 = static_cast<int32_t>(r);
        const auto i16 = static_cast<int16_t>(r);
        const auto i8 = static_cast<int8_t>(r);
        std::snprintf(expected, sizeof(expected), "%d %d %d %u %x %hhu", i32, i16, i8, r, r,
                      static_cast<unsigned char>(r));
        lib::format(got, sizeof(got), "{} {} {} {} {:x} {}", i32, i16, i8, r, r, static_cast<uint8_t>(r));
        REQUIRE(std::string(got) == expected);
    }
}

TEST_CASE("format_to streams to a sink", "[lib][format]")
{
    StringSink sink;
    lib::format_to(sink, "x={} y={}", 1, "two");
    CHECK(sink.text == "x=1 y=two");
    StringSink empty;
    lib::format_to(empty, "");
    CHECK(empty.text.empty());
    CHECK(empty.writes == 0);
}
