#pragma once
// Eldarin's history: the last 32 submitted lines in a ring, walked with Up/Down. Empty (blank)
// lines are not stored, nor a line equal to the newest entry.
#include <stddef.h>

#include "kernel/shell/line_editor.h"
#include "lib/string.h"

namespace kernel::shell {

inline constexpr size_t kHistoryEntries = 32;

class History {
public:
    // Stores `line` (see above) and ends any navigation.
    void add(lib::StringView line);

    // Navigation. begin_navigation() is implied by the first up() after add()/reset_navigation().
    // up(): the next older entry, or nullptr when there is none older (the position stays).
    // down(): the next newer entry, or the draft saved at the first up() once past the newest
    // (returns nullptr when not navigating).
    const char* up(lib::StringView current_draft);
    const char* down();
    void reset_navigation() { m_position = -1; }

    size_t size() const { return m_count; }
    // i = 0 is the oldest stored entry.
    const char* entry(size_t i) const;

private:
    char m_entries[kHistoryEntries][kLineCapacity + 1] = {};
    size_t m_head = 0; // slot the next add() writes
    size_t m_count = 0;
    int m_position = -1; // -1: not navigating; else 0 = newest, m_count-1 = oldest
    char m_draft[kLineCapacity + 1] = {};
};

} // namespace kernel::shell
