#pragma once
// PS/2 scancodes (set 1, as an 8042 with translation on delivers them) to the bytes Eldarin's
// KeyDecoder reads from a serial terminal, US layout:
//   printable keys      ASCII, with Shift, and Caps Lock for letters only (Shift inverts it)
//   Enter / Backspace   '\r' / 0x7f (keypad Enter too)      Tab  '\t'
//   Ctrl + letter       0x01..0x1a (Ctrl-C 0x03, Ctrl-L 0x0c, ...)
//   arrows              ESC [ A/B/C/D    Home / End  ESC [ H / ESC [ F    Delete  ESC [ 3 ~
//   keypad              digits and . with Num Lock on; the navigation keys above with it off
// Key releases only matter for the modifiers (both Shifts, both Ctrls). Esc, Alt, the function keys,
// Insert, PgUp/PgDn, the GUI keys, Print Screen and Pause produce nothing: Eldarin has no use for
// them, and a lone ESC would make the KeyDecoder swallow the next key as part of a sequence.
// Generic (no device access): the PS/2 driver feeds it from its IRQ handler; host tests drive it.
#include <stddef.h>
#include <stdint.h>

namespace drivers {

// The lock LEDs' bits in the PS/2 "set LEDs" (0xED) command's argument.
inline constexpr uint8_t kLedScrollLock = 0x01;
inline constexpr uint8_t kLedNumLock = 0x02;
inline constexpr uint8_t kLedCapsLock = 0x04;

class KeyboardDecoder {
public:
    // The most bytes one scancode can produce (ESC [ 3 ~).
    static constexpr size_t kMaxOutput = 4;

    // Feeds one scancode byte. Writes what it completes into `out` (room for kMaxOutput bytes)
    // and returns how many bytes that is (0 for prefixes, releases, modifiers, ignored keys).
    size_t feed(uint8_t scancode, uint8_t (&out)[kMaxOutput]);

    bool shift() const { return m_left_shift || m_right_shift; }
    bool ctrl() const { return m_left_ctrl || m_right_ctrl; }
    bool caps_lock() const { return m_caps_lock; }
    bool num_lock() const { return m_num_lock; }
    // The LED byte for the current lock state (kLed* bits).
    uint8_t leds() const;
    // True once after a lock key changed leds() (the driver then sends them to the keyboard).
    bool take_leds_changed();

    // Forgets prefixes and held modifiers (after a keyboard reset); the lock states stay.
    void reset_keys();

private:
    size_t feed_plain(uint8_t code, bool released, uint8_t (&out)[kMaxOutput]);
    size_t feed_extended(uint8_t code, bool released, uint8_t (&out)[kMaxOutput]);

    uint8_t m_pause_skip = 0; // bytes of an E1 (Pause) sequence still to swallow
    bool m_extended = false;  // an E0 prefix came last
    bool m_left_shift = false;
    bool m_right_shift = false;
    bool m_left_ctrl = false;
    bool m_right_ctrl = false;
    bool m_caps_lock = false;
    bool m_caps_held = false; // typematic repeat of Caps Lock must not toggle again
    bool m_num_lock = false;
    bool m_num_held = false;
    bool m_leds_changed = false;
};

} // namespace drivers
