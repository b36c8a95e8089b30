"""Helpers of the fleet/report tests: the hand-made findings documents and real peer programs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
DOCS = HERE / "docs"
DOC_NAMES = ("vmware-balloon", "healthy", "oom-critical", "problems")
SEED_CASE = Path(os.environ.get("MEMDIAG_SEED_CASE", REPO.parent / "shared" / "seed-case"))
BIN = Path(sys.executable).parent


def load_doc(name: str) -> dict:
    return json.loads((DOCS / f"{name}.json").read_text())


def require_tool(name: str) -> str:
    """Path of a real peer program; skipped when absent, but a failure under CI (CI=...)."""
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        message = f"{name} is not installed (scripts/apt-packages.txt / the test extra provide it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def memdiag(*args: str, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed memdiag CLI in a subprocess, as a user or a runbook does."""
    proc = subprocess.run([str(BIN / "memdiag"), *args], capture_output=True, text=True, timeout=120, **kwargs)
    if check and proc.returncode not in (0, 1, 2):
        raise AssertionError(f"memdiag {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, raw pixel rows) of an 8-bit RGB/RGBA PNG, stdlib only."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        out += line
        prev = line
    return width, height, bpp, bytes(out)


def colour_histogram(width: int, height: int, bpp: int, pixels: bytes) -> dict[tuple[int, int, int], int]:
    """How many pixels have each RGB colour (alpha ignored)."""
    from collections import Counter

    counts: Counter = Counter()
    for y in range(height):
        row = pixels[y * width * bpp:(y + 1) * width * bpp]
        counts.update(zip(row[0::bpp], row[1::bpp], row[2::bpp]))
    return dict(counts)
