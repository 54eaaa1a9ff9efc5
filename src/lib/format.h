#pragma once
// Type-safe formatting, a small subset of std::format.
//
//   lib::format(buf, sizeof buf, "{} frames at {:#x} ({:>8})", count, addr, name);
//
// Placeholder: {} or {:spec}; spec = [[fill]align][sign][#][0][width][.precision][type]
//   align     < left, > right, ^ centre (default: numbers right, text left)
//   sign      + always, space for a blank before non-negative numbers
//   #         base prefix: 0x / 0X / 0b / 0B / 0 (octal)
//   0         pad numbers with zeros after sign and prefix (ignored if align given)
//   width     minimum field width (capped at kMaxFormatWidth)
//   precision maximum characters taken from a string
//   type      d x X b B o (integers), c (char), s (text), p (pointer style: 0x + hex)
// {{ and }} are literal braces.
//
// Arguments: every integer type, bool, char, const char* (nullptr prints
// "(null)"), char arrays, StringView, any pointer and nullptr ({} prints 0x..
// hex), enums (underlying value), PhysicalAddress/VirtualAddress (0x.. hex), and
// any T with a lib::Formatter<T> specialisation. Anything else fails to compile.
//
// Mistakes stay visible rather than undefined: a placeholder without an
// argument prints "{?}", a malformed placeholder prints "{!}" (and consumes its
// argument), and unused arguments append "{+N?}".
#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "lib/string.h"
#include "lib/types.h"

namespace lib {

// Where formatted text goes. write() may be called many times per message.
struct FormatSink {
    virtual void write(const char* s, size_t n) = 0;

protected:
    // Non-virtual and protected: sinks are never deleted through this base (there
    // is no heap), and a virtual destructor would drag in operator delete.
    ~FormatSink() = default;
};

inline constexpr uint16_t kMaxFormatWidth = 256;
inline constexpr uint16_t kNoPrecision = 0xffff;

struct FormatSpec {
    char fill = ' ';
    char align = 0;  // '<', '>', '^' or 0 for the type's default
    char sign = '-'; // '-', '+' or ' '
    bool alternate = false;
    bool zero_pad = false;
    uint16_t width = 0;
    uint16_t precision = kNoPrecision;
    char type = 0; // 0 or one of d x X b B o c s p
};

// Extension point. Specialise as
//   template <> struct lib::Formatter<Foo> {
//       static void format(lib::FormatSink&, const lib::FormatSpec&, const Foo&);
//   };
// and use write_padded / write_integer to honour width and alignment.
template <typename T>
struct Formatter;

// Writes `text` honouring fill/align/width/precision (default alignment left).
void write_padded(FormatSink& sink, const FormatSpec& spec, StringView text);
// Writes an integer given as magnitude + sign, honouring the whole spec.
void write_integer(FormatSink& sink, const FormatSpec& spec, uint64_t magnitude, bool negative);

// Collects output into a caller-provided buffer, truncating safely.
class BufferSink final : public FormatSink {
public:
    // `buf` may be null only when `cap` is 0.
    BufferSink(char* buf, size_t cap) : m_buf(buf), m_cap(cap) { }

    void write(const char* s, size_t n) override;
    // NUL-terminates at the truncation point (no-op when cap == 0).
    void terminate();

    // Length the full output would have had; >= cap means it was truncated.
    size_t length() const { return m_length; }
    bool truncated() const { return m_length + 1 > m_cap; }

private:
    char* m_buf;
    size_t m_cap;
    size_t m_length = 0;
};

namespace detail {

struct StringArg {
    const char* data;
    size_t size;
};

struct CustomArg {
    const void* object;
    void (*format)(FormatSink&, const FormatSpec&, const void*);
};

// One argument with its type erased to what the formatter needs. Built on the
// caller's stack; holds pointers into the arguments, which outlive the call.
struct FormatArg {
    enum class Kind : uint8_t { Signed, Unsigned, Bool, Char, String, Pointer, Custom };
    Kind kind;
    union {
        int64_t i;
        uint64_t u;
        bool b;
        char c;
        StringArg str;
        CustomArg custom;
    };
};

template <typename T>
concept HasFormatter = requires(FormatSink& sink, const FormatSpec& spec, const T& value)
{
    Formatter<T>::format(sink, spec, value);
};

template <typename T>
void format_custom(FormatSink& sink, const FormatSpec& spec, const void* object)
{
    Formatter<T>::format(sink, spec, *static_cast<const T*>(object));
}

template <typename>
inline constexpr bool kAlwaysFalse = false;

template <typename T>
FormatArg make_arg(const T& value)
{
    using Element = std::remove_cv_t<std::remove_extent_t<T>>;
    FormatArg arg{};
    if constexpr (HasFormatter<T>) {
        arg.kind = FormatArg::Kind::Custom;
        arg.custom = {&value, &format_custom<T>};
    } else if constexpr (std::is_same_v<T, bool>) {
        arg.kind = FormatArg::Kind::Bool;
        arg.b = value;
    } else if constexpr (std::is_same_v<T, char>) {
        arg.kind = FormatArg::Kind::Char;
        arg.c = value;
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        arg.kind = FormatArg::Kind::Signed;
        arg.i = static_cast<int64_t>(value);
    } else if constexpr (std::is_integral_v<T>) {
        arg.kind = FormatArg::Kind::Unsigned;
        arg.u = static_cast<uint64_t>(value);
    } else if constexpr (std::is_enum_v<T>) {
        return make_arg(static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (std::is_array_v<T> && std::is_same_v<Element, char>) {
        // A char array (string literal or fixed buffer) ends at its first NUL
        // or at its extent, so an unterminated buffer is still read safely.
        size_t n = 0;
        while (n < std::extent_v<T> && value[n] != '\0')
            ++n;
        arg.kind = FormatArg::Kind::String;
        arg.str = {value, n};
    } else if constexpr (std::is_same_v<T, const char*> || std::is_same_v<T, char*>) {
        arg.kind = FormatArg::Kind::String;
        arg.str = value ? StringArg{value, c_string_length(value)} : StringArg{"(null)", 6};
    } else if constexpr (std::is_same_v<T, StringView>) {
        arg.kind = FormatArg::Kind::String;
        arg.str = {value.data(), value.size()};
    } else if constexpr (std::is_same_v<T, PhysicalAddress> || std::is_same_v<T, VirtualAddress>) {
        arg.kind = FormatArg::Kind::Pointer;
        arg.u = value.get();
    } else if constexpr (std::is_pointer_v<T>) {
        arg.kind = FormatArg::Kind::Pointer;
        arg.u = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(value));
    } else if constexpr (std::is_array_v<T>) {
        arg.kind = FormatArg::Kind::Pointer;
        arg.u = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&value[0]));
    } else if constexpr (std::is_null_pointer_v<T>) {
        arg.kind = FormatArg::Kind::Pointer;
        arg.u = 0;
    } else {
        static_assert(kAlwaysFalse<T>, "lib::format: unsupported argument type (specialise lib::Formatter<T>)");
    }
    return arg;
}

void vformat(FormatSink& sink, const char* fmt, const FormatArg* args, size_t count);

} // namespace detail

template <typename... Args>
void format_to(FormatSink& sink, const char* fmt, const Args&... args)
{
    if constexpr (sizeof...(Args) == 0) {
        detail::vformat(sink, fmt, nullptr, 0);
    } else {
        const detail::FormatArg list[] = {detail::make_arg(args)...};
        detail::vformat(sink, fmt, list, sizeof...(Args));
    }
}

// Formats into buf[0..cap), truncating and always NUL-terminating (when cap > 0).
// Returns the untruncated length, like snprintf.
template <typename... Args>
size_t format(char* buf, size_t cap, const char* fmt, const Args&... args)
{
    BufferSink sink(buf, cap);
    format_to(sink, fmt, args...);
    sink.terminate();
    return sink.length();
}

} // namespace lib
