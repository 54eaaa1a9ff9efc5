#include "lib/string.h"

// "no-tree-loop-distribute-patterns" stops GCC recognising the loops below as
// memcpy/memset and compiling them into a call to the kernel's memcpy/memset,
// i.e. into infinite recursion.
#define LIB_NO_LOOP_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

namespace lib {

namespace {
// Word-sized accesses that may alias any object, as memcpy's must.
using Word = uint64_t __attribute__((may_alias));
constexpr size_t kWordSize = sizeof(uint64_t);

bool word_aligned(const void* a, const void* b)
{
    return ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & (kWordSize - 1)) == 0;
}
} // namespace

LIB_NO_LOOP_PATTERNS void* mem_copy(void* dst, const void* src, size_t n)
{
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (word_aligned(d, s)) {
        for (; n >= kWordSize; n -= kWordSize, d += kWordSize, s += kWordSize)
            *reinterpret_cast<Word*>(d) = *reinterpret_cast<const Word*>(s);
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

LIB_NO_LOOP_PATTERNS void* mem_move(void* dst, const void* src, size_t n)
{
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    // Copy forwards unless the destination starts inside the source; then copy
    // backwards so no byte is overwritten before it has been read.
    if (d <= s || d >= s + n)
        return mem_copy(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

LIB_NO_LOOP_PATTERNS void* mem_set(void* dst, int value, size_t n)
{
    auto* d = static_cast<unsigned char*>(dst);
    const auto byte = static_cast<unsigned char>(value);
    if (word_aligned(d, d)) {
        const uint64_t word = 0x0101010101010101ull * byte;
        for (; n >= kWordSize; n -= kWordSize, d += kWordSize)
            *reinterpret_cast<Word*>(d) = word;
    }
    while (n--)
        *d++ = byte;
    return dst;
}

LIB_NO_LOOP_PATTERNS int mem_compare(const void* a, const void* b, size_t n)
{
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

const uint8_t* find_mismatch(const uint8_t* begin, const uint8_t* end, uint8_t byte)
{
    const uint64_t pattern = 0x0101010101010101ull * byte;
    const uint8_t* p = begin;
    while (p < end && (reinterpret_cast<uintptr_t>(p) & (kWordSize - 1)) != 0) {
        if (*p != byte)
            return p;
        ++p;
    }
    // memcpy loads: no alignment or aliasing assumptions for the sanitizers to check per word.
    while (end - p >= static_cast<ptrdiff_t>(4 * kWordSize)) {
        uint64_t w[4];
        __builtin_memcpy(w, p, sizeof(w));
        if (((w[0] ^ pattern) | (w[1] ^ pattern) | (w[2] ^ pattern) | (w[3] ^ pattern)) != 0)
            break;
        p += 4 * kWordSize;
    }
    while (end - p >= static_cast<ptrdiff_t>(kWordSize)) {
        uint64_t word;
        __builtin_memcpy(&word, p, sizeof(word));
        if (word != pattern)
            break;
        p += kWordSize;
    }
    while (p < end && *p == byte)
        ++p;
    return p;
}

const char* short_path(const char* path)
{
    if (path == nullptr)
        return "?";
    const char* last = nullptr;
    const char* start = path;
    for (const char* p = path; *p != '\0'; ++p) {
        if (*p != '/')
            continue;
        if (last != nullptr)
            start = last + 1;
        last = p;
    }
    return start;
}

} // namespace lib

namespace lib {

namespace {

// Value of an alphanumeric digit (0-9, a-z/A-Z = 10-35), or 36 for anything else.
constexpr unsigned digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return static_cast<unsigned>(c - '0');
    if (c >= 'a' && c <= 'z')
        return static_cast<unsigned>(c - 'a' + 10);
    if (c >= 'A' && c <= 'Z')
        return static_cast<unsigned>(c - 'A' + 10);
    return 36;
}

// Base named by a "0x"/"0b"/"0o" prefix (any case), or 0 when there is none.
unsigned prefix_base(StringView text)
{
    if (text.size() < 2 || text[0] != '0')
        return 0;
    switch (to_lower(text[1])) {
    case 'x': return 16;
    case 'b': return 2;
    case 'o': return 8;
    default: return 0;
    }
}

} // namespace

const char* parse_error_name(ParseError error)
{
    switch (error) {
    case ParseError::Empty: return "empty";
    case ParseError::InvalidDigit: return "invalid digit";
    case ParseError::Overflow: return "overflow";
    case ParseError::InvalidBase: return "invalid base";
    case ParseError::Unrecognized: return "unrecognized";
    }
    return "unknown";
}

Expected<uint64_t, ParseError> parse_u64(StringView text, unsigned base)
{
    if (base == 1 || base > 36)
        return unexpected(ParseError::InvalidBase);
    // A prefix is skipped when it names the requested base, or picks the base when base == 0.
    const unsigned prefixed = prefix_base(text);
    if (base == 0)
        base = prefixed != 0 ? prefixed : 10;
    if (prefixed != 0 && prefixed == base)
        text.remove_prefix(2);
    if (text.empty())
        return unexpected(ParseError::Empty);

    uint64_t value = 0;
    for (char c : text) {
        const unsigned digit = digit_value(c);
        if (digit >= base)
            return unexpected(ParseError::InvalidDigit);
        // value * base + digit <= UINT64_MAX, rearranged so it cannot overflow.
        if (value > (UINT64_MAX - digit) / base)
            return unexpected(ParseError::Overflow);
        value = value * base + digit;
    }
    return value;
}

Expected<int64_t, ParseError> parse_i64(StringView text, unsigned base)
{
    const bool negative = text.starts_with('-');
    if (negative || text.starts_with('+'))
        text.remove_prefix(1);
    auto magnitude = parse_u64(text, base);
    if (!magnitude)
        return unexpected(magnitude.error());
    // The negative range is one larger; INT64_MIN's magnitude is 2^63.
    const uint64_t limit = negative ? (uint64_t{1} << 63) : static_cast<uint64_t>(INT64_MAX);
    if (*magnitude > limit)
        return unexpected(ParseError::Overflow);
    if (negative)
        return *magnitude == limit ? INT64_MIN : -static_cast<int64_t>(*magnitude);
    return static_cast<int64_t>(*magnitude);
}

size_t copy_string(char* dst, size_t cap, StringView src)
{
    if (cap == 0)
        return 0;
    const size_t n = src.size() < cap - 1 ? src.size() : cap - 1;
    if (n != 0)
        memcpy(dst, src.data(), n);
    dst[n] = '\0';
    return n;
}

} // namespace lib
