"""Streaming a file's lines: a block's lines handed out at once, with exactly what the line-by-line
generator it replaced gave, errors included (the old one is kept here as the oracle)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag.evidence import Unreadable, stream_lines


def old_stream_lines(read, close, path, limit, reading, shown):
    """stream_lines as it was: a generator resumed for every line."""
    reading[0] = path
    try:
        total, tail = 0, []
        while True:
            data = read()
            if not data:
                break
            total += len(data)
            cut = data.rfind(b"\n")
            if cut < 0:
                tail.append(data)
                if total > limit:
                    raise Unreadable(shown, "file too large to stream", "malformed")
                continue
            block = b"".join(tail) + data[:cut] if tail else data[:cut]
            tail = [data[cut + 1:]] if cut + 1 < len(data) else []
            yield from old_block_lines(block, shown)
            if total > limit:
                raise Unreadable(shown, "file too large to stream", "malformed")
        if tail:
            yield from old_block_lines(b"".join(tail), shown)
    finally:
        reading.pop(0, None)
        close()


def old_block_lines(block, shown):
    nul = block.find(b"\x00")
    if nul >= 0:
        start = block.rfind(b"\n", 0, nul)
        if start >= 0:
            yield from old_block_lines(block[:start], shown)
        raise Unreadable(shown, "binary data where text was expected", "malformed")
    text = block.decode("utf-8", errors="replace")
    lines = text.split("\n")
    yield from ([line.rstrip("\r") for line in lines] if "\r" in text else lines)


def drain(stream_fn, data: bytes, sizes: list[int], limit: int):
    """(lines handed out, the error that ended the stream, whether it was closed)."""
    chunks, pos = [], 0
    for n in sizes:
        if pos >= len(data):
            break
        chunks.append(data[pos:pos + n])
        pos += n
    if pos < len(data):
        chunks.append(data[pos:])
    feed = iter(chunks)
    closed = []
    got, error = [], None
    try:
        for line in stream_fn(lambda: next(feed, b""), lambda: closed.append(1), "p", limit, {}, "shown"):
            got.append(line)
    except Unreadable as exc:
        error = (exc.message, exc.path, exc.kind)
    return got, error, closed == [1]


pieces = st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\x00", b"\xff", b"\xc3\xa9", b"line one", b" ", b"\r"])


@settings(max_examples=400, deadline=None)
@given(st.lists(pieces, max_size=40).map(b"".join), st.lists(st.integers(1, 12), max_size=20),
       st.integers(1, 200))
def test_blocks_of_lines_stream_as_the_line_generator_did(data, sizes, limit):
    assert drain(stream_lines, data, sizes, limit) == drain(old_stream_lines, data, sizes, limit)


def test_the_lines_before_binary_data_are_handed_out_first():
    got, error, closed = drain(stream_lines, b"one\ntwo\nth\x00ree\nfour\n", [64], 1 << 20)
    assert got == ["one", "two"] and error == ("binary data where text was expected", "shown", "malformed")
    assert closed


def test_a_stream_dropped_half_way_is_closed():
    closed = []
    lines = stream_lines(iter([b"a\nb\nc\n", b"d\n", b""]).__next__, lambda: closed.append(1), "p", 1 << 20, {},
                         "shown")
    assert next(lines) == "a"
    del lines
    assert closed == [1]
