#include "drivers/text_grid.h"

namespace drivers {

namespace {

constexpr uint8_t kEsc = 0x1b;
constexpr uint8_t kCan = 0x18;
constexpr uint8_t kSub = 0x1a;
// ANSI orders colours black, red, green, yellow, blue, magenta, cyan, white;
// VGA orders them black, blue, green, cyan, red, magenta, brown, grey.
constexpr uint8_t kAnsiToVga[8] = {0, 4, 2, 6, 1, 5, 3, 7};
constexpr uint8_t kBright = 0x08;
constexpr uint8_t kDefaultFg = kDefaultAttribute & 0x0f;
constexpr uint8_t kDefaultBg = (kDefaultAttribute >> 4) & 0x07;
constexpr uint8_t kReplacementGlyph = '?';

} // namespace

void TextGrid::attach(uint16_t* cells, uint16_t width, uint16_t height)
{
    const bool usable = cells != nullptr && width != 0 && height != 0;
    m_cells = usable ? cells : nullptr;
    m_width = usable ? width : 0;
    m_height = usable ? height : 0;
    m_state = State::Ground;
    m_utf8_remaining = 0;
    set_attribute(kDefaultAttribute);
    clear();
}

void TextGrid::set_cursor_callback(CursorCallback callback, void* context)
{
    m_callback = callback;
    m_callback_context = context;
}

void TextGrid::set_attribute(uint8_t attribute)
{
    m_fg = attribute & 0x0f;
    m_bg = (attribute >> 4) & 0x07;
    m_bold = false;
    recompute_attribute();
}

void TextGrid::recompute_attribute()
{
    const uint8_t fg = static_cast<uint8_t>(m_fg | (m_bold ? kBright : 0));
    m_attribute = static_cast<uint8_t>(fg | (m_bg << 4));
}

uint16_t TextGrid::cell(uint16_t column, uint16_t row) const
{
    if (!m_cells || column >= m_width || row >= m_height)
        return 0;
    return m_cells[static_cast<size_t>(row) * m_width + column];
}

void TextGrid::clear()
{
    fill(0, static_cast<size_t>(m_width) * m_height);
    set_cursor(0, 0);
}

void TextGrid::set_cursor(uint16_t column, uint16_t row)
{
    if (!m_cells)
        return;
    m_column = column < m_width ? column : static_cast<uint16_t>(m_width - 1);
    m_row = row < m_height ? row : static_cast<uint16_t>(m_height - 1);
    m_wrap_pending = false;
    if (m_callback)
        m_callback(m_callback_context, m_column, m_row);
    m_cursor_moved = false;
}

void TextGrid::write(const char* s, size_t n)
{
    if (!m_cells || !s)
        return;
    for (size_t i = 0; i < n; ++i)
        feed(static_cast<uint8_t>(s[i]));
    if (m_cursor_moved && m_callback)
        m_callback(m_callback_context, m_column, m_row);
    m_cursor_moved = false;
}

void TextGrid::feed(uint8_t byte)
{
    if ((byte == kCan || byte == kSub) && m_state != State::Ground) {
        m_state = State::Ground; // as on a VT100: the sequence is abandoned (a panic starts so)
        return;
    }
    switch (m_state) {
    case State::Ground: ground(byte); return;
    case State::Utf8:
        if (byte >= 0x80 && byte <= 0xbf) {
            if (--m_utf8_remaining == 0) {
                m_state = State::Ground;
                put_glyph(kReplacementGlyph);
            }
            return;
        }
        // A truncated sequence still stood for a character; then handle this byte afresh.
        m_state = State::Ground;
        put_glyph(kReplacementGlyph);
        ground(byte);
        return;
    case State::Escape:
        if (byte == '[') {
            m_state = State::Csi;
            for (auto& p : m_params)
                p = 0;
            m_param_index = 0;
            m_private = false;
        } else if (byte == kEsc || (byte >= 0x20 && byte <= 0x2f)) {
            // A new escape, or an intermediate byte ("ESC ( B"): the sequence goes on.
        } else if (byte < 0x20) {
            m_state = State::Ground; // a control byte ends the escape and still takes effect
            ground(byte);
        } else {
            m_state = State::Ground; // final byte of a two-byte escape: swallowed
        }
        return;
    case State::Csi: csi(byte); return;
    }
}

void TextGrid::ground(uint8_t byte)
{
    if (byte >= 0x20 && byte < 0x7f) {
        put_glyph(byte);
        return;
    }
    if (byte >= 0x80) {
        // UTF-8: the lead byte says how many continuation bytes follow.
        uint8_t continuation = 0;
        if (byte >= 0xc2 && byte <= 0xdf)
            continuation = 1;
        else if (byte >= 0xe0 && byte <= 0xef)
            continuation = 2;
        else if (byte >= 0xf0 && byte <= 0xf4)
            continuation = 3;
        if (continuation == 0) {
            put_glyph(kReplacementGlyph); // stray continuation or invalid lead byte
        } else {
            m_utf8_remaining = continuation;
            m_state = State::Utf8;
        }
        return;
    }
    switch (byte) {
    case '\n': line_feed(); break;
    case '\r':
        m_column = 0;
        m_wrap_pending = false;
        m_cursor_moved = true;
        break;
    case '\t': {
        const uint16_t next = static_cast<uint16_t>((m_column / kTabWidth + 1) * kTabWidth);
        m_column = next < m_width ? next : static_cast<uint16_t>(m_width - 1);
        m_wrap_pending = false;
        m_cursor_moved = true;
        break;
    }
    case '\b':
        if (m_column > 0)
            --m_column;
        m_wrap_pending = false;
        m_cursor_moved = true;
        break;
    case kEsc: m_state = State::Escape; break;
    default: break; // BEL, DEL and the other controls have nothing to show
    }
}

void TextGrid::csi(uint8_t byte)
{
    if (byte >= '0' && byte <= '9') {
        if (m_param_index < kMaxParams) {
            uint16_t& p = m_params[m_param_index];
            const uint32_t value = p * 10u + (byte - '0');
            p = value > kMaxParamValue ? kMaxParamValue : static_cast<uint16_t>(value);
        }
    } else if (byte == ';') {
        if (m_param_index < kMaxParams)
            ++m_param_index;
    } else if (byte >= 0x3a && byte <= 0x3f) {
        m_private = true; // ':' sub-parameters or a "<=>?" private marker
    } else if (byte >= 0x20 && byte <= 0x2f) {
        m_private = true; // intermediate bytes: no sequence we act on has them
    } else if (byte >= 0x40 && byte <= 0x7e) {
        m_state = State::Ground;
        if (!m_private)
            dispatch_csi(byte);
    } else if (byte == kEsc) {
        m_state = State::Escape;
    } else if (byte < 0x20) {
        ground(byte); // C0 controls inside a sequence take effect, as on a VT100
    } else if (byte >= 0x80) {
        m_state = State::Ground; // not part of any CSI: abandon it and show the byte
        ground(byte);
    }
    // DEL (0x7f) is ignored.
}

uint16_t TextGrid::param(size_t index, uint16_t fallback) const
{
    const size_t count = m_param_index < kMaxParams ? m_param_index + 1u : kMaxParams;
    if (index >= count || m_params[index] == 0)
        return fallback;
    return m_params[index];
}

void TextGrid::dispatch_csi(uint8_t final_byte)
{
    switch (final_byte) {
    case 'm': apply_sgr(); break;
    case 'J': erase_display(param(0, 0)); break;
    case 'K': erase_line(param(0, 0)); break;
    case 'H':
    case 'f': {
        // 1-based row;column, 0 or missing meaning 1, clamped to the grid.
        const uint16_t row = static_cast<uint16_t>(param(0, 1) - 1);
        const uint16_t column = static_cast<uint16_t>(param(1, 1) - 1);
        m_row = row < m_height ? row : static_cast<uint16_t>(m_height - 1);
        m_column = column < m_width ? column : static_cast<uint16_t>(m_width - 1);
        m_wrap_pending = false;
        m_cursor_moved = true;
        break;
    }
    default: break; // cursor keys, modes, ...: swallowed
    }
}

void TextGrid::apply_sgr()
{
    const size_t count = m_param_index < kMaxParams ? m_param_index + 1u : kMaxParams;
    for (size_t i = 0; i < count; ++i) {
        const uint16_t p = m_params[i];
        if (p == 0) {
            m_fg = kDefaultFg;
            m_bg = kDefaultBg;
            m_bold = false;
        } else if (p == 1) {
            m_bold = true;
        } else if (p == 22) {
            m_bold = false;
        } else if (p >= 30 && p <= 37) {
            m_fg = kAnsiToVga[p - 30];
        } else if (p >= 90 && p <= 97) {
            m_fg = static_cast<uint8_t>(kAnsiToVga[p - 90] | kBright);
        } else if (p == 39) {
            m_fg = kDefaultFg;
        } else if (p >= 40 && p <= 47) {
            m_bg = kAnsiToVga[p - 40];
        } else if (p >= 100 && p <= 107) {
            m_bg = kAnsiToVga[p - 100]; // no bright backgrounds: attribute bit 7 may blink
        } else if (p == 49) {
            m_bg = kDefaultBg;
        } else if (p == 38 || p == 48) {
            break; // 256-colour / RGB forms: their arguments are not colours we have
        }
        // Anything else (italic, underline, ...) has no VGA text equivalent.
    }
    recompute_attribute();
}

void TextGrid::erase_display(uint16_t mode)
{
    const size_t total = static_cast<size_t>(m_width) * m_height;
    const size_t here = static_cast<size_t>(m_row) * m_width + m_column;
    if (mode == 0)
        fill(here, total - here);
    else if (mode == 1)
        fill(0, here + 1);
    else if (mode == 2 || mode == 3)
        fill(0, total);
}

void TextGrid::erase_line(uint16_t mode)
{
    const size_t start = static_cast<size_t>(m_row) * m_width;
    if (mode == 0)
        fill(start + m_column, m_width - m_column);
    else if (mode == 1)
        fill(start, m_column + 1u);
    else if (mode == 2)
        fill(start, m_width);
}

// The cursor is read once into locals and every store is of a value checked against the grid, so
// even writers that broke the console lock's rule could not move the cursor out of the grid (a
// read-check-increment of the member itself could: checked at row h-2, bumped to h by another
// writer's line feed in between, and every glyph after it lands past the buffer).
void TextGrid::put_glyph(uint8_t glyph)
{
    if (m_wrap_pending) {
        m_wrap_pending = false;
        line_feed();
    }
    const uint16_t row = m_row < m_height ? m_row : static_cast<uint16_t>(m_height - 1);
    const uint16_t column = m_column < m_width ? m_column : static_cast<uint16_t>(m_width - 1);
    m_cells[static_cast<size_t>(row) * m_width + column] = make_cell(static_cast<char>(glyph), m_attribute);
    m_row = row;
    if (column + 1u < m_width) {
        m_column = static_cast<uint16_t>(column + 1);
    } else {
        m_column = column;
        m_wrap_pending = true; // stay in the last column so an exact-width line does not add a blank one
    }
    m_cursor_moved = true;
}

void TextGrid::line_feed()
{
    m_column = 0;
    m_wrap_pending = false;
    const uint16_t row = m_row;
    if (row + 1u < m_height) {
        m_row = static_cast<uint16_t>(row + 1);
    } else {
        m_row = static_cast<uint16_t>(m_height - 1);
        scroll_up();
    }
    m_cursor_moved = true;
}

void TextGrid::scroll_up()
{
    const size_t moved = static_cast<size_t>(m_width) * (m_height - 1u);
    for (size_t i = 0; i < moved; ++i)
        m_cells[i] = m_cells[i + m_width];
    fill(moved, m_width);
}

void TextGrid::fill(size_t first, size_t count)
{
    if (!m_cells)
        return;
    const size_t total = static_cast<size_t>(m_width) * m_height;
    if (first >= total)
        return;
    if (count > total - first)
        count = total - first;
    const uint16_t value = blank();
    for (size_t i = 0; i < count; ++i)
        m_cells[first + i] = value;
}

} // namespace drivers
