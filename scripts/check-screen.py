#!/usr/bin/env python3
"""Reads the text off a screenshot of the framebuffer console and checks it.

    scripts/check-screen.py <image.ppm|image.png> --font <font.pf2>
        [--expect TEXT]... [--prompt TEXT] [--expect-colour TEXT=RRGGBB]...
        [--text-out decoded.txt] [--save-png out.png]

The glyphs are the kernel's own: scripts/gen-font.py turns the same PF2 file into the
same 8x16 bitmaps. The checker finds where the cell grid sits (it tries every offset
within one cell and keeps the one whose cells read as glyphs), then reads each cell:
its most common colour is the background, the other pixels must form exactly one glyph
in one foreground colour, otherwise the cell reads as an unknown (shown as U+00B7 in
--text-out; the cursor's underlined cell is one). It exits 0 only when every --expect
text appears on some line, the last line with text starts with --prompt, and every
--expect-colour text is drawn in that colour; otherwise 1, saying what is missing.
"""
import argparse
import importlib.util
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
UNKNOWN = "\u00b7"
CELL_W, CELL_H = 8, 16


def load_gen_font():
    spec = importlib.util.spec_from_file_location("gen_font", os.path.join(HERE, "gen-font.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Image:
    def __init__(self, width, height, rgb):
        self.width, self.height, self.rgb = width, height, rgb  # rgb: bytes, 3 per pixel, row-major

    def row(self, x, y, n):
        start = (y * self.width + x) * 3
        return self.rgb[start:start + 3 * n]


def read_ppm(data):
    # P6, maxval 255; comments are allowed between the header fields.
    fields, pos = [], 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    width, height, maxval = fields
    if maxval != 255:
        raise ValueError("PPM maxval %d (only 255 is read)" % maxval)
    pixels = data[pos + 1:pos + 1 + width * height * 3]
    if len(pixels) != width * height * 3:
        raise ValueError("PPM truncated: %d of %d pixel bytes" % (len(pixels), width * height * 3))
    return Image(width, height, pixels)


def read_png(data):
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("PNG must be 8-bit RGB or RGBA, not interlaced")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out += line if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
        prev = line
    return Image(width, height, bytes(out))


def read_image(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"P6":
        return read_ppm(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return read_png(data)
    raise ValueError("%s: neither a binary PPM (P6) nor a PNG" % path)


def write_png(image, path):
    raw = b"".join(b"\0" + image.row(0, y, image.width) for y in range(image.height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) +
                chunk(b"IEND", b""))


class Reader:
    def __init__(self, image, glyphs):
        self.image = image
        # Bitmap -> character for printable ASCII; blank is ' '.
        self.by_bitmap = {}
        for code in range(0x20, 0x7F):
            self.by_bitmap.setdefault(glyphs[code], chr(code))

    def cell(self, x0, y0):
        """(character or UNKNOWN, foreground RGB or None) for the cell whose top-left pixel is (x0, y0)."""
        lines = [self.image.row(x0, y0 + y, CELL_W) for y in range(CELL_H)]
        counts = {}
        for line in lines:
            for i in range(0, 3 * CELL_W, 3):
                px = line[i:i + 3]
                counts[px] = counts.get(px, 0) + 1
        if len(counts) > 2:
            return UNKNOWN, None
        bg = max(counts, key=counts.get)
        fg = next((c for c in counts if c != bg), None)
        bitmap = tuple(sum(0x80 >> (i // 3) for i in range(0, 3 * CELL_W, 3) if line[i:i + 3] != bg)
                       for line in lines)
        return self.by_bitmap.get(bitmap, UNKNOWN), fg

    def columns_rows(self, ox, oy):
        return (self.image.width - ox) // CELL_W, (self.image.height - oy) // CELL_H

    def score(self, ox, oy, rows):
        columns, _ = self.columns_rows(ox, oy)
        good = 0
        for r in rows:
            for c in range(columns):
                ch, _ = self.cell(ox + c * CELL_W, oy + r * CELL_H)
                if ch == UNKNOWN:
                    good -= 1
                elif ch != " ":
                    good += 1
        return good

    def locate(self):
        """The grid offset (ox, oy) in 0..7 x 0..15 whose cells read best."""
        # Sample the three cell rows from the first pixel row that differs from the top-left pixel.
        first = None
        corner = self.image.row(0, 0, 1)
        for y in range(self.image.height):
            if self.image.row(0, y, self.image.width) != corner * self.image.width:
                first = y
                break
        if first is None:
            return None
        best, best_score = None, 0
        for oy in range(CELL_H):
            if first < oy:
                continue
            r0 = (first - oy) // CELL_H
            _, total_rows = self.columns_rows(0, oy)
            rows = [r for r in (r0, r0 + 1, r0 + 2) if r < total_rows]
            for ox in range(CELL_W):
                s = self.score(ox, oy, rows)
                if s > best_score:
                    best, best_score = (ox, oy), s
        return best

    def read(self, ox, oy):
        columns, rows = self.columns_rows(ox, oy)
        text, colours = [], []
        for r in range(rows):
            line, fgs = [], []
            for c in range(columns):
                ch, fg = self.cell(ox + c * CELL_W, oy + r * CELL_H)
                line.append(ch)
                fgs.append(fg)
            text.append("".join(line))
            colours.append(fgs)
        return text, colours


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image")
    parser.add_argument("--font", required=True)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--prompt")
    parser.add_argument("--expect-colour", action="append", default=[])
    parser.add_argument("--text-out")
    parser.add_argument("--save-png")
    args = parser.parse_args(argv[1:])

    image = read_image(args.image)
    if args.save_png:
        write_png(image, args.save_png)
    glyphs = load_gen_font().load_font(args.font)
    reader = Reader(image, glyphs)
    where = reader.locate()
    if where is None:
        print("check-screen: FAIL: %s (%dx%d) holds no glyph grid in the font at all" %
              (args.image, image.width, image.height))
        return 1
    ox, oy = where
    text, colours = reader.read(ox, oy)
    if args.text_out:
        with open(args.text_out, "w") as f:
            f.write("\n".join(line.rstrip() for line in text) + "\n")
    print("check-screen: %dx%d image, grid of %dx%d cells at offset (%d, %d)" %
          (image.width, image.height, len(text[0]) if text else 0, len(text), ox, oy))

    failures = []
    for want in args.expect:
        hits = [i for i, line in enumerate(text) if want in line]
        if hits:
            print("  ok    %-40r on row %d" % (want, hits[0]))
        else:
            failures.append("%r is not on screen" % want)
    if args.prompt is not None:
        written = [line for line in text if line.strip(" " + UNKNOWN)]
        last = written[-1] if written else ""
        if last.startswith(args.prompt):
            print("  ok    last line starts with %r" % args.prompt)
        else:
            failures.append("the last line with text is %r, not the prompt %r" % (last.rstrip(), args.prompt))
    for spec in args.expect_colour:
        want, _, hex_colour = spec.rpartition("=")
        rgb = bytes.fromhex(hex_colour)
        found = None
        for r, line in enumerate(text):
            c = line.find(want)
            if c >= 0:
                found = [colours[r][c + i] for i, ch in enumerate(want) if ch != " "]
                break
        if found is None:
            failures.append("%r (for its colour) is not on screen" % want)
        elif any(fg != rgb for fg in found):
            shown = sorted({fg.hex() for fg in found if fg})
            failures.append("%r is drawn in %s, not %s" % (want, ", ".join(shown), hex_colour))
        else:
            print("  ok    %-40r drawn in #%s" % (want, hex_colour))

    if failures:
        for f in failures:
            print("  FAIL  " + f)
        print("check-screen: FAIL (%d of the checks); screen text:" % len(failures))
        for line in text:
            if line.strip(" " + UNKNOWN):
                print("    | " + line.rstrip())
        return 1
    print("check-screen: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
