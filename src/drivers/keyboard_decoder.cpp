#include "drivers/keyboard_decoder.h"

namespace drivers {

namespace {

constexpr uint8_t kPrefixExtended = 0xe0;
constexpr uint8_t kPrefixPause = 0xe1;
constexpr uint8_t kReleaseBit = 0x80;
// After E1 the Pause key sends two more bytes (1D 45 on press, 9D C5 on release).
constexpr uint8_t kPauseTail = 2;

// Set 1 make codes.
constexpr uint8_t kLeftCtrl = 0x1d, kLeftShift = 0x2a, kRightShift = 0x36, kCapsLock = 0x3a, kNumLock = 0x45;
constexpr uint8_t kKeypadFirst = 0x47, kKeypadLast = 0x53;
// After E0.
constexpr uint8_t kExtKeypadEnter = 0x1c, kExtRightCtrl = 0x1d, kExtKeypadSlash = 0x35, kExtHome = 0x47, kExtUp = 0x48,
                  kExtLeft = 0x4b, kExtRight = 0x4d, kExtEnd = 0x4f, kExtDown = 0x50, kExtDelete = 0x53;

// Make code -> byte, 0x00..0x39, US layout. 0 means "no character" (Esc, modifiers).
// Backspace (0x0e) is DEL, Enter (0x1c) is CR: what Eldarin reads from a serial terminal.
constexpr char kNormal[] = "\0\0"
                           "1234567890-="
                           "\x7f\t"
                           "qwertyuiop[]"
                           "\r\0"
                           "asdfghjkl;'`"
                           "\0\\"
                           "zxcvbnm,./"
                           "\0*\0 ";
constexpr char kShifted[] = "\0\0"
                            "!@#$%^&*()_+"
                            "\x7f\t"
                            "QWERTYUIOP{}"
                            "\r\0"
                            "ASDFGHJKL:\"~"
                            "\0|"
                            "ZXCVBNM<>?"
                            "\0*\0 ";
constexpr size_t kTableSize = 0x3a;
static_assert(sizeof(kNormal) - 1 == kTableSize && sizeof(kShifted) - 1 == kTableSize);

// The keypad block 0x47..0x53 with Num Lock on.
constexpr char kKeypadDigits[] = "789-456+1230.";
static_assert(sizeof(kKeypadDigits) - 1 == kKeypadLast - kKeypadFirst + 1);

enum class Nav : uint8_t { None, Up, Down, Left, Right, Home, End, Delete };

// The keypad block with Num Lock off: navigation, or the operators that do not depend on it.
Nav keypad_navigation(uint8_t code)
{
    switch (code) {
    case 0x47: return Nav::Home;
    case 0x48: return Nav::Up;
    case 0x4b: return Nav::Left;
    case 0x4d: return Nav::Right;
    case 0x4f: return Nav::End;
    case 0x50: return Nav::Down;
    case 0x53: return Nav::Delete;
    default: return Nav::None;
    }
}

size_t emit(uint8_t (&out)[KeyboardDecoder::kMaxOutput], const char* bytes)
{
    size_t n = 0;
    while (bytes[n] != '\0' && n < KeyboardDecoder::kMaxOutput) {
        out[n] = static_cast<uint8_t>(bytes[n]);
        ++n;
    }
    return n;
}

size_t emit_nav(uint8_t (&out)[KeyboardDecoder::kMaxOutput], Nav nav)
{
    switch (nav) {
    case Nav::Up: return emit(out, "\x1b[A");
    case Nav::Down: return emit(out, "\x1b[B");
    case Nav::Right: return emit(out, "\x1b[C");
    case Nav::Left: return emit(out, "\x1b[D");
    case Nav::Home: return emit(out, "\x1b[H");
    case Nav::End: return emit(out, "\x1b[F");
    case Nav::Delete: return emit(out, "\x1b[3~");
    case Nav::None: break;
    }
    return 0;
}

size_t emit_byte(uint8_t (&out)[KeyboardDecoder::kMaxOutput], uint8_t byte)
{
    out[0] = byte;
    return 1;
}

bool is_letter(char c) { return c >= 'a' && c <= 'z'; }

} // namespace

uint8_t KeyboardDecoder::leds() const
{
    return static_cast<uint8_t>((m_caps_lock ? kLedCapsLock : 0) | (m_num_lock ? kLedNumLock : 0));
}

bool KeyboardDecoder::take_leds_changed()
{
    const bool changed = m_leds_changed;
    m_leds_changed = false;
    return changed;
}

void KeyboardDecoder::reset_keys()
{
    m_pause_skip = 0;
    m_extended = false;
    m_left_shift = m_right_shift = m_left_ctrl = m_right_ctrl = false;
    m_caps_held = m_num_held = false;
}

size_t KeyboardDecoder::feed(uint8_t scancode, uint8_t (&out)[kMaxOutput])
{
    if (m_pause_skip > 0) {
        --m_pause_skip;
        return 0;
    }
    if (scancode == kPrefixExtended) {
        m_extended = true;
        return 0;
    }
    if (scancode == kPrefixPause) {
        m_extended = false;
        m_pause_skip = kPauseTail;
        return 0;
    }
    const bool extended = m_extended;
    m_extended = false;
    const bool released = (scancode & kReleaseBit) != 0;
    const uint8_t code = static_cast<uint8_t>(scancode & ~kReleaseBit);
    return extended ? feed_extended(code, released, out) : feed_plain(code, released, out);
}

size_t KeyboardDecoder::feed_plain(uint8_t code, bool released, uint8_t (&out)[kMaxOutput])
{
    switch (code) {
    case kLeftShift: m_left_shift = !released; return 0;
    case kRightShift: m_right_shift = !released; return 0;
    case kLeftCtrl: m_left_ctrl = !released; return 0;
    case kCapsLock:
        // Toggle on the first make only: a held key repeats its make code.
        if (!released && !m_caps_held) {
            m_caps_lock = !m_caps_lock;
            m_leds_changed = true;
        }
        m_caps_held = !released;
        return 0;
    case kNumLock:
        if (!released && !m_num_held) {
            m_num_lock = !m_num_lock;
            m_leds_changed = true;
        }
        m_num_held = !released;
        return 0;
    default: break;
    }
    if (released)
        return 0;

    if (code >= kKeypadFirst && code <= kKeypadLast) {
        const char digit = kKeypadDigits[code - kKeypadFirst];
        if (digit == '-' || digit == '+')
            return emit_byte(out, static_cast<uint8_t>(digit));
        if (m_num_lock)
            return emit_byte(out, static_cast<uint8_t>(digit));
        return emit_nav(out, keypad_navigation(code));
    }
    if (code >= kTableSize)
        return 0; // function keys, Scroll Lock, the 102nd key, ...

    const char plain = kNormal[code];
    if (plain == '\0')
        return 0;
    if (is_letter(plain)) {
        if (ctrl())
            return emit_byte(out, static_cast<uint8_t>(plain - 'a' + 1));
        const bool upper = shift() != m_caps_lock;
        return emit_byte(out, static_cast<uint8_t>(upper ? kShifted[code] : plain));
    }
    return emit_byte(out, static_cast<uint8_t>(shift() ? kShifted[code] : plain));
}

size_t KeyboardDecoder::feed_extended(uint8_t code, bool released, uint8_t (&out)[kMaxOutput])
{
    if (code == kExtRightCtrl) {
        m_right_ctrl = !released;
        return 0;
    }
    // E0 2A / E0 36 are the "fake shifts" around Print Screen and the navigation keys: not Shift.
    if (released)
        return 0;
    switch (code) {
    case kExtKeypadEnter: return emit_byte(out, '\r');
    case kExtKeypadSlash: return emit_byte(out, '/');
    case kExtUp: return emit_nav(out, Nav::Up);
    case kExtDown: return emit_nav(out, Nav::Down);
    case kExtLeft: return emit_nav(out, Nav::Left);
    case kExtRight: return emit_nav(out, Nav::Right);
    case kExtHome: return emit_nav(out, Nav::Home);
    case kExtEnd: return emit_nav(out, Nav::End);
    case kExtDelete: return emit_nav(out, Nav::Delete);
    default: return 0;
    }
}

} // namespace drivers
