#include "kernel/shell/command_table.h"

namespace kernel::shell {

namespace {

constexpr size_t kMaxCompared = 64;

bool name_is(const char* candidate, lib::StringView name)
{
    return candidate != nullptr && lib::StringView(candidate) == name;
}

template <typename Fn>
void for_each_name(CommandTable table, Fn fn)
{
    for (const Command& command : table) {
        fn(command, command.name);
        if (command.alias != nullptr)
            fn(command, command.alias);
    }
}

} // namespace

const Command* find_command(CommandTable table, lib::StringView name)
{
    for (const Command& command : table)
        if (name_is(command.name, name) || name_is(command.alias, name))
            return &command;
    return nullptr;
}

size_t levenshtein(lib::StringView a, lib::StringView b)
{
    if (a.size() > kMaxCompared)
        a = a.substr(0, kMaxCompared);
    if (b.size() > kMaxCompared)
        b = b.substr(0, kMaxCompared);
    size_t previous[kMaxCompared + 1];
    size_t current[kMaxCompared + 1];
    for (size_t j = 0; j <= b.size(); ++j)
        previous[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            const size_t erase = previous[j] + 1;
            const size_t insert = current[j - 1] + 1;
            size_t best = substitute < erase ? substitute : erase;
            current[j] = best < insert ? best : insert;
        }
        for (size_t j = 0; j <= b.size(); ++j)
            previous[j] = current[j];
    }
    return previous[b.size()];
}

const Command* suggest_command(CommandTable table, lib::StringView name)
{
    if (name.empty())
        return nullptr;
    const Command* best = nullptr;
    size_t best_distance = static_cast<size_t>(-1);
    for_each_name(table, [&](const Command& command, const char* candidate) {
        const size_t distance = levenshtein(name, lib::StringView(candidate));
        if (distance < best_distance) {
            best_distance = distance;
            best = &command;
        }
    });
    const size_t limit = name.size() >= 6 ? 3 : 2;
    if (best == nullptr || best_distance > limit || best_distance >= name.size())
        return nullptr;
    return best;
}

Completion complete_command(CommandTable table, lib::StringView prefix)
{
    Completion result;
    for_each_name(table, [&](const Command&, const char* candidate) {
        const lib::StringView view(candidate);
        if (!view.starts_with(prefix))
            return;
        if (result.matches == 0) {
            result.first = candidate;
            result.common_length = view.size();
        } else {
            size_t k = 0;
            const lib::StringView first(result.first);
            while (k < result.common_length && k < view.size() && first[k] == view[k])
                ++k;
            result.common_length = k;
        }
        ++result.matches;
    });
    return result;
}

void list_completions(CommandTable table, lib::StringView prefix, lib::FormatSink& out)
{
    for_each_name(table, [&](const Command&, const char* candidate) {
        if (lib::StringView(candidate).starts_with(prefix))
            lib::format_to(out, "  {}", candidate);
    });
    out.write("\n", 1);
}

CommandStatus print_help(CommandTable table, const Args& args, lib::FormatSink& out)
{
    if (args.count() > 2)
        return CommandStatus::Usage;
    if (args.count() == 2) {
        const Command* command = find_command(table, args[1]);
        if (command == nullptr) {
            lib::format_to(out, "help: no command named '{}'\n", args[1]);
            return CommandStatus::Failed;
        }
        lib::format_to(out, "usage: {}\n  {}\n", command->usage, command->help);
        if (command->alias != nullptr)
            lib::format_to(out, "  (also called '{}')\n", command->alias);
        return CommandStatus::Ok;
    }
    lib::format_to(out, "Eldarin knows these commands (help <name> for one):\n");
    for (const Command& command : table) {
        char label[32];
        if (command.alias != nullptr)
            lib::format(label, sizeof(label), "{} ({})", command.name, command.alias);
        else
            lib::format(label, sizeof(label), "{}", command.name);
        lib::format_to(out, "  {:<14} {}\n", static_cast<const char*>(label), command.help);
    }
    return CommandStatus::Ok;
}

} // namespace kernel::shell
