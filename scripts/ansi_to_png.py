#!/usr/bin/env python3
"""Render a `tmux capture-pane -e -p` dump (text with SGR colour codes) to a PNG.

Usage: ansi_to_png.py INPUT.ans OUTPUT.png [COLUMNS ROWS]
Needs Pillow and the DejaVu Sans Mono font (fonts-dejavu-core on Debian).
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
# The mono face lacks Braille (the charts); DejaVu Sans has it.
FONT_FALLBACK = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SIZE = 16
DEFAULT_FG = (208, 208, 208)
DEFAULT_BG = (16, 20, 24)
BASIC = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def color256(n):
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


class Pen:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.reverse = self.underline = False

    def apply(self, params):
        codes = [int(p) if p else 0 for p in re.split(r"[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.reset()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 4:
                self.underline = True
            elif c == 7:
                self.reverse = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 24:
                self.underline = False
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = BASIC[c - 30]
            elif 90 <= c <= 97:
                self.fg = BASIC[c - 90 + 8]
            elif 40 <= c <= 47:
                self.bg = BASIC[c - 40]
            elif 100 <= c <= 107:
                self.bg = BASIC[c - 100 + 8]
            elif c == 39:
                self.fg = None
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 2 and i + 4 < len(codes):
                    rgb = tuple(codes[i + 2:i + 5])
                    i += 4
                elif codes[i + 1] == 5 and i + 2 < len(codes):
                    rgb = color256(codes[i + 2])
                    i += 2
                else:
                    rgb = None
                if c == 38:
                    self.fg = rgb
                else:
                    self.bg = rgb
            i += 1

    def colors(self):
        fg = self.fg or DEFAULT_FG
        bg = self.bg or DEFAULT_BG
        if self.dim:
            fg = tuple((a + b) // 2 for a, b in zip(fg, bg))
        if self.reverse:
            fg, bg = bg, fg
        return fg, bg


def parse(text):
    """Yields rows of (char, fg, bg, bold, underline) cells."""
    pen = Pen()
    rows = []
    for line in text.split("\n"):
        cells = []
        pos = 0
        for m in SGR.finditer(line):
            for ch in line[pos:m.start()]:
                fg, bg = pen.colors()
                cells.append((ch, fg, bg, pen.bold, pen.underline))
            pen.apply(m.group(1))
            pos = m.end()
        for ch in line[pos:]:
            fg, bg = pen.colors()
            cells.append((ch, fg, bg, pen.bold, pen.underline))
        rows.append(cells)
    return rows


def main():
    src, out = sys.argv[1], sys.argv[2]
    rows = parse(open(src, encoding="utf-8", errors="replace").read().rstrip("\n"))
    cols = int(sys.argv[3]) if len(sys.argv) > 3 else max(len(r) for r in rows)
    nrows = int(sys.argv[4]) if len(sys.argv) > 4 else len(rows)
    font = ImageFont.truetype(FONT, SIZE)
    bold = ImageFont.truetype(FONT_BOLD, SIZE)
    fallback = ImageFont.truetype(FONT_FALLBACK, SIZE)
    cw = int(round(font.getlength("M")))
    ch = int(SIZE * 1.25)
    img = Image.new("RGB", (cols * cw + 16, nrows * ch + 16), DEFAULT_BG)
    d = ImageDraw.Draw(img)
    for y, cells in enumerate(rows[:nrows]):
        for x, (c, fg, bg, is_bold, underline) in enumerate(cells[:cols]):
            px, py = 8 + x * cw, 8 + y * ch
            if bg != DEFAULT_BG:
                d.rectangle([px, py, px + cw - 1, py + ch - 1], fill=bg)
            if c != " ":
                face = fallback if 0x2800 <= ord(c) <= 0x28FF else (bold if is_bold else font)
                d.text((px, py + 1), c, font=face, fill=fg)
            if underline:
                d.line([px, py + ch - 2, px + cw - 1, py + ch - 2], fill=fg)
    img.save(out)


if __name__ == "__main__":
    main()
