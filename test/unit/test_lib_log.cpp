// Host tests for lib/log.h. The logger is global state, so every test
// registers its sinks through a guard that restores the defaults.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "lib/log.h"

namespace {

struct CaptureSink final : lib::log::Sink {
    std::string text;
    int writes = 0;
    void write(const char* s, size_t n) override
    {
        text.append(s, n);
        ++writes;
    }
};

uint64_t g_fake_ns = 0;
uint64_t fake_clock() { return g_fake_ns; }

// Restores the logger's global state at scope exit.
struct LogStateGuard {
    std::vector<lib::log::Sink*> sinks;
    explicit LogStateGuard(std::initializer_list<lib::log::Sink*> list) : sinks(list)
    {
        for (auto* s : sinks)
            lib::log::add_sink(s);
    }
    ~LogStateGuard()
    {
        for (auto* s : sinks)
            lib::log::remove_sink(s);
        lib::log::set_level(lib::log::Level::Info);
        lib::log::set_clock(nullptr);
    }
};

} // namespace

using lib::log::Level;

TEST_CASE("log: lines before any sink exists are dropped silently", "[lib][log]")
{
    REQUIRE_FALSE(lib::log::has_sinks());
    lib::log::error("nobody hears {}", 1);
    lib::log::print("nor {}", 2);
    lib::log::write_raw("x", 1);
    SUCCEED();
}

TEST_CASE("log: line format with and without a clock", "[lib][log]")
{
    CaptureSink sink;
    LogStateGuard guard{&sink};

    lib::log::info("hello {}", 42);
    CHECK(sink.text == "[    0.000000] \x1b[32minfo\x1b[0m  hello 42\n");
    CHECK(sink.writes == 1); // a short line reaches the sink in one write

    sink.text.clear();
    lib::log::set_clock(&fake_clock);
    g_fake_ns = 1234567891; // 1.234567891 s: microseconds are truncated
    lib::log::warn("careful");
    CHECK(sink.text == "[    1.234567] \x1b[33mwarn\x1b[0m  careful\n");

    sink.text.clear();
    g_fake_ns = 123456ull * 1000000000ull + 5000; // wider than the 5-digit column
    lib::log::error("e");
    CHECK(sink.text == "[123456.000005] \x1b[31merror\x1b[0m e\n");
}

TEST_CASE("log: level filtering", "[lib][log]")
{
    CaptureSink sink;
    LogStateGuard guard{&sink};
    CHECK(lib::log::level() == Level::Info); // default

    auto count_lines = [&] {
        size_t n = 0;
        for (char c : sink.text)
            n += c == '\n';
        return n;
    };
    const Level levels[] = {Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace};
    for (Level threshold : levels) {
        sink.text.clear();
        lib::log::set_level(threshold);
        lib::log::error("e");
        lib::log::warn("w");
        lib::log::info("i");
        lib::log::debug("d");
        lib::log::trace("t");
        CHECK(count_lines() == static_cast<size_t>(threshold) + 1);
        for (Level l : levels)
            CHECK(lib::log::enabled(l) == (static_cast<int>(l) <= static_cast<int>(threshold)));
    }
    lib::log::set_level(Level::Trace);
    sink.text.clear();
    lib::log::debug("x");
    CHECK(sink.text.find("\x1b[36mdebug\x1b[0m x\n") != std::string::npos);
    sink.text.clear();
    lib::log::trace("y");
    CHECK(sink.text.find("\x1b[35mtrace\x1b[0m y\n") != std::string::npos);

    // print ignores the level and adds nothing.
    lib::log::set_level(Level::Error);
    sink.text.clear();
    lib::log::print("banner {}\n", "!");
    CHECK(sink.text == "banner !\n");
}

TEST_CASE("log: every sink gets every line, in registration order", "[lib][log]")
{
    CaptureSink a, b, c;
    LogStateGuard guard{&a, &b, &c};
    lib::log::add_sink(&b); // duplicate registration is ignored
    lib::log::add_sink(nullptr);
    lib::log::info("one");
    CHECK(a.text == b.text);
    CHECK(b.text == c.text);
    CHECK(a.writes == 1);
    CHECK(b.writes == 1);

    lib::log::remove_sink(&b);
    lib::log::remove_sink(&b); // removing twice is harmless
    lib::log::write_raw("raw", 3);
    CHECK(a.text.ends_with("raw"));
    CHECK_FALSE(b.text.ends_with("raw"));
    CHECK(c.text.ends_with("raw"));
}

TEST_CASE("log: random sink add/remove sequences keep the list consistent", "[lib][log]")
{
    CaptureSink sinks[5];
    bool registered[5] = {};
    std::mt19937 rng(3);
    for (int i = 0; i < 3000; ++i) {
        const int k = static_cast<int>(rng() % 5);
        if (rng() % 2) {
            lib::log::add_sink(&sinks[k]);
            registered[k] = true;
        } else {
            lib::log::remove_sink(&sinks[k]);
            registered[k] = false;
        }
        for (auto& s : sinks)
            s.text.clear();
        lib::log::write_raw("z", 1);
        bool any = false;
        for (int s = 0; s < 5; ++s) {
            REQUIRE(sinks[s].text == (registered[s] ? "z" : ""));
            any |= registered[s];
        }
        REQUIRE(lib::log::has_sinks() == any);
    }
    for (auto& s : sinks)
        lib::log::remove_sink(&s);
    CHECK_FALSE(lib::log::has_sinks());
}

TEST_CASE("log: long messages are delivered whole", "[lib][log]")
{
    CaptureSink sink;
    LogStateGuard guard{&sink};
    const std::string big(1000, 'q');
    lib::log::info("{}", lib::StringView(big.data(), big.size()));
    // "[    0.000000] " + "\x1b[32m" "info" "\x1b[0m" "  " + message + newline.
    CHECK(sink.text.size() == 15 + 15 + big.size() + 1);
    CHECK(sink.text.find(big + "\n") != std::string::npos);
    CHECK(sink.writes > 1);
}

TEST_CASE("log: level names and parsing", "[lib][log]")
{
    CHECK(lib::StringView(lib::log::level_name(Level::Error)) == "error");
    CHECK(lib::StringView(lib::log::level_name(Level::Warn)) == "warn");
    CHECK(lib::StringView(lib::log::level_name(Level::Trace)) == "trace");
    CHECK(lib::log::parse_level("debug").value() == Level::Debug);
    CHECK(lib::log::parse_level("INFO").value() == Level::Info);
    CHECK(lib::log::parse_level("warning").value() == Level::Warn);
    CHECK(lib::log::parse_level("0").value() == Level::Error);
    CHECK(lib::log::parse_level("4").value() == Level::Trace);
    CHECK(lib::log::parse_level("5").error() == lib::ParseError::Unrecognized);
    CHECK(lib::log::parse_level("verbose").error() == lib::ParseError::Unrecognized);
    CHECK(lib::log::parse_level("").error() == lib::ParseError::Empty);
    for (Level l : {Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace})
        CHECK(lib::log::parse_level(lib::log::level_name(l)).value() == l);
}
