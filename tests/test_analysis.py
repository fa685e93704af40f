"""Gradient flow and gate analyses: the step-by-step encoder equals the fused one, the gradient norms equal a
hand-written unrolled loop's, the gates equal a hand computation, and a training run logs it all to MLflow."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest
import torch
from conftest import ENCODER_CASES, garbage_padded_batch, run_train
from torch import nn

from rnnlab.analysis.callbacks import quietly
from rnnlab.analysis.gates import gate_statistics, one_sequence
from rnnlab.analysis.gradient_flow import grad_ratio, gradient_flow
from rnnlab.analysis.unroll import recording, unroll
from rnnlab.errors import ConfigError
from rnnlab.models.classifier import SequenceClassifier
from rnnlab.models.encoder import RecurrentEncoder
from rnnlab.models.language_model import LanguageModel
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.lm import LanguageModelTask

CASES = ENCODER_CASES


@pytest.mark.parametrize("cell,layers,bidirectional", CASES)
def test_unrolled_encoder_equals_the_fused_one_on_a_padded_batch(cell, layers, bidirectional):
    torch.manual_seed(1)
    encoder = RecurrentEncoder(5, cell=cell, hidden_size=7, num_layers=layers, bidirectional=bidirectional,
                               dropout=0.5).eval()
    x, lengths = garbage_padded_batch([6, 1, 4, 9])
    with torch.no_grad():
        expected, expected_summary = encoder(x, lengths)
        record = unroll(encoder, x, lengths)
        with recording(encoder) as calls:
            _, summary = encoder(x, lengths)
    torch.testing.assert_close(record.outputs, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(summary, expected_summary, rtol=1e-5, atol=1e-5)
    assert len(calls) == 1 and "forward" not in vars(encoder)  # the fused forward is back
    directions = ("forward", "backward") if bidirectional else ("forward",)
    assert set(record.steps) == {(layer, d) for layer in range(layers) for d in directions}
    for gates in record.gates.values():
        for values in gates.values():
            assert values.shape == (4, x.size(1), 7) and torch.all(values[1, 1:] == 0)  # zero at pads


def test_unrolled_stateful_encoder_carries_the_state_like_the_fused_one():
    torch.manual_seed(3)
    encoder = RecurrentEncoder(5, cell="lstm", hidden_size=6, num_layers=2).eval()
    x = torch.randn(3, 8, 5)
    state = [(torch.randn(1, 3, 6), torch.randn(1, 3, 6)) for _ in range(2)]
    with torch.no_grad():
        expected, expected_state = encoder.forward_stateful(x, state)
        with recording(encoder):
            outputs, new_state = encoder.forward_stateful(x, state)
    torch.testing.assert_close(outputs, expected, rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(new_state, expected_state, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def _tiny_classifier(bidirectional: bool, cell: str = "rnn"):
    torch.manual_seed(4)
    model = SequenceClassifier(12, 2, embedding_dim=4, cell=cell, hidden_size=5, bidirectional=bidirectional).eval()
    ids = torch.tensor([[3, 5, 7, 2, 9, 4], [6, 2, 0, 0, 0, 0], [1, 8, 3, 11, 0, 0]])
    batch = {"input_ids": ids, "lengths": torch.tensor([6, 2, 4]), "labels": torch.tensor([1, 0, 1])}
    return ClassifyTask(model, 2, optimizer=None).eval(), batch


def _rnn_loop(module, xs):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), one nn.RNNCell step at a time; every h_t kept."""
    h, hs = torch.zeros(module.hidden_size), []
    for x in xs:
        h = torch.tanh(module.weight_ih_l0 @ x + module.bias_ih_l0 + module.weight_hh_l0 @ h + module.bias_hh_l0)
        hs.append(h)
    return hs


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradient_norms_by_distance_equal_autograd_on_a_hand_unrolled_rnn(bidirectional):
    task, batch = _tiny_classifier(bidirectional)
    model, encoder = task.model, task.model.encoder
    rows = gradient_flow(task, [batch])

    # the same loss, written out: each sequence alone, step by step, the summary read by hand
    embedded = model.embedding(batch["input_ids"]).detach().requires_grad_()
    states, logits = [], []
    for row, n in enumerate(batch["lengths"].tolist()):
        xs = list(embedded[row, :n])
        forward = _rnn_loop(encoder.forward_layers[0], xs)
        summary = forward[-1]
        backward = []
        if bidirectional:
            backward = _rnn_loop(encoder.backward_layers[0], xs[::-1])  # backward[s] reads position n-1-s
            summary = torch.cat([summary, backward[-1]])
        states.append((forward, backward))
        logits.append(model.head(summary))
    loss = nn.functional.cross_entropy(torch.stack(logits), batch["labels"])
    flat = [h for forward, backward in states for h in forward + backward]
    grads = iter(torch.autograd.grad(loss, [embedded, *flat]))
    x_grad = next(grads)
    expected: dict[tuple, list[float]] = {}
    for row, (forward, backward) in enumerate(states):
        n = len(forward)
        for t in range(n):  # forward: position t is n-1-t steps before the summary
            expected.setdefault(("forward", "h", n - 1 - t), []).append(float(next(grads).norm()))
        for s in range(len(backward)):  # backward: step s reads position n-1-s, which is n-1-s steps away
            expected.setdefault(("backward", "h", n - 1 - s), []).append(float(next(grads).norm()))
        for t in range(n):
            expected.setdefault(("forward", "x", n - 1 - t), []).append(float(x_grad[row, t].norm()))
            if bidirectional:
                expected.setdefault(("backward", "x", t), []).append(float(x_grad[row, t].norm()))

    got = {(r["direction"], r["quantity"], r["distance"]): r for r in rows}
    assert set(got) == set(expected)
    for key, norms in expected.items():
        assert got[key]["count"] == len(norms), key
        assert got[key]["mean_norm"] == pytest.approx(np.mean(norms), rel=1e-4, abs=1e-8), key
    assert got[("forward", "h", 0)]["count"] == 3 and got[("forward", "h", 5)]["count"] == 1


def test_gradient_flow_of_a_language_model_window_from_a_zero_state():
    torch.manual_seed(5)
    task = LanguageModelTask(LanguageModel(20, embedding_dim=6, hidden_size=6, num_layers=2, cell="gru"),
                             optimizer=None).eval()
    window = torch.randint(1, 20, (3, 9))
    rows = gradient_flow(task, [{"input_ids": window[:, :-1], "targets": window[:, 1:]}])
    for layer in (0, 1):
        curve = [r for r in rows if r["layer"] == layer and r["quantity"] == "h"]
        assert [r["distance"] for r in curve] == list(range(8)) and {r["count"] for r in curve} == {3}
    ratio, distance = grad_ratio(rows)
    assert distance == 7 and ratio > 0


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_lstm_gates_of_a_step_equal_a_hand_computation_from_the_weights():
    torch.manual_seed(6)
    encoder = RecurrentEncoder(3, cell="lstm", hidden_size=4).eval()
    x = torch.randn(1, 2, 3)
    with torch.no_grad():
        gates = unroll(encoder, x, torch.tensor([2])).gates[(0, "forward")]
    module = encoder.forward_layers[0]
    w_ih, w_hh = module.weight_ih_l0.detach().numpy(), module.weight_hh_l0.detach().numpy()
    bias = (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy()
    h, c = np.zeros(4), np.zeros(4)
    for t in range(2):
        pre = w_ih @ x[0, t].numpy() + w_hh @ h + bias
        i, f, g, o = _sigmoid(pre[0:4]), _sigmoid(pre[4:8]), np.tanh(pre[8:12]), _sigmoid(pre[12:16])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in (("input", i), ("forget", f), ("candidate", g), ("output", o), ("cell", c)):
            np.testing.assert_allclose(gates[name][0, t].numpy(), value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_forget_bias_opens_the_forget_gate_at_initialisation():
    batch = {"input_ids": torch.randint(1, 50, (8, 20)), "lengths": torch.full((8,), 20)}
    means = {}
    for bias in (None, 1.0):
        torch.manual_seed(7)
        model = SequenceClassifier(50, 2, embedding_dim=8, cell="lstm", hidden_size=32, forget_bias=bias).eval()
        stats = {r["gate"]: r for r in gate_statistics(model, [batch])}
        means[bias] = stats["forget"]["mean"]
        assert stats["forget"]["count"] == 8 * 20 * 32
    assert 0.4 < means[None] < 0.6
    assert means[1.0] > 0.68  # sigmoid(1) = 0.73, blurred by the input and recurrent terms
    with pytest.raises(ConfigError, match="model.forget_bias"):
        RecurrentEncoder(4, cell="rnn", forget_bias=1.0)


def test_an_rnn_reports_hidden_saturation_instead_of_gates():
    task, batch = _tiny_classifier(bidirectional=True)
    rows = gate_statistics(task, [batch])
    assert {(r["direction"], r["gate"]) for r in rows} == {("forward", "abs_hidden"), ("backward", "abs_hidden")}
    assert all(r["count"] == 12 * 5 for r in rows)  # 12 real positions x 5 units


def test_the_heatmap_sequence_is_taken_in_the_splits_order_and_checked():
    from rnnlab.data.bptt import BpttWindows
    from rnnlab.data.datamodule import collate

    data = [(torch.tensor([4, 5, 6]), torch.tensor(1)), (torch.tensor([7]), torch.tensor(0))]
    loader = torch.utils.data.DataLoader(data, batch_sampler=[[1, 0]], collate_fn=collate)
    batch = one_sequence(loader, 0)
    assert batch["input_ids"].tolist() == [[4, 5, 6]] and batch["lengths"].tolist() == [3]
    with pytest.raises(ConfigError, match="analysis.sentence_index=2"):
        one_sequence(loader, 2)
    windows = torch.utils.data.DataLoader(BpttWindows(torch.arange(20).view(2, 10), bptt=4), batch_size=None)
    assert one_sequence(windows, 1)["input_ids"].tolist() == [[10, 11, 12, 13]]


def test_the_analysis_leaves_modes_and_random_streams_as_they_were():
    task, batch = _tiny_classifier(bidirectional=False)
    task.train()
    task.model.head.eval()  # a module deliberately in eval mode stays so
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with quietly(task):
        assert not task.training
        torch.rand(3), np.random.rand(), random.random()
        gradient_flow(task, [batch])
    assert task.training and task.model.encoder.training and not task.model.head.training
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())


@pytest.fixture(scope="module")
def analysed_run(tiny_project, tmp_path_factory):
    """A tiny 2-layer LSTM trained with both analyses on: (tracking uri, run id)."""
    from rnnlab.tracking import runs

    tmp = tmp_path_factory.mktemp("analysed")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    run_train(tiny_project, "model.cell=lstm", "model.num_layers=2", "trainer.max_epochs=2",
              "analysis.gradient_flow=true", "analysis.gates=true", f"hydra.run.dir={tmp / 'run'}",
              tracking_uri=uri)
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    return uri, run.info.run_id


def _table(client, run_id, name, tmp_path) -> list[dict]:
    local = client.download_artifacts(run_id, f"analysis/{name}", str(tmp_path / name))
    return list(csv.DictReader(io.StringIO(open(local).read())))


@pytest.mark.slow
def test_a_training_run_logs_gradient_flow_and_gates_to_mlflow(analysed_run, tmp_path):
    from rnnlab.tracking import runs

    uri, run_id = analysed_run
    client = runs.client(uri)
    files = {a.path for a in client.list_artifacts(run_id, "analysis")}
    assert {"analysis/gradient_flow.csv", "analysis/gradient_flow.png", "analysis/gate_stats.csv",
            "analysis/gates_layer0.png", "analysis/gates_layer1.png"} <= files
    metrics = client.get_run(run_id).data.metrics
    for key in ("grad_h_ratio_init", "grad_h_ratio_trained", "grad_h_ratio_distance"):
        assert key in metrics, key
    assert 0 < metrics["grad_h_ratio_init"] < 10
    flow = _table(client, run_id, "gradient_flow.csv", tmp_path)
    assert {r["stage"] for r in flow} == {"init", "trained"}
    assert {(r["layer"], r["quantity"]) for r in flow} == {("0", "h"), ("1", "h"), ("0", "x")}
    gates = {(r["layer"], r["gate"]): r for r in _table(client, run_id, "gate_stats.csv", tmp_path)}
    assert set(gates) == {(layer, g) for layer in ("0", "1")
                          for g in ("input", "forget", "candidate", "output", "cell")}
    assert 0 < float(gates[("0", "forget")]["mean"]) < 1


@pytest.mark.slow
def test_analysing_some_seeds_only_leaves_the_other_runs_as_they_were(analysed_run, tiny_project, tmp_path):
    """analysis.seeds=[7] on a run of another seed: no analyses, and the very same metrics as the analysed run
    (the analyses never change what training does: a sweep can analyse one seed per configuration)."""
    from rnnlab.tracking import runs

    uri, run_id = analysed_run
    other = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_train(tiny_project, "model.cell=lstm", "model.num_layers=2", "trainer.max_epochs=2",
              "analysis.gradient_flow=true", "analysis.gates=true", "analysis.seeds=[7]",
              f"hydra.run.dir={tmp_path / 'run'}", tracking_uri=other)
    client = runs.client(other)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    assert not client.list_artifacts(run.info.run_id, "analysis")
    analysed = runs.client(uri).get_run(run_id).data.metrics
    for key in ("best_val_acc", "test_acc", "test_loss", "test_f1"):
        assert run.data.metrics[key] == analysed[key], key


@pytest.mark.slow
def test_rnnlab_analyze_rebuilds_the_runs_initial_weights_and_logs_a_sentence(analysed_run, tiny_project,
                                                                            tmp_path, monkeypatch, capsys):
    from rnnlab.analyze import main
    from rnnlab.tracking import runs

    uri, run_id = analysed_run
    client = runs.client(uri)
    during_training = _table(client, run_id, "gradient_flow.csv", tmp_path / "before")
    monkeypatch.chdir(tiny_project)  # the run's data paths are relative to its project
    main([f"run_id={run_id}", f"tracking_uri={uri}", "sentence=a dull and tedious film"])
    assert "grad_h_ratio_trained=" in capsys.readouterr().out
    afterwards = _table(client, run_id, "gradient_flow.csv", tmp_path / "after")

    def init(rows):
        return {(r["layer"], r["direction"], r["quantity"], r["distance"]): float(r["mean_norm"])
                for r in rows if r["stage"] == "init"}

    expected, got = init(during_training), init(afterwards)
    assert set(got) == set(expected)
    for key, value in expected.items():  # the same initial weights, rebuilt from the run's seed
        assert got[key] == pytest.approx(value, rel=1e-4), key
    assert "analysis/gates_layer1.png" in {a.path for a in client.list_artifacts(run_id, "analysis")}
