// Eldarin's generic core: key decoding, line editing, history, completion, parsing, suggestions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>

#include "kernel/shell/command_table.h"
#include "kernel/shell/eldarin.h"
#include "kernel/shell/history.h"
#include "kernel/shell/line_editor.h"
#include "kernel/shell/parser.h"

using namespace kernel::shell;

namespace {

struct StringSink : lib::FormatSink {
    std::string text;
    void write(const char* s, size_t n) override { text.append(s, n); }
};

// Applies the terminal bytes to a one-line screen model: printable characters overwrite at the
// cursor, '\b' moves left. What the screen shows must always equal the editor's buffer.
struct ScreenModel {
    std::string cells;
    size_t cursor = 0;
    size_t bells = 0;
    void apply(const std::string& bytes)
    {
        for (char c : bytes) {
            if (c == '\b') {
                REQUIRE(cursor > 0);
                --cursor;
            } else if (c == '\n') {
                cells.clear();
                cursor = 0;
            } else if (c == '\a') {
                ++bells; // the bell shows nothing and leaves the cursor
            } else {
                if (cursor >= cells.size())
                    cells.resize(cursor + 1, ' ');
                cells[cursor++] = c;
            }
        }
    }
    std::string visible() const
    {
        std::string s = cells;
        while (!s.empty() && s.back() == ' ')
            s.pop_back();
        return s;
    }
};

struct EditorHarness {
    KeyDecoder decoder;
    LineEditor editor;
    ScreenModel screen;
    EditResult last = EditResult::None;
    std::string submitted;

    void type(const std::string& bytes)
    {
        for (unsigned char b : bytes) {
            StringSink out;
            const KeyEvent event = decoder.feed(b);
            last = editor.handle(event, out);
            screen.apply(out.text);
            if (last == EditResult::Submit || last == EditResult::Cancel) {
                submitted = line();
                editor.reset(); // what the shell does before the next prompt
            }
            check();
        }
    }
    void check()
    {
        REQUIRE(editor.length() <= LineEditor::capacity());
        REQUIRE(editor.cursor() <= editor.length());
        std::string line(editor.line().data(), editor.line().size());
        std::string shown = screen.visible();
        // Trailing spaces typed by the user are invisible in the model.
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        REQUIRE(shown == line);
        REQUIRE(screen.cursor == editor.cursor());
    }
    std::string line() const { return std::string(editor.line().data(), editor.line().size()); }
};

std::string g_last_handler;

CommandStatus record(const Args& args, lib::FormatSink& out)
{
    g_last_handler = std::string(args[0].data(), args[0].size());
    for (size_t i = 1; i < args.count(); ++i)
        lib::format_to(out, "[{}]", args[i]);
    return CommandStatus::Ok;
}

CommandStatus needs_two(const Args& args, lib::FormatSink&)
{
    return args.count() == 3 ? CommandStatus::Ok : CommandStatus::Usage;
}

const Command kCommands[] = {
    {"help", nullptr, "help [command]", "lists the commands", record},
    {"harmony", nullptr, "harmony", "fairness", record},
    {"threads", "ps", "threads", "thread table", record},
    {"nice", nullptr, "nice <id> <priority>", "priority", needs_two},
    {"echo", nullptr, "echo [text...]", "echo", record},
    {"uptime", nullptr, "uptime", "uptime", record},
};
const CommandTable kTable(kCommands, sizeof(kCommands) / sizeof(kCommands[0]));

} // namespace

TEST_CASE("shell: key decoder maps bytes and ANSI sequences", "[shell]")
{
    KeyDecoder d;
    auto seq = [&](const char* bytes) {
        KeyEvent last;
        for (const char* p = bytes; *p; ++p) {
            KeyEvent e = d.feed(static_cast<uint8_t>(*p));
            if (p[1] != '\0')
                REQUIRE(e.key == Key::None);
            last = e;
        }
        return last.key;
    };
    CHECK(seq("\x1b[A") == Key::Up);
    CHECK(seq("\x1b[B") == Key::Down);
    CHECK(seq("\x1b[C") == Key::Right);
    CHECK(seq("\x1b[D") == Key::Left);
    CHECK(seq("\x1b[H") == Key::Home);
    CHECK(seq("\x1b[F") == Key::End);
    CHECK(seq("\x1b[3~") == Key::Delete);
    CHECK(seq("\x1b[1~") == Key::Home);
    CHECK(seq("\x1b[4~") == Key::End);
    CHECK(seq("\x1bOH") == Key::Home);
    CHECK(seq("\x7f") == Key::Backspace);
    CHECK(seq("\b") == Key::Backspace);
    CHECK(seq("\t") == Key::Tab);
    CHECK(seq("\x03") == Key::CtrlC);
    CHECK(seq("\x0c") == Key::CtrlL);
    KeyEvent a = d.feed('a');
    CHECK(a.key == Key::Char);
    CHECK(a.ch == 'a');
    // CR LF is one Enter; a lone LF is one too.
    CHECK(d.feed('\r').key == Key::Enter);
    CHECK(d.feed('\n').key == Key::None);
    CHECK(d.feed('\n').key == Key::Enter);
    // An unknown sequence is swallowed and decoding goes on.
    CHECK(seq("\x1b[99z") == Key::None);
    CHECK(d.feed('x').key == Key::Char);
}

TEST_CASE("shell: line editor inserts, moves and erases", "[shell]")
{
    EditorHarness h;
    h.type("helo");
    CHECK(h.line() == "helo");
    h.type("\x1b[D"); // Left
    h.type("l");
    CHECK(h.line() == "hello");
    CHECK(h.editor.cursor() == 4);
    h.type("\x1b[H"); // Home
    CHECK(h.editor.cursor() == 0);
    h.type("\x1b[3~"); // Delete
    CHECK(h.line() == "ello");
    h.type("y");
    CHECK(h.line() == "yello");
    h.type("\x1b[F"); // End
    CHECK(h.editor.cursor() == 5);
    h.type("\x7f\x7f");
    CHECK(h.line() == "yel");
    h.type("\x1b[D\x1b[D\x7f"); // Backspace in the middle
    CHECK(h.line() == "el");
    CHECK(h.editor.cursor() == 0);
    h.type("\x7f"); // at the start: nothing
    CHECK(h.line() == "el");
    h.type("\x1b[C\x1b[C\x1b[C"); // Right past the end stops
    CHECK(h.editor.cursor() == 2);
    h.type("\r");
    CHECK(h.last == EditResult::Submit);
    CHECK(h.submitted == "el");
    CHECK(h.line().empty());
}

TEST_CASE("shell: Ctrl-C cancels, Ctrl-L asks for a clear, the buffer is bounded", "[shell]")
{
    EditorHarness h;
    h.type("abc\x03");
    CHECK(h.last == EditResult::Cancel);
    CHECK(h.editor.length() == 0);
    h.type("xy\x0c");
    CHECK(h.last == EditResult::Clear);
    CHECK(h.line() == "xy");

    LineEditor e;
    StringSink out;
    for (int i = 0; i < 300; ++i)
        e.handle({Key::Char, 'z'}, out);
    CHECK(e.length() == kLineCapacity);
    CHECK(e.c_str()[kLineCapacity] == '\0');
}

TEST_CASE("shell: a line overrun by a paste keeps what fits, rings per lost character, honours Enter", "[shell]")
{
    EditorHarness h;
    std::string paste;
    for (size_t i = 0; i < 1000; ++i)
        paste.push_back(static_cast<char>('a' + i % 26));
    h.type(paste);
    CHECK(h.line() == paste.substr(0, kLineCapacity));
    CHECK(h.screen.bells == 1000 - kLineCapacity);
    // Editing inside a full line still works; only growth is refused.
    h.type("\x1b[D\x7f");
    CHECK(h.editor.length() == kLineCapacity - 1);
    h.type("Z");
    CHECK(h.editor.length() == kLineCapacity);
    h.type("!");
    CHECK(h.screen.bells == 1000 - kLineCapacity + 1);
    h.type("\r");
    CHECK(h.last == EditResult::Submit);
    CHECK(h.submitted.size() == kLineCapacity);
    CHECK(h.submitted.substr(0, kLineCapacity - 2) == paste.substr(0, kLineCapacity - 2));
    CHECK(h.submitted.substr(kLineCapacity - 2) == "Z" + paste.substr(kLineCapacity - 1, 1));

    // Through the whole shell: the over-long line runs (as an unknown command) and the next
    // command typed runs normally, nothing of it swallowed into the long line.
    StringSink out;
    Eldarin shell(kTable, out);
    g_last_handler.clear();
    for (char ch : paste + "\recho after paste\r")
        shell.feed(static_cast<uint8_t>(ch));
    CHECK(g_last_handler == "echo");
    CHECK(out.text.find("[after][paste]aethel> ") != std::string::npos);
    CHECK(out.text.find("unknown command '" + paste.substr(0, kLineCapacity) + "'") != std::string::npos);
    CHECK(std::count(out.text.begin(), out.text.end(), '\a') == static_cast<long>(1000 - kLineCapacity));
    CHECK(shell.history().size() == 2);
}

TEST_CASE("shell: replace keeps the screen in step", "[shell]")
{
    EditorHarness h;
    h.type("a long line here");
    StringSink out;
    h.editor.replace("short", out);
    h.screen.apply(out.text);
    h.check();
    CHECK(h.line() == "short");
}

TEST_CASE("shell: history stores 32, skips blanks and duplicates, navigates", "[shell]")
{
    History history;
    history.add("");
    history.add("   ");
    CHECK(history.size() == 0);
    history.add("one");
    history.add("one");
    history.add("two");
    CHECK(history.size() == 2);
    CHECK(std::string(history.up("draft")) == "two");
    CHECK(std::string(history.up("ignored")) == "one");
    CHECK(history.up("") == nullptr);
    CHECK(std::string(history.down()) == "two");
    CHECK(std::string(history.down()) == "draft");
    CHECK(history.down() == nullptr);

    for (int i = 0; i < 40; ++i)
        history.add(std::to_string(i).c_str());
    CHECK(history.size() == kHistoryEntries);
    CHECK(std::string(history.entry(0)) == "8");
    CHECK(std::string(history.entry(kHistoryEntries - 1)) == "39");
    // "one" is not a duplicate of the newest entry, so it is stored again.
    history.add("one");
    history.add("39");
    CHECK(std::string(history.entry(kHistoryEntries - 1)) == "39");
    CHECK(std::string(history.entry(kHistoryEntries - 2)) == "one");
}

TEST_CASE("shell: parser splits, quotes and escapes", "[shell]")
{
    Args args;
    REQUIRE(parse_line("  echo  hello   world ", args));
    REQUIRE(args.count() == 3);
    CHECK(args[0] == lib::StringView("echo"));
    CHECK(args[2] == lib::StringView("world"));
    CHECK(args[7] == lib::StringView(""));

    REQUIRE(parse_line("echo \"a b\" 'c \"d\"' e\\ f \"x\\\"y\" pre\"mid\"post \"\"", args));
    REQUIRE(args.count() == 7);
    CHECK(args[1] == lib::StringView("a b"));
    CHECK(args[2] == lib::StringView("c \"d\""));
    CHECK(args[3] == lib::StringView("e f"));
    CHECK(args[4] == lib::StringView("x\"y"));
    CHECK(args[5] == lib::StringView("premidpost"));
    CHECK(args[6] == lib::StringView(""));

    REQUIRE(parse_line("", args));
    CHECK(args.empty());
}

TEST_CASE("shell: parser reports errors", "[shell]")
{
    Args args;
    auto r = parse_line("echo \"open", args);
    REQUIRE_FALSE(r);
    CHECK(r.error() == ParseError::UnterminatedQuote);
    CHECK(args.empty());
    CHECK(parse_line("echo 'x", args).error() == ParseError::UnterminatedQuote);
    CHECK(parse_line("echo x\\", args).error() == ParseError::TrailingBackslash);
    CHECK(parse_line("a b c d e f g h i j k l m n o p", args));
    CHECK(args.count() == 16);
    CHECK(parse_line("a b c d e f g h i j k l m n o p q", args).error() == ParseError::TooManyArguments);
    std::string huge(300, 'x');
    CHECK(parse_line(lib::StringView(huge.c_str()), args).error() == ParseError::LineTooLong);
}

TEST_CASE("shell: lookup, Levenshtein and suggestions", "[shell]")
{
    CHECK(find_command(kTable, "ps") == &kCommands[2]);
    CHECK(find_command(kTable, "threads") == &kCommands[2]);
    CHECK(find_command(kTable, "thread") == nullptr);
    CHECK(levenshtein("kitten", "sitting") == 3);
    CHECK(levenshtein("", "abc") == 3);
    CHECK(levenshtein("same", "same") == 0);
    CHECK(suggest_command(kTable, "thredas") == &kCommands[2]);
    CHECK(suggest_command(kTable, "hepl") == &kCommands[0]);
    CHECK(suggest_command(kTable, "uptim") == &kCommands[5]);
    CHECK(suggest_command(kTable, "zzzzzzzzzz") == nullptr);
    CHECK(suggest_command(kTable, "") == nullptr);
}

TEST_CASE("shell: completion of command names", "[shell]")
{
    Completion c = complete_command(kTable, "th");
    CHECK(c.matches == 1);
    CHECK(std::string(c.first) == "threads");
    c = complete_command(kTable, "h");
    CHECK(c.matches == 2);
    CHECK(c.common_length == 1);
    c = complete_command(kTable, "x");
    CHECK(c.matches == 0);

    StringSink out;
    Eldarin shell(kTable, out);
    for (char ch : std::string("thr\t"))
        shell.feed(static_cast<uint8_t>(ch));
    CHECK(std::string(shell.editor().c_str()) == "threads ");
    shell.feed('\x03');
    out.text.clear();
    for (char ch : std::string("h\t"))
        shell.feed(static_cast<uint8_t>(ch));
    CHECK(out.text.find("  help  harmony\n") != std::string::npos);
    CHECK(std::string(shell.editor().c_str()) == "h");
    for (char ch : std::string("a\t"))
        shell.feed(static_cast<uint8_t>(ch));
    CHECK(std::string(shell.editor().c_str()) == "harmony ");
}

TEST_CASE("shell: the core runs commands, usage and suggestions", "[shell]")
{
    StringSink out;
    Eldarin shell(kTable, out);
    shell.print_prompt();
    CHECK(out.text == "aethel> ");
    auto type = [&](const std::string& s) {
        for (char ch : s)
            shell.feed(static_cast<uint8_t>(ch));
    };
    out.text.clear();
    type("echo hi \"there you\"\r");
    CHECK(g_last_handler == "echo");
    CHECK(out.text == "echo hi \"there you\"\n[hi][there you]aethel> ");
    out.text.clear();
    type("thredas\r");
    CHECK(out.text.find("Did you mean 'threads'?") != std::string::npos);
    out.text.clear();
    type("nice 1\r");
    CHECK(out.text.find("usage: nice <id> <priority>\n") != std::string::npos);
    out.text.clear();
    type("echo \"x\r");
    CHECK(out.text.find("eldarin: unterminated quote") != std::string::npos);
    // History recall with Up, then run it again.
    out.text.clear();
    g_last_handler.clear();
    type("\x1b[A\x1b[A\x1b[A\x1b[A\r");
    CHECK(g_last_handler == "echo");
    CHECK(shell.history().size() == 5);
    CHECK(shell.commands_run() == 3);
    // Ctrl-L clears and redraws the line being typed.
    out.text.clear();
    type("ab\x0c");
    CHECK(out.text == std::string("ab") + kClearScreen + "aethel> ab");
}

TEST_CASE("shell: help lists every command", "[shell]")
{
    StringSink out;
    Args args;
    REQUIRE(parse_line("help", args));
    CHECK(print_help(kTable, args, out) == CommandStatus::Ok);
    for (const Command& c : kCommands)
        CHECK(out.text.find(c.name) != std::string::npos);
    CHECK(out.text.find("threads (ps)") != std::string::npos);
    out.text.clear();
    REQUIRE(parse_line("help nice", args));
    CHECK(print_help(kTable, args, out) == CommandStatus::Ok);
    CHECK(out.text.find("usage: nice <id> <priority>") != std::string::npos);
}

TEST_CASE("shell: random input never breaks the decoder, editor, parser or core", "[shell][fuzz]")
{
    std::mt19937 rng(0xE1DA);
    for (int round = 0; round < 200; ++round) {
        EditorHarness h;
        StringSink out;
        Eldarin shell(kTable, out);
        const int length = 1 + static_cast<int>(rng() % 600);
        std::string bytes;
        for (int i = 0; i < length; ++i) {
            // Bias toward the interesting bytes: escapes, edits, Enter, printable text.
            static const char kInteresting[] = "\x1b[ABCDHF3~\x7f\x03\x0c\t\r\n\"'\\ ";
            const unsigned pick = rng() % 4;
            bytes.push_back(pick == 0       ? static_cast<char>(rng() & 0xff)
                                : pick == 1 ? kInteresting[rng() % (sizeof(kInteresting) - 1)]
                                            : static_cast<char>('a' + rng() % 26));
        }
        h.type(bytes);
        for (unsigned char b : bytes) {
            shell.feed(b);
            REQUIRE(shell.editor().length() <= LineEditor::capacity());
            REQUIRE(shell.editor().cursor() <= shell.editor().length());
            REQUIRE(shell.editor().c_str()[shell.editor().length()] == '\0');
        }
        Args args;
        auto parsed = parse_line(lib::StringView(bytes.data(), bytes.size()), args);
        if (parsed) {
            REQUIRE(args.count() <= kMaxArgs);
            for (size_t i = 0; i < args.count(); ++i)
                REQUIRE(args[i].size() <= bytes.size());
        } else {
            REQUIRE(args.empty());
        }
    }
}
