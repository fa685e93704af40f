"""The comparison report: the task's score columns and headline, seeds pooled into a mean and its 95% interval, the
tests behind its sentences, and the whole report (Markdown, self-contained HTML, figures) built from a real SQLite MLflow store."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys

import pytest
from conftest import run_train
from scipy import stats as scipy_stats

from rnnlab.reporting.markdown import report_markdown
from rnnlab.reporting.statistics import config_groups, dvc_metrics, significance
from rnnlab.tracking import runs

# each task's selection rule as its conf/task/<kind>.yaml sets it, which sweep_rows copies from a run's params
RULES = {"lm": {"metric": "val_ppl", "mode": "min"}, "ner": {"metric": "val_f1", "mode": "max"},
         "classify": {"metric": "val_acc", "mode": "max"}}


def _row(task, cell, seed="1", **metrics):
    return {"run_id": f"id-{cell}-{seed}", "run_name": f"{cell}-run", "status": "FINISHED", "task": task,
            "objective": RULES[task], "seed": seed, "config": {"embedding": "learned", "cell": cell, "layers": 2,
                                     "direction": "uni" if task == "lm" else "bi"},
            "params_total": 1000, **metrics}


def test_language_model_report_ranks_by_lowest_test_perplexity():
    rows = [_row("lm", "rnn", test_ppl=150.0, best_val_ppl=155.0), _row("lm", "lstm", test_ppl=114.2,
                                                                        best_val_ppl=118.0)]
    text = report_markdown("lm", rows)
    assert "| selected val ppl | test ppl |" in text and "| 114.2 |" in text
    assert ("The run chosen on validation alone (the configuration with the best mean selected val ppl, then its "
            "seed with the best; over the whole study, this choice is the registry's `@best`): lstm-run, seed 1: "
            "selected val ppl 118.0, test perplexity 114.2.") in text
    assert dvc_metrics(rows)["best"] == {"test_ppl": 114.2}
    assert dvc_metrics(rows)["learned-rnn-2l-uni"] == {"best_val_ppl": 155.0, "test_ppl": 150.0, "params_total": 1000}


MEASURES = ["pitch_class_tv", "interval_tv", "duration_tv", "in_key_ratio", "pitch_range", "repeated_note_ratio"]


def _music_row(cell, seed, generated, references):
    """A music run: a language model's scores and the melody measures its judge logs (music/callbacks.py)."""
    metrics = {f"melody_{name}": value for name, value in zip(MEASURES, generated, strict=True)}
    for tag, values in references.items():
        metrics.update({f"melody_{tag}_{name}": value for name, value in zip(MEASURES, values, strict=True)})
    return _row("lm", cell, seed=seed, test_ppl=5.0, best_val_ppl=5.2, test_acc=0.4 + int(seed) / 100, **metrics)


def test_music_reports_show_the_melody_measures_and_their_scale_and_text_reports_do_not():
    from rnnlab.music.measures import melody_measures
    from rnnlab.music.melody import Melody

    melody = Melody("m", ((60, 1), (62, 1), (64, 2)), 0, "major", "4/4", {})
    assert set(MEASURES) <= set(melody_measures([melody], [melody]))  # the judge's own names
    references = {"train": [0.05, 0.08, 0.04, 0.97, 11.0, 0.12], "shuffled_test": [0.0, 0.30, 0.0, 0.96, 10.5, 0.10],
                  "random": [0.40, 0.60, 0.0, 0.55, 10.4, 0.05]}
    other_seed = {**references, "random": [0.40, 0.60, 0.0, 0.55, 10.6, 0.05]}  # a rounding apart: the mean
    rows = [_music_row("lstm", "1", [0.10, 0.20, 0.05, 0.90, 9.0, 0.20], references),
            _music_row("lstm", "2", [0.12, 0.22, 0.07, 0.92, 9.4, 0.22], other_seed)]
    text = report_markdown("music", rows)
    assert ("| selected val ppl | test ppl | test next-token acc | pitch-class TV | interval TV | duration TV | "
            "in key | pitch range | repeated ratio |") in text
    assert re.search(r"\| 0\.415 ± \S+ \| 0\.110 ± \S+ \| 0\.210 ± \S+ \| 0\.060 ± \S+ \| 0\.910 ± \S+ \| "
                     r"9\.2 ± \S+ \| 0\.210 ± \S+ \|", text), text
    assert ("Training chorales: pitch-class TV 0.050, interval TV 0.080, duration TV 0.040, in key 0.970, "
            "pitch range 11.0, repeated ratio 0.120.") in text
    assert "Shuffled test notes: pitch-class TV 0.000, interval TV 0.300" in text
    assert "Random notes: pitch-class TV 0.400, interval TV 0.600, duration TV 0.000, in key 0.550, pitch range " \
           "10.5, repeated ratio 0.050." in text
    assert report_markdown("music", rows) == text  # the same bytes on a rerun
    plain = report_markdown("lm", [_row("lm", "lstm", test_ppl=114.2, best_val_ppl=118.0, test_acc=0.301)])
    assert "| selected val ppl | test ppl | test next-token acc |" in plain and "| 0.301 |" in plain
    assert "TV" not in plain and "pitch range" not in plain and "Scale of the melody" not in plain


def test_tagging_report_shows_entity_scores_and_ranks_by_highest_f1():
    rows = [_row("ner", "lstm", test_f1=0.88, test_f1_PER=0.93, test_precision=0.87, test_recall=0.89),
            _row("ner", "gru", test_f1=0.86)]
    text = report_markdown("ner", rows)
    assert "| test precision | test recall | test F1 | PER |" in text
    assert "| 0.8700 | 0.8900 | 0.8800 | 0.930 |" in text
    assert "The run chosen on validation" not in text  # the rows carry no validation score: no run is chosen


def test_the_chosen_run_is_picked_on_validation_never_on_its_test_score():
    # gru has the best mean validation accuracy; rnn's seed 2 has the best test accuracy of any run
    rows = [_row("classify", "gru", seed="1", best_val_acc=0.80, test_acc=0.74),
            _row("classify", "gru", seed="2", best_val_acc=0.82, test_acc=0.73),
            _row("classify", "rnn", seed="1", best_val_acc=0.78, test_acc=0.70),
            _row("classify", "rnn", seed="2", best_val_acc=0.79, test_acc=0.90)]
    text = report_markdown("s", rows)
    assert "the registry's `@best`): gru-run, seed 2: selected val acc 0.8200, test accuracy 0.7300." in text
    assert "0.9000 (" not in text and "rnn-run, seed 2" not in text


def test_seeds_pool_into_mean_and_interval_and_a_clear_gap_is_told_apart():
    good, bad = [0.80, 0.81, 0.82], [0.70, 0.71, 0.72]
    rows = ([_row("classify", "gru", seed=str(s), test_acc=v) for s, v in enumerate(good)]
            + [_row("classify", "rnn", seed=str(s), test_acc=v) for s, v in enumerate(bad)])
    groups = config_groups(rows)
    assert [g["n"] for g in groups] == [3, 3]  # rnn sorts before gru
    gru = groups[1]
    assert gru["mean"]["test_acc"] == pytest.approx(statistics.fmean(good))
    assert gru["std"]["test_acc"] == pytest.approx(statistics.stdev(good))
    low, high = scipy_stats.t.interval(0.95, 2, loc=statistics.fmean(good), scale=scipy_stats.sem(good))
    assert gru["ci"]["test_acc"] == pytest.approx((high - low) / 2)
    text = report_markdown("s", rows)
    assert f"| {statistics.fmean(good):.4f} ± {(high - low) / 2:.4f} |" in text
    lines = significance(groups)
    assert "The best configuration by mean test accuracy: embedding=learned cell=gru" in lines[0]
    assert "told apart from 1 (every one)." in lines[1] and "GRU is better" in text


def test_overlapping_seeds_cannot_be_told_apart():
    rows = ([_row("classify", "gru", seed=str(s), test_acc=v) for s, v in enumerate([0.75, 0.80, 0.70])]
            + [_row("classify", "lstm", seed=str(s), test_acc=v) for s, v in enumerate([0.74, 0.79, 0.72])])
    lines = significance(config_groups(rows))
    runner_up = next(line for line in lines if line.startswith("The runner-up"))
    p = float(re.search(r"p = ([0-9.]+)", runner_up).group(1))
    assert p > 0.5 and "**cannot be told apart**" in runner_up and "could detect a difference of" in runner_up


def test_one_seed_per_configuration_says_no_comparison_is_possible():
    rows = [_row("classify", "gru", test_acc=0.8), _row("classify", "lstm", test_acc=0.7)]
    assert any("One seed per configuration" in line for line in significance(config_groups(rows)))


def _tuned_rows(drop=None):
    """rnn and gru, each at two learning rates and three seeds. Validation prefers lr 0.01 for the rnn and 0.001 for
    the gru; the test scores would prefer the opposite, so a choice made on them would show."""
    val = {("rnn", "0.001"): 0.60, ("rnn", "0.01"): 0.70, ("gru", "0.001"): 0.80, ("gru", "0.01"): 0.75}
    test = {("rnn", "0.001"): 0.66, ("rnn", "0.01"): 0.64, ("gru", "0.001"): 0.74, ("gru", "0.01"): 0.78}
    rows = []
    for (cell, lr), score in val.items():
        if (cell, lr) == drop:
            continue
        for seed in ("1", "2", "3"):
            row = _row("classify", cell, seed=seed, best_val_acc=score + int(seed) / 1000,
                       test_acc=test[cell, lr] + int(seed) / 1000)
            row["config"] = {**row["config"], "optimizer.lr": lr}
            rows.append(row)
    return rows


def test_tuning_reports_each_configuration_at_its_best_validation_setting(tmp_path):
    from rnnlab.reporting.files import write_report
    from rnnlab.reporting.tuning import tune

    chosen, summary = tune(_tuned_rows(), {"optimizer.lr": 0.001})
    assert {(r["config"]["cell"], r["tuned"]["optimizer.lr"]) for r in chosen} == {("rnn", "0.01"), ("gru", "0.001")}
    assert all("optimizer.lr" not in r["config"] for r in chosen) and len(chosen) == 6
    assert summary["equal_budget"] and summary["settings"] == 2
    written = write_report(tmp_path, "tuned", {"parent_run_id": "p", "runs": _tuned_rows()}, {"optimizer.lr": 0.001})
    markdown = written["markdown"].read_text()
    assert "every configuration tried the same 2 settings of `optimizer.lr`" in markdown
    # configuration, settings tried, chosen lr, selected val, test at the chosen lr, test at the default lr
    assert re.search(r"\| learned-rnn-2l-bi \| 2 \| 0\.01 \| 0\.7020 ± \S+ \| 0\.6420 ± \S+ \| 0\.6620 ± \S+ \|",
                     markdown), markdown
    assert re.search(r"\| learned-gru-2l-bi \| 2 \| 0\.001 \| 0\.8020 ± \S+ \| 0\.7420 ± \S+ \| 0\.7420 ± \S+ \|",
                     markdown), markdown
    # the main table, the tests and metrics.json compare the configurations at their chosen settings
    assert "| learned | gru | 2 | bi | 3 |" in markdown and "optimizer.lr | seeds" not in markdown
    assert json.loads(written["metrics"].read_text())["learned-rnn-2l-bi"]["test_acc"] == 0.642
    assert "test at optimizer.lr=0.001 (untuned)" in written["html"].read_text()


def test_tuning_says_when_the_budget_was_not_equal_and_refuses_keys_the_sweep_did_not_vary():
    from rnnlab.errors import ConfigError
    from rnnlab.reporting.tuning import tune, tuning_table

    _, summary = tune(_tuned_rows(drop=("gru", "0.01")), {"optimizer.lr": 0.001})
    assert not summary["equal_budget"]
    assert "**unequal tuning budget**: the configurations tried between 1 and 2 settings" in tuning_table(summary)["intro"]
    with pytest.raises(ConfigError, match=r"tuned keys \['optimizer.weight_decay'\] are not swept"):
        tune(_tuned_rows(), {"optimizer.weight_decay": 0.0})


def test_tuning_says_how_often_the_choice_is_the_edge_of_the_grid():
    """Three learning rates: validation prefers the lowest for the rnn and the gru and the middle one for the lstm,
    so the report says the lowest edge was chosen for 2 of 3 and that a lower value would tell."""
    from rnnlab.reporting.tuning import tune, tuning_table

    val = {"rnn": [0.70, 0.65, 0.60], "lstm": [0.70, 0.75, 0.72], "gru": [0.80, 0.78, 0.70]}
    rows = []
    for cell, scores in val.items():
        for lr, score in zip(("0.0003", "0.001", "0.003"), scores, strict=True):
            for seed in ("1", "2"):
                row = _row("classify", cell, seed=seed, best_val_acc=score, test_acc=score)
                row["config"] = {**row["config"], "optimizer.lr": lr}
                rows.append(row)
    _, summary = tune(rows, {"optimizer.lr": 0.001})
    assert [entry["edges"] for entry in summary["families"]] == [{"optimizer.lr": "lowest"}, {},
                                                                   {"optimizer.lr": "lowest"}]
    assert ("The chosen `optimizer.lr` is the lowest value tried for 2 and the highest for 0 of the 3 "
            "configurations: the grid may not bracket the optimum; a value below it, tried for every configuration, "
            "would tell.") in tuning_table(summary)["intro"]
    # two values tried are no grid with an inside: nothing is said
    _, two = tune([r for r in rows if r["config"]["optimizer.lr"] != "0.003"], {"optimizer.lr": 0.001})
    assert "The chosen `optimizer.lr`" not in tuning_table(two)["intro"]


def test_a_study_at_equal_hidden_size_and_at_equal_parameters_is_compared_within_each_sizing(tmp_path):
    """Runs that differ in model.param_budget are two views: one table and its sentences each, never one ranking
    across them; at equal parameters the table says which hidden size each configuration got."""
    from rnnlab.reporting.files import write_report

    rows = []
    for budget, scores in (("None", {"lstm": [0.80, 0.81, 0.82], "gru": [0.70, 0.71, 0.72]}),
                           ("50000", {"lstm": [0.74, 0.75, 0.73], "gru": [0.76, 0.77, 0.75]})):
        for cell, values in scores.items():
            for seed, value in enumerate(values, 1):
                hidden = 64 if budget == "None" else {"lstm": 56, "gru": 64}[cell]
                row = _row("classify", cell, seed=str(seed), test_acc=value, best_val_acc=value, hidden_size=hidden,
                           params_encoder=4 * hidden * (hidden + 100) if cell == "lstm" else 3 * hidden * (hidden + 100))
                row["config"] = {**row["config"], "model.param_budget": budget}
                rows.append(row)
    markdown = report_markdown("sized", rows)
    equal_hidden, equal_params = markdown.split("## At equal parameters")
    assert "## At equal hidden size" in equal_hidden
    assert "each encoder within 2% of 50,000 recurrent parameters" in equal_params
    assert "model.param_budget" not in markdown  # the view says it; no column repeats it
    # the best configuration differs by view: LSTM at equal hidden size, GRU at equal parameters
    assert "The best configuration by mean test accuracy: embedding=learned cell=lstm" in equal_hidden
    assert "The best configuration by mean test accuracy: embedding=learned cell=gru" in equal_params
    assert "| hidden |" not in equal_hidden and "| hidden |" in equal_params
    assert re.search(r"\| learned \| lstm \| 2 \| bi \| 3 \| 56 \|", equal_params), equal_params
    html_text = write_report(tmp_path, "sized", {"parent_run_id": "p", "runs": rows})["html"].read_text()
    assert html_text.count('<tr class="best">') == 2  # one best per view
    assert "<h2>At equal hidden size</h2>" in html_text


@pytest.mark.slow
def test_report_of_a_real_sweep_with_seeds_from_a_sqlite_store(tiny_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "sweep"
    run_train(tiny_project, "-m", "model.cell=rnn,gru", "seed=1,2", "trainer.max_epochs=2",
              "analysis.gradient_flow=true", "analysis.gates=true", f"hydra.sweep.dir={sweep_dir}", tracking_uri=uri)
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "rnnlab.report", f"sweep_dir={sweep_dir}", f"out={out}",
                           f"tracking_uri={uri}", "title=Tiny sweep"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent = runs.read_parent_run_id(sweep_dir)
    children = runs.child_runs(runs.client(uri), parent)
    markdown = (out / "report.md").read_text()
    # one row per cell, each pooling its two seeds
    table = [line for line in markdown.splitlines() if line.startswith("| word2vec |")]
    assert len(table) == 2 and all("| 2 |" in line and " ± " in line for line in table)
    assert "paired t-tests by seed" in markdown and "The runner-up: " in markdown  # the runs share seeds 1, 2
    # the lecture's sentences as every classifier labelled them, and why (the words' log-odds in the train split)
    assert "P(positive) that each configuration gives the lecture's sentences" in markdown
    # the epoch cap and patience the runs logged (patience 5 >= 2 epochs: none stops early)
    assert "Where the runs stop (2 epochs, no early stopping): " in markdown
    assert '"movie was good"' in markdown and "log-odds of positive against negative in the train split" in markdown
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    assert "Where the runs stop (2 epochs, no early stopping): " in page  # the page says what report.md says
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    # figures/ and report.md repeat byte for byte on a rerun: the wall-time figure (cost) is in the page only
    assert {"learning_curves.png", "score_vs_parameters.png", "gradient_flow.png", "gates.png"} == set(figures)
    assert len(images) == len(figures) + 1 and "Parameters and time per epoch" in page
    assert "time / epoch" in page and "time / epoch" not in markdown
    for child in children:  # every run listed with its id, in the page only
        assert child.info.run_id in page and child.info.run_id not in markdown
    cpu = children[0].data.tags["rnnlab.machine.cpu"]
    assert cpu and cpu in markdown and cpu in page  # the machine the numbers come from
    assert {"word2vec-rnn-1l-uni", "word2vec-gru-1l-uni", "best"} == set(json.loads((out / "metrics.json").read_text()))


def test_report_command_names_a_missing_parent_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, "-m", "rnnlab.report", "parent_run_id=nope", f"tracking_uri={uri}"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "rnnlab: error: parent_run_id='nope' is not a run" in proc.stderr


def _curve_row(cell, seed, curve):
    """A classifier's run whose validation accuracy followed `curve`, one value per epoch run."""
    history = {"val_acc": [[10 * (i + 1), v] for i, v in enumerate(curve)]}
    return _row("classify", cell, seed=seed, history=history, epochs=float(len(curve)), best_val_acc=max(curve),
                test_acc=max(curve) - 0.01)


def test_where_runs_stop_counts_runs_cut_by_the_epoch_cap_and_curves_still_rising_on_average():
    from rnnlab.reporting.stopping import settings_from_params, stopping_lines, stopping_settings

    settings = stopping_settings({"common": {"trainer.max_epochs": 5, "callbacks.early_stopping.patience": 2}})
    assert settings == {"cap": 5, "patience": 2}
    assert stopping_settings({"common": {"trainer.max_epochs": 5, "callbacks.early_stopping.patience": 5}}) == {
        "cap": 5, "patience": None}  # patience >= the cap: no run can stop early
    assert stopping_settings({"common": {"trainer.max_epochs": -1}}) is None  # trained by steps
    assert stopping_settings({"common": {}, "varying": [{"trainer.max_epochs": 3}]}) is None  # differs by job
    rows = [_curve_row("gru", "1", [0.5, 0.6, 0.7, 0.8, 0.9]),     # selected at the cap: cut short
            _curve_row("gru", "2", [0.5, 0.7, 0.6, 0.65]),         # stopped early, held at 0.65: mean still rises
            _curve_row("lstm", "1", [0.5, 0.8, 0.7, 0.75]),        # both stopped early
            _curve_row("lstm", "2", [0.6, 0.7, 0.65, 0.6])]
    (line,) = stopping_lines(config_groups(rows), settings)
    assert line == ("Where the runs stop (up to 5 epochs, stopped after 2 epochs without a better validation "
                    "accuracy): 3 of 4 runs stopped early; 1 was selected at epoch 5, the cap: still improving when "
                    "training ended (learned-gru-2l-bi 1); the mean validation accuracy over the seeds is best at "
                    "epoch 5 for 1 of 2 configurations (learned-gru-2l-bi): still improving on average (a run "
                    "stopped early counts at its last value).")
    # the same runs had they all stopped early: nothing was cut short
    (line,) = stopping_lines(config_groups(rows[1:]), settings)
    assert "no run was selected at epoch 5, the cap; no configuration's mean validation accuracy" in line
    # runs that peak at different epochs and stop: their held last values make the mean's tail flat at its best
    # (0.70 0.75 0.75 0.80 0.80), which is no rise at the cap
    flat = [_curve_row("gru", "1", [0.5, 0.9, 0.7, 0.8]), _curve_row("gru", "2", [0.9, 0.6, 0.8])]
    (line,) = stopping_lines(config_groups(flat), settings)
    assert "no configuration's mean validation accuracy over the seeds is best at epoch 5" in line
    assert stopping_lines(config_groups(rows), None) == []  # no cap known (no configs.json)
    # the same settings from the runs' logged params (rnnlab-report reads a sweep back from MLflow)
    params = [{"trainer.max_epochs": "5", "callbacks.early_stopping.patience": "2"}] * 2
    assert settings_from_params(params) == settings
    assert settings_from_params([*params, {"trainer.max_epochs": "6"}]) is None
