#pragma once
// Eldarin's command-line parser: splits a line into at most 16 arguments. Whitespace separates
// arguments; '...' quotes literally; "..." quotes with \" and \\ escapes; outside quotes a
// backslash escapes the next character. Quoted pieces join adjacent text ("a"b is one argument
// ab) and "" is an empty argument.
#include <stddef.h>

#include "kernel/shell/line_editor.h"
#include "lib/expected.h"
#include "lib/string.h"

namespace kernel::shell {

inline constexpr size_t kMaxArgs = 16;

enum class ParseError : uint8_t {
    UnterminatedQuote,
    TrailingBackslash,
    TooManyArguments,
    LineTooLong,
};
const char* to_string(ParseError error);

class Args {
public:
    size_t count() const { return m_count; }
    bool empty() const { return m_count == 0; }
    // The i-th argument (0 = the command name); "" past the end.
    lib::StringView operator[](size_t i) const
    {
        return i < m_count ? lib::StringView(m_args[i]) : lib::StringView("");
    }
    const char* c_str(size_t i) const { return i < m_count ? m_args[i] : ""; }

private:
    friend lib::Expected<void, ParseError> parse_line(lib::StringView line, Args& out);
    char m_storage[kLineCapacity + kMaxArgs + 1] = {};
    const char* m_args[kMaxArgs] = {};
    size_t m_count = 0;
};

// Fills `out` (left empty on error).
lib::Expected<void, ParseError> parse_line(lib::StringView line, Args& out);

} // namespace kernel::shell
