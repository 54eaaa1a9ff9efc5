// libFuzzer harness for the whole Eldarin input path (kernel/shell/eldarin.h): key decoder, line
// editor, history, Tab completion, parser and command dispatch, with a capture sink.
//
// Part one feeds every input byte to Eldarin::feed, as the serial line would. After each byte:
// the editor's length, cursor and terminator are consistent; the history holds at most 32
// non-blank, terminated lines; every command run got 1..16 arguments naming a table entry; and
// the terminal output contains only printable ASCII, newline, backspace, CR, bell and escape
// sequences (a typed control byte must never reach the terminal raw).
// Part two runs each newline-separated piece through Eldarin::execute and checks that the
// handler saw exactly the arguments the reference parser (support/shell_model.h) produces.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/shell/eldarin.h"
#include "support/fuzz_check.h"
#include "support/shell_model.h"

using namespace kernel::shell;

namespace {

struct CaptureSink final : lib::FormatSink {
    std::string text;
    void write(const char* s, size_t n) override { text.append(s, n); }
};

std::vector<std::string> g_seen; // the last command's arguments
size_t g_runs = 0;

CommandStatus record(const Args& args, lib::FormatSink& out)
{
    ++g_runs;
    g_seen.clear();
    for (size_t i = 0; i < args.count(); ++i)
        g_seen.emplace_back(args[i].data(), args[i].size());
    for (size_t i = 1; i < args.count(); ++i)
        lib::format_to(out, "[{}]", args[i]);
    return CommandStatus::Ok;
}

CommandStatus usage(const Args& args, lib::FormatSink& out)
{
    record(args, out);
    return args.count() == 3 ? CommandStatus::Ok : CommandStatus::Usage;
}

CommandStatus failing(const Args& args, lib::FormatSink& out)
{
    record(args, out);
    lib::format_to(out, "the Loom refuses\n");
    return CommandStatus::Failed;
}

const Command kCommands[] = {
    {"help", nullptr, "help [command]", "lists the commands", record},
    {"harmony", nullptr, "harmony", "fairness", record},
    {"threads", "ps", "threads", "thread table", record},
    {"nice", nullptr, "nice <id> <priority>", "priority", usage},
    {"echo", nullptr, "echo [text...]", "echo", record},
    {"mana", "mem", "mana", "memory", failing},
};
const CommandTable kTable(kCommands, sizeof(kCommands) / sizeof(kCommands[0]));

bool known(std::string_view name)
{
    for (const Command& c : kCommands) {
        if (name == c.name || (c.alias != nullptr && name == c.alias))
            return true;
    }
    return false;
}

void check_terminal(const std::string& text, size_t from)
{
    for (size_t i = from; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        const bool ok = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\b' || c == '\r' || c == '\a' || c == 0x1b;
        FUZZ_CHECK(ok, "raw byte %#x written to the terminal at offset %zu", c, i);
    }
}

void check_state(const Eldarin& shell)
{
    const LineEditor& editor = shell.editor();
    FUZZ_CHECK(editor.length() <= LineEditor::capacity() && editor.cursor() <= editor.length(),
               "editor length %zu cursor %zu", editor.length(), editor.cursor());
    FUZZ_CHECK(editor.c_str()[editor.length()] == '\0' && std::strlen(editor.c_str()) == editor.length(),
               "editor buffer not terminated at its length");
    const History& history = shell.history();
    FUZZ_CHECK(history.size() <= kHistoryEntries, "history holds %zu lines", history.size());
    for (size_t i = 0; i < history.size(); ++i) {
        const char* entry = history.entry(i);
        FUZZ_CHECK(entry != nullptr && std::memchr(entry, '\0', kLineCapacity + 1) != nullptr,
                   "history entry %zu unterminated", i);
        bool blank = true;
        for (const char* p = entry; *p != '\0'; ++p)
            blank = blank && (*p == ' ' || *p == '\t');
        FUZZ_CHECK(!blank, "blank history entry %zu", i);
        if (i > 0)
            FUZZ_CHECK(std::strcmp(entry, history.entry(i - 1)) != 0, "history entry %zu repeats the one before", i);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    CaptureSink out;
    Eldarin shell(kTable, out);
    shell.print_prompt();
    g_runs = 0;
    for (size_t i = 0; i < size; ++i) {
        const size_t before = out.text.size();
        const size_t runs = g_runs;
        shell.feed(data[i]);
        check_terminal(out.text, before);
        check_state(shell);
        FUZZ_CHECK(g_runs == shell.commands_run(), "handlers ran %zu times, shell counted %llu", g_runs,
                   static_cast<unsigned long long>(shell.commands_run()));
        if (g_runs != runs) {
            FUZZ_CHECK(g_runs == runs + 1, "one byte ran %zu commands", g_runs - runs);
            FUZZ_CHECK(!g_seen.empty() && g_seen.size() <= kMaxArgs && known(g_seen[0]), "command ran with bad args");
        }
        if (out.text.size() > (1u << 20))
            out.text.clear(); // keep long inputs cheap; the checks above saw every byte
    }

    // Part two: scripted lines, compared argument by argument with the model.
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    size_t start = 0;
    while (start <= all.size()) {
        size_t end = all.find('\n', start);
        if (end == std::string_view::npos)
            end = all.size();
        const std::string_view line = all.substr(start, end - start);
        start = end + 1;
        const fuzz::ModelParse model = fuzz::model_parse(line);
        const size_t runs = g_runs;
        shell.execute(lib::StringView(line.data(), line.size()));
        const bool should_run = model.ok && !model.args.empty() && known(fuzz::as_c_string(model.args[0]));
        FUZZ_CHECK(g_runs == runs + (should_run ? 1 : 0), "execute ran %zu commands, model expects %d", g_runs - runs,
                   should_run ? 1 : 0);
        if (should_run) {
            FUZZ_CHECK(g_seen.size() == model.args.size(), "handler saw %zu arguments, model %zu", g_seen.size(),
                       model.args.size());
            for (size_t i = 0; i < g_seen.size(); ++i)
                FUZZ_CHECK(g_seen[i] == fuzz::as_c_string(model.args[i]), "argument %zu differs from the model", i);
        }
    }
    return 0;
}
