"""The gpu source: DRM fdinfo memory per region, de-duplicated by client id."""

from __future__ import annotations

import shutil
from pathlib import Path

from memdiag.units import KIB, MIB

from memdiag.evidence import Evidence
from memdiag.plugins.sources._readers import FD_TABLE
from memdiag.plugins.sources.gpu import GpuSource, drm_devices, parse_fdinfo
from .helpers import run, run_live, tree

AMD = """pos:\t0
flags:\t02104002
mnt_id:\t24
ino:\t614
pasid:\t32784
drm-driver:\tamdgpu
drm-pdev:\t0000:08:00.0
drm-client-id:\t217
drm-memory-vram:\t2068 KiB
drm-memory-gtt:\t8192 KiB
drm-memory-cpu:\t0 KiB
drm-engine-gfx:\t107322799 ns
"""
LLM = """drm-driver:\tamdgpu
drm-pdev:\t0000:c4:00.0
drm-client-id:\t12
drm-memory-cpu:\t0 KiB
drm-memory-gtt:\t25258000 KiB
drm-memory-vram:\t5348 KiB
"""
I915 = """drm-driver:\ti915
drm-pdev:\t0000:00:02.0
drm-client-id:\t7
drm-total-system0:\t512 MiB
drm-resident-system0:\t500 MiB
drm-total-stolen-system0:\t0
drm-engine-render:\t25662044495 ns
"""


def test_clients_deduplicated_and_regions_classified(tmp_path):
    root = tree(tmp_path, {
        "proc/2217/fdinfo/99": AMD, "proc/2217/comm": "gnome-shell\n",
        "proc/2300/fdinfo/12": AMD,  # the same client shared with another process
        "proc/2300/fdinfo/0": "pos:\t0\nflags:\t0100002\n",  # not DRM
        "proc/4000/fdinfo/5": LLM, "proc/4000/comm": "llama-server\n",
        "proc/5000/fdinfo/9": I915, "proc/5000/comm": "Xorg\n",
    })
    facts = run([GpuSource()], root)
    assert facts.get("gpu.clients") == 3
    assert facts.get("gpu.drivers") == ["amdgpu", "i915"]
    regions = facts.get("gpu.regions")
    assert regions["gtt"] == 8192 * KIB + 25258000 * KIB and regions["system0"] == 512 * MIB
    assert facts.get("gpu.system_bytes") == 8192 * KIB + 25258000 * KIB + 512 * MIB
    assert facts.get("gpu.vram_bytes") == 2068 * KIB + 5348 * KIB
    top = facts.get("gpu.top")
    assert top[0] == {"pid": 4000, "driver": "amdgpu", "system_bytes": 25258000 * KIB,
                      "vram_bytes": 5348 * KIB, "process": "llama-server"}
    assert facts.get("gpu.complete") is True
    assert facts.problems == []


def test_total_key_wins_over_legacy_alias():
    info = parse_fdinfo("drm-client-id: 1\ndrm-total-vram: 4 MiB\ndrm-memory-vram: 4096 KiB\ndrm-memory-gtt: 100\n")
    assert info["regions"] == {"vram": 4 * MIB, "gtt": 100}  # a bare number is bytes


def test_not_a_drm_client():
    assert parse_fdinfo("pos: 0\nflags: 02\n") is None
    assert parse_fdinfo("drm-driver: x\n") is None  # no client id, cannot be de-duplicated


def test_no_gpu(tmp_path):
    facts = run([GpuSource()], tree(tmp_path, {"proc/1/fdinfo/0": "pos:\t0\n"}))
    assert facts.facts == {} and facts.problems == []


def test_live():
    run_live([GpuSource()])


def _live_tree(tmp_path, drm: bool):
    """A live-like root: one process with a descriptor on a DRM render node and its fdinfo."""
    files = {"proc/2217/fdinfo/9": AMD, "proc/2217/comm": "gnome-shell\n", "sys/class/dmi/id/sys_vendor": "x\n"}
    if drm:
        files["sys/class/drm/renderD128/dev"] = "226:128\n"
    tree(tmp_path, files)
    (tmp_path / "proc/2217/fd").mkdir()
    (tmp_path / "proc/2217/fd/9").symlink_to("/dev/dri/renderD128")
    return Evidence(str(tmp_path), kind="live")


def test_live_with_a_drm_device_reads_the_descriptors(tmp_path):
    ev = _live_tree(tmp_path, drm=True)
    facts = run([GpuSource()], ev.root, ev=ev)
    assert facts.get("gpu.clients") == 1 and facts.get("gpu.vram_bytes") == 2068 * KIB
    assert facts.get("gpu.top")[0]["process"] == "gnome-shell"
    assert FD_TABLE in ev.shared


def test_live_without_a_drm_device_skips_the_descriptor_walk(tmp_path):
    ev = _live_tree(tmp_path, drm=False)
    facts = run([GpuSource()], ev.root, ev=ev)
    assert facts.get("gpu.clients") == 0 and facts.get("gpu.complete") is True
    assert "no DRM device" in facts.origin("gpu.complete")
    assert FD_TABLE not in ev.shared  # nobody walked the descriptors
    assert drm_devices(ev) is False


def test_live_without_sysfs_cannot_tell_and_walks(tmp_path):
    ev = _live_tree(tmp_path, drm=False)
    shutil.rmtree(tmp_path / "sys")
    assert drm_devices(ev) is None
    facts = run([GpuSource()], ev.root, ev=ev)
    assert facts.get("gpu.clients") == 1  # the descriptor walk found it


def _collected(tmp_path, monkeypatch, capsys, drm: bool) -> Path:
    """A memdiag capture (format 2: it has memory blocks to pack) of a live-like root."""
    import json
    import tarfile

    from memdiag import cli

    root = tmp_path / "root"
    _live_tree(root, drm)
    tree(root, {"sys/devices/system/memory/block_size_bytes": "8000000\n",
                "sys/devices/system/memory/memory0/state": "online\n"})
    monkeypatch.setenv("MEMDIAG_ROOT", str(root))
    assert cli.main(["collect", "-o", str(tmp_path / "cap.tar.gz")]) == 0
    capsys.readouterr()
    with tarfile.open(tmp_path / "cap.tar.gz") as tar:
        tar.extractall(tmp_path / "cap", filter="data")
    (folder,) = (tmp_path / "cap").iterdir()
    assert json.loads((folder / "memdiag-capture.json").read_text())["version"] == 2
    return folder


def _analysed(folder: Path, listed: list[str] | None = None):
    """The gpu facts of a capture folder; ``listed`` gathers every folder the source lists."""
    from memdiag import pipeline

    reg = pipeline.load_registry()
    ev = pipeline.open_input(str(folder), reg, str(folder.parent))
    if listed is not None:
        real = ev.listdir
        ev.listdir = lambda rel: listed.append(rel) or real(rel)  # type: ignore[method-assign]
    return run([GpuSource()], folder, ev=ev)


def test_a_capture_of_a_drm_host_reads_the_fdinfo_it_kept(tmp_path, monkeypatch, capsys):
    facts = _analysed(_collected(tmp_path, monkeypatch, capsys, drm=True))
    assert facts.get("gpu.clients") == 1 and facts.get("gpu.top")[0]["process"] == "gnome-shell"


def test_a_capture_of_a_host_without_drm_skips_the_walk(tmp_path, monkeypatch, capsys):
    """Its collection found no DRM device and kept no fdinfo; the capture says so, and nobody
    lists every process's fdinfo folder to find nothing (as before: no gpu facts)."""
    folder = _collected(tmp_path, monkeypatch, capsys, drm=False)
    assert not list(folder.glob("proc/*/fdinfo"))
    listed: list[str] = []
    facts = _analysed(folder, listed)
    assert facts.facts == {} and facts.problems == []
    assert listed == ["sys/class/drm"]  # the device check; no process's fdinfo


def test_an_older_capture_is_walked_as_it_always_was(tmp_path, monkeypatch, capsys):
    """Format 1 captures may predate the device check (their collection walked descriptors
    without asking): the fdinfo they hold is read even where no device shows."""
    import json

    folder = _collected(tmp_path, monkeypatch, capsys, drm=False)
    meta = json.loads((folder / "memdiag-capture.json").read_text())
    meta.update(version=1, listings={k: v for k, v in meta["listings"].items() if k != "sys/class/drm"})
    (folder / "memdiag-capture.json").write_text(json.dumps(meta))
    tree(folder, {"proc/2217/fdinfo/9": AMD})
    listed: list[str] = []
    facts = _analysed(folder, listed)
    assert facts.get("gpu.clients") == 1 and "proc/2217/fdinfo" in listed
