#include "kernel/cmdline.h"

#include "kernel/fault_names.h"
#include "lib/format.h"

namespace kernel {

namespace {

constexpr const char* kLevelChoices = "error|warn|info|debug|trace";

// Messages cut long words ({:.40}) so one diagnostic stays one readable line.
template <typename... Args>
void diagnose(CmdlineResult& result, const char* fmt, const Args&... args)
{
    constexpr size_t kMax = CmdlineResult::kMaxDiagnostics;
    if (result.diagnostic_count < kMax) {
        lib::format(result.diagnostics[result.diagnostic_count++], CmdlineResult::kDiagnosticCapacity, fmt, args...);
        return;
    }
    // Full: the last line becomes a count of everything not listed (itself included).
    result.dropped_diagnostics = result.dropped_diagnostics == 0 ? 2 : result.dropped_diagnostics + 1;
    lib::format(result.diagnostics[kMax - 1], CmdlineResult::kDiagnosticCapacity,
                "cmdline: {} more problem(s) not listed", result.dropped_diagnostics);
}

// Parses a decimal option value within [low, high]; reports and returns false otherwise.
bool parse_bounded(CmdlineResult& result, lib::StringView name, lib::StringView value, uint64_t low, uint64_t high,
                   uint32_t keeping, uint32_t& out)
{
    auto number = lib::parse_u64(value);
    if (!number && number.error() != lib::ParseError::Overflow) {
        diagnose(result, "cmdline: {}={:.40} is not a number; keeping {}", name, value, keeping);
        return false;
    }
    if (!number || *number < low || *number > high) {
        diagnose(result, "cmdline: {}={:.40} is out of range {}..{}; keeping {}", name, value, low, high, keeping);
        return false;
    }
    out = static_cast<uint32_t>(*number);
    return true;
}

void apply_word(CmdlineResult& result, lib::StringView word)
{
    KernelOptions& opt = result.options;
    const size_t eq = word.find('=');
    const bool has_value = eq != lib::StringView::npos;
    const lib::StringView name = word.substr(0, eq);
    const lib::StringView value = has_value ? word.substr(eq + 1) : lib::StringView();

    if (name == "ktest") {
        opt.ktest = true;
        if (value.size() >= sizeof(opt.ktest_filter)) {
            // Running everything beats silently running a truncated filter.
            diagnose(result, "cmdline: ktest filter '{:.40}...' is {} chars (max {}); running every test", value,
                     value.size(), sizeof(opt.ktest_filter) - 1);
            opt.ktest_filter[0] = '\0';
            return;
        }
        lib::copy_string(opt.ktest_filter, sizeof(opt.ktest_filter), value);
        return;
    }
    if (name == "log") {
        if (!has_value) {
            diagnose(result, "cmdline: log needs a value ({}); keeping {}", kLevelChoices,
                     lib::log::level_name(opt.log_level));
            return;
        }
        auto level = lib::log::parse_level(value);
        if (!level) {
            diagnose(result, "cmdline: log={:.40} is not a level ({}); keeping {}", value, kLevelChoices,
                     lib::log::level_name(opt.log_level));
            return;
        }
        opt.log_level = *level;
        return;
    }
    if (name == "hz") {
        if (!has_value) {
            diagnose(result, "cmdline: hz needs a value ({}..{}); keeping {}", kMinTimerHz, kMaxTimerHz, opt.hz);
            return;
        }
        parse_bounded(result, name, value, kMinTimerHz, kMaxTimerHz, opt.hz, opt.hz);
        return;
    }
    if (name == "stress") {
        if (!has_value) {
            diagnose(result, "cmdline: stress needs a value in seconds (1..{}); keeping {}", kMaxStressSeconds,
                     opt.stress_seconds);
            return;
        }
        parse_bounded(result, name, value, 1, kMaxStressSeconds, opt.stress_seconds, opt.stress_seconds);
        return;
    }
    if (name == "fault") {
        if (!fault::is_known(value)) {
            // Listing every name would not fit one diagnostic; the header lists them.
            diagnose(result, "cmdline: fault={:.40} is not a known fault (see kernel/fault_names.h); ignored", value);
            return;
        }
        static_assert(sizeof(opt.fault) >= fault::kMaxNameBytes);
        lib::copy_string(opt.fault, sizeof(opt.fault), value);
        return;
    }
    diagnose(result, "cmdline: unknown option '{:.60}' (ignored)", word);
}

} // namespace

CmdlineResult parse_cmdline(lib::StringView cmdline)
{
    CmdlineResult result;
    bool first = true;
    size_t i = 0;
    while (i < cmdline.size()) {
        while (i < cmdline.size() && lib::is_space(cmdline[i]))
            ++i;
        const size_t start = i;
        while (i < cmdline.size() && !lib::is_space(cmdline[i]))
            ++i;
        if (i == start)
            break;
        const lib::StringView word = cmdline.substr(start, i - start);
        // Some loaders put the kernel's own path first; it is not an option.
        if (first && word.starts_with('/')) {
            first = false;
            continue;
        }
        first = false;
        apply_word(result, word);
    }
    return result;
}

} // namespace kernel
