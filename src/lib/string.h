#pragma once
// C memory/string primitives and lib::StringView.
//
// The C functions are declared here for everyone; string.cpp defines them only
// in the kernel (__AETHELOS_KERNEL__), since the host C library has its own. The compiler itself emits calls to
// memcpy/memset/memmove/memcmp for struct copies and zeroing, so the kernel
// must always link string.cpp.
#include <stddef.h>
#include <stdint.h>

#include "lib/check.h"
#include "lib/expected.h"

// noexcept matches glibc's declarations so the host build sees one function.
extern "C" {
void* memcpy(void* dst, const void* src, size_t n) noexcept;
void* memmove(void* dst, const void* src, size_t n) noexcept;
void* memset(void* dst, int value, size_t n) noexcept;
int memcmp(const void* a, const void* b, size_t n) noexcept;
size_t strlen(const char* s) noexcept;
}

namespace lib {

// Length of a NUL-terminated string; usable in constant expressions.
constexpr size_t c_string_length(const char* s)
{
    size_t n = 0;
    while (s[n] != '\0')
        ++n;
    return n;
}

// The portable implementations behind the kernel's memcpy/memmove/memset/
// memcmp (same contracts). Named separately so host tests exercise them
// rather than the host C library's.
void* mem_copy(void* dst, const void* src, size_t n);
void* mem_move(void* dst, const void* src, size_t n);
void* mem_set(void* dst, int value, size_t n);
int mem_compare(const void* a, const void* b, size_t n);
// The first byte in [begin, end) that is not `byte`, or end. Word-at-a-time, four words per step:
// debug builds run it over every red zone and poisoned block they hand out or take back.
const uint8_t* find_mismatch(const uint8_t* begin, const uint8_t* end, uint8_t byte);
// The last two components of a path ("mm/heap.cpp" from "/work/src/mm/heap.cpp"): enough to find a
// source line, short enough for a report that quotes several. "?" for null.
const char* short_path(const char* path);

// A non-owning (pointer, length) view of characters; not necessarily
// NUL-terminated. A default or nullptr-constructed view is empty.
class StringView {
public:
    static constexpr size_t npos = static_cast<size_t>(-1);

    constexpr StringView() = default;
    constexpr StringView(const char* s) : m_data(s), m_size(s ? c_string_length(s) : 0) { }
    constexpr StringView(const char* s, size_t n) : m_data(s), m_size(n) { }

    constexpr const char* data() const { return m_data; }
    constexpr size_t size() const { return m_size; }
    constexpr size_t length() const { return m_size; }
    constexpr bool empty() const { return m_size == 0; }

    constexpr char operator[](size_t i) const
    {
        LIB_DEBUG_CHECK(i < m_size);
        return m_data[i];
    }
    constexpr char front() const { return (*this)[0]; }
    constexpr char back() const { return (*this)[m_size - 1]; }
    constexpr const char* begin() const { return m_data; }
    constexpr const char* end() const { return m_data + m_size; }

    // Out-of-range `pos` yields an empty view rather than UB.
    constexpr StringView substr(size_t pos, size_t n = npos) const
    {
        if (pos > m_size)
            pos = m_size;
        const size_t avail = m_size - pos;
        return StringView(m_data + pos, n < avail ? n : avail);
    }

    constexpr bool starts_with(StringView prefix) const
    {
        return prefix.m_size <= m_size && substr(0, prefix.m_size) == prefix;
    }
    constexpr bool ends_with(StringView suffix) const
    {
        return suffix.m_size <= m_size && substr(m_size - suffix.m_size) == suffix;
    }
    constexpr bool starts_with(char c) const { return m_size != 0 && m_data[0] == c; }
    constexpr bool ends_with(char c) const { return m_size != 0 && m_data[m_size - 1] == c; }

    // Index of the first `c` at or after `from`, or npos.
    constexpr size_t find(char c, size_t from = 0) const
    {
        for (size_t i = from; i < m_size; ++i) {
            if (m_data[i] == c)
                return i;
        }
        return npos;
    }
    constexpr size_t find(StringView needle, size_t from = 0) const
    {
        if (needle.m_size > m_size)
            return npos;
        for (size_t i = from; i + needle.m_size <= m_size; ++i) {
            if (substr(i, needle.m_size) == needle)
                return i;
        }
        return npos;
    }
    constexpr size_t rfind(char c) const
    {
        for (size_t i = m_size; i > 0; --i) {
            if (m_data[i - 1] == c)
                return i - 1;
        }
        return npos;
    }
    constexpr bool contains(char c) const { return find(c) != npos; }
    constexpr bool contains(StringView needle) const { return find(needle) != npos; }

    constexpr void remove_prefix(size_t n) { *this = substr(n); }
    constexpr void remove_suffix(size_t n) { m_size -= n < m_size ? n : m_size; }

    friend constexpr bool operator==(StringView a, StringView b)
    {
        if (a.m_size != b.m_size)
            return false;
        for (size_t i = 0; i < a.m_size; ++i) {
            if (a.m_data[i] != b.m_data[i])
                return false;
        }
        return true;
    }

private:
    const char* m_data = nullptr;
    size_t m_size = 0;
};

// ASCII helpers (no locale in a kernel).
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
constexpr char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool equals_ignore_case(StringView a, StringView b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i]))
            return false;
    }
    return true;
}

// `s` without leading/trailing ASCII whitespace.
constexpr StringView trim(StringView s)
{
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

enum class ParseError : uint8_t {
    Empty,        // no digits at all
    InvalidDigit, // a character that is not a digit of the base
    Overflow,     // does not fit in the result type
    InvalidBase,  // base outside 2..36 (and not 0)
    Unrecognized, // not one of the accepted words (e.g. log level names)
};

const char* parse_error_name(ParseError error);

// Parses the whole of `text` as an unsigned number; no sign, no whitespace.
// base 2..36; base 16 also accepts a leading "0x"/"0X"; base 0 detects
// "0x" (16), "0b" (2), "0o" (8), else decimal.
Expected<uint64_t, ParseError> parse_u64(StringView text, unsigned base = 10);
// As parse_u64 with an optional leading '-' or '+'; INT64_MIN round-trips.
Expected<int64_t, ParseError> parse_i64(StringView text, unsigned base = 10);

// Copies at most cap-1 characters of `src` into `dst` and always NUL-terminates
// (writes nothing when cap == 0). Returns the number of characters copied, so
// a result < src.size() means the copy was truncated.
size_t copy_string(char* dst, size_t cap, StringView src);

} // namespace lib
