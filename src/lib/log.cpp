#include "lib/log.h"

namespace lib::log {

namespace {

// constinit: the logger must work before global constructors have run.
constinit Sink* g_sinks = nullptr;
constinit Level g_level = Level::Info;
using ClockFn = uint64_t (*)();
constinit ClockFn g_clock = nullptr;

constexpr const char* kLevelNames[] = {"error", "warn", "info", "debug", "trace"};
// SGR foreground colours: red, yellow, green, cyan, magenta.
constexpr const char* kLevelColours[] = {"\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[36m", "\x1b[35m"};
constexpr size_t kLevelCount = sizeof(kLevelNames) / sizeof(kLevelNames[0]);
constexpr size_t kLevelNameWidth = 5;

// Gathers a message on the stack and hands it to every sink in as few writes
// as possible (normally one per line), so lines from different sinks look the
// same and slow consoles are not called per fragment. Long messages are
// flushed in pieces, never truncated.
class FanOut final : public FormatSink {
public:
    void write(const char* s, size_t n) override
    {
        while (n > 0) {
            if (m_length == sizeof(m_buffer))
                flush();
            const size_t room = sizeof(m_buffer) - m_length;
            const size_t chunk = n < room ? n : room;
            memcpy(m_buffer + m_length, s, chunk);
            m_length += chunk;
            s += chunk;
            n -= chunk;
        }
    }

    void flush()
    {
        if (m_length != 0)
            write_raw(m_buffer, m_length);
        m_length = 0;
    }

private:
    char m_buffer[256];
    size_t m_length = 0;
};

} // namespace

void add_sink(Sink* sink)
{
    if (sink == nullptr)
        return;
    Sink** link = &g_sinks;
    for (; *link; link = &(*link)->next) {
        if (*link == sink)
            return; // already registered; re-adding would make a cycle
    }
    sink->next = nullptr;
    *link = sink;
}

void remove_sink(Sink* sink)
{
    for (Sink** link = &g_sinks; *link; link = &(*link)->next) {
        if (*link == sink) {
            *link = sink->next;
            sink->next = nullptr;
            return;
        }
    }
}

bool has_sinks() { return g_sinks != nullptr; }

void write_raw(const char* s, size_t n)
{
    if (n == 0)
        return;
    for (Sink* sink = g_sinks; sink; sink = sink->next)
        sink->write(s, n);
}

void set_level(Level level) { g_level = level; }

Level level() { return g_level; }

const char* level_name(Level level)
{
    const auto index = static_cast<size_t>(level);
    return index < kLevelCount ? kLevelNames[index] : "?";
}

Expected<Level, ParseError> parse_level(StringView text)
{
    if (text.empty())
        return unexpected(ParseError::Empty);
    if (text.size() == 1 && text[0] >= '0' && static_cast<size_t>(text[0] - '0') < kLevelCount)
        return static_cast<Level>(text[0] - '0');
    if (equals_ignore_case(text, "warning"))
        return Level::Warn;
    for (size_t i = 0; i < kLevelCount; ++i) {
        if (equals_ignore_case(text, kLevelNames[i]))
            return static_cast<Level>(i);
    }
    return unexpected(ParseError::Unrecognized);
}

void set_clock(uint64_t (*uptime_ns)()) { g_clock = uptime_ns; }

namespace detail {

void emit(Level level, const char* fmt, const lib::detail::FormatArg* args, size_t count)
{
    const uint64_t ns = g_clock ? g_clock() : 0;
    const auto index = static_cast<size_t>(level) < kLevelCount ? static_cast<size_t>(level) : kLevelCount - 1;
    const StringView name = kLevelNames[index];

    FanOut out;
    // "[    1.234567] " then the coloured level word padded to a fixed column.
    format_to(out, "[{:5}.{:06}] {}{}\x1b[0m", ns / 1000000000, ns % 1000000000 / 1000, kLevelColours[index], name);
    out.write("      ", kLevelNameWidth + 1 - name.size());
    lib::detail::vformat(out, fmt, args, count);
    out.write("\n", 1);
    out.flush();
}

void emit_plain(const char* fmt, const lib::detail::FormatArg* args, size_t count)
{
    FanOut out;
    lib::detail::vformat(out, fmt, args, count);
    out.flush();
}

} // namespace detail

} // namespace lib::log
