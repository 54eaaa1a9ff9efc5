#include "kernel/shell/parser.h"

namespace kernel::shell {

const char* to_string(ParseError error)
{
    switch (error) {
    case ParseError::UnterminatedQuote: return "unterminated quote";
    case ParseError::TrailingBackslash: return "backslash at the end of the line";
    case ParseError::TooManyArguments: return "too many arguments (at most 16)";
    case ParseError::LineTooLong: return "line too long (at most 256 characters)";
    }
    return "?";
}

lib::Expected<void, ParseError> parse_line(lib::StringView line, Args& out)
{
    out.m_count = 0;
    if (line.size() > kLineCapacity)
        return lib::unexpected(ParseError::LineTooLong);

    // Every argument is at most as long as its source text and each needs one NUL, so
    // line.size() + kMaxArgs + 1 bytes always suffice.
    size_t write = 0;
    size_t i = 0;
    const size_t n = line.size();
    auto fail = [&](ParseError e) {
        out.m_count = 0;
        return lib::unexpected(e);
    };
    for (;;) {
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        if (i >= n)
            break;
        if (out.m_count == kMaxArgs)
            return fail(ParseError::TooManyArguments);
        const size_t start = write;
        while (i < n && line[i] != ' ' && line[i] != '\t') {
            const char c = line[i];
            if (c == '\'') {
                ++i;
                while (i < n && line[i] != '\'')
                    out.m_storage[write++] = line[i++];
                if (i >= n)
                    return fail(ParseError::UnterminatedQuote);
                ++i;
            } else if (c == '"') {
                ++i;
                while (i < n && line[i] != '"') {
                    if (line[i] == '\\' && i + 1 < n && (line[i + 1] == '"' || line[i + 1] == '\\'))
                        ++i;
                    out.m_storage[write++] = line[i++];
                }
                if (i >= n)
                    return fail(ParseError::UnterminatedQuote);
                ++i;
            } else if (c == '\\') {
                if (i + 1 >= n)
                    return fail(ParseError::TrailingBackslash);
                out.m_storage[write++] = line[i + 1];
                i += 2;
            } else {
                out.m_storage[write++] = c;
                ++i;
            }
        }
        out.m_storage[write++] = '\0';
        out.m_args[out.m_count++] = out.m_storage + start;
    }
    return {};
}

} // namespace kernel::shell
