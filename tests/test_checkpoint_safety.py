"""Nothing executes from an artifact: a checkpoint that carries a pickled payload (an object whose
`__reduce__` runs a shell command that writes a marker file) is refused with one clear error by rnnlab-predict
and by `resume=true`, and the marker never appears; the checkpoints that rnnlab-train writes load as tensors
and plain values, and a run's config may build only the project's models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_module, run_train, train_one_run
from omegaconf import OmegaConf

from rnnlab import checkpoints
from rnnlab.errors import DataError
from rnnlab.tracking import resume, runs

pytestmark = pytest.mark.slow


class _Payload:
    """Unpickling this runs `touch <marker>`: what a checkpoint from an untrusted source may carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _craft(real: Path, out: Path, marker: Path) -> Path:
    """A copy of the real checkpoint `real` that also carries the payload (as a callback's state)."""
    import torch

    checkpoint = checkpoints.load(real)
    checkpoint["callbacks"]["Innocent"] = {"state": _Payload(marker)}
    torch.save(checkpoint, out)
    return out


@pytest.fixture(scope="module")
def trained(tiny_project, tmp_path_factory):
    """(tracking uri, run, output dir) of one tiny real training run in a SQLite store of its own."""
    tmp = tmp_path_factory.mktemp("checkpoint_safety")
    uri, run = train_one_run(tiny_project, tmp, "model.cell=gru")
    return uri, run, tmp / "run"


def test_the_checkpoints_of_a_real_run_load_as_tensors_and_plain_values(trained):
    _, _, output_dir = trained
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = checkpoints.load(output_dir / "checkpoints" / name)
        assert checkpoint["state_dict"] and checkpoint["epoch"] >= 0
        assert checkpoint["optimizer_states"] and checkpoint["callbacks"]


def test_the_crafted_payload_is_live_and_the_safe_loader_refuses_it(trained, tmp_path):
    _, _, output_dir = trained
    live, marker = tmp_path / "live.ckpt", tmp_path / "ran"
    _craft(output_dir / "checkpoints/best.ckpt", live, marker)
    # the payload is real: torch's full unpickler runs it (in a process of its own)
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(live)!r}, weights_only=False)"],
                   check=True, capture_output=True)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"refused: it carries pickled Python objects.*posix\.system"):
        checkpoints.load(live)
    assert not marker.exists()


def test_rnnlab_predict_refuses_a_run_whose_best_checkpoint_carries_a_payload(trained, tiny_project,
                                                                              tmp_path):
    uri, run, output_dir = trained
    marker = tmp_path / "ran"
    crafted = _craft(output_dir / "checkpoints/best.ckpt", tmp_path / "best.ckpt", marker)
    client = runs.client(uri)
    predict = ("rnnlab.predict", tiny_project, f"run_id={run.info.run_id}", "text=a wonderful film")
    proc = run_module(*predict, tracking_uri=uri)
    assert proc.returncode == 0, proc.stderr[-3000:]  # the run's own checkpoint predicts
    client.log_artifact(run.info.run_id, str(crafted), "checkpoints")  # the artifact, replaced
    try:
        proc = run_module(*predict, tracking_uri=uri)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.strip().splitlines()[-1:]
        assert line.startswith(f"rnnlab: error: the checkpoint checkpoints/best.ckpt of run "
                               f"{run.info.run_id} refused: it carries pickled Python objects")
        assert "posix.system" in line and "nothing in it was run" in line
        assert not marker.exists()
    finally:  # the module's run keeps its real checkpoint for the other tests
        client.log_artifact(run.info.run_id, str(output_dir / "checkpoints/best.ckpt"), "checkpoints")


def test_resume_refuses_a_crafted_last_checkpoint_before_reopening_the_run(trained, tiny_project, tmp_path):
    uri, run, output_dir = trained
    client = runs.client(uri)
    last = output_dir / "checkpoints/last.ckpt"
    real = last.read_bytes()
    marker = tmp_path / "ran"
    # the run as a killed one looks: not FINISHED, stopped during fit (no mark that fit was done)
    client.set_terminated(run.info.run_id, "FAILED")
    if getattr(resume, "FITTED_TAG", None) in client.get_run(run.info.run_id).data.tags:
        client.delete_tag(run.info.run_id, resume.FITTED_TAG)
    _craft(last, tmp_path / "crafted.ckpt", marker).replace(last)
    try:
        proc = run_train(tiny_project, "model.cell=gru", f"hydra.run.dir={tmp_path / 'again'}", "resume=true",
                         tracking_uri=uri, check=False)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        (line,) = proc.stderr.strip().splitlines()[-1:]
        assert line.startswith(f"rnnlab: error: the checkpoint {last} that resume=true would continue from "
                               f"(run {run.info.run_id}) refused: it carries pickled Python objects")
        assert not marker.exists()
        assert client.get_run(run.info.run_id).info.status == "FAILED"  # not reopened
    finally:
        last.write_bytes(real)


def test_a_config_may_build_only_rnnlabs_models_and_torchs_optimizers(trained, tmp_path):
    uri, run, _ = trained
    config = OmegaConf.load(runs.client(uri).download_artifacts(run.info.run_id, "config.yaml",
                                                                 str(tmp_path)))
    checkpoints.check_targets(config, "the real config")  # rnnlab.models.classifier.SequenceClassifier, Adam
    for key, target in (("model", "os.system"), ("model", "rnnlab.models.classifier.torch.load"),
                        ("model", "rnnlab.models.classifier.Path"), ("optimizer", "subprocess.Popen")):
        bad = OmegaConf.merge(config, {key: {"_target_": target}})
        with pytest.raises(DataError, match=rf"{key}\._target_='{target}' is not a .*refused"):
            checkpoints.check_targets(bad, "the crafted config")
