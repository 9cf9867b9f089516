#!/usr/bin/env python3
"""Renders a caplab HTML page (report.html, compare.html) in headless Chromium and checks it.

    python3 scripts/check_html.py PAGE.html [SCREENSHOT.png]

Exits non-zero unless:
- the page is self-contained: every `src`/`href` is a `data:` URI, an in-page `#anchor`, or a
  relative file that exists next to the page; it has no `<script>` (readable without JavaScript);
- Debian's `chromium` loads it headless and reports no console message (a page error or a failed
  load shows up there) and writes the screenshot: a PNG of the window's size, and not blank.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from html.parser import HTMLParser

WIDTH, HEIGHT = 1280, 2000


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []
        self.scripts = 0
        self.tags = 0

    def handle_starttag(self, tag, attrs):
        self.tags += 1
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, value))


def fail(msg):
    print(f"check_html: {msg}", file=sys.stderr)
    sys.exit(1)


def png_pixels(path):
    """(width, height, distinct row samples) of an 8-bit RGB/RGBA PNG, decoded with zlib."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            ctype = body[9]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4}.get(ctype)
    if channels is None:
        return width, height, None
    stride = width * channels + 1
    # Distinct byte values over the image (filters kept: a blank page compresses to few values).
    distinct = len(set(raw[i] for i in range(0, len(raw), max(1, len(raw) // 50000))))
    return width, height, distinct


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    page = os.path.abspath(sys.argv[1])
    shot = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(tempfile.mkdtemp(), "page.png")
    with open(page, encoding="utf-8") as f:
        html = f.read()
    p = Refs()
    p.feed(html)
    if p.tags < 5:
        fail(f"{page}: only {p.tags} tags")
    if p.scripts:
        fail(f"{page}: {p.scripts} <script> element(s); the page must read without JavaScript")
    base = os.path.dirname(page)
    for tag, ref in p.refs:
        if ref.startswith(("data:", "#")):
            continue
        if re.match(r"^[a-z]+://", ref) or ref.startswith("/"):
            fail(f"{page}: <{tag}> refers to {ref!r}, outside the page's directory")
        if not os.path.exists(os.path.join(base, ref)):
            fail(f"{page}: <{tag}> refers to {ref!r}, which does not exist")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        fail("chromium not found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
             "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "file://" + page],
            capture_output=True, text=True, timeout=120)
    console = [l for l in run.stderr.splitlines() if ":CONSOLE" in l]
    if run.returncode != 0:
        fail(f"chromium exited {run.returncode}: {run.stderr[-2000:]}")
    if console:
        fail("console messages while loading the page:\n" + "\n".join(console))
    if not os.path.isfile(shot):
        fail("chromium wrote no screenshot")
    width, height, distinct = png_pixels(shot)
    if (width, height) != (WIDTH, HEIGHT):
        fail(f"screenshot is {width}x{height}, expected {WIDTH}x{HEIGHT}")
    if distinct is not None and distinct < 8:
        fail(f"screenshot looks blank ({distinct} distinct byte values)")
    print(f"{os.path.basename(page)}: {p.tags} tags, {len(p.refs)} references, rendered "
          f"{width}x{height} by {os.path.basename(browser)} without console messages -> {shot}")


if __name__ == "__main__":
    main()
