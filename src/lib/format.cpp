#include "lib/format.h"

namespace lib {

namespace {

// Writes `count` copies of `c` in chunks, without a buffer per character.
void write_fill(FormatSink& sink, char c, size_t count)
{
    char chunk[32];
    for (char& slot : chunk)
        slot = c;
    while (count > 0) {
        const size_t n = count < sizeof(chunk) ? count : sizeof(chunk);
        sink.write(chunk, n);
        count -= n;
    }
}

void write_str(FormatSink& sink, StringView s)
{
    if (!s.empty())
        sink.write(s.data(), s.size());
}

// Splits the padding of a field of `length` chars into (before, after).
void pad_split(const FormatSpec& spec, size_t length, char default_align, size_t& before, size_t& after)
{
    const size_t pad = spec.width > length ? spec.width - length : 0;
    const char align = spec.align ? spec.align : default_align;
    before = align == '>' ? pad : align == '^' ? pad / 2 : 0;
    after = pad - before;
}

void write_aligned(FormatSink& sink, const FormatSpec& spec, StringView text, char default_align)
{
    size_t before, after;
    pad_split(spec, text.size(), default_align, before, after);
    write_fill(sink, spec.fill, before);
    write_str(sink, text);
    write_fill(sink, spec.fill, after);
}

bool is_align(char c) { return c == '<' || c == '>' || c == '^'; }

// Parses a decimal field, saturating at `limit` so huge widths stay harmless.
uint16_t parse_count(const char*& p, uint16_t limit)
{
    uint32_t value = 0;
    while (is_digit(*p)) {
        value = value * 10 + static_cast<uint32_t>(*p - '0');
        if (value > limit)
            value = limit;
        ++p;
    }
    return static_cast<uint16_t>(value);
}

// Parses the spec after ':' up to (not including) the closing '}'.
// Returns false on anything the grammar does not allow.
bool parse_spec(const char*& p, FormatSpec& spec)
{
    if (p[0] != '\0' && p[0] != '{' && p[0] != '}' && is_align(p[1])) {
        spec.fill = p[0];
        spec.align = p[1];
        p += 2;
    } else if (is_align(p[0])) {
        spec.align = *p++;
    }
    if (*p == '+' || *p == '-' || *p == ' ')
        spec.sign = *p++;
    if (*p == '#') {
        spec.alternate = true;
        ++p;
    }
    if (*p == '0') {
        spec.zero_pad = true;
        ++p;
    }
    spec.width = parse_count(p, kMaxFormatWidth);
    if (*p == '.') {
        ++p;
        if (!is_digit(*p))
            return false;
        spec.precision = parse_count(p, kNoPrecision - 1);
    }
    switch (*p) {
    case 'd':
    case 'x':
    case 'X':
    case 'b':
    case 'B':
    case 'o':
    case 'c':
    case 's':
    case 'p': spec.type = *p++; break;
    default: break;
    }
    return *p == '}';
}

void format_arg(FormatSink& sink, const detail::FormatArg& arg, FormatSpec spec)
{
    using Kind = detail::FormatArg::Kind;
    switch (arg.kind) {
    case Kind::Signed:
    case Kind::Unsigned: {
        const bool negative = arg.kind == Kind::Signed && arg.i < 0;
        // 0 - x in unsigned arithmetic is |x| even for INT64_MIN.
        const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(arg.i) : arg.u;
        if (spec.type == 'c') {
            const char c = static_cast<char>(magnitude);
            write_padded(sink, spec, StringView(&c, 1));
        } else {
            write_integer(sink, spec, magnitude, negative);
        }
        return;
    }
    case Kind::Bool:
        if (spec.type == 0 || spec.type == 's')
            write_padded(sink, spec, arg.b ? "true" : "false");
        else
            write_integer(sink, spec, arg.b ? 1 : 0, false);
        return;
    case Kind::Char:
        if (spec.type == 0 || spec.type == 'c' || spec.type == 's')
            write_padded(sink, spec, StringView(&arg.c, 1));
        else
            write_integer(sink, spec, static_cast<unsigned char>(arg.c), false);
        return;
    case Kind::String: write_padded(sink, spec, StringView(arg.str.data, arg.str.size)); return;
    case Kind::Pointer:
        // Addresses default to 0x-prefixed hex; an explicit type still applies.
        if (spec.type == 0)
            spec.type = 'p';
        write_integer(sink, spec, arg.u, false);
        return;
    case Kind::Custom: arg.custom.format(sink, spec, arg.custom.object); return;
    }
}

} // namespace

void write_padded(FormatSink& sink, const FormatSpec& spec, StringView text)
{
    if (spec.precision != kNoPrecision)
        text = text.substr(0, spec.precision);
    write_aligned(sink, spec, text, '<');
}

void write_integer(FormatSink& sink, const FormatSpec& spec, uint64_t magnitude, bool negative)
{
    unsigned base = 10;
    const char* digits = "0123456789abcdef";
    const char* prefix = "";
    switch (spec.type) {
    case 'p':
        base = 16;
        prefix = "0x";
        break;
    case 'x':
        base = 16;
        prefix = spec.alternate ? "0x" : "";
        break;
    case 'X':
        base = 16;
        digits = "0123456789ABCDEF";
        prefix = spec.alternate ? "0X" : "";
        break;
    case 'b':
    case 'B':
        base = 2;
        prefix = spec.alternate ? (spec.type == 'b' ? "0b" : "0B") : "";
        break;
    case 'o':
        base = 8;
        // As in std::format: "0" already reads as octal, so it gets no prefix.
        prefix = spec.alternate && magnitude != 0 ? "0" : "";
        break;
    default: break;
    }

    // 64 binary digits is the longest possible rendering.
    char buf[64];
    size_t pos = sizeof(buf);
    do {
        buf[--pos] = digits[magnitude % base];
        magnitude /= base;
    } while (magnitude != 0);
    const StringView body(buf + pos, sizeof(buf) - pos);

    // Sign and prefix together form the head that zero padding goes after.
    char head[4];
    size_t head_len = 0;
    if (negative)
        head[head_len++] = '-';
    else if (spec.sign == '+' || spec.sign == ' ')
        head[head_len++] = spec.sign;
    for (const char* p = prefix; *p; ++p)
        head[head_len++] = *p;

    const size_t length = head_len + body.size();
    if (spec.zero_pad && spec.align == 0) {
        sink.write(head, head_len);
        write_fill(sink, '0', spec.width > length ? spec.width - length : 0);
        write_str(sink, body);
        return;
    }
    size_t before, after;
    pad_split(spec, length, '>', before, after);
    write_fill(sink, spec.fill, before);
    sink.write(head, head_len);
    write_str(sink, body);
    write_fill(sink, spec.fill, after);
}

void BufferSink::write(const char* s, size_t n)
{
    // Keep one byte for the terminating NUL.
    if (m_cap != 0 && m_length < m_cap - 1) {
        const size_t room = m_cap - 1 - m_length;
        memcpy(m_buf + m_length, s, n < room ? n : room);
    }
    m_length += n;
}

void BufferSink::terminate()
{
    if (m_cap != 0)
        m_buf[m_length < m_cap - 1 ? m_length : m_cap - 1] = '\0';
}

namespace detail {

void vformat(FormatSink& sink, const char* fmt, const FormatArg* args, size_t count)
{
    size_t next = 0;
    const char* p = fmt ? fmt : "";
    const char* literal = p; // start of the pending run of plain text
    auto flush_literal = [&](const char* end) {
        if (end > literal)
            sink.write(literal, static_cast<size_t>(end - literal));
    };

    while (*p) {
        if (*p != '{' && *p != '}') {
            ++p;
            continue;
        }
        // "{{" and "}}" print one brace; a lone '}' is printed as is.
        if (*p == '}' || p[1] == '{') {
            flush_literal(p + 1);
            p += (p[1] == *p) ? 2 : 1;
            literal = p;
            continue;
        }

        flush_literal(p);
        ++p; // past '{'
        FormatSpec spec;
        bool ok = true;
        if (*p == ':') {
            ++p;
            ok = parse_spec(p, spec);
        } else if (*p != '}') {
            ok = false;
        }
        if (!ok) {
            // Skip the rest of the malformed placeholder (or the string).
            while (*p && *p != '}')
                ++p;
            if (*p)
                ++p;
            sink.write("{!}", 3);
            if (next < count)
                ++next;
        } else {
            ++p; // past '}'
            if (next < count)
                format_arg(sink, args[next++], spec);
            else
                sink.write("{?}", 3);
        }
        literal = p;
    }
    flush_literal(p);

    if (next < count) {
        char marker[8];
        const size_t n = format(marker, sizeof(marker), "{{+{}?}}", count - next);
        sink.write(marker, n < sizeof(marker) ? n : sizeof(marker) - 1);
    }
}

} // namespace detail

} // namespace lib
