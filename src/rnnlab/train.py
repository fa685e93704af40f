"""`rnnlab-train`: train one configuration, or a sweep with `-m`, and track it in MLflow.

    rnnlab-train model.cell=gru
    rnnlab-train -m model.cell=rnn,lstm,gru model.num_layers=1,2 model.bidirectional=false,true
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from rnnlab import checkpoints
from rnnlab.config import conf_dir
from rnnlab.config_schema import validate
from rnnlab.errors import ConfigError, exit_on_user_error
from rnnlab.io import sha256_tree
from rnnlab.tasks import build
from rnnlab.tracking import progress, resume, run_metadata, runs


def train(cfg: DictConfig) -> dict:
    """Fit, test the best checkpoint, log everything to one MLflow run; return the run's summary metrics.

    The run is FINISHED only once its test metrics, summaries and artifacts are logged (rnnlab owns its status,
    not Lightning's logger); a run stopped at any point stays RUNNING (killed) or FAILED, and `resume=true` goes on
    from where it stopped: from last.ckpt during training, from the best checkpoint's test once fit was done."""
    from rnnlab.tracking.lightning import OwnedRunLogger  # pytorch_lightning

    _seed_and_set_up_torch(cfg)
    output_dir, sweep_dir = _output_dirs()
    progress.quiet_third_party(in_sweep=sweep_dir is not None)
    _check_accelerator(cfg.trainer)
    uri = runs.tracking_uri(cfg.logger)
    runs.check_reachable(uri)
    built = build(cfg)  # checks the task's own config values first, with their own clear errors
    resolved = OmegaConf.to_container(cfg, resolve=True)
    digest = resume.config_hash(resolved)
    client = runs.client(uri)
    parent_id = runs.read_parent_run_id(sweep_dir)
    if parent_id:  # every child in its sweep's experiment, whatever its own config names
        exp_id = _experiment_of_parent(client, parent_id, runs.redact(uri))
    else:
        exp_id = runs.experiment_id(client, cfg.logger.experiment_name, cfg.logger.get("artifact_location"))
        run_metadata.mark_model_training(client, exp_id)
    previous = resume.previous_run(client, exp_id, digest, parent_id) if cfg.get("resume") else None
    if previous is not None and previous.finished:
        return _skip_finished(previous.run)
    if previous is not None and previous.output_dir is not None:
        output_dir = previous.output_dir  # the killed run's checkpoints, and its DDP workers' directory
    last_checkpoint = previous.last_checkpoint if previous is not None else None
    fitted = previous.fitted_checkpoint if previous is not None else None  # fit done, stopped in its test
    if not runs.is_global_zero():  # a DDP worker that Lightning started: it trains, rank 0 alone tracks
        return _train_as_ddp_worker(cfg, built, output_dir, last_checkpoint, fitted)

    run_name = cfg.run_name or f"{default_run_name(cfg)}-seed{cfg.seed}"  # seeds of a configuration told apart
    reopen = previous.run.info.run_id if previous is not None else None
    try:
        with runs.run(client, exp_id, run_name, _run_tags(cfg, digest, output_dir, parent_id),
                      reopen=reopen) as mlflow_run:
            run_id = mlflow_run.info.run_id
            counts = _start_or_continue(client, run_id, run_name, built, cfg, resolved, reopen, last_checkpoint,
                                        fitted)
            trainer = _trainer(cfg, built, OwnedRunLogger(tracking_uri=uri, run_id=run_id), output_dir)
            with _ddp_workers_for_this_job(trainer, output_dir, in_sweep=sweep_dir is not None):
                if fitted is None:  # phase 1: fit; its summary and the mark that it is done land in the run
                    fit_summary, fitted = _fit(client, run_id, trainer, built, counts, last_checkpoint)
                else:  # fit was done before the run stopped: its summary is in the run already
                    fit_summary = _fit_summary_of(client, run_id, trainer, built.module)
                # phase 2: test the best checkpoint (Lightning's logger writes the test_ metrics, from rank 0)
                trainer.test(built.module, datamodule=built.datamodule, ckpt_path=str(fitted), verbose=False,
                             weights_only=True)
            summary = {**fit_summary, **_log_test_and_files(cfg, client, run_id, trainer, built, fitted)}
            if cfg.logger.get("log_model", True) and fitted.is_file():  # runs:/<run id>/model, a pyfunc
                from rnnlab.tasks.mlflow_model import log_run_model

                log_run_model(client, uri, run_id, exp_id, runs.redacted(resolved), built.artifacts, fitted,
                              trainer.global_step)
    except BaseException:
        if parent_id:  # a failed child fails the sweep it belongs to
            client.set_terminated(parent_id, "FAILED")
        raise
    progress.run_done(client, run_id, run_name, parent_id, built.module.objective, summary)
    return {"run_id": run_id, "objective": summary[f"best_{built.module.objective}"], **summary}


def _experiment_of_parent(client, parent_id: str, uri: str) -> str:
    try:
        return client.get_run(parent_id).info.experiment_id
    except Exception as err:  # MLflow's own exception types differ by store
        raise ConfigError(f"the sweep's parent run {parent_id} is not in the tracking store {uri}: start the "
                          f"sweep against the store its jobs use (logger.tracking_uri / MLFLOW_TRACKING_URI), or "
                          f"unset {runs.PARENT_ENV}") from err


def _seed_and_set_up_torch(cfg) -> None:
    import pytorch_lightning as pl
    import torch

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", True)))
    # trainer.deterministic also NaN-fills every new tensor unless this is off (results stay deterministic)
    torch.utils.deterministic.fill_uninitialized_memory = bool(cfg.get("fill_uninitialized_memory", False))


def _output_dirs() -> tuple[Path, str | None]:
    """This job's output directory (Hydra's), and the sweep's directory when it is one job of a sweep."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    output_dir = Path(hydra_cfg.runtime.output_dir) if hydra_cfg else Path("outputs/run")
    sweep_dir = hydra_cfg.sweep.dir if hydra_cfg and hydra_cfg.mode.name == "MULTIRUN" else None
    return output_dir, sweep_dir


def _train_as_ddp_worker(cfg, built, output_dir: Path, last_checkpoint, fitted) -> dict:
    """A DDP process of rank > 0: the same fit and test as rank 0, with no MLflow run of its own."""
    trainer = _trainer(cfg, built, None, output_dir)
    if fitted is None:
        trainer.fit(built.module, datamodule=built.datamodule, ckpt_path=last_checkpoint, weights_only=True)
    trainer.test(built.module, datamodule=built.datamodule, ckpt_path=str(fitted) if fitted else "best",
                 verbose=False, weights_only=True)
    return {"run_id": None, "objective": float("nan")}


def _run_tags(cfg, digest: str, output_dir: Path, parent_id: str | None) -> dict:
    """What a run is tagged with: the code, config and data it ran, where it writes, the machine, its sweep."""
    tokenized_dir = Path(cfg.paths.tokenized_dir)
    tags = {**run_metadata.source_tags("rnnlab-train"),
            "rnnlab.kind": "train", "rnnlab.git_commit": runs.git_commit(), runs.CODE_DIGEST_TAG: runs.code_digest(),
            run_metadata.CONFIGURATION_TAG: run_metadata.configuration(_overrides(), default_run_name(cfg)),
            resume.CONFIG_HASH_TAG: digest,
            resume.OUTPUT_DIR_TAG: str(output_dir.resolve()),
            **{runs.MACHINE_TAG + key: value for key, value in runs.machine().items()}}
    for tag, path in (("data_hash", tokenized_dir / "data"), ("tokenizer_hash", tokenized_dir / "tokenizer.json")):
        if path.exists():  # a synthetic task (e.g. the adding problem) has no tokenized data: its seed is its hash
            tags[f"rnnlab.{tag}"] = sha256_tree(path)
    if parent_id:
        tags[runs.PARENT_TAG] = parent_id
    return tags


def _overrides() -> list[str]:
    """This job's command-line and sweep overrides (Hydra's task overrides); [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _model_choice() -> str | None:
    """The conf/model/ option the run composed (recurrent, bag, cnn, tagger, seq2seq, ...)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get("model") if HydraConfig.initialized() else None


def _datasets(cfg) -> list[tuple[str, Path, str]]:
    """(name, directory, context) of what the run reads: the tokenized data, and built embeddings if any."""
    found = [(str(cfg.data.name), Path(cfg.paths.tokenized_dir), "tokenized")]
    name = cfg.get("embedding", {}).get("name")
    if name in ("word2vec", "glove", "pretrained"):
        found.append((f"{cfg.data.name}-{name}", Path(cfg.paths.embeddings_dir) / name, "embedding"))
    return found


def _start_or_continue(client, run_id: str, run_name: str, built, cfg, resolved: dict, reopen: str | None,
                       last_checkpoint, fitted) -> dict:
    """A new run logs the params a user compares, its whole config (config.yaml), its data and parameter counts;
    a continued one says where it goes on from (params are immutable in MLflow: it keeps the ones it has).
    Returns the model's parameter counts."""
    from rnnlab.models.inputs import count_parameters

    counts = count_parameters(built.module.model)
    if reopen and fitted:
        print(f"resume: run {run_id} ({run_name}) had finished training when it stopped: testing its "
              f"best checkpoint {fitted}", flush=True)
    elif reopen:
        print(f"resume: continuing run {run_id} ({run_name}) from "
              + (f"{last_checkpoint} (epoch {_epoch_of(last_checkpoint)})" if last_checkpoint
                 else "the start: it stopped before its first checkpoint"), flush=True)
    else:
        runs.log_params(client, run_id, run_metadata.comparable_params(resolved, _overrides(), _model_choice()))
        client.log_dict(run_id, runs.redacted(resolved), "config.yaml")
        run_metadata.log_datasets(client, run_id, _datasets(cfg), run_metadata.dvc_hashes())
        runs.log_metrics(client, run_id, counts)
    return counts


def _fit(client, run_id: str, trainer, built, counts: dict, last_checkpoint) -> tuple[dict, Path]:
    """Train (from last.ckpt when continuing); log the fit summary and tag the run as fitted with its best
    checkpoint, so that a kill from here on is tested again rather than retrained."""
    trainer.fit(built.module, datamodule=built.datamodule, ckpt_path=last_checkpoint, weights_only=True)
    fitted = Path(trainer.checkpoint_callback.best_model_path)
    fit_summary = {**built.module.summary(), "fit_seconds": built.module.fit_elapsed(),  # a resumed run's whole fit
                   "epochs": trainer.current_epoch, "world_size": trainer.world_size,
                   "params_total": counts["params_total"], "params_trainable": counts["params_trainable"]}
    runs.log_metrics(client, run_id, fit_summary, step=trainer.global_step)
    client.set_tag(run_id, resume.FITTED_TAG, str(fitted))
    return fit_summary, fitted


def _fit_summary_of(client, run_id: str, trainer, task) -> dict:
    """The fit summary a run logged before it stopped in its test phase; the trainer set to where fit ended."""
    fit_summary = {key: value for key, value in client.get_run(run_id).data.metrics.items()
                   if key in (*task.summary_names(), *FIT_METRICS)}
    _as_at_end_of_fit(trainer, int(fit_summary["epochs"]), client.get_metric_history(run_id, "epochs")[-1].step)
    return fit_summary


def _log_test_and_files(cfg, client, run_id: str, trainer, built, fitted: Path) -> dict:
    """The task's test summary beyond Lightning's test_ metrics, then the run's files (tokenizer, best
    checkpoint); returns every test metric."""
    extra = built.module.test_summary()  # beyond the test_ metrics, which Lightning's logger wrote
    if extra:
        runs.log_metrics(client, run_id, extra, step=trainer.global_step)
    test_summary = {**{key: float(value) for key, value in trainer.callback_metrics.items()
                       if key.startswith("test_")}, **extra}
    for path in built.artifacts:
        client.log_artifact(run_id, str(path))
    if cfg.logger.get("log_checkpoint", True) and fitted.is_file():
        client.log_artifact(run_id, str(fitted), "checkpoints")
    return test_summary


FIT_METRICS = ("fit_seconds", "epochs", "world_size", "params_total", "params_trainable")


def _check_accelerator(trainer_cfg) -> None:
    """A GPU trainer on a machine without one: one clear error before any run is created."""
    import torch

    if str(trainer_cfg.get("accelerator")) in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={trainer_cfg.accelerator} but torch {torch.__version__} sees no "
                          "CUDA GPU here: use trainer=cpu (or trainer=ddp for several CPU processes)")


def _skip_finished(run) -> dict:
    """A configuration that already FINISHED (resume=true): report its run and objective, train nothing."""
    best = {k: v for k, v in run.data.metrics.items() if k.startswith("best_")}
    print(f"resume: skipping {run.info.run_name}: run {run.info.run_id} already FINISHED with this config")
    return {**run.data.metrics, "run_id": run.info.run_id, "objective": next(iter(best.values()), float("nan")),
            "skipped": True}


def _as_at_end_of_fit(trainer, epochs: int, step: int) -> None:
    """A run tested again after a kill in its test phase: the trainer's epoch and step counters set to where fit
    ended (its MLflow run has them), so that its test metrics land at the epoch and step of an uninterrupted run."""
    loop = trainer.fit_loop
    loop.epoch_progress.current.completed = epochs  # trainer.current_epoch
    loop.epoch_loop._batches_that_stepped = step  # the step the logger connector logs at
    loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total.completed = step  # global_step
    loop.epoch_loop.manual_optimization.optim_step_progress.total.completed = step


def _epoch_of(checkpoint: Path) -> int:
    """How many epochs a Lightning checkpoint has completed (read as tensors only: rnnlab.checkpoints)."""
    return int(checkpoints.load(checkpoint, mmap=True)["epoch"]) + 1


def _trainer(cfg, built, logger, output_dir: Path):
    """The configured Trainer with the run's callbacks; checkpoints under <output dir>/checkpoints."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from rnnlab.analysis.callbacks import analysis_callbacks
    from rnnlab.tracking.lightning import RandomStateInCheckpoint

    callbacks = [instantiate(cb) for cb in cfg.callbacks.values()] + analysis_callbacks(cfg, built)
    callbacks.append(RandomStateInCheckpoint())  # a continued run draws what an uninterrupted one would
    lines = progress.epoch_lines() if _output_dirs()[1] is None else None  # a sweep prints a line per run
    callbacks += [lines] if lines is not None else []
    checkpoint = next(cb for cb in callbacks if isinstance(cb, pl.callbacks.ModelCheckpoint))
    checkpoint.dirpath = str(output_dir / "checkpoints")
    trainer = instantiate(cfg.trainer, logger=logger if logger is not None else False, callbacks=callbacks,
                          default_root_dir=str(output_dir))
    if trainer.world_size > 1 and not built.module.data_parallel:
        raise ConfigError(f"trainer={cfg.trainer.get('strategy', 'ddp')} with {trainer.world_size} processes: "
                          f"task={cfg.task.name} does not support data-parallel training yet (its metrics are "
                          "not gathered across processes); use trainer=cpu or trainer=gpu (DDP: task=classify or task=ner)")
    return trainer


@contextlib.contextmanager
def _ddp_workers_for_this_job(trainer, output_dir: Path, in_sweep: bool):
    """Lightning starts DDP workers by re-running this command line; inside a sweep that line is the whole sweep.
    Make the workers re-run only this job's configuration, in this job's output directory, and leave the
    process clean for the sweep's next job (no process group, no rank variables)."""
    import os
    import sys

    from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    if not in_sweep or not isinstance(getattr(trainer.strategy, "launcher", None), _SubprocessScriptLauncher):
        yield
        return
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    hydra_cfg = HydraConfig.get()
    argv, run_dir = sys.argv, hydra_cfg.run.dir
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = str(output_dir)
    try:
        yield
    finally:
        import torch.distributed

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(name, None)
        sys.argv = argv
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = run_dir


def _check_sweeper_direction(cfg) -> None:
    """A sweeper that optimises (Optuna) goes the way of the task's objective: the selection rule is one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    direction = HydraConfig.get().sweeper.get("direction")
    mode = cfg.task.get("objective", {}).get("mode")
    if isinstance(direction, str) and mode in ("max", "min") and direction != f"{mode}imize":
        raise ConfigError(f"hydra.sweeper.direction={direction} but task.objective.mode={mode} "
                          f"({cfg.task.objective.metric}): set hydra.sweeper.direction={mode}imize")


def default_run_name(cfg) -> str:
    model = cfg.model
    if model.get("cell") is None:  # a baseline without a recurrent encoder: bag of embeddings, CNN
        kind = str(model._target_).rsplit(".", 1)[-1]
        short = {"BagOfEmbeddings": f"bag-{model.get('pooling')}", "ConvolutionalClassifier": "cnn"}.get(kind, kind)
        return f"{cfg.embedding.name}-{short}"
    name = f"{cfg.embedding.name}-{model.cell}-{model.num_layers}l-{'bi' if model.bidirectional else 'uni'}"
    return f"{name}-{model.attention}" if model.get("attention") else name  # an encoder-decoder's attention


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
@exit_on_user_error
def _main(cfg: DictConfig) -> float:
    validate(cfg)  # every value's type, range and choices, before anything (an MLflow run) exists
    _check_sweeper_direction(cfg)
    return train(cfg)["objective"]  # what a hyper-parameter sweeper optimises (the task's validation metric)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
