#pragma once
// Eldarin's line editor: a fixed-capacity line buffer driven by decoded key events. It writes the
// terminal bytes that keep the screen in step with the buffer (echo, tail redraw, "\b" moves) to a
// lib::FormatSink, so the same core drives the serial line and the VGA text screen; both understand
// '\b' as "cursor one column left" and nothing fancier is used.
#include <stddef.h>
#include <stdint.h>

#include "lib/format.h"
#include "lib/string.h"

namespace kernel::shell {

enum class Key : uint8_t {
    None, // nothing complete yet (inside an escape sequence, or an ignored byte)
    Char, // printable character in KeyEvent::ch
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    Tab,
    CtrlC,
    CtrlL,
};

struct KeyEvent {
    Key key = Key::None;
    char ch = 0;
};

// Turns serial bytes into key events: printable ASCII, CR/LF (Enter), BS/DEL (Backspace), Tab,
// Ctrl-A/E (Home/End), Ctrl-C, Ctrl-L, and the ANSI sequences ESC [ A/B/C/D/H/F, ESC [ 1~/4~/7~/8~
// (Home/End), ESC [ 3~ (Delete), ESC O H/F. Unknown sequences are swallowed whole.
class KeyDecoder {
public:
    KeyEvent feed(uint8_t byte);
    void reset()
    {
        m_state = State::Ground;
        m_param = 0;
        m_last_cr = false;
    }

private:
    enum class State : uint8_t { Ground, Escape, Csi, Ss3 };
    State m_state = State::Ground;
    uint32_t m_param = 0;
    bool m_last_cr = false; // CR LF counts as one Enter
};

// A line holds at most this many characters; more typed (or pasted) ones are dropped, each with a
// BEL (0x07) to the terminal, and Enter always submits what fitted.
inline constexpr size_t kLineCapacity = 256;

enum class EditResult : uint8_t {
    None,      // handled (or ignored) inside the editor
    Submit,    // Enter: the line is ready (line()); the editor has written the newline
    Cancel,    // Ctrl-C: the line was dropped; "^C\n" was written
    Clear,     // Ctrl-L: the caller clears the screen and redraws (redraw())
    HistoryUp, // Up / Down / Tab: the caller decides (history, completion)
    HistoryDown,
    Complete,
};

class LineEditor {
public:
    EditResult handle(const KeyEvent& event, lib::FormatSink& out);

    // Inserts text at the cursor (echoing it); returns false if it did not all fit.
    bool insert(lib::StringView text, lib::FormatSink& out);
    // Replaces the whole line (history recall), leaving the cursor at its end.
    void replace(lib::StringView text, lib::FormatSink& out);
    // Writes the whole line and puts the terminal cursor where the editor's cursor is (after a
    // prompt has been reprinted).
    void redraw(lib::FormatSink& out) const;
    // Empties the buffer without output (after Submit/Cancel the caller starts a new line).
    void reset()
    {
        m_length = 0;
        m_cursor = 0;
        m_buffer[0] = '\0';
    }

    lib::StringView line() const { return lib::StringView(m_buffer, m_length); }
    const char* c_str() const { return m_buffer; }
    size_t length() const { return m_length; }
    size_t cursor() const { return m_cursor; }
    static constexpr size_t capacity() { return kLineCapacity; }

private:
    bool insert_char(char c, lib::FormatSink& out);
    void erase_at(size_t pos, lib::FormatSink& out); // cursor already at pos
    void move_left(size_t n, lib::FormatSink& out);

    char m_buffer[kLineCapacity + 1] = {};
    size_t m_length = 0;
    size_t m_cursor = 0;
};

} // namespace kernel::shell
