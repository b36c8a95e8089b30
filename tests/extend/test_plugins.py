"""Plugin discovery and isolation through the real command: loose plugin files, broken plugins
(import error, a hook raising, an unknown hook, a name already taken), --strict-plugins, the
MEMDIAG_PLUGINS allowlist, -p no:NAME, and `memdiag plugins` in text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from memdiag import registry

from .helpers import captured_folder, facts_of, good_plugin, write

BROKEN_IMPORT = '''
    import memdiag_module_that_does_not_exist  # noqa: F401
'''

#: Registers a source, then raises in another hook: the source must be dropped too.
RAISING_HOOK = '''
    from memdiag.hookspecs import hookimpl
    from memdiag.sources import Source, spec


    class Half(Source):
        name = "half"
        facts = (spec("half.value", "count", "Registered before the plugin failed."),)

        def collect(self, ev, out):
            out.set("half.value", 1, "x")


    @hookimpl
    def memdiag_fact_sources(register):
        register(Half())


    @hookimpl
    def memdiag_sinks(register):
        raise RuntimeError("sink backend unreachable at import")
'''

TYPO_HOOK = '''
    from memdiag.hookspecs import hookimpl


    @hookimpl
    def memdiag_fact_source(register):
        pass
'''

BAD_SIGNATURE = '''
    from memdiag.hookspecs import hookimpl


    @hookimpl
    def memdiag_sinks(reg):
        pass
'''

CLASH = '''
    from memdiag.hookspecs import hookimpl


    @hookimpl
    def memdiag_report_formats(register):
        register("json", lambda doc, options: "not json")
'''


@pytest.fixture
def cap(tmp_path):
    return captured_folder(tmp_path)


@pytest.fixture
def plugins(tmp_path):
    folder = tmp_path / "plugins"
    good_plugin(folder, "site_answer")
    write(folder / "broken_import.py", BROKEN_IMPORT)
    write(folder / "raising_hook.py", RAISING_HOOK)
    return folder


def test_broken_plugins_are_reported_in_one_line_each_and_the_diagnosis_goes_on(memdiag, cap, plugins):
    r = memdiag("analyze", str(cap), "--plugins-dir", str(plugins), "--format", "json")
    assert r.code == 1, r.err  # the founding case's warning: the diagnosis ran
    doc = r.json()
    assert doc["verdict"]["rule_id"] == "unaccounted-memory"
    assert facts_of(doc)["site_answer.answer"] == 42  # the good plugin still works
    assert "half.value" not in facts_of(doc)  # all of the failing plugin's registrations dropped
    lines = [line for line in r.err.splitlines() if "plugin" in line]
    assert len(lines) == 2, r.err
    assert any(line.startswith("memdiag: plugin broken_import (") and "ModuleNotFoundError" in line
               and "memdiag_module_that_does_not_exist" in line for line in lines), r.err
    assert any(line.startswith("memdiag: plugin raising_hook (") and "RuntimeError" in line
               and "sink backend unreachable" in line for line in lines), r.err
    assert "Traceback" not in r.err


def test_strict_plugins_makes_a_broken_plugin_fatal(memdiag, cap, plugins):
    r = memdiag("analyze", str(cap), "--plugins-dir", str(plugins), "--strict-plugins")
    assert r.code == 3
    assert r.err.count("\n") == 1 and "broken_import" in r.err and "Traceback" not in r.err
    assert r.out == ""


def test_unknown_hook_and_taken_name_are_load_errors(memdiag, cap, tmp_path):
    folder = tmp_path / "p"
    write(folder / "typo.py", TYPO_HOOK)
    write(folder / "clash.py", CLASH)
    write(folder / "signature.py", BAD_SIGNATURE)
    r = memdiag("analyze", str(cap), "--plugins-dir", str(folder), "--format", "json")
    assert r.code == 1
    assert json.loads(r.out)["schema_version"] == 1  # the built-in json format still renders
    assert "implements memdiag_fact_source, which is not a memdiag hook (did you mean memdiag_fact_sources?)" in r.err
    assert "report format 'json' is already registered by json" in r.err
    [line] = [e for e in r.err.splitlines() if "plugin signature" in e]
    assert "PluginValidationError" in line and "'reg'" in line


def test_plugins_command_text_and_json(memdiag, plugins):
    r = memdiag("plugins", "--plugins-dir", str(plugins))
    assert r.code == 0, r.err
    rows = {line.split()[0]: line for line in r.out.splitlines() if line and not line.startswith(" ")}
    assert "1.2.3" in rows["site_answer"] and "fact_sources" in rows["site_answer"]
    assert rows["site_answer"].rstrip().endswith("loaded")
    assert "failed: ModuleNotFoundError" in rows["broken_import"]
    assert "failed: memdiag_sinks raised RuntimeError" in rows["raising_hook"]
    assert "    sources: site_answer" in r.out
    assert "meminfo" not in rows  # built-ins only with --all
    assert "built-in plugin(s) loaded; --all lists them" in r.out

    r = memdiag("plugins", "--plugins-dir", str(plugins), "--format", "json")
    assert r.code == 0
    listed = {p["name"]: p for p in json.loads(r.out)}
    good = listed["site_answer"]
    assert good["version"] == "1.2.3" and good["status"] == "loaded"
    assert good["hooks"] == ["memdiag_fact_sources"] and good["provides"] == {"sources": ["site_answer"]}
    assert good["origin"].endswith("site_answer.py")
    assert listed["broken_import"]["status"] == "failed" and "ModuleNotFoundError" in listed["broken_import"]["error"]
    assert listed["raising_hook"]["provides"] == {}

    r = memdiag("plugins", "--all", "--hook", "report_formats", "--format", "json")
    names = {p["name"] for p in json.loads(r.out)}
    assert {"text", "json", "nagios"} <= names and "meminfo" not in names


def test_allowlist_limits_third_party_plugins(memdiag, cap, tmp_path):
    folder = tmp_path / "p"
    good_plugin(folder, "alpha")
    good_plugin(folder, "beta")
    r = memdiag("analyze", str(cap), "--plugins-dir", str(folder), "-f", "json", env={"MEMDIAG_PLUGINS": "alpha"})
    facts = facts_of(r.json())
    assert facts["alpha.answer"] == 42 and "beta.answer" not in facts
    assert "meminfo.MemTotal" in facts  # built-ins are never subject to the allowlist
    r = memdiag("plugins", "--plugins-dir", str(folder), "-f", "json", env={"MEMDIAG_PLUGINS": "alpha"})
    status = {p["name"]: (p["status"], p["skipped"]) for p in json.loads(r.out)}
    assert status["alpha"] == ("loaded", None)
    assert status["beta"] == ("skipped", "not in MEMDIAG_PLUGINS")
    # Empty: no third-party plugin at all.
    r = memdiag("analyze", str(cap), "--plugins-dir", str(folder), "-f", "json", env={"MEMDIAG_PLUGINS": ""})
    assert not {"alpha.answer", "beta.answer"} & set(facts_of(r.json()))


def test_dash_p_no_blocks_plugins_builtins_included(memdiag, cap, tmp_path):
    folder = tmp_path / "p"
    good_plugin(folder, "alpha")
    good_plugin(folder, "beta")
    r = memdiag("analyze", str(cap), "--plugins-dir", str(folder), "-p", "no:beta", "-f", "json")
    facts = facts_of(r.json())
    assert facts["alpha.answer"] == 42 and "beta.answer" not in facts
    assert "plugin" not in r.err
    # A built-in can be blocked too: without the json format plugin there is no json.
    r = memdiag("analyze", str(cap), "-p", "no:json", "-f", "json")
    assert r.code == 3 and "unknown format 'json'" in r.err
    r = memdiag("plugins", "--all", "-p", "no:json", "-f", "json")
    entry = next(p for p in json.loads(r.out) if p["name"] == "json")
    assert entry["status"] == "skipped" and entry["skipped"] == "blocked by -p no:json"
    # A name that matches nothing is most likely a typo: say so, and carry on.
    r = memdiag("analyze", str(cap), "-p", "no:jsno", "-f", "json")
    assert r.code == 1 and "-p no:jsno: no plugin is named jsno" in r.err


def test_registry_isolation_in_process(tmp_path):
    folder = tmp_path / "p"
    good_plugin(folder, "alpha")
    write(folder / "raising_hook.py", RAISING_HOOK)
    reg = registry.load(plugins_dirs=[str(folder)], autoload=False)
    assert [s.name for s in reg.sources if s.name in ("alpha", "half")] == ["alpha"]
    info = reg.plugin("raising_hook")
    assert info.status == "failed" and info.provides == {}
    assert reg.plugin("alpha").version == "1.2.3"
    with pytest.raises(Exception) as caught:
        registry.load(plugins_dirs=[str(folder)], autoload=False, strict=True)
    assert "raising_hook" in str(caught.value) and caught.value.exit_code == 3


@pytest.mark.parametrize("with_overrides", [False, True])
def test_plain_diagnosis_imports_no_importlib_metadata(cap, tmp_path, with_overrides):
    """Start-up matters on a host in trouble: entry points are read without importlib.metadata,
    and a site overrides file, once validated, is read from the cache without yaml or jsonschema."""
    # Only this pack: a bundled rule file being edited elsewhere would (rightly) be re-validated.
    pack = write(tmp_path / "pack.yaml", """
        rules:
          - id: unaccounted-memory
            title: Unaccounted
            severity: warning
            confidence: suspected
            condition: accounting.unaccounted_ratio > 0.2
            message: "{accounting.unaccounted_ratio|pct} unaccounted"
            remediation: {steps: look}
    """)
    site = ""
    if with_overrides:
        site = str(write(tmp_path / "site.yaml", """
            rules:
              unaccounted-memory:
                exceptions: [{hosts: [web01], reason: known}]
        """))
    code = (
        "import sys, io, contextlib\n"
        "from memdiag import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = cli.main(['analyze', {str(cap)!r}, '-f', 'json', '--overrides', {site!r},\n"
        f"                     '-p', 'no:rulepacks', '--rules', {str(pack)!r}])\n"
        "print(code, sorted(m for m in ('importlib.metadata', 'jsonschema', 'yaml') if m in sys.modules))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            for _ in range(2)]  # the first run may fill the rule and overrides caches
    assert runs[1].returncode == 0, runs[1].stderr
    assert runs[1].stdout.strip() == ("0 []" if with_overrides else "1 []")


def test_etc_plugins_dir_is_searched(monkeypatch, tmp_path, capsys):
    import argparse

    from memdiag import cli

    etc = tmp_path / "plugins.d"
    good_plugin(etc, "from_etc")
    write(etc / "_private.py", "raise SystemExit('helper modules starting with _ are not plugins')\n")
    monkeypatch.setattr(registry, "PLUGINS_DIR", str(etc))
    reg = cli.load_registry(argparse.Namespace(plugins_dir=[], plugin_flags=[], strict_plugins=False))
    assert reg.plugin("from_etc").status == "loaded" and reg.plugin("from_etc").origin == str(etc / "from_etc.py")
    assert reg.plugin("_private") is None
    assert capsys.readouterr().err == ""
