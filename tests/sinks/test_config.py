"""The configuration file: discovery order, schema validation with file:line messages,
secrets from ${VAR} and *_file."""

from __future__ import annotations

import pytest

from memdiag.delivery import find_config
from memdiag.delivery.config import load_config
from memdiag.errors import UsageError


def test_find_config_order(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".config" / "memdiag").mkdir(parents=True)
    user = home / ".config" / "memdiag" / "config.yaml"
    user.write_text("sinks: []\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("MEMDIAG_CONFIG", raising=False)
    assert find_config(None) == str(user)
    monkeypatch.setenv("MEMDIAG_CONFIG", "/from/env.yaml")
    assert find_config(None) == "/from/env.yaml"
    assert find_config("/explicit.yaml") == "/explicit.yaml"
    monkeypatch.delenv("MEMDIAG_CONFIG")
    user.unlink()
    import os

    assert find_config(None) == ("/etc/memdiag/config.yaml" if os.path.isfile("/etc/memdiag/config.yaml") else None)


@pytest.mark.parametrize("text,expect", [
    ("sinks:\n  - name: am\n    type: alertmanager\n", ":2: sinks[0] (am): 'url' is a required property"),
    ("sinks:\n  - name: am\n    type: alertmanager\n    url: http://x\n    colour: red\n",
     ":2: sinks[0] (am): unknown option(s) ('colour' was unexpected)"),
    ("sinks:\n  - {name: j, type: jira, url: 'https://x', project: OPS, flavor: server}\n",
     "sinks[0] (j).flavor: 'server' is not one of ['cloud', 'datacenter']"),
    ("sinks:\n  - {name: a, type: textfile, directory: /x, min_severity: high}\n",
     "sinks[0] (a).min_severity: 'high' is not one of"),
    ("sinks: [{name: a, type: textfile, directory: /x}, {name: a, type: textfile, directory: /y}]\n",
     "sink name 'a' is used twice"),
    ("sinks:\n  - name: a\n   type: x\n", "not valid YAML"),
    ("delivery: {deadline: -1}\n", "delivery.deadline: -1 is less than or equal to the minimum of 0"),
    ("bogus: 1\n", "Additional properties are not allowed ('bogus' was unexpected)"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, expect):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(str(path)) and expect in message and "\n" not in message


def test_unreadable_config(tmp_path):
    with pytest.raises(UsageError, match="cannot read config"):
        load_config(str(tmp_path / "missing.yaml"))


def test_plugin_sink_types_keep_their_options(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sinks:\n  - {name: x, type: acme-tickets, queue: OPS, any_thing: [1, 2]}\n")
    cfg = load_config(str(path))
    assert cfg.sinks[0].options == {"queue": "OPS", "any_thing": [1, 2]}


def test_secrets_from_env_and_files(tmp_path, monkeypatch):
    (tmp_path / "tok").write_text("file-token-1234\n")
    monkeypatch.setenv("GH_TOKEN", "env-token-5678")
    monkeypatch.setenv("HOOK", "T1/B2/C3xyz")
    path = tmp_path / "c.yaml"
    path.write_text(f"""
sinks:
  - {{name: j, type: jira, url: "https://x", project: OPS, email: a@b.c, token_file: {tmp_path / 'tok'}}}
  - {{name: g, type: github, repo: a/b, token: "${{GH_TOKEN}}"}}
  - {{name: s, type: slack, url: "https://hooks.slack.com/services/${{HOOK}}"}}
  - {{name: t, type: textfile, directory: "/var/$$lib"}}
""")
    cfg = load_config(str(path))
    assert cfg.sink("j").options["token"] == "file-token-1234"
    assert cfg.sink("g").options["token"] == "env-token-5678"
    assert cfg.sink("t").options["directory"] == "/var/$lib"
    assert "token" not in cfg.sink("j").literal and "url" not in cfg.sink("s").literal
    masked = cfg.redactor.redact("a file-token-1234 b env-token-5678 c https://hooks.slack.com/services/T1/B2/C3xyz")
    assert masked == "a *** b *** c https://hooks.slack.com/***"
    assert "file-token" not in repr(cfg.sinks)


def test_both_value_and_file_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    (tmp_path / "t").write_text("x")
    path.write_text(f"sinks: [{{name: g, type: github, repo: a/b, token: '${{X}}', token_file: {tmp_path / 't'}}}]\n")
    with pytest.raises(UsageError, match="either 'token' or 'token_file'"):
        load_config(str(path))
