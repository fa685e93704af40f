"""On a CUDA GPU (skipped without one; `pytest -m gpu` on a GPU machine): every model's training step gives the
CPU's loss and gradients, beam search finds the CPU's translations, and real tiny runs train with mixed precision
and under DDP on one device. Each compares against the CPU with the same weights and batch."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import run_train

from rnnlab.tracking import runs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _step(model, loss_of):
    """Loss and every parameter's gradient of one forward/backward."""
    model.zero_grad()
    loss = loss_of(model)
    loss.backward()
    return float(loss.detach()), {name: p.grad.detach().cpu().clone() for name, p in model.named_parameters()
                         if p.grad is not None}


def _same_step_on_cpu_and_gpu(model, loss_of, atol=1e-4):
    cpu_loss, cpu_grads = _step(model, lambda m: loss_of(m, "cpu"))
    gpu = copy.deepcopy(model).cuda()
    gpu_loss, gpu_grads = _step(gpu, lambda m: loss_of(m, "cuda"))
    assert gpu_loss == pytest.approx(cpu_loss, abs=atol)
    assert cpu_grads.keys() == gpu_grads.keys()
    for name in cpu_grads:
        assert torch.allclose(cpu_grads[name], gpu_grads[name], atol=atol), name


def _padded(lengths, vocab=30, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(4, vocab, (n,), generator=generator)
    return ids, torch.tensor(lengths)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_classifier_and_a_tagger_step_on_the_gpu_equals_the_cpus(cell):
    from rnnlab.data.tagging import IGNORE
    from rnnlab.models.classifier import SequenceClassifier
    from rnnlab.models.tagger import SequenceTagger

    torch.manual_seed(0)
    ids, lengths = _padded([7, 3, 5])
    labels = torch.tensor([0, 1, 1])
    classifier = SequenceClassifier(30, 2, embedding_dim=8, cell=cell, hidden_size=12, num_layers=2,
                                    bidirectional=True)
    _same_step_on_cpu_and_gpu(classifier, lambda m, d: torch.nn.functional.cross_entropy(
        m(ids.to(d), lengths.to(d)), labels.to(d)))
    tags = torch.randint(0, 3, ids.shape).masked_fill(ids == 0, IGNORE)
    tagger = SequenceTagger(30, 3, embedding_dim=8, cell=cell, hidden_size=12, crf=True)
    _same_step_on_cpu_and_gpu(tagger, lambda m, d: m.loss(m(ids.to(d), lengths.to(d)), tags.to(d)))


def test_a_language_model_and_a_conditional_generator_step_on_the_gpu_equals_the_cpus():
    from rnnlab.models.conditional_lm import ConditionalLanguageModel
    from rnnlab.models.language_model import LanguageModel

    torch.manual_seed(0)
    ids, _ = _padded([9, 9, 9])
    lm = LanguageModel(30, embedding_dim=8, hidden_size=8, cell="lstm", num_layers=2)
    _same_step_on_cpu_and_gpu(lm, lambda m, d: torch.nn.functional.cross_entropy(
        m(ids[:, :-1].to(d))[0].flatten(0, 1), ids[:, 1:].flatten().to(d)))
    generator = ConditionalLanguageModel(30, 2, embedding_dim=8, hidden_size=8, cell="gru")
    labels = torch.tensor([0, 1, 0])
    _same_step_on_cpu_and_gpu(generator, lambda m, d: torch.nn.functional.cross_entropy(
        m(ids[:, :-1].to(d), labels.to(d))[0].flatten(0, 1), ids[:, 1:].flatten().to(d)))


def test_an_encoder_decoder_step_and_its_beam_search_on_the_gpu_equal_the_cpus():
    from rnnlab.models.decoding import beam_search
    from rnnlab.models.seq2seq import Seq2Seq
    from rnnlab.tasks.translation import sequence_loss

    torch.manual_seed(0)
    sources, lengths = _padded([6, 2, 4, 5])
    targets, _ = _padded([7, 7, 7, 7], seed=1)
    model = Seq2Seq(30, 30, embedding_dim=8, cell="gru", hidden_size=12, attention="additive", attention_size=8)
    _same_step_on_cpu_and_gpu(model, lambda m, d: sequence_loss(
        m(sources.to(d), lengths.to(d), targets[:, :-1].to(d))[0], targets[:, 1:].to(d)))
    model.eval()
    on_cpu = beam_search(model, sources, lengths, bos_id=1, eos_id=2, beam=4)
    on_gpu = beam_search(copy.deepcopy(model).cuda(), sources.cuda(), lengths.cuda(), bos_id=1, eos_id=2, beam=4)
    assert [d.ids for d in on_gpu] == [d.ids for d in on_cpu]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["trainer.precision=bf16-mixed"], ["trainer=ddp", "trainer.accelerator=gpu",
                                                                      "trainer.devices=1"]],
                         ids=["mixed-precision", "ddp-one-device"])
def test_a_tiny_run_trains_on_the_gpu(tiny_project, tmp_path, extra):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["trainer=gpu", *extra] if extra[0] != "trainer=ddp" else extra
    run_train(tiny_project, *overrides, f"hydra.run.dir={tmp_path / 'run'}", tracking_uri=uri)
    client = runs.client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sentiment-tiny").experiment_id])
    assert run.info.status == "FINISHED"
    assert 0 <= run.data.metrics["test_acc"] <= 1 and run.data.metrics["best_val_acc"] > 0
