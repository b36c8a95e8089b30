"""The founding case's top output, and the parser API other sources call."""

from __future__ import annotations

from pathlib import Path

import pytest

from memdiag.evidence import Unreadable
from memdiag.parsers import ParseError
from memdiag.parsers.top import parse_top

SEED = Path("/work/shared/seed-case/top.txt")
if not SEED.exists():  # the repository copy, when the shared folder is not mounted
    SEED = Path(__file__).parent.parent / "fixtures" / "offline" / "top" / "seed-centos7-procps-3.3.10.txt"

KIB = 1024


def test_seed_top_header_and_processes():
    top = parse_top(SEED.read_text(), str(SEED))
    assert top.clock == "16:46:45"
    assert top.layout == "new"
    assert top.mem_total == 7994080 * KIB
    assert top.mem_free == 185776 * KIB
    assert top.mem_used == 7625996 * KIB
    assert top.buff_cache == 182308 * KIB
    assert top.mem_avail == 115964 * KIB
    assert (top.swap_total, top.swap_free, top.swap_used) == (4157436 * KIB, 294944 * KIB, 3862492 * KIB)
    assert len(top.processes) == 20
    java = top.processes[0]
    assert (java.pid, java.user, java.comm) == (3725, "root", "java")
    assert java.res_bytes == round(1.734 * 2**30)
    mysqld = top.processes[1]
    assert (mysqld.comm, mysqld.res_bytes) == ("mysqld", 233064 * KIB)
    assert "vmtoolsd" in {p.comm for p in top.processes}
    # the extra DATA column after COMMAND is not mistaken for part of the name
    assert top.processes[-1].comm == "agetty" and top.processes[-1].res_bytes == 4 * KIB
    assert top.skipped == []


def test_parse_error_is_unreadable_and_names_origin():
    with pytest.raises(ParseError) as err:
        parse_top("bash: top: command not found\n", "ticket/top.txt")
    assert isinstance(err.value, Unreadable)
    assert err.value.kind == "malformed"
    assert str(err.value).startswith("ticket/top.txt: ")
