#!/usr/bin/python
# Copyright: memdiag developers
# Apache License 2.0 (see the LICENSE of the memdiag project)
"""Ansible module: run memdiag on the managed host and return its findings document."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: diagnose
short_description: Find where a Linux host's memory went, with memdiag
description:
  - Runs memdiag on the managed host, read-only (no sinks are called), and returns its findings
    document as structured data, plus the verdict and the findings for easy use in conditions.
  - Diagnoses the live host, or captured evidence on the host (a memdiag capture, a sosreport, a
    folder of command outputs) given in O(path).
  - Uses an existing memdiag install, or installs memdiag with pip into a virtual environment
    from O(install_from) (a wheel, a source folder or any pip requirement) when none is found.
  - Never changes the host except for that optional install.
version_added: "0.1.0"
author:
  - memdiag developers
options:
  path:
    description:
      - Evidence on the managed host to diagnose instead of the live host.
    type: path
  executable:
    description:
      - The memdiag program to run. By default C(memdiag) under O(install_dir), then on E(PATH).
    type: path
  install_from:
    description:
      - What to pip-install when memdiag is not found (or O(force_install) is set), for example
        a wheel copied to the host, a source folder, or C(memdiag==0.1.0).
    type: str
  install_dir:
    description:
      - Virtual environment memdiag is installed into and looked for in.
    type: path
    default: /opt/memdiag
  install_python:
    description:
      - Python interpreter that creates the virtual environment (3.11 or newer).
    type: str
    default: python3
  pip_args:
    description:
      - Extra pip arguments, for example C(--no-index) and C(--find-links=/srv/wheels) on hosts
        without access to a package index.
    type: list
    elements: str
    default: []
  force_install:
    description:
      - Install from O(install_from) even when memdiag is already there (to upgrade it).
    type: bool
    default: false
  rules:
    description:
      - Extra rule files or folders on the managed host.
    type: list
    elements: path
    default: []
  params:
    description:
      - Rule parameter overrides, as C(RULE.NAME) to value.
    type: dict
    default: {}
  timeout:
    description:
      - Deadline in seconds for reading the evidence.
    type: float
    default: 20
  fail_on:
    description:
      - Fail the task when the verdict reaches this severity (the document is still returned).
    type: str
    choices: [never, warning, critical]
    default: never
notes:
  - Check mode is supported. A diagnosis changes nothing; an install that would be needed is
    reported as an error instead of being done.
"""

EXAMPLES = r"""
- name: Diagnose every host, install memdiag from a wheel where missing
  memdiag.memdiag.diagnose:
    install_from: /tmp/memdiag-0.1.0-py3-none-any.whl
  register: memdiag

- name: Show hosts with a warning or worse
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ memdiag.verdict.summary }}"
  when: memdiag.severity in ['warning', 'critical']

- name: Diagnose a sosreport already on the host, as a gate in a runbook
  memdiag.memdiag.diagnose:
    path: /var/tmp/sosreport-db03.tar.xz
    fail_on: critical
"""

RETURN = r"""
document:
  description: The complete findings document (memdiag's schemas/findings.schema.json).
  returned: success
  type: dict
verdict:
  description: The verdict, with C(severity), C(summary) and C(rule_id).
  returned: success
  type: dict
  sample: {"severity": "warning", "summary": "VMware balloon driver is holding guest memory (suspected)", "rule_id": "vmware-balloon"}
severity:
  description: The verdict's severity, one of C(ok), C(info), C(warning), C(critical).
  returned: success
  type: str
findings:
  description: The findings (rule_id, title, severity, confidence, message, evidence, remediation, ...).
  returned: success
  type: list
  elements: dict
exit_code:
  description: memdiag's exit code (0 ok or info, 1 warning, 2 critical).
  returned: always
  type: int
memdiag:
  description: The program that ran and its version.
  returned: always
  type: dict
  sample: {"executable": "/opt/memdiag/bin/memdiag", "version": "0.1.0"}
installed:
  description: Whether memdiag was installed by this task.
  returned: always
  type: bool
cmd:
  description: The command line that ran.
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

SEVERITY_RANK = {"ok": 0, "info": 0, "warning": 1, "critical": 2}


def find_memdiag(module, install_dir):
    """The memdiag program to run, or None."""
    explicit = module.params["executable"]
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    in_venv = os.path.join(install_dir, "bin", "memdiag")
    if os.access(in_venv, os.X_OK):
        return in_venv
    return module.get_bin_path("memdiag")


def install(module, install_dir):
    """Create the virtual environment if needed and pip-install memdiag into it."""
    python = os.path.join(install_dir, "bin", "python")
    if not os.access(python, os.X_OK):
        rc, out, err = module.run_command([module.params["install_python"], "-m", "venv", install_dir])
        if rc != 0:
            module.fail_json(msg="cannot create virtual environment %s: %s" % (install_dir, (err or out).strip()),
                             installed=False, exit_code=rc, memdiag={}, cmd=[])
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    cmd += list(module.params["pip_args"]) + [module.params["install_from"]]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        last = (err or out).strip().splitlines()
        module.fail_json(msg="pip install %s failed: %s" % (module.params["install_from"], last[-1] if last else rc),
                         installed=False, exit_code=rc, memdiag={}, cmd=cmd)
    return os.path.join(install_dir, "bin", "memdiag")


def version_of(module, executable):
    rc, out, _err = module.run_command([executable, "--version"])
    text = out.strip()
    return text.split()[-1] if rc == 0 and text else ""


def build_command(params, executable):
    if params["path"]:
        cmd = [executable, "analyze", params["path"]]
    else:
        cmd = [executable, "run"]
    cmd += ["--no-sinks", "--format", "json", "--timeout", str(params["timeout"])]
    for rule_path in params["rules"]:
        cmd += ["--rules", rule_path]
    for name, value in sorted(params["params"].items()):
        cmd += ["--param", "%s=%s" % (name, value)]
    return cmd


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            executable=dict(type="path"),
            install_from=dict(type="str"),
            install_dir=dict(type="path", default="/opt/memdiag"),
            install_python=dict(type="str", default="python3"),
            pip_args=dict(type="list", elements="str", default=[]),
            force_install=dict(type="bool", default=False),
            rules=dict(type="list", elements="path", default=[]),
            params=dict(type="dict", default={}),
            timeout=dict(type="float", default=20),
            fail_on=dict(type="str", choices=["never", "warning", "critical"], default="never"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    install_dir = p["install_dir"]
    executable = find_memdiag(module, install_dir)
    installed = False
    if p["install_from"] and (executable is None or p["force_install"]):
        if module.check_mode:
            module.fail_json(msg="memdiag would be installed from %s (not done in check mode)" % p["install_from"],
                             installed=False, exit_code=3, memdiag={}, cmd=[])
        executable = install(module, install_dir)
        installed = True
    if executable is None:
        where = p["executable"] or "%s/bin or PATH" % install_dir
        module.fail_json(msg="memdiag not found (%s); install it or give install_from" % where,
                         installed=False, exit_code=3, memdiag={}, cmd=[])

    info = {"executable": executable, "version": version_of(module, executable)}
    cmd = build_command(p, executable)
    # LC_ALL=C: numbers and messages the same on every host of the fleet.
    rc, out, err = module.run_command(cmd, environ_update={"LC_ALL": "C"})
    result = dict(changed=installed, installed=installed, exit_code=rc, memdiag=info, cmd=cmd)
    if rc not in (0, 1, 2):
        lines = [line for line in (err or out).strip().splitlines() if line.strip()]
        module.fail_json(msg=lines[-1] if lines else "memdiag exited %d" % rc, stderr=err, **result)
    try:
        document = json.loads(out)
    except ValueError as exc:
        module.fail_json(msg="memdiag printed no JSON document: %s" % exc, stdout=out, stderr=err, **result)
    verdict = document.get("verdict", {})
    severity = verdict.get("severity", "ok")
    result.update(document=document, verdict=verdict, severity=severity, findings=document.get("findings", []))
    if err.strip():
        result["warnings"] = [line for line in err.strip().splitlines()]
    threshold = p["fail_on"]
    if threshold != "never" and SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[threshold]:
        module.fail_json(msg="memdiag verdict on this host is %s: %s" % (severity, verdict.get("summary", "")),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
