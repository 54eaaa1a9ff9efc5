#pragma once
// Kernel log: levelled, timestamped lines fanned out to every registered sink.
//
//   lib::log::info("Mana Pool: {} MiB free", free >> 20);
//   -> "[    1.234567] info  Mana Pool: 123 MiB free\n"
//
// The level word is wrapped in one ANSI SGR colour ("\x1b[3Nm" ... "\x1b[0m");
// consoles without colour strip or map those escapes themselves.
// All state is constant-initialised, so logging works before global
// constructors run and before any sink exists (output is then dropped).
// Safe from threads and interrupt handlers alike: a message is assembled on the caller's stack
// and handed to each sink in whole writes, and each console sink serialises its own writes (the
// drivers' console lock, drivers/console.h), so lines never interleave inside a console. The sink
// list itself is only changed while booting and by a panic (interrupts off).
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "lib/format.h"
#include "lib/string.h"

namespace lib::log {

enum class Level : uint8_t { Error, Warn, Info, Debug, Trace };

// A console. Sinks are linked intrusively through `next`, so registering one
// needs no memory; a sink must stay alive while registered.
struct Sink {
    virtual void write(const char* s, size_t n) = 0;
    Sink* next = nullptr;

protected:
    ~Sink() = default;
};

// Appends to the sink list (ignored if already registered or null).
void add_sink(Sink* sink);
// Unlinks a sink (ignored if not registered).
void remove_sink(Sink* sink);
bool has_sinks();
// Writes bytes unchanged to every sink.
void write_raw(const char* s, size_t n);

// Messages more verbose than the level are dropped. Default: Info.
void set_level(Level level);
Level level();
inline bool enabled(Level l) { return static_cast<uint8_t>(l) <= static_cast<uint8_t>(level()); }
// "error", "warn", "info", "debug", "trace".
const char* level_name(Level level);
// Accepts the names above (any case), "warning", or a digit 0..4.
Expected<Level, ParseError> parse_level(StringView text);

// Uptime source for timestamps; nullptr (the default) prints 0.000000.
void set_clock(uint64_t (*uptime_ns)());

namespace detail {
void emit(Level level, const char* fmt, const lib::detail::FormatArg* args, size_t count);
void emit_plain(const char* fmt, const lib::detail::FormatArg* args, size_t count);
} // namespace detail

template <typename... Args>
void message(Level l, const char* fmt, const Args&... args)
{
    if (!enabled(l) || !has_sinks())
        return;
    if constexpr (sizeof...(Args) == 0) {
        detail::emit(l, fmt, nullptr, 0);
    } else {
        const lib::detail::FormatArg list[] = {lib::detail::make_arg(args)...};
        detail::emit(l, fmt, list, sizeof...(Args));
    }
}

template <typename... Args>
void error(const char* fmt, const Args&... args)
{
    message(Level::Error, fmt, args...);
}
template <typename... Args>
void warn(const char* fmt, const Args&... args)
{
    message(Level::Warn, fmt, args...);
}
template <typename... Args>
void info(const char* fmt, const Args&... args)
{
    message(Level::Info, fmt, args...);
}
template <typename... Args>
void debug(const char* fmt, const Args&... args)
{
    message(Level::Debug, fmt, args...);
}
template <typename... Args>
void trace(const char* fmt, const Args&... args)
{
    message(Level::Trace, fmt, args...);
}

// Formatted text to every sink with no prefix, no newline added and no level
// filter (banners, test output).
template <typename... Args>
void print(const char* fmt, const Args&... args)
{
    if (!has_sinks())
        return;
    if constexpr (sizeof...(Args) == 0) {
        detail::emit_plain(fmt, nullptr, 0);
    } else {
        const lib::detail::FormatArg list[] = {lib::detail::make_arg(args)...};
        detail::emit_plain(fmt, list, sizeof...(Args));
    }
}

} // namespace lib::log
