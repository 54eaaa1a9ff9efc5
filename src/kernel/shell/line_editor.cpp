#include "kernel/shell/line_editor.h"

namespace kernel::shell {

namespace {

constexpr char kBell = '\a';

void put(lib::FormatSink& out, char c) { out.write(&c, 1); }

void repeat(lib::FormatSink& out, char c, size_t n)
{
    char chunk[16];
    for (char& x : chunk)
        x = c;
    while (n > 0) {
        const size_t step = n < sizeof(chunk) ? n : sizeof(chunk);
        out.write(chunk, step);
        n -= step;
    }
}

} // namespace

KeyEvent KeyDecoder::feed(uint8_t byte)
{
    const bool after_cr = m_last_cr;
    m_last_cr = false;
    switch (m_state) {
    case State::Ground: break;
    case State::Escape:
        if (byte == '[') {
            m_state = State::Csi;
            m_param = 0;
            return {};
        }
        if (byte == 'O') {
            m_state = State::Ss3;
            return {};
        }
        m_state = State::Ground; // a lone ESC followed by something else: drop both
        return {};
    case State::Ss3:
        m_state = State::Ground;
        if (byte == 'H')
            return {Key::Home, 0};
        if (byte == 'F')
            return {Key::End, 0};
        return {};
    case State::Csi:
        if (byte >= '0' && byte <= '9') {
            if (m_param < 1000)
                m_param = m_param * 10 + (byte - '0');
            return {};
        }
        if (byte == ';')
            return {}; // modifiers (ESC [ 1 ; 5 C) are ignored
        if (byte >= 0x40 && byte <= 0x7e) {
            m_state = State::Ground;
            switch (byte) {
            case 'A': return {Key::Up, 0};
            case 'B': return {Key::Down, 0};
            case 'C': return {Key::Right, 0};
            case 'D': return {Key::Left, 0};
            case 'H': return {Key::Home, 0};
            case 'F': return {Key::End, 0};
            case '~':
                if (m_param == 1 || m_param == 7)
                    return {Key::Home, 0};
                if (m_param == 4 || m_param == 8)
                    return {Key::End, 0};
                if (m_param == 3)
                    return {Key::Delete, 0};
                return {};
            default: return {};
            }
        }
        if (byte < 0x20 || byte > 0x7e)
            m_state = State::Ground; // not a CSI byte: abandon it
        return {};
    }

    switch (byte) {
    case 0x1b: m_state = State::Escape; return {};
    case '\r': m_last_cr = true; return {Key::Enter, 0};
    case '\n': return after_cr ? KeyEvent{} : KeyEvent{Key::Enter, 0};
    case 0x08:
    case 0x7f: return {Key::Backspace, 0};
    case '\t': return {Key::Tab, 0};
    case 0x01: return {Key::Home, 0};
    case 0x05: return {Key::End, 0};
    case 0x03: return {Key::CtrlC, 0};
    case 0x0c: return {Key::CtrlL, 0};
    case 0x04: return {Key::Delete, 0};
    default: break;
    }
    if (byte >= 0x20 && byte < 0x7f)
        return {Key::Char, static_cast<char>(byte)};
    return {};
}

void LineEditor::move_left(size_t n, lib::FormatSink& out) { repeat(out, '\b', n); }

bool LineEditor::insert_char(char c, lib::FormatSink& out)
{
    if (m_length >= kLineCapacity)
        return false;
    for (size_t i = m_length; i > m_cursor; --i)
        m_buffer[i] = m_buffer[i - 1];
    m_buffer[m_cursor] = c;
    ++m_length;
    m_buffer[m_length] = '\0';
    // Echo the new character and the tail after it, then walk back to just after it.
    out.write(m_buffer + m_cursor, m_length - m_cursor);
    ++m_cursor;
    move_left(m_length - m_cursor, out);
    return true;
}

bool LineEditor::insert(lib::StringView text, lib::FormatSink& out)
{
    for (char c : text)
        if (!insert_char(c, out))
            return false;
    return true;
}

void LineEditor::erase_at(size_t pos, lib::FormatSink& out)
{
    for (size_t i = pos; i + 1 < m_length; ++i)
        m_buffer[i] = m_buffer[i + 1];
    --m_length;
    m_buffer[m_length] = '\0';
    // Redraw the tail, blank the cell the line no longer covers, walk back.
    out.write(m_buffer + pos, m_length - pos);
    put(out, ' ');
    move_left(m_length - pos + 1, out);
}

void LineEditor::replace(lib::StringView text, lib::FormatSink& out)
{
    const size_t old_length = m_length;
    move_left(m_cursor, out);
    size_t n = text.size() < kLineCapacity ? text.size() : kLineCapacity;
    for (size_t i = 0; i < n; ++i) {
        char c = text[i];
        m_buffer[i] = (c >= 0x20 && c < 0x7f) ? c : ' ';
    }
    m_length = n;
    m_cursor = n;
    m_buffer[n] = '\0';
    out.write(m_buffer, n);
    if (old_length > n) {
        repeat(out, ' ', old_length - n);
        move_left(old_length - n, out);
    }
}

void LineEditor::redraw(lib::FormatSink& out) const
{
    out.write(m_buffer, m_length);
    repeat(out, '\b', m_length - m_cursor);
}

EditResult LineEditor::handle(const KeyEvent& event, lib::FormatSink& out)
{
    switch (event.key) {
    case Key::None: return EditResult::None;
    case Key::Char:
        // A full line drops the character and rings the bell (BEL: no cell, no cursor move), so a
        // paste that overruns the line is heard; Enter still submits what fitted.
        if (!insert_char(event.ch, out))
            put(out, kBell);
        return EditResult::None;
    case Key::Enter:
        // Move the terminal cursor past the line's end before the newline.
        out.write(m_buffer + m_cursor, m_length - m_cursor);
        m_cursor = m_length;
        put(out, '\n');
        return EditResult::Submit;
    case Key::Backspace:
        if (m_cursor == 0)
            return EditResult::None;
        --m_cursor;
        put(out, '\b');
        erase_at(m_cursor, out);
        return EditResult::None;
    case Key::Delete:
        if (m_cursor < m_length)
            erase_at(m_cursor, out);
        return EditResult::None;
    case Key::Left:
        if (m_cursor > 0) {
            --m_cursor;
            put(out, '\b');
        }
        return EditResult::None;
    case Key::Right:
        if (m_cursor < m_length) {
            put(out, m_buffer[m_cursor]);
            ++m_cursor;
        }
        return EditResult::None;
    case Key::Home:
        move_left(m_cursor, out);
        m_cursor = 0;
        return EditResult::None;
    case Key::End:
        out.write(m_buffer + m_cursor, m_length - m_cursor);
        m_cursor = m_length;
        return EditResult::None;
    case Key::CtrlC:
        out.write(m_buffer + m_cursor, m_length - m_cursor);
        out.write("^C\n", 3);
        reset();
        return EditResult::Cancel;
    case Key::CtrlL: return EditResult::Clear;
    case Key::Up: return EditResult::HistoryUp;
    case Key::Down: return EditResult::HistoryDown;
    case Key::Tab: return EditResult::Complete;
    }
    return EditResult::None;
}

} // namespace kernel::shell
