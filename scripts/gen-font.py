#!/usr/bin/env python3
"""The Heartwood's 8x16 console font, drawn from a GRUB PF2 font file.

    scripts/gen-font.py <font.pf2> <out.cpp>      writes the C++ glyph table (drivers/font.h)

Also imported by scripts/check-screen.py, so that the screen checker compares pixels
against exactly the glyphs the kernel was built with.

The glyphs are GNU Unifont's, as compiled by GRUB into ascii.pf2 (Debian's grub-common).
GNU Unifont is free software under the GNU GPL v2 or later with the GNU font embedding
exception (and, since Unifont 13.0.04, also under the SIL Open Font License 1.1). The
table is built from the installed file at build time and never committed.

PF2 layout (all integers big-endian): sections of a 4-byte name, a 4-byte length and
the data: FILE ("PFF2"), NAME, FAMI, WEIG, SLAN, PTSZ, MAXW, MAXH, ASCE, DESC, CHIX, DATA
(DATA's length is 0xffffffff: it runs to the end). CHIX holds 9-byte entries: u32 code
point, u8 storage flags (0 = uncompressed), u32 absolute offset of the glyph. A glyph is
u16 width, u16 height, s16 x offset, s16 y offset (of its bottom edge above the
baseline), s16 device width, then width*height bits, row-major, most significant bit
first, rows not padded.
"""
import struct
import sys

CELL_WIDTH = 8
CELL_HEIGHT = 16
FIRST = 0x20  # printable ASCII, the only glyphs TextGrid ever stores ...
LAST = 0x7E
GLYPH_COUNT = 256  # ... but every byte gets a glyph: the rest show FALLBACK


def fallback_glyph():
    """A hollow box ("tofu") for bytes that have no glyph: visible, and unlike any letter."""
    rows = [0] * CELL_HEIGHT
    for r in range(2, 14):
        rows[r] = 0x7E if r in (2, 13) else 0x42
    return tuple(rows)


FALLBACK = fallback_glyph()


class FontError(Exception):
    pass


def _sections(data):
    offset, sections = 0, {}
    while offset + 8 <= len(data):
        name = data[offset:offset + 4].decode("latin-1")
        (length,) = struct.unpack(">I", data[offset + 4:offset + 8])
        start = offset + 8
        if name == "DATA":
            sections[name] = (start, len(data) - start)
            break
        if start + length > len(data):
            raise FontError("section %s runs past the end of the file" % name)
        sections[name] = (start, length)
        offset = start + length
    return sections


def load_font(path):
    """Returns {byte: 16-tuple of row bitmaps (bit 7 = leftmost pixel)} for all 256 bytes."""
    with open(path, "rb") as f:
        data = f.read()
    sections = _sections(data)
    for needed in ("FILE", "ASCE", "DESC", "CHIX"):
        if needed not in sections:
            raise FontError("%s: no %s section: not a PF2 font" % (path, needed))
    start, length = sections["FILE"]
    if data[start:start + length] != b"PFF2":
        raise FontError("%s: FILE section is not 'PFF2'" % path)
    ascent = struct.unpack(">H", data[sections["ASCE"][0]:sections["ASCE"][0] + 2])[0]
    descent = struct.unpack(">H", data[sections["DESC"][0]:sections["DESC"][0] + 2])[0]
    if ascent + descent != CELL_HEIGHT:
        raise FontError("%s: ascent %d + descent %d is not a %d-pixel cell" % (path, ascent, descent, CELL_HEIGHT))

    index = {}
    start, length = sections["CHIX"]
    for i in range(length // 9):
        code, flags, offset = struct.unpack(">IBI", data[start + 9 * i:start + 9 * i + 9])
        index[code] = (flags, offset)

    glyphs = {b: FALLBACK for b in range(GLYPH_COUNT)}
    for code in range(FIRST, LAST + 1):
        if code not in index:
            raise FontError("%s: no glyph for %r" % (path, chr(code)))
        flags, offset = index[code]
        if flags & 0x07:
            raise FontError("%s: glyph %r is compressed (flags %#x)" % (path, chr(code), flags))
        width, height, x_off, y_off, advance = struct.unpack(">HHhhh", data[offset:offset + 10])
        if advance != CELL_WIDTH:
            raise FontError("%s: %r is %d pixels wide, not a %d-pixel cell" % (path, chr(code), advance, CELL_WIDTH))
        bits = data[offset + 10:offset + 10 + (width * height + 7) // 8]
        top = ascent - (y_off + height)  # cell row of the glyph's first bitmap row
        rows = [0] * CELL_HEIGHT
        for y in range(height):
            for x in range(width):
                n = y * width + x
                if not bits[n // 8] & (0x80 >> (n % 8)):
                    continue
                cy, cx = top + y, x_off + x
                if not (0 <= cy < CELL_HEIGHT and 0 <= cx < CELL_WIDTH):
                    raise FontError("%s: %r has a pixel outside the 8x16 cell" % (path, chr(code)))
                rows[cy] |= 0x80 >> cx
        glyphs[code] = tuple(rows)
    return glyphs


def font_name(path):
    with open(path, "rb") as f:
        data = f.read(4096)
    sections = _sections(data)
    if "NAME" not in sections:
        return "unnamed"
    start, length = sections["NAME"]
    return data[start:start + length].rstrip(b"\0").decode("latin-1")


def write_cpp(glyphs, name, source, out):
    lines = [
        "// Generated by scripts/gen-font.py from %s (%s): do not edit." % (source, name),
        "// GNU Unifont glyphs (GPL v2+ with the GNU font embedding exception, or SIL OFL 1.1),",
        "// as compiled into GRUB's PF2 font. Bytes outside 0x%02x..0x%02x show a hollow box." % (FIRST, LAST),
        '#include "drivers/font.h"',
        "",
        "namespace drivers {",
        "",
        "constinit const uint8_t kFont8x16[kFontGlyphCount][kFontCellHeight] = {",
    ]
    for b in range(GLYPH_COUNT):
        # No backslash in a comment: at the end of a line it would splice the next one in.
        label = "backslash" if b == 0x5C else "'%c'" % b if FIRST <= b <= LAST else "fallback"
        rows = ", ".join("0x%02x" % r for r in glyphs[b])
        lines.append("    {%s}, // 0x%02x %s" % (rows, b, label))
    lines += ["};", "", "} // namespace drivers", ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))


def main(argv):
    if len(argv) != 3:
        print("usage: gen-font.py <font.pf2> <out.cpp>", file=sys.stderr)
        return 2
    try:
        glyphs = load_font(argv[1])
        write_cpp(glyphs, font_name(argv[1]), argv[1], argv[2])
    except (OSError, FontError, struct.error) as e:
        print("gen-font: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
