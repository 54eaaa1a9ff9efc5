#pragma once
// Eldarin's core: bytes in, terminal output and command runs out. It ties the key decoder, the
// line editor, the history and Tab completion to a command table; it knows nothing of threads or
// devices, so the host tests drive exactly what the kernel's shell thread runs.
#include <stddef.h>
#include <stdint.h>

#include "kernel/shell/command_table.h"
#include "kernel/shell/history.h"
#include "kernel/shell/line_editor.h"
#include "lib/format.h"

namespace kernel::shell {

inline constexpr const char* kPrompt = "aethel> ";
// ANSI "erase display, cursor home": both the serial terminal and the VGA console obey it.
inline constexpr const char* kClearScreen = "\x1b[2J\x1b[H";

class Eldarin {
public:
    Eldarin(CommandTable table, lib::FormatSink& out) : m_table(table), m_out(out) { }

    void print_prompt();
    // Feeds one input byte; a completed line is run before this returns.
    void feed(uint8_t byte);
    // Parses and runs one line (history untouched); for tests and scripted use.
    void execute(lib::StringView line);

    const LineEditor& editor() const { return m_editor; }
    const History& history() const { return m_history; }
    uint64_t commands_run() const { return m_commands_run; }

private:
    void complete();

    CommandTable m_table;
    lib::FormatSink& m_out;
    KeyDecoder m_decoder;
    LineEditor m_editor;
    History m_history;
    Args m_args;
    uint64_t m_commands_run = 0;
};

} // namespace kernel::shell
