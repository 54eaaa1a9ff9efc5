#pragma once
// The built-in 8x16 console font: one glyph per byte value, 16 rows of 8 pixels, bit 7
// the leftmost pixel. Printable ASCII (0x20..0x7e) comes from GNU Unifont as GRUB ships
// it in ascii.pf2; every other byte shows a hollow box, so a stray byte is visible
// rather than blank. The table (font_8x16.cpp) is generated at build time by
// scripts/gen-font.py into the build tree, for the kernel and the host tests alike.
#include <stddef.h>
#include <stdint.h>

namespace drivers {

inline constexpr uint16_t kFontCellWidth = 8;
inline constexpr uint16_t kFontCellHeight = 16;
inline constexpr size_t kFontGlyphCount = 256;

extern const uint8_t kFont8x16[kFontGlyphCount][kFontCellHeight];

inline const uint8_t* font_glyph(uint8_t byte) { return kFont8x16[byte]; }

} // namespace drivers
