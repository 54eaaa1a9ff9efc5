#include "kernel/shell/history.h"

namespace kernel::shell {

namespace {

bool is_blank(lib::StringView line)
{
    for (char c : line)
        if (c != ' ' && c != '\t')
            return false;
    return true;
}

} // namespace

const char* History::entry(size_t i) const
{
    if (i >= m_count)
        return nullptr;
    const size_t oldest = (m_head + kHistoryEntries - m_count) % kHistoryEntries;
    return m_entries[(oldest + i) % kHistoryEntries];
}

void History::add(lib::StringView line)
{
    m_position = -1;
    if (is_blank(line))
        return;
    if (line.size() > kLineCapacity)
        line = line.substr(0, kLineCapacity);
    if (m_count > 0 && lib::StringView(entry(m_count - 1)) == line)
        return;
    lib::copy_string(m_entries[m_head], sizeof(m_entries[m_head]), line);
    m_head = (m_head + 1) % kHistoryEntries;
    if (m_count < kHistoryEntries)
        ++m_count;
}

const char* History::up(lib::StringView current_draft)
{
    if (m_count == 0)
        return nullptr;
    if (m_position < 0) {
        lib::copy_string(m_draft, sizeof(m_draft), current_draft);
        m_position = 0;
        return entry(m_count - 1);
    }
    if (static_cast<size_t>(m_position) + 1 >= m_count)
        return nullptr;
    ++m_position;
    return entry(m_count - 1 - static_cast<size_t>(m_position));
}

const char* History::down()
{
    if (m_position < 0)
        return nullptr;
    if (m_position == 0) {
        m_position = -1;
        return m_draft;
    }
    --m_position;
    return entry(m_count - 1 - static_cast<size_t>(m_position));
}

} // namespace kernel::shell
