// libFuzzer harness for Eldarin's line parser (kernel/shell/parser.h).
//
// The input is one line. parse_line must agree with the reference model in support/shell_model.h
// on success, on the error and on every argument; a failed parse leaves Args empty; every
// argument is NUL-terminated inside Args' own storage; out-of-range indexes read as "".
#include <cstdint>
#include <cstring>
#include <string_view>

#include "kernel/shell/parser.h"
#include "support/fuzz_check.h"
#include "support/shell_model.h"

using kernel::shell::Args;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    static Args args; // reused, so a parse must not depend on what the previous one left behind
    auto result = kernel::shell::parse_line(lib::StringView(line.data(), line.size()), args);
    const fuzz::ModelParse model = fuzz::model_parse(line);

    FUZZ_CHECK(result.has_value() == model.ok, "parse %s, model %s", result ? "succeeded" : to_string(result.error()),
               model.ok ? "succeeded" : to_string(model.error));
    if (!result) {
        FUZZ_CHECK(result.error() == model.error, "error '%s', model '%s'", to_string(result.error()),
                   to_string(model.error));
        FUZZ_CHECK(args.count() == 0 && args.empty(), "failed parse left %zu arguments", args.count());
        return 0;
    }
    FUZZ_CHECK(args.count() == model.args.size() && args.count() <= kernel::shell::kMaxArgs, "%zu arguments, model %zu",
               args.count(), model.args.size());
    const auto* storage_lo = reinterpret_cast<const char*>(&args);
    const auto* storage_hi = storage_lo + sizeof(Args);
    for (size_t i = 0; i < args.count(); ++i) {
        const char* s = args.c_str(i);
        FUZZ_CHECK(s >= storage_lo && s < storage_hi, "argument %zu points outside Args", i);
        FUZZ_CHECK(std::memchr(s, '\0', static_cast<size_t>(storage_hi - s)) != nullptr, "argument %zu unterminated",
                   i);
        const std::string_view want = fuzz::as_c_string(model.args[i]);
        const lib::StringView got = args[i];
        FUZZ_CHECK(got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size()) == 0,
                   "argument %zu is '%s', model '%.*s'", i, s, static_cast<int>(want.size()), want.data());
    }
    FUZZ_CHECK(args[args.count()].size() == 0 && std::strcmp(args.c_str(kernel::shell::kMaxArgs + 3), "") == 0,
               "an index past the end is not empty");
    return 0;
}
