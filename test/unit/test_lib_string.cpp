// Host tests for lib/string.h: StringView, parsing, copy_string and the
// kernel's mem* implementations (lib::mem_copy etc.).
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>

#include "lib/format.h"
#include "lib/string.h"

using lib::ParseError;
using lib::StringView;

TEST_CASE("StringView basics", "[lib][string]")
{
    constexpr StringView hello("hello");
    STATIC_REQUIRE(hello.size() == 5);
    STATIC_REQUIRE(hello[1] == 'e');
    STATIC_REQUIRE(hello == "hello");
    STATIC_REQUIRE(hello != "hellO");
    STATIC_REQUIRE(hello != "hell");
    STATIC_REQUIRE(StringView().empty());
    STATIC_REQUIRE(StringView(nullptr).empty());
    STATIC_REQUIRE(StringView("") == StringView());

    const char raw[] = {'a', 'b', 'c'}; // not NUL-terminated
    StringView abc(raw, 3);
    CHECK(abc == "abc");
    CHECK(abc.data() == raw);
    CHECK(abc.front() == 'a');
    CHECK(abc.back() == 'c');
    CHECK(std::string(abc.begin(), abc.end()) == "abc");
}

TEST_CASE("StringView searching and slicing", "[lib][string]")
{
    StringView s("console=serial loglevel=debug");
    CHECK(s.starts_with("console"));
    CHECK(s.starts_with('c'));
    CHECK_FALSE(s.starts_with("serial"));
    CHECK(s.ends_with("debug"));
    CHECK(s.ends_with('g'));
    CHECK_FALSE(StringView("ab").starts_with("abc"));
    CHECK_FALSE(StringView("ab").ends_with("xab"));
    CHECK(StringView("").starts_with(""));
    CHECK_FALSE(StringView("").starts_with('x'));

    CHECK(s.find('=') == 7);
    CHECK(s.find('=', 8) == 23);
    CHECK(s.find('#') == StringView::npos);
    CHECK(s.find("loglevel") == 15);
    CHECK(s.find("nope") == StringView::npos);
    CHECK(s.find("") == 0);
    CHECK(s.rfind('=') == 23);
    CHECK(StringView("abc").rfind('x') == StringView::npos);
    CHECK(s.contains("serial"));
    CHECK_FALSE(s.contains('#'));

    CHECK(s.substr(8, 6) == "serial");
    CHECK(s.substr(24) == "debug");
    CHECK(s.substr(29).empty());
    CHECK(s.substr(1000).empty()); // out of range: empty, not UB
    CHECK(s.substr(24, 1000) == "debug");

    StringView t = s;
    t.remove_prefix(8);
    t.remove_suffix(15);
    CHECK(t == "serial");
    t.remove_suffix(100);
    CHECK(t.empty());

    CHECK(lib::trim("  \t a b \n") == "a b");
    CHECK(lib::trim("   ").empty());
    CHECK(lib::equals_ignore_case("DeBuG", "debug"));
    CHECK_FALSE(lib::equals_ignore_case("debu", "debug"));
}

TEST_CASE("parse_u64 accepts valid numbers", "[lib][string]")
{
    CHECK(lib::parse_u64("0").value() == 0);
    CHECK(lib::parse_u64("42").value() == 42);
    CHECK(lib::parse_u64("18446744073709551615").value() == UINT64_MAX);
    CHECK(lib::parse_u64("ff", 16).value() == 255);
    CHECK(lib::parse_u64("0xFF", 16).value() == 255);
    CHECK(lib::parse_u64("0XfF", 16).value() == 255);
    CHECK(lib::parse_u64("ffffffffffffffff", 16).value() == UINT64_MAX);
    CHECK(lib::parse_u64("101", 2).value() == 5);
    CHECK(lib::parse_u64("0b101", 2).value() == 5);
    CHECK(lib::parse_u64("777", 8).value() == 511);
    CHECK(lib::parse_u64("zz", 36).value() == 36 * 36 - 1);
    // Base 0 picks the base from the prefix.
    CHECK(lib::parse_u64("0x10", 0).value() == 16);
    CHECK(lib::parse_u64("0b10", 0).value() == 2);
    CHECK(lib::parse_u64("0o10", 0).value() == 8);
    CHECK(lib::parse_u64("010", 0).value() == 10);
    CHECK(lib::parse_u64("0", 0).value() == 0);
    // A "0b" is only a prefix in base 2 (or 0); in hex it is digits.
    CHECK(lib::parse_u64("0b1", 16).value() == 0xb1);
}

TEST_CASE("parse_u64 rejects invalid input", "[lib][string]")
{
    CHECK(lib::parse_u64("").error() == ParseError::Empty);
    CHECK(lib::parse_u64("0x", 16).error() == ParseError::Empty);
    CHECK(lib::parse_u64("0x", 0).error() == ParseError::Empty);
    CHECK(lib::parse_u64("12a").error() == ParseError::InvalidDigit);
    CHECK(lib::parse_u64(" 12").error() == ParseError::InvalidDigit);
    CHECK(lib::parse_u64("-1").error() == ParseError::InvalidDigit);
    CHECK(lib::parse_u64("0x10").error() == ParseError::InvalidDigit); // base 10: no prefix
    CHECK(lib::parse_u64("2", 2).error() == ParseError::InvalidDigit);
    CHECK(lib::parse_u64("18446744073709551616").error() == ParseError::Overflow);
    CHECK(lib::parse_u64("99999999999999999999").error() == ParseError::Overflow);
    CHECK(lib::parse_u64("10000000000000000", 16).error() == ParseError::Overflow);
    CHECK(lib::parse_u64("1", 1).error() == ParseError::InvalidBase);
    CHECK(lib::parse_u64("1", 37).error() == ParseError::InvalidBase);
    CHECK(StringView(lib::parse_error_name(ParseError::Overflow)) == "overflow");
}

TEST_CASE("parse_u64 round-trips formatted numbers (randomised)", "[lib][string]")
{
    std::mt19937_64 rng(2024);
    char buf[80];
    for (int i = 0; i < 20000; ++i) {
        // Spread values over all magnitudes, not just huge ones.
        const uint64_t v = rng() >> (rng() % 64);
        const char* fmt = nullptr;
        unsigned base = 10;
        switch (i % 5) {
        case 0:
            fmt = "{}";
            base = 10;
            break;
        case 1:
            fmt = "{:x}";
            base = 16;
            break;
        case 2:
            fmt = "{:#X}";
            base = 16;
            break;
        case 3:
            fmt = "{:b}";
            base = 2;
            break;
        case 4:
            fmt = "{:#o}";
            base = 8;
            break; // the leading '0' is just another octal digit
        }
        const size_t n = lib::format(buf, sizeof(buf), fmt, v);
        REQUIRE(n < sizeof(buf));
        StringView text(buf, n);
        auto parsed = lib::parse_u64(text, base);
        INFO("text=" << buf << " base=" << base);
        REQUIRE(parsed.has_value());
        REQUIRE(*parsed == v);

        // Also against the C library for decimal.
        if (base == 10)
            REQUIRE(*parsed == std::strtoull(buf, nullptr, 10));
    }
}

TEST_CASE("parse_u64 overflow boundary (randomised)", "[lib][string]")
{
    // UINT64_MAX + k for small k must overflow; UINT64_MAX - k must not.
    for (unsigned k = 0; k < 1000; ++k) {
        char buf[32];
        lib::format(buf, sizeof(buf), "{}", UINT64_MAX - k);
        REQUIRE(lib::parse_u64(buf).value() == UINT64_MAX - k);
        // Append a digit: always > UINT64_MAX.
        std::string bigger = std::string(buf) + std::to_string(k % 10);
        REQUIRE(lib::parse_u64(StringView(bigger.data(), bigger.size())).error() == ParseError::Overflow);
    }
}

TEST_CASE("parse_i64", "[lib][string]")
{
    CHECK(lib::parse_i64("0").value() == 0);
    CHECK(lib::parse_i64("-5").value() == -5);
    CHECK(lib::parse_i64("+5").value() == 5);
    CHECK(lib::parse_i64("9223372036854775807").value() == INT64_MAX);
    CHECK(lib::parse_i64("-9223372036854775808").value() == INT64_MIN);
    CHECK(lib::parse_i64("9223372036854775808").error() == ParseError::Overflow);
    CHECK(lib::parse_i64("-9223372036854775809").error() == ParseError::Overflow);
    CHECK(lib::parse_i64("-0x10", 16).value() == -16);
    CHECK(lib::parse_i64("-").error() == ParseError::Empty);
    CHECK(lib::parse_i64("--1").error() == ParseError::InvalidDigit);

    std::mt19937_64 rng(99);
    char buf[32];
    for (int i = 0; i < 10000; ++i) {
        const int64_t v = static_cast<int64_t>(rng()) >> (rng() % 64);
        lib::format(buf, sizeof(buf), "{}", v);
        REQUIRE(lib::parse_i64(buf).value() == v);
    }
}

TEST_CASE("copy_string always terminates", "[lib][string]")
{
    char buf[8];
    std::memset(buf, 'X', sizeof(buf));
    CHECK(lib::copy_string(buf, sizeof(buf), "abc") == 3);
    CHECK(std::string(buf) == "abc");
    CHECK(lib::copy_string(buf, sizeof(buf), "0123456789") == 7);
    CHECK(std::string(buf) == "0123456");
    CHECK(lib::copy_string(buf, 1, "abc") == 0);
    CHECK(buf[0] == '\0');
    buf[0] = 'X';
    CHECK(lib::copy_string(buf, 0, "abc") == 0);
    CHECK(buf[0] == 'X'); // cap 0: nothing written
    CHECK(lib::copy_string(buf, sizeof(buf), "") == 0);
    CHECK(buf[0] == '\0');
}

TEST_CASE("lib::mem_* match the C library (randomised)", "[lib][string]")
{
    std::mt19937 rng(5);
    unsigned char a[160], b[160], ref[160];
    for (int iter = 0; iter < 20000; ++iter) {
        for (size_t i = 0; i < sizeof(a); ++i) {
            a[i] = static_cast<unsigned char>(rng());
            b[i] = static_cast<unsigned char>(rng());
        }
        const size_t n = rng() % 64;
        const size_t d = rng() % 64, s = rng() % 64;
        switch (iter % 4) {
        case 0: { // copy between distinct buffers, random alignment
            std::memcpy(ref, a, sizeof(a));
            std::memcpy(ref + d, b + s, n);
            REQUIRE(lib::mem_copy(a + d, b + s, n) == a + d);
            REQUIRE(std::memcmp(a, ref, sizeof(a)) == 0);
            break;
        }
        case 1: { // overlapping move in either direction
            std::memcpy(ref, a, sizeof(a));
            std::memmove(ref + d, ref + s, n);
            REQUIRE(lib::mem_move(a + d, a + s, n) == a + d);
            REQUIRE(std::memcmp(a, ref, sizeof(a)) == 0);
            break;
        }
        case 2: {
            const int value = static_cast<int>(rng());
            std::memcpy(ref, a, sizeof(a));
            std::memset(ref + d, value, n);
            REQUIRE(lib::mem_set(a + d, value, n) == a + d);
            REQUIRE(std::memcmp(a, ref, sizeof(a)) == 0);
            break;
        }
        case 3: {
            std::memcpy(b, a, sizeof(a));
            if (n > 0 && rng() % 2)
                b[d + rng() % n] ^= static_cast<unsigned char>(1u << (rng() % 8));
            const int want = std::memcmp(a + d, b + d, n);
            const int got = lib::mem_compare(a + d, b + d, n);
            REQUIRE((want < 0) == (got < 0));
            REQUIRE((want == 0) == (got == 0));
            break;
        }
        }
    }
}

TEST_CASE("lib::find_mismatch finds the first odd byte at every alignment and length (randomised)", "[lib][string]")
{
    std::mt19937_64 rng(0xf17d);
    alignas(64) uint8_t buffer[256 + 16];
    for (int round = 0; round < 20000; ++round) {
        const uint8_t fill = static_cast<uint8_t>(rng());
        const size_t offset = rng() % 16;
        const size_t length = rng() % 257;
        std::memset(buffer, fill, sizeof(buffer));
        uint8_t* begin = buffer + offset;
        uint8_t* end = begin + length;
        // Zero to three odd bytes, any value but the fill (a bit flip: the word compare must see it).
        const int odd = static_cast<int>(rng() % 4);
        for (int k = 0; k < odd && length > 0; ++k)
            begin[rng() % length] = static_cast<uint8_t>(fill ^ (1u << (rng() % 8)));
        // Bytes just outside the range differ too: they must never be reported.
        if (offset > 0)
            begin[-1] = static_cast<uint8_t>(~fill);
        if (end < buffer + sizeof(buffer))
            *end = static_cast<uint8_t>(~fill);
        const uint8_t* expected = begin;
        while (expected < end && *expected == fill)
            ++expected;
        REQUIRE(lib::find_mismatch(begin, end, fill) == expected);
    }
    uint8_t one = 7;
    CHECK(lib::find_mismatch(&one, &one, 7) == &one); // empty range
}

TEST_CASE("lib::short_path keeps the last two components", "[lib][string]")
{
    CHECK(std::string(lib::short_path("/work/main/src/mm/heap.cpp")) == "mm/heap.cpp");
    CHECK(std::string(lib::short_path("mm/heap.cpp")) == "mm/heap.cpp");
    CHECK(std::string(lib::short_path("heap.cpp")) == "heap.cpp");
    CHECK(std::string(lib::short_path("/heap.cpp")) == "/heap.cpp");
    CHECK(std::string(lib::short_path("")) == "");
    CHECK(std::string(lib::short_path(nullptr)) == "?");
}
