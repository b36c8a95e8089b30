"""HTML report: one self-contained file, checked statically and rendered in headless Chromium
(the DOM it builds and a screenshot of it)."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from memdiag.plugins.formats import html as html_format

from .helpers import colour_histogram, decode_png, load_doc, require_tool

# Tags that make a browser fetch something; the report must use none of them.
FETCHING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "source", "audio", "video",
                 "track", "image", "use", "feimage", "base", "meta-refresh"}


class Elements(HTMLParser):
    """Every start tag with its attributes, plus the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def parse(text: str) -> Elements:
    p = Elements()
    p.feed(text)
    return p


def chromium_args(tmp_path: Path) -> list[str]:
    return [
        require_tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # belt and braces: nothing may resolve anyway
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*chromium_args(tmp_path), *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


def test_self_contained(any_doc):
    page = html_format.render(any_doc, {})
    p = parse(page)
    fetching = [t for t, a in p.tags if t in FETCHING_TAGS]
    assert fetching == []
    # only <a href> may point elsewhere (navigation, not a fetch), and no inline style fetches
    for tag, attrs in p.tags:
        for name, value in attrs.items():
            if name in ("src", "srcset", "poster", "data", "background", "xlink:href") or (name == "href" and tag != "a"):
                pytest.fail(f"<{tag} {name}={value!r}> would fetch")
            if name == "style":
                assert "url(" not in value
    css = "".join(p.styles)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    csp = p.find("meta", http_equiv="Content-Security-Policy")
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_text_is_escaped():
    doc = load_doc("problems")
    doc["host"] = "<script>alert(1)</script>"
    doc["findings"][0]["message"] = 'a <b onmouseover="x"> & c'
    page = html_format.render(doc, {})
    assert "<script>" not in page and "<b onmouseover" not in page
    assert "a &lt;b onmouseover=&quot;x&quot;&gt; &amp; c" in page


def test_breakdown_svg_geometry():
    doc = load_doc("vmware-balloon")
    p = parse(html_format.render(doc, {}))
    rects = p.find("rect", **{"class": "segment"})
    segments = doc["accounting"]["segments"]
    assert [r["data-key"] for r in rects] == [s["key"] for s in segments]
    assert [int(r["data-bytes"]) for r in rects] == [s["bytes"] for s in segments]
    widths = [float(r["width"]) for r in rects]
    assert sum(widths) == pytest.approx(1000, abs=0.05)  # the parts fill the bar exactly
    xs = [float(r["x"]) for r in rects]
    assert all(abs(xs[i] + widths[i] - xs[i + 1]) < 0.02 for i in range(len(xs) - 1))
    unacc = rects[[s["key"] for s in segments].index("unaccounted")]
    assert float(unacc["width"]) == pytest.approx(1000 * 5316880 / 7994080, abs=0.01)


def test_negative_segment_is_left_out_and_said():
    doc = load_doc("healthy")
    doc["accounting"]["segments"][2]["bytes"] = -4096 * 1024
    page = html_format.render(doc, {})
    assert len(parse(page).find("rect", **{"class": "segment"})) == 3
    assert "Unaccounted is negative (-4.00 MiB)" in page


def test_rendered_dom_in_chromium(tmp_path):
    doc = load_doc("oom-critical")
    page = tmp_path / "report.html"
    page.write_text(html_format.render(doc, {}), encoding="utf-8")
    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    p = parse(dom)
    header = p.find("header", id="verdict")
    assert header and header[0]["data-severity"] == "critical"
    assert re.search(r"<h1>CRITICAL on db-03</h1>", dom)
    articles = [a for t, a in p.tags if t == "article"]
    assert [(a["data-rule"], a["data-severity"]) for a in articles] == [
        ("memory-exhausted", "critical"), ("swap-exhausted", "warning")]
    assert len(p.find("rect", **{"class": "segment"})) == 4
    assert len(p.find("table", **{"class": "evidence"})) == 2
    assert "journalctl -k | grep -i 'out of memory'" in dom.replace("&#39;", "'")


def test_screenshot_shows_the_report(tmp_path):
    doc = load_doc("vmware-balloon")
    page = tmp_path / "report.html"
    page.write_text(html_format.render(doc, {}), encoding="utf-8")
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    width, height, bpp, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    hist = colour_histogram(width, height, bpp, pixels)
    total = width * height
    background = max(hist.values())
    assert background < 0.6 * total, "the page is mostly one colour: nothing rendered"
    assert len(hist) > 200, "too few colours for text, a banner and a chart"
    # The warning banner and the chart's unaccounted part are really painted, at about the size
    # the layout gives them: banner ~1100x160 px; the red part 2/3 of a ~1000x64 px bar.
    assert hist.get((0xEF, 0x6C, 0x00), 0) > 100_000
    assert hist.get((0xE5, 0x39, 0x35), 0) > 25_000
    # user part (blue) is smaller than the unaccounted part, as in the data
    assert 0 < hist.get((0x1E, 0x88, 0xE5), 0) < hist[(0xE5, 0x39, 0x35)]
