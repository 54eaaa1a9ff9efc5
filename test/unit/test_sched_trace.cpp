// The Loom of Fate's trace: the overwrite-oldest ring, the thread-name table and the Chrome
// trace-event JSON writer (checked with a small strict JSON parser, not by string matching alone).
#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/format.h"
#include "sched/trace.h"

using namespace sched::trace;

namespace {

struct StringSink final : lib::FormatSink {
    std::string text;
    void write(const char* s, size_t n) override { text.append(s, n); }
};

Event make(EventKind kind, uint64_t stamp, uint32_t thread = 0, uint64_t value = 0, uint8_t detail = 0)
{
    Event e;
    e.kind = kind;
    e.stamp = stamp;
    e.thread = thread;
    e.value = value;
    e.detail = detail;
    return e;
}

// ---- A strict JSON parser (RFC 8259 subset the writer may produce, and it rejects the rest) ----
struct Json {
    enum Type { Null, Bool, Number, String, Array, Object } type = Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<Json> items;
    std::vector<std::pair<std::string, Json>> members;

    const Json* get(const std::string& key) const
    {
        for (const auto& [k, v] : members)
            if (k == key)
                return &v;
        return nullptr;
    }
};

class Parser {
public:
    explicit Parser(const std::string& text) : m_text(text) { }

    bool parse(Json& out)
    {
        if (!value(out))
            return false;
        skip_space();
        return m_pos == m_text.size();
    }

private:
    void skip_space()
    {
        while (m_pos < m_text.size() &&
               (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' || m_text[m_pos] == '\r' || m_text[m_pos] == '\t'))
            ++m_pos;
    }
    bool literal(const char* word)
    {
        const std::string w(word);
        if (m_text.compare(m_pos, w.size(), w) != 0)
            return false;
        m_pos += w.size();
        return true;
    }
    bool value(Json& out)
    {
        skip_space();
        if (m_pos >= m_text.size())
            return false;
        const char c = m_text[m_pos];
        if (c == '{')
            return object(out);
        if (c == '[')
            return array(out);
        if (c == '"') {
            out.type = Json::String;
            return string(out.string);
        }
        if (c == 't' || c == 'f') {
            out.type = Json::Bool;
            out.boolean = c == 't';
            return literal(c == 't' ? "true" : "false");
        }
        if (c == 'n')
            return literal("null");
        return number(out);
    }
    bool number(Json& out)
    {
        const size_t start = m_pos;
        if (m_pos < m_text.size() && m_text[m_pos] == '-')
            ++m_pos;
        if (m_pos >= m_text.size() || !isdigit(static_cast<unsigned char>(m_text[m_pos])))
            return false;
        if (m_text[m_pos] == '0' && m_pos + 1 < m_text.size() && isdigit(static_cast<unsigned char>(m_text[m_pos + 1])))
            return false; // no leading zeros
        while (m_pos < m_text.size() && isdigit(static_cast<unsigned char>(m_text[m_pos])))
            ++m_pos;
        if (m_pos < m_text.size() && m_text[m_pos] == '.') {
            ++m_pos;
            if (m_pos >= m_text.size() || !isdigit(static_cast<unsigned char>(m_text[m_pos])))
                return false;
            while (m_pos < m_text.size() && isdigit(static_cast<unsigned char>(m_text[m_pos])))
                ++m_pos;
        }
        out.type = Json::Number;
        out.number = std::stod(m_text.substr(start, m_pos - start));
        return true;
    }
    bool string(std::string& out)
    {
        ++m_pos; // opening quote
        while (m_pos < m_text.size()) {
            const auto c = static_cast<unsigned char>(m_text[m_pos++]);
            if (c == '"')
                return true;
            if (c < 0x20 || c >= 0x80)
                return false; // the writer promises pure ASCII, no raw controls
            if (c != '\\') {
                out += static_cast<char>(c);
                continue;
            }
            if (m_pos >= m_text.size())
                return false;
            const char e = m_text[m_pos++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                if (m_pos + 4 > m_text.size())
                    return false;
                const unsigned long code = std::stoul(m_text.substr(m_pos, 4), nullptr, 16);
                m_pos += 4;
                out += static_cast<char>(code & 0xff); // the writer only emits \u00XX
                break;
            }
            default: return false;
            }
        }
        return false;
    }
    bool array(Json& out)
    {
        out.type = Json::Array;
        ++m_pos;
        skip_space();
        if (m_pos < m_text.size() && m_text[m_pos] == ']') {
            ++m_pos;
            return true;
        }
        for (;;) {
            Json item;
            if (!value(item))
                return false;
            out.items.push_back(std::move(item));
            skip_space();
            if (m_pos >= m_text.size())
                return false;
            if (m_text[m_pos] == ',') {
                ++m_pos;
                continue;
            }
            if (m_text[m_pos] == ']') {
                ++m_pos;
                return true;
            }
            return false;
        }
    }
    bool object(Json& out)
    {
        out.type = Json::Object;
        ++m_pos;
        skip_space();
        if (m_pos < m_text.size() && m_text[m_pos] == '}') {
            ++m_pos;
            return true;
        }
        for (;;) {
            skip_space();
            if (m_pos >= m_text.size() || m_text[m_pos] != '"')
                return false;
            std::string key;
            if (!string(key))
                return false;
            skip_space();
            if (m_pos >= m_text.size() || m_text[m_pos] != ':')
                return false;
            ++m_pos;
            Json v;
            if (!value(v))
                return false;
            out.members.emplace_back(std::move(key), std::move(v));
            skip_space();
            if (m_pos >= m_text.size())
                return false;
            if (m_text[m_pos] == ',') {
                ++m_pos;
                continue;
            }
            if (m_text[m_pos] == '}') {
                ++m_pos;
                return true;
            }
            return false;
        }
    }

    const std::string& m_text;
    size_t m_pos = 0;
};

Json parse_or_fail(const std::string& text)
{
    Json json;
    Parser parser(text);
    const bool ok = parser.parse(json);
    INFO(text);
    REQUIRE(ok);
    REQUIRE(json.type == Json::Object);
    return json;
}

const std::vector<Json>& events_of(const Json& root)
{
    const Json* events = root.get("traceEvents");
    REQUIRE(events != nullptr);
    REQUIRE(events->type == Json::Array);
    return events->items;
}

std::string str(const Json& event, const char* key)
{
    const Json* v = event.get(key);
    return v != nullptr && v->type == Json::String ? v->string : std::string();
}

double num(const Json& event, const char* key)
{
    const Json* v = event.get(key);
    REQUIRE(v != nullptr);
    REQUIRE(v->type == Json::Number);
    return v->number;
}

std::string write(const Ring& ring, const ThreadNames& names, JsonReport* report = nullptr)
{
    StringSink sink;
    JsonOptions options;
    const JsonReport r = write_chrome_json(ring, names, options, sink);
    if (report != nullptr)
        *report = r;
    return sink.text;
}

} // namespace

TEST_CASE("trace ring keeps events in push order until full", "[trace]")
{
    Event storage[4];
    Ring ring;
    CHECK(!ring.attached());
    ring.push(make(EventKind::Tick, 1)); // detached: dropped
    CHECK(ring.size() == 0);
    ring.attach(storage, 4);
    CHECK(ring.attached());
    CHECK(ring.capacity() == 4);
    for (uint64_t i = 0; i < 3; ++i)
        ring.push(make(EventKind::Tick, 100 + i, 0, i));
    REQUIRE(ring.size() == 3);
    CHECK(ring.overwritten() == 0);
    for (size_t i = 0; i < 3; ++i)
        CHECK(ring.at(i).stamp == 100 + i);
}

TEST_CASE("trace ring overwrites the oldest events when full", "[trace]")
{
    Event storage[4];
    Ring ring;
    ring.attach(storage, 4);
    for (uint64_t i = 0; i < 11; ++i)
        ring.push(make(EventKind::Tick, i, 0, i));
    REQUIRE(ring.size() == 4);
    CHECK(ring.pushed() == 11);
    CHECK(ring.overwritten() == 7);
    // The newest four, oldest first, across the wrap point.
    for (size_t i = 0; i < 4; ++i)
        CHECK(ring.at(i).stamp == 7 + i);

    // Exactly full, then one more: the first event goes.
    ring.clear();
    CHECK(ring.size() == 0);
    CHECK(ring.overwritten() == 0);
    for (uint64_t i = 0; i < 4; ++i)
        ring.push(make(EventKind::Tick, 50 + i));
    CHECK(ring.at(0).stamp == 50);
    CHECK(ring.at(3).stamp == 53);
    ring.push(make(EventKind::Tick, 54));
    CHECK(ring.at(0).stamp == 51);
    CHECK(ring.at(3).stamp == 54);
}

TEST_CASE("trace thread names: add, rename, find, full table", "[trace]")
{
    static ThreadNames names; // 8 KiB: not on the stack
    names.clear();
    CHECK(names.add(3, "hog-1"));
    CHECK(names.add(3, "hog-one"));
    CHECK(names.size() == 1);
    CHECK(std::string(names.find(3)) == "hog-one");
    CHECK(names.find(4) == nullptr);
    for (uint64_t id = 10; names.size() < ThreadNames::kCapacity; ++id)
        REQUIRE(names.add(id, "x"));
    CHECK(!names.add(99999, "late"));
    CHECK(names.missed() == 1);
    CHECK(names.find(99999) == nullptr);
    // Long names are truncated, never overflow.
    names.clear();
    const std::string long_name(100, 'a');
    CHECK(names.add(1, long_name.c_str()));
    CHECK(std::string(names.find(1)) == std::string(kTraceNameBytes - 1, 'a'));
}

TEST_CASE("trace JSON string escaping", "[trace]")
{
    StringSink sink;
    write_json_string(sink, "a\"b\\c\nd\te\x01\x7f\xc3\xa9");
    CHECK(sink.text == "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\\u00c3\\u00a9\"");
    sink.text.clear();
    write_json_string(sink, "");
    CHECK(sink.text == "\"\"");
    sink.text.clear();
    write_json_string(sink, nullptr);
    CHECK(sink.text == "\"\"");
}

TEST_CASE("trace JSON: running slices, instants, irq slices, metadata", "[trace]")
{
    Event storage[64];
    Ring ring;
    ring.attach(storage, 64);
    static ThreadNames names;
    names.clear();
    names.add(1, "heartwood");
    names.add(2, "idle");
    names.add(3, "say \"hi\"\\\x02\xff"); // needs escaping

    // 1000 cycles per ms: the tick at n ms has stamp 1000 * n.
    ring.push(make(EventKind::Start, 1500, 1, 1'000'000));
    ring.push(make(EventKind::Spawn, 1600, 3, 1));
    ring.push(make(EventKind::Tick, 2000, 1, 2'000'000));
    ring.push(make(EventKind::Preempt, 2100, 1, 3, static_cast<uint8_t>(SwitchCause::IrqExit)));
    ring.push(make(EventKind::Switch, 2100, 1, 3, static_cast<uint8_t>(SwitchCause::IrqExit)));
    ring.push(make(EventKind::IrqEnter, 2900, 3, 0, 0));
    ring.push(make(EventKind::Tick, 3000, 3, 3'000'000));
    ring.push(make(EventKind::IrqExit, 3100, 3, 0, 0));
    ring.push(make(EventKind::Block, 3500, 3, 10, static_cast<uint8_t>(BlockCause::Sleep)));
    ring.push(make(EventKind::Switch, 3500, 3, 1, static_cast<uint8_t>(SwitchCause::Block)));
    ring.push(make(EventKind::Tick, 4000, 1, 4'000'000));
    ring.push(make(EventKind::Wake, 4200, 3, 0, static_cast<uint8_t>(WakeCause::Timer)));
    ring.push(make(EventKind::Stop, 4500, 1, 4'000'000));

    JsonReport report;
    const std::string text = write(ring, names, &report);
    const Json root = parse_or_fail(text);
    CHECK(report.anchors == 3);
    CHECK(report.slices == 3);
    CHECK(report.irq_slices == 1);
    const Json* other = root.get("otherData");
    REQUIRE(other != nullptr);
    CHECK(num(*other, "events_held") == 13);

    std::map<std::string, int> ph_count;
    std::vector<const Json*> slices;
    std::map<int, std::string> thread_names;
    for (const Json& e : events_of(root)) {
        REQUIRE(e.type == Json::Object);
        const std::string ph = str(e, "ph");
        ++ph_count[ph];
        CHECK(num(e, "pid") == 1);
        if (ph == "M" && str(e, "name") == "thread_name")
            thread_names[static_cast<int>(num(e, "tid"))] = str(*e.get("args"), "name");
        if (ph == "X" && str(e, "cat") == "running")
            slices.push_back(&e);
        if (ph == "X" && str(e, "cat") == "irq") {
            CHECK(str(e, "name") == "irq 0");
            CHECK(num(e, "tid") == kIrqTrackTid);
            // enter at stamp 2900 -> 2.9 ms = 2900 us, exit at 3.1 ms.
            CHECK(num(e, "ts") == 2900.0);
            CHECK(num(e, "dur") == 200.0);
        }
    }
    CHECK(thread_names[3] == "say \"hi\"\\\x02\xff");
    CHECK(thread_names[1] == "heartwood");
    CHECK(thread_names[kIrqTrackTid] == "interrupts & ticks");
    CHECK(ph_count["i"] == 9); // start, spawn, 3 ticks, preempt, block, wake, stop
    REQUIRE(slices.size() == 3);
    // heartwood from the start (1.5 ms) until the preemption (2.1 ms), thread 3 until it slept,
    // heartwood again until the stop. Times interpolate between ticks: stamp 1000 = 1 ms.
    CHECK(num(*slices[0], "tid") == 1);
    CHECK(num(*slices[0], "ts") == 1500.0);
    CHECK(num(*slices[0], "dur") == 600.0);
    CHECK(str(*slices[0]->get("args"), "left") == "preempted at irq exit");
    CHECK(num(*slices[1], "tid") == 3);
    CHECK(str(*slices[1], "name") == "say \"hi\"\\\x02\xff");
    CHECK(num(*slices[1], "ts") == 2100.0);
    CHECK(num(*slices[1], "dur") == 1400.0);
    CHECK(num(*slices[2], "tid") == 1);
    CHECK(num(*slices[2], "ts") == 3500.0);
    CHECK(num(*slices[2], "dur") == 1000.0);
    CHECK(str(*slices[2]->get("args"), "left") == "trace stop");
}

TEST_CASE("trace JSON: time is interpolated between ticks with sub-tick resolution", "[trace]")
{
    Event storage[16];
    Ring ring;
    ring.attach(storage, 16);
    static ThreadNames names;
    names.clear();
    // Uneven cycle rate: 1000 cycles in tick 5 -> 6, 3000 cycles in tick 6 -> 7.
    ring.push(make(EventKind::Switch, 9500, 1, 2)); // before the first tick: extrapolated
    ring.push(make(EventKind::Tick, 10000, 2, 5'000'000));
    ring.push(make(EventKind::Switch, 10250, 2, 1)); // 5.25 ms
    ring.push(make(EventKind::Tick, 11000, 1, 6'000'000));
    ring.push(make(EventKind::Switch, 12500, 1, 2)); // 6.5 ms
    ring.push(make(EventKind::Tick, 14000, 2, 7'000'000));
    ring.push(make(EventKind::Switch, 14300, 2, 1)); // after the last tick: 7.1 ms
    const Json root = parse_or_fail(write(ring, names));
    std::vector<double> ends;
    double last_ts = -1;
    for (const Json& e : events_of(root)) {
        if (str(e, "ph") != "X" || str(e, "cat") != "running")
            continue;
        const double ts = num(e, "ts"), dur = num(e, "dur");
        CHECK(ts >= last_ts);
        last_ts = ts;
        ends.push_back(ts + dur);
    }
    // Four switches close four slices (the first one started before the oldest event, so it is
    // empty); the last is closed at the end of the trace.
    REQUIRE(ends.size() == 5);
    CHECK(ends[0] == 4500.0); // 500 cycles before tick 5 at tick 5 -> 6's rate
    CHECK(ends[1] == 5250.0);
    CHECK(ends[2] == 6500.0);
    CHECK(ends[3] == 7100.0); // 300 cycles after tick 7 at tick 6 -> 7's rate
}

TEST_CASE("trace JSON after wraparound: partial first slice, unmatched irq exit", "[trace]")
{
    Event storage[5];
    Ring ring;
    ring.attach(storage, 5);
    static ThreadNames names;
    names.clear();
    names.add(7, "hog-7");
    ring.push(make(EventKind::Start, 0, 1, 0));
    ring.push(make(EventKind::IrqEnter, 500, 1, 0, 4));
    ring.push(make(EventKind::Tick, 1000, 7, 1'000'000)); // the two above are overwritten
    ring.push(make(EventKind::IrqExit, 1100, 7, 0, 4));
    ring.push(make(EventKind::Tick, 2000, 7, 2'000'000));
    ring.push(make(EventKind::Switch, 2500, 7, 8, static_cast<uint8_t>(SwitchCause::Yield)));
    ring.push(make(EventKind::Switch, 3000, 8, 7, static_cast<uint8_t>(SwitchCause::Yield)));
    REQUIRE(ring.overwritten() == 2);
    const Json root = parse_or_fail(write(ring, names));
    const Json* other = root.get("otherData");
    REQUIRE(other != nullptr);
    CHECK(num(*other, "events_overwritten") == 2);
    int partial = 0, unmatched_exit = 0, running = 0;
    for (const Json& e : events_of(root)) {
        if (str(e, "ph") == "X" && str(e, "cat") == "running") {
            ++running;
            if (e.get("args")->get("started_before_oldest_event") != nullptr) {
                ++partial;
                CHECK(num(e, "tid") == 7);
                CHECK(num(e, "ts") == 1000.0); // the oldest event held
                CHECK(str(e, "name") == "hog-7");
            }
        }
        if (str(e, "ph") == "i" && str(e, "name") == "irq exit")
            ++unmatched_exit;
    }
    CHECK(running == 3); // 7 (partial), 8, then 7 until the end
    CHECK(partial == 1);
    CHECK(unmatched_exit == 1);
}

TEST_CASE("trace JSON of an empty ring and of a ring without ticks", "[trace]")
{
    Ring ring;
    static ThreadNames names;
    names.clear();
    JsonReport report;
    const Json empty = parse_or_fail(write(ring, names, &report));
    CHECK(report.events == 0);
    CHECK(events_of(empty).size() == 2); // process and interrupt-track names

    Event storage[4];
    ring.attach(storage, 4);
    ring.push(make(EventKind::Start, 5000, 1, 3'000'000)); // uptime 3 ms
    ring.push(make(EventKind::Switch, 7000, 1, 2));        // +2000 cycles at 1 ns each
    const Json root = parse_or_fail(write(ring, names, &report));
    CHECK(report.anchors == 0);
    bool found = false;
    for (const Json& e : events_of(root))
        if (str(e, "ph") == "X" && num(e, "tid") == 1) {
            CHECK(num(e, "ts") == 3000.0);
            CHECK(num(e, "dur") == 2.0);
            found = true;
        }
    CHECK(found);
}
