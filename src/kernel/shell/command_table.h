#pragma once
// Eldarin's command table: what a command is, lookup by name or alias, Tab completion of command
// names, and the nearest-name suggestion (Levenshtein distance) for a mistyped command.
#include <stddef.h>

#include "kernel/shell/parser.h"
#include "lib/format.h"
#include "lib/span.h"
#include "lib/string.h"

namespace kernel::shell {

enum class CommandStatus : uint8_t {
    Ok,
    Usage,  // bad arguments: the shell prints the command's usage line
    Failed, // the command printed why
};

struct Command {
    const char* name;
    const char* alias; // nullptr when none
    const char* usage; // "nice <id> <priority>"
    const char* help;  // one line
    CommandStatus (*handler)(const Args& args, lib::FormatSink& out);
};

using CommandTable = lib::Span<const Command>;

// The command whose name or alias is `name`, or nullptr.
const Command* find_command(CommandTable table, lib::StringView name);

// Edit distance (insertions, deletions, substitutions); strings longer than 64 characters are
// compared on their first 64.
size_t levenshtein(lib::StringView a, lib::StringView b);

// The command whose name or alias is nearest to `name`, if near enough to be a plausible typo
// (distance <= 2, or <= 3 for names of 6+ characters, and less than the word's length);
// nullptr otherwise. Ties go to the first in table order.
const Command* suggest_command(CommandTable table, lib::StringView name);

struct Completion {
    size_t matches = 0;          // names and aliases starting with the prefix
    const char* first = nullptr; // the first of them
    size_t common_length = 0;    // length of the longest prefix shared by all matches
};
Completion complete_command(CommandTable table, lib::StringView prefix);
// Writes every matching name and alias on one line: "  help  harmony\n".
void list_completions(CommandTable table, lib::StringView prefix, lib::FormatSink& out);

// `help`: one line per command; `help <name>`: its usage and description.
CommandStatus print_help(CommandTable table, const Args& args, lib::FormatSink& out);

} // namespace kernel::shell
