#pragma once
// Reference model of Eldarin's argument splitting, written from parser.h's contract rather than
// from parser.cpp: at most 16 arguments from at most 256 characters; spaces and tabs separate;
// '...' is literal; "..." honours \" and \\ only; a bare backslash escapes the next character;
// quoted pieces join adjacent text and "" is an empty argument.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/shell/parser.h"

namespace fuzz {

struct ModelParse {
    bool ok = false;
    kernel::shell::ParseError error = kernel::shell::ParseError::LineTooLong;
    std::vector<std::string> args;
};

inline ModelParse model_parse(std::string_view line)
{
    using kernel::shell::ParseError;
    ModelParse r;
    auto fail = [&](ParseError e) {
        r.ok = false;
        r.error = e;
        r.args.clear();
        return r;
    };
    if (line.size() > kernel::shell::kLineCapacity)
        return fail(ParseError::LineTooLong);
    enum class State { Between, Bare, Single, Double } state = State::Between;
    std::string current;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        switch (state) {
        case State::Between:
            if (c == ' ' || c == '\t')
                break;
            if (r.args.size() == kernel::shell::kMaxArgs)
                return fail(ParseError::TooManyArguments);
            current.clear();
            state = State::Bare;
            [[fallthrough]];
        case State::Bare:
            if (c == ' ' || c == '\t') {
                r.args.push_back(current);
                state = State::Between;
            } else if (c == '\'') {
                state = State::Single;
            } else if (c == '"') {
                state = State::Double;
            } else if (c == '\\') {
                if (i + 1 == line.size())
                    return fail(ParseError::TrailingBackslash);
                current += line[++i];
            } else {
                current += c;
            }
            break;
        case State::Single:
            if (c == '\'')
                state = State::Bare;
            else
                current += c;
            break;
        case State::Double:
            if (c == '"')
                state = State::Bare;
            else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\'))
                current += line[++i];
            else
                current += c;
            break;
        }
    }
    if (state == State::Single || state == State::Double)
        return fail(ParseError::UnterminatedQuote);
    if (state == State::Bare)
        r.args.push_back(current);
    r.ok = true;
    return r;
}

// An argument as the kernel sees it: a C string, so it ends at an embedded NUL.
inline std::string_view as_c_string(const std::string& s)
{
    return std::string_view(s.data(), std::min(s.size(), s.find('\0')));
}

} // namespace fuzz
