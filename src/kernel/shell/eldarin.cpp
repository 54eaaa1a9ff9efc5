#include "kernel/shell/eldarin.h"

namespace kernel::shell {

void Eldarin::print_prompt() { m_out.write(kPrompt, lib::StringView(kPrompt).size()); }

void Eldarin::execute(lib::StringView line)
{
    if (auto parsed = parse_line(line, m_args); !parsed) {
        lib::format_to(m_out, "eldarin: {}\n", to_string(parsed.error()));
        return;
    }
    if (m_args.empty())
        return;
    const Command* command = find_command(m_table, m_args[0]);
    if (command == nullptr) {
        if (const Command* near = suggest_command(m_table, m_args[0]))
            lib::format_to(m_out, "eldarin: unknown command '{}'. Did you mean '{}'?\n", m_args[0], near->name);
        else
            lib::format_to(m_out, "eldarin: unknown command '{}'. Type 'help' for the list.\n", m_args[0]);
        return;
    }
    ++m_commands_run;
    if (command->handler(m_args, m_out) == CommandStatus::Usage)
        lib::format_to(m_out, "usage: {}\n", command->usage);
}

void Eldarin::complete()
{
    // Only the command name (the first word) is completed, with the cursor at its end.
    const lib::StringView line = m_editor.line();
    size_t start = 0;
    while (start < line.size() && line[start] == ' ')
        ++start;
    const size_t cursor = m_editor.cursor();
    if (cursor < start)
        return;
    for (size_t i = start; i < cursor; ++i)
        if (line[i] == ' ' || line[i] == '\t')
            return;
    if (cursor < line.size() && line[cursor] != ' ')
        return;
    const lib::StringView prefix = line.substr(start, cursor - start);
    const Completion completion = complete_command(m_table, prefix);
    if (completion.matches == 0)
        return;
    const lib::StringView first(completion.first);
    if (completion.matches == 1) {
        (void)m_editor.insert(first.substr(prefix.size()), m_out);
        if (cursor == line.size())
            (void)m_editor.insert(" ", m_out);
        return;
    }
    if (completion.common_length > prefix.size()) {
        (void)m_editor.insert(first.substr(prefix.size(), completion.common_length - prefix.size()), m_out);
        return;
    }
    // Ambiguous and nothing more in common: list, then give the line back.
    m_out.write("\n", 1);
    list_completions(m_table, prefix, m_out);
    print_prompt();
    m_editor.redraw(m_out);
}

void Eldarin::feed(uint8_t byte)
{
    const KeyEvent event = m_decoder.feed(byte);
    if (event.key == Key::None)
        return;
    switch (m_editor.handle(event, m_out)) {
    case EditResult::None: return;
    case EditResult::Submit: {
        m_history.add(m_editor.line());
        // Copy out: a command may not alias the editor while the next prompt is drawn.
        char line[kLineCapacity + 1];
        lib::copy_string(line, sizeof(line), m_editor.line());
        m_editor.reset();
        execute(lib::StringView(line));
        print_prompt();
        return;
    }
    case EditResult::Cancel:
        m_history.reset_navigation();
        print_prompt();
        return;
    case EditResult::Clear:
        m_out.write(kClearScreen, lib::StringView(kClearScreen).size());
        print_prompt();
        m_editor.redraw(m_out);
        return;
    case EditResult::HistoryUp:
        if (const char* entry = m_history.up(m_editor.line()))
            m_editor.replace(lib::StringView(entry), m_out);
        return;
    case EditResult::HistoryDown:
        if (const char* entry = m_history.down())
            m_editor.replace(lib::StringView(entry), m_out);
        return;
    case EditResult::Complete: complete(); return;
    }
}

} // namespace kernel::shell
