// libFuzzer harness for the kernel command-line parser (kernel/cmdline.h).
//
// The input is the command line. A reference model written from the header's contract (words
// split on whitespace, a leading /path skipped, log / hz / stress / ktest[=glob] / fault=<name>,
// last good value wins, every bad word one diagnostic) must agree with parse_cmdline on every option and on the
// number of diagnostics, including the "N more problem(s)" overflow line. Every diagnostic is a
// terminated "cmdline: ..." line; options always stay within their documented ranges.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "kernel/cmdline.h"
#include "kernel/fault_names.h"
#include "support/fuzz_check.h"

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Plain decimal, no sign or spaces; nullopt-like false on anything else or overflow.
bool decimal(std::string_view s, uint64_t& out, bool& overflow)
{
    overflow = false;
    if (s.empty())
        return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        const uint64_t digit = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - digit) / 10)
            overflow = true;
        v = v * 10 + digit;
    }
    out = v;
    return !overflow;
}

struct Model {
    lib::log::Level level = lib::log::Level::Info;
    uint32_t hz = 1000;
    bool ktest = false;
    std::string_view filter;
    uint32_t stress = 0;
    std::string_view fault;
    size_t problems = 0;

    void bounded(std::string_view value, bool has_value, uint64_t low, uint64_t high, uint32_t& out)
    {
        uint64_t v = 0;
        bool overflow = false;
        if (!has_value || !decimal(value, v, overflow) || v < low || v > high) {
            ++problems;
            return;
        }
        out = static_cast<uint32_t>(v);
    }

    void word(std::string_view w)
    {
        const size_t eq = w.find('=');
        const bool has_value = eq != std::string_view::npos;
        const std::string_view name = w.substr(0, eq);
        const std::string_view value = has_value ? w.substr(eq + 1) : std::string_view();
        if (name == "ktest") {
            ktest = true;
            if (value.size() >= sizeof(kernel::KernelOptions::ktest_filter)) {
                ++problems;
                filter = {};
            } else {
                filter = value;
            }
        } else if (name == "log") {
            auto parsed = lib::log::parse_level(lib::StringView(value.data(), value.size()));
            if (!has_value || !parsed)
                ++problems;
            else
                level = *parsed;
        } else if (name == "hz") {
            bounded(value, has_value, kernel::kMinTimerHz, kernel::kMaxTimerHz, hz);
        } else if (name == "stress") {
            bounded(value, has_value, 1, kernel::kMaxStressSeconds, stress);
        } else if (name == "fault") {
            bool known = false;
            for (const char* n : kernel::fault::kNames)
                known = known || value == n;
            if (known)
                fault = value;
            else
                ++problems;
        } else {
            ++problems;
        }
    }

    void run(std::string_view line)
    {
        bool first = true;
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && is_space(line[i]))
                ++i;
            const size_t start = i;
            while (i < line.size() && !is_space(line[i]))
                ++i;
            if (i == start)
                break;
            const std::string_view w = line.substr(start, i - start);
            if (first && w.front() == '/') {
                first = false;
                continue;
            }
            first = false;
            word(w);
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const kernel::CmdlineResult result = kernel::parse_cmdline(lib::StringView(line.data(), line.size()));
    const kernel::KernelOptions& opt = result.options;

    Model model;
    model.run(line);

    FUZZ_CHECK(opt.hz >= kernel::kMinTimerHz && opt.hz <= kernel::kMaxTimerHz, "hz %u out of range", opt.hz);
    FUZZ_CHECK(opt.stress_seconds <= kernel::kMaxStressSeconds, "stress %u out of range", opt.stress_seconds);
    FUZZ_CHECK(std::memchr(opt.ktest_filter, '\0', sizeof(opt.ktest_filter)) != nullptr, "filter not terminated");
    FUZZ_CHECK(opt.hz == model.hz && opt.stress_seconds == model.stress && opt.log_level == model.level &&
                   opt.ktest == model.ktest,
               "options differ from the model: hz %u/%u stress %u/%u log %d/%d ktest %d/%d", opt.hz, model.hz,
               opt.stress_seconds, model.stress, static_cast<int>(opt.log_level), static_cast<int>(model.level),
               opt.ktest, model.ktest);
    // The filter is copied as a C string: it ends at the value's end or at an embedded NUL.
    const size_t filter_len = std::strlen(opt.ktest_filter);
    const size_t model_len = std::min(model.filter.size(), model.filter.find('\0'));
    FUZZ_CHECK(filter_len == model_len &&
                   (filter_len == 0 || std::memcmp(opt.ktest_filter, model.filter.data(), filter_len) == 0),
               "ktest filter '%s' differs from the model", opt.ktest_filter);

    FUZZ_CHECK(std::string_view(opt.fault) == model.fault, "fault '%s' differs from the model", opt.fault);

    const size_t cap = kernel::CmdlineResult::kMaxDiagnostics;
    FUZZ_CHECK(result.diagnostic_count == std::min(model.problems, cap), "%zu diagnostics for %zu problems",
               result.diagnostic_count, model.problems);
    FUZZ_CHECK(result.dropped_diagnostics == (model.problems > cap ? model.problems - (cap - 1) : 0),
               "%zu dropped for %zu problems", result.dropped_diagnostics, model.problems);
    for (size_t i = 0; i < result.diagnostic_count; ++i) {
        const char* d = result.diagnostics[i];
        FUZZ_CHECK(std::memchr(d, '\0', kernel::CmdlineResult::kDiagnosticCapacity) != nullptr,
                   "diagnostic %zu not terminated", i);
        FUZZ_CHECK(std::strncmp(d, "cmdline: ", 9) == 0 && std::strlen(d) > 9, "diagnostic %zu: '%s'", i, d);
    }
    return 0;
}
