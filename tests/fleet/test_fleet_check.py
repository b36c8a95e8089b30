"""``memdiag check`` (a live diagnosis as a monitoring check) and ``--format nagios`` on real
diagnoses: plugin output whose state word always matches the exit code, 0-3 only."""

from __future__ import annotations

import os

import pytest

from .helpers import HERE, memdiag
from .test_fleet_nagios import STATUS, WORDS, perf_items

HOSTS = HERE / "hosts"


def check(*args: str, env: dict | None = None):
    proc = memdiag("check", *args, env={**os.environ, **(env or {})})
    assert proc.returncode in WORDS, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"MEMDIAG {WORDS[proc.returncode]} - "), proc.stdout
    return proc


def test_live_check_answers_in_plugin_format():
    proc = check()
    assert STATUS.match(proc.stdout.splitlines()[0])
    items = perf_items(proc.stdout)
    assert int(items["mem_total"].group("value")) > 0  # the live /proc/meminfo was read


@pytest.mark.parametrize("host, code, finding", [
    ("vmware-guest", 1, "vmware-balloon(warning)"),
    ("balloon-critical", 2, "vmware-balloon(critical)"),
    ("healthy", 0, None),
])
def test_check_of_captured_hosts(host, code, finding):
    proc = check(str(HOSTS / host))
    assert proc.returncode == code
    if finding:  # (other rule packs may add findings; this one must be among them)
        listed = proc.stdout.splitlines()[0].split(" - ", 1)[1].split(";")[0]
        assert finding in listed.split(": ", 1)[1].split(", ")
    # the same diagnosis through the lead's CLI and --format nagios gives the same answer
    analyzed = memdiag("analyze", str(HOSTS / host), "--format", "nagios")
    assert analyzed.returncode == code
    assert analyzed.stdout.splitlines()[0].split(" | ")[0] == proc.stdout.splitlines()[0].split(" | ")[0]


def test_founding_case_perfdata():
    items = perf_items(check(str(HOSTS / "vmware-guest")).stdout)
    assert items["mem_unaccounted"].group(0) == "'mem_unaccounted'=5444485120B;;;0;8185937920"
    assert items["mem_unaccounted_ratio"].group("value") == "66.51"
    assert items["findings_warning"].group(0) == "'findings_warning'=1;0;;0"


def test_live_check_of_another_root():
    """MEMDIAG_ROOT points the live diagnosis at another root, as for a container's host mount."""
    proc = check(env={"MEMDIAG_ROOT": str(HOSTS / "vmware-guest")})
    assert proc.returncode == 1 and "vmware-balloon(warning)" in proc.stdout


def test_no_memory_evidence_is_unknown(tmp_path):
    proc = check(str(tmp_path))
    assert proc.returncode == 3
    # an empty folder is either refused by an input opener or diagnosed to an "unknown" verdict
    assert proc.stdout.startswith("MEMDIAG UNKNOWN - ") and str(tmp_path) in proc.stdout.splitlines()[0]


def test_memdiag_failure_is_unknown_not_a_traceback(tmp_path):
    proc = check(str(tmp_path / "missing"))
    assert proc.returncode == 3
    assert proc.stdout == f"MEMDIAG UNKNOWN - {tmp_path / 'missing'}: no such file or folder\n"
    assert "Traceback" not in proc.stderr


def test_check_output_is_the_same_in_any_locale():
    a = check(str(HOSTS / "vmware-guest"), env={"LC_ALL": "de_DE.UTF-8", "LANG": "de_DE.UTF-8"}).stdout
    b = check(str(HOSTS / "vmware-guest"), env={"LC_ALL": "C"}).stdout
    assert a.split(" | ")[1] == b.split(" | ")[1]
    assert "," not in a.split(" | ")[1].splitlines()[0]


def test_check_never_calls_sinks(tmp_path):
    """With a configuration whose textfile sink `run` does deliver to, `check` (and `--format
    nagios`) leave nothing behind: a monitoring check is read-only."""
    prom_dir, state = tmp_path / "textfile", tmp_path / "state"
    prom_dir.mkdir()
    config = tmp_path / "memdiag.yaml"
    config.write_text(f"delivery:\n  state_dir: {state}\nsinks:\n  - name: prometheus\n"
                      f"    type: textfile\n    directory: {prom_dir}\n")
    env = {"MEMDIAG_ROOT": str(HOSTS / "vmware-guest"), "MEMDIAG_CONFIG": str(config)}
    assert check("--config", str(config), env=env).returncode == 1
    assert check("--config", str(config), "--sink", "prometheus", env=env).returncode == 1
    nagios_fmt = memdiag("run", "--config", str(config), "--format", "nagios", env={**os.environ, **env})
    assert nagios_fmt.returncode == 1 and nagios_fmt.stdout.startswith("MEMDIAG WARNING")
    assert list(prom_dir.iterdir()) == [] and not state.exists()
    # the control: the same configuration does deliver on a normal run
    delivered = memdiag("run", "--config", str(config), "--format", "json", env={**os.environ, **env})
    assert delivered.returncode == 1, delivered.stderr
    assert (prom_dir / "memdiag.prom").exists()
