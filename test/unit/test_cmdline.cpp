// Kernel command line: every option, every kind of bad value, and the rule that
// a bad word is reported while the option keeps its previous value.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kernel/cmdline.h"
#include "kernel/fault_names.h"

using kernel::CmdlineResult;
using lib::log::Level;

namespace {

CmdlineResult parse(const char* text) { return kernel::parse_cmdline(lib::StringView(text)); }

std::vector<std::string> diagnostics(const CmdlineResult& r)
{
    std::vector<std::string> out;
    for (size_t i = 0; i < r.diagnostic_count; ++i)
        out.emplace_back(r.diagnostics[i]);
    return out;
}

// Exactly one diagnostic, equal to `text`.
void require_one(const CmdlineResult& r, const std::string& text)
{
    REQUIRE(diagnostics(r) == std::vector<std::string>{text});
}

} // namespace

TEST_CASE("cmdline: empty and blank lines give the defaults", "[cmdline]")
{
    for (const char* text : {"", "   ", " \t\r\n "}) {
        const CmdlineResult r = parse(text);
        CHECK(r.options.log_level == Level::Info);
        CHECK(r.options.hz == 1000);
        CHECK_FALSE(r.options.ktest);
        CHECK(std::string(r.options.ktest_filter).empty());
        CHECK(r.options.stress_seconds == 0);
        CHECK(r.diagnostic_count == 0);
        CHECK(r.dropped_diagnostics == 0);
    }
    const CmdlineResult null_view = kernel::parse_cmdline(lib::StringView());
    CHECK(null_view.diagnostic_count == 0);
}

TEST_CASE("cmdline: log levels", "[cmdline]")
{
    CHECK(parse("log=error").options.log_level == Level::Error);
    CHECK(parse("log=warn").options.log_level == Level::Warn);
    CHECK(parse("log=info").options.log_level == Level::Info);
    CHECK(parse("log=debug").options.log_level == Level::Debug);
    CHECK(parse("log=trace").options.log_level == Level::Trace);
    CHECK(parse("log=trace").diagnostic_count == 0);

    const CmdlineResult bad = parse("log=loud");
    CHECK(bad.options.log_level == Level::Info);
    require_one(bad, "cmdline: log=loud is not a level (error|warn|info|debug|trace); keeping info");

    const CmdlineResult empty = parse("log=");
    CHECK(empty.options.log_level == Level::Info);
    require_one(empty, "cmdline: log= is not a level (error|warn|info|debug|trace); keeping info");

    const CmdlineResult bare = parse("log");
    require_one(bare, "cmdline: log needs a value (error|warn|info|debug|trace); keeping info");

    // A later bad value keeps the earlier good one.
    const CmdlineResult kept = parse("log=debug log=shout");
    CHECK(kept.options.log_level == Level::Debug);
    require_one(kept, "cmdline: log=shout is not a level (error|warn|info|debug|trace); keeping debug");
}

TEST_CASE("cmdline: hz", "[cmdline]")
{
    CHECK(parse("hz=100").options.hz == 100);
    CHECK(parse("hz=19").options.hz == 19);
    CHECK(parse("hz=10000").options.hz == 10000);
    CHECK(parse("hz=250").diagnostic_count == 0);

    SECTION("not a number")
    {
        for (const char* text : {"hz=abc", "hz=-5", "hz=12abc", "hz=0x64", "hz= "}) {
            const CmdlineResult r = parse(text);
            CHECK(r.options.hz == 1000);
            REQUIRE(r.diagnostic_count == 1);
            CHECK_THAT(r.diagnostics[0], Catch::Matchers::EndsWith("is not a number; keeping 1000"));
        }
        require_one(parse("hz=abc"), "cmdline: hz=abc is not a number; keeping 1000");
        require_one(parse("hz="), "cmdline: hz= is not a number; keeping 1000");
    }
    SECTION("out of range")
    {
        require_one(parse("hz=18"), "cmdline: hz=18 is out of range 19..10000; keeping 1000");
        require_one(parse("hz=0"), "cmdline: hz=0 is out of range 19..10000; keeping 1000");
        require_one(parse("hz=10001"), "cmdline: hz=10001 is out of range 19..10000; keeping 1000");
        // Too big even for 64 bits: still "out of range", not "not a number".
        require_one(parse("hz=99999999999999999999999"),
                    "cmdline: hz=99999999999999999999999 is out of range 19..10000; keeping 1000");
        CHECK(parse("hz=4294967396").options.hz == 1000); // 2^32 + 100 must not wrap to 100
    }
    SECTION("missing value") { require_one(parse("hz"), "cmdline: hz needs a value (19..10000); keeping 1000"); }
    SECTION("bad value after a good one keeps the good one")
    {
        const CmdlineResult r = parse("hz=100 hz=abc");
        CHECK(r.options.hz == 100);
        require_one(r, "cmdline: hz=abc is not a number; keeping 100");
    }
}

TEST_CASE("cmdline: ktest", "[cmdline]")
{
    const CmdlineResult plain = parse("ktest");
    CHECK(plain.options.ktest);
    CHECK(std::string(plain.options.ktest_filter).empty());
    CHECK(plain.diagnostic_count == 0);

    const CmdlineResult filtered = parse("ktest=sched.*");
    CHECK(filtered.options.ktest);
    CHECK(std::string(filtered.options.ktest_filter) == "sched.*");

    const CmdlineResult empty = parse("ktest=");
    CHECK(empty.options.ktest);
    CHECK(std::string(empty.options.ktest_filter).empty());
    CHECK(empty.diagnostic_count == 0);

    const std::string longest(63, 'f');
    CHECK(std::string(parse(("ktest=" + longest).c_str()).options.ktest_filter) == longest);

    const std::string too_long(64, 'f');
    const CmdlineResult over = parse(("ktest=" + too_long).c_str());
    CHECK(over.options.ktest);
    CHECK(std::string(over.options.ktest_filter).empty());
    REQUIRE(over.diagnostic_count == 1);
    CHECK_THAT(over.diagnostics[0], Catch::Matchers::Contains("is 64 chars (max 63); running every test"));

    // The last word wins: a bare ktest after a filter runs everything.
    CHECK(std::string(parse("ktest=mm.* ktest").options.ktest_filter).empty());
}

TEST_CASE("cmdline: stress", "[cmdline]")
{
    CHECK(parse("stress=60").options.stress_seconds == 60);
    CHECK(parse("stress=1").options.stress_seconds == 1);
    CHECK(parse("stress=86400").options.stress_seconds == 86400);
    require_one(parse("stress=0"), "cmdline: stress=0 is out of range 1..86400; keeping 0");
    require_one(parse("stress=86401"), "cmdline: stress=86401 is out of range 1..86400; keeping 0");
    require_one(parse("stress=soon"), "cmdline: stress=soon is not a number; keeping 0");
    require_one(parse("stress"), "cmdline: stress needs a value in seconds (1..86400); keeping 0");
    CHECK(parse("stress=0").options.stress_seconds == 0);
}

TEST_CASE("cmdline: unknown options are reported and ignored", "[cmdline]")
{
    const CmdlineResult r = parse("foo=1 quiet =5 HZ=100");
    CHECK(r.options.hz == 1000); // names are case-sensitive
    CHECK(diagnostics(r) ==
          std::vector<std::string>{
              "cmdline: unknown option 'foo=1' (ignored)",
              "cmdline: unknown option 'quiet' (ignored)",
              "cmdline: unknown option '=5' (ignored)",
              "cmdline: unknown option 'HZ=100' (ignored)",
          });
}

TEST_CASE("cmdline: extra whitespace and everything together", "[cmdline]")
{
    const CmdlineResult r = parse("  log=debug \t hz=250\n\n ktest=boot_info.*   stress=30  ");
    CHECK(r.diagnostic_count == 0);
    CHECK(r.options.log_level == Level::Debug);
    CHECK(r.options.hz == 250);
    CHECK(r.options.ktest);
    CHECK(std::string(r.options.ktest_filter) == "boot_info.*");
    CHECK(r.options.stress_seconds == 30);
}

TEST_CASE("cmdline: a leading kernel path is skipped", "[cmdline]")
{
    const CmdlineResult r = parse("/boot/aethelos.elf ktest");
    CHECK(r.options.ktest);
    CHECK(r.diagnostic_count == 0);
    // Only in first position.
    require_one(parse("ktest /boot/x"), "cmdline: unknown option '/boot/x' (ignored)");
}

TEST_CASE("cmdline: diagnostics beyond capacity are counted", "[cmdline]")
{
    std::string text;
    for (int i = 0; i < 10; ++i)
        text += "bad" + std::to_string(i) + " ";
    text += "hz=500";
    const CmdlineResult r = parse(text.c_str());
    CHECK(r.options.hz == 500); // parsing carries on
    REQUIRE(r.diagnostic_count == CmdlineResult::kMaxDiagnostics);
    CHECK(std::string(r.diagnostics[0]) == "cmdline: unknown option 'bad0' (ignored)");
    CHECK(std::string(r.diagnostics[6]) == "cmdline: unknown option 'bad6' (ignored)");
    // bad7, bad8 and bad9 are summarised in the last line.
    CHECK(r.dropped_diagnostics == 3);
    CHECK(std::string(r.diagnostics[7]) == "cmdline: 3 more problem(s) not listed");
}

TEST_CASE("cmdline: long words are cut in diagnostics but lines stay terminated", "[cmdline]")
{
    const std::string word = "x" + std::string(500, 'y');
    const CmdlineResult r = parse(word.c_str());
    REQUIRE(r.diagnostic_count == 1);
    const std::string line = r.diagnostics[0];
    CHECK(line.size() < CmdlineResult::kDiagnosticCapacity);
    CHECK_THAT(line, Catch::Matchers::StartsWith("cmdline: unknown option 'xyyy"));
    CHECK_THAT(line, Catch::Matchers::EndsWith("' (ignored)"));
}

TEST_CASE("cmdline: fault", "[cmdline]")
{
    CHECK(std::string(parse("").options.fault).empty());
    for (const char* name : kernel::fault::kNames) {
        const CmdlineResult r = parse((std::string("fault=") + name).c_str());
        CHECK(r.diagnostic_count == 0);
        CHECK(std::string(r.options.fault) == name);
        CHECK(std::string(name).size() < kernel::fault::kMaxNameBytes);
    }
    // An unknown or missing name is reported and leaves the option as it was.
    const CmdlineResult bad = parse("fault=stack_overflow fault=melt fault");
    CHECK(std::string(bad.options.fault) == "stack_overflow");
    CHECK(diagnostics(bad) ==
          std::vector<std::string>{
              "cmdline: fault=melt is not a known fault (see kernel/fault_names.h); ignored",
              "cmdline: fault= is not a known fault (see kernel/fault_names.h); ignored",
          });
    // Names are exact: no prefixes, no case folding.
    require_one(parse("fault=stack"), "cmdline: fault=stack is not a known fault (see kernel/fault_names.h); ignored");
    require_one(parse("fault=NULL_DEREF"),
                "cmdline: fault=NULL_DEREF is not a known fault (see kernel/fault_names.h); ignored");
}
