"""Markdown report: verdict, breakdown table, findings with evidence and next steps, escaping."""

from __future__ import annotations

from memdiag.plugins.formats import markdown

from .helpers import load_doc


def table_rows(md: str, header: str) -> list[list[str]]:
    """The body rows of the GFM table whose header line starts with ``header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_founding_case_is_paste_ready():
    md = markdown.render(load_doc("vmware-balloon"), {})
    assert md.startswith("## memdiag: WARNING on `centos74-app01`\n")
    assert "**The VMware balloon driver is suspected of holding 5.07 GiB (67% of MemTotal)" in md
    assert table_rows(md, "| Part |") == [
        ["Kernel (slab, page tables, stacks)", "152.11 MiB", "2%"],
        ["User and page cache", "2.29 GiB", "30%"],
        ["Unaccounted", "5.07 GiB", "67%"],
        ["Free", "122.32 MiB", "2%"],
        ["**MemTotal**", "**7.62 GiB**", "**100%**"],
    ]
    assert "#### WARNING: VMware balloon driver is holding guest memory" in md
    evidence = table_rows(md, "| Evidence |")
    assert evidence[0] == ["`accounting.unaccounted_bytes`", "5.07 GiB", "`proc/meminfo`"]
    assert "**Next step:** Ask the VMware administrator" in md
    assert "```sh\nsudo cat /sys/kernel/debug/vmmemctl  # or: vmware-toolbox-cmd stat balloon\n```" in md
    assert "[Linux vmw\\_balloon driver](https://www.kernel.org/" in md


def test_free_text_cannot_break_tables_or_start_emphasis():
    doc = load_doc("problems")
    doc["findings"][0]["evidence"][0]["display"] = "a|b *c* _d_"
    doc["findings"][0]["evidence"][0]["origin"] = "cmd:ps | grep x"
    md = markdown.render(doc, {})
    row = next(line for line in md.splitlines() if line.startswith("| `kernel.thp_enabled`"))
    assert row == "| `kernel.thp_enabled` | a\\|b \\*c\\* \\_d\\_ | `cmd:ps \\| grep x` |"
    assert "may use more RSS than expected \\| see khugepaged" in md


def test_problems_and_healthy_hosts():
    md = markdown.render(load_doc("problems"), {})
    assert "### What could not be checked" in md
    assert "- rule `slab-leak` failed: division by zero" in md
    assert "- slabinfo (timeout): `/proc/slabinfo`: read timed out after 2.0 s" in md
    healthy = markdown.render(load_doc("healthy"), {})
    assert "### Findings (0)\n\nNo rule found a problem." in healthy
    assert "What could not be checked" not in healthy


def test_every_document_renders(any_doc):
    md = markdown.render(any_doc, {})
    assert md.endswith("\n") and not md.endswith("\n\n")
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")
