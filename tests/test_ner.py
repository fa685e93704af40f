"""Named-entity tagging: CoNLL reading, tag alignment through padding, seqeval scores, a tiny real run."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, served_model

from rnnlab.data.conll import read_conll, tag_set
from rnnlab.data.tagging import IGNORE, collate, encode_sentence
from rnnlab.errors import DataError
from rnnlab.models.tagger import SequenceTagger
from rnnlab.tasks.ner import confusion_table, entity_scores
from rnnlab.tracking import runs

PEOPLE = ["Smith", "Jones", "Garcia", "Chen", "Okafor", "Novak", "Rossi", "Tanaka"]
PLACES = ["Paris", "Lagos", "Lima", "Oslo", "Delhi", "Quito", "Hanoi", "Perth"]
COMPANIES = [("Acme", "Corp"), ("Globex", "Inc"), ("Initech", "Ltd"), ("Umbrella", "Group")]
FILLER = "the a report said on today new plans were shown with".split()


def synthetic_conll(path: Path, sentences: int, seed: int) -> None:
    """Sentences whose entities follow fixed patterns (learnable in a few epochs), in CoNLL-2003 layout."""
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for i in range(sentences):
        words = [(w, "O") for w in rng.choices(FILLER, k=rng.randint(1, 4))]
        words += [("mr", "O"), (rng.choice(PEOPLE), "B-PER"), ("visited", "O"), (rng.choice(PLACES), "B-LOC")]
        if i % 2:
            first, second = rng.choice(COMPANIES)
            words += [("for", "O"), (first, "B-ORG"), (second, "I-ORG")]
        words.append((".", "O"))
        lines += [f"{word} NN O {tag}" for word, tag in words] + [""]
        if i % 25 == 24:
            lines += ["-DOCSTART- -X- -X- O", ""]
    path.write_text("\n".join(lines) + "\n")


def test_conll_reader_skips_docstart_and_splits_on_blank_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nIndia NNP B-NP B-LOC\n")
    read = read_conll(path)
    assert read.tokens == [["EU", "rejects"], ["Peter", "Blackburn"], ["India"]]
    assert read.tags == [["B-ORG", "O"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert read.documents == 2
    assert tag_set(read) == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    with pytest.raises(DataError, match="not a BIO tag"):  # POS tags are not BIO ...
        read_conll(path, tag_column=1)
    assert read_conll(path, tag_column=1, bio=False).tags == [["NNP", "VBZ"]]  # ... but can be read as plain


def test_conll_reader_refuses_a_malformed_line_with_its_number(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"bad.txt:2: expected at least 2 .*found 1"):
        read_conll(path)
    path.write_text("EU NNP B-NP B-ORG\n\nrejects VBZ B-VP X-ORG\n")
    with pytest.raises(DataError, match=r"bad.txt:3: tag 'X-ORG' is not a BIO tag"):
        read_conll(path)
    path.write_text("EU NNP B-NP B-ORG\n\nrejects VBZ B-VP B-PER\n")
    with pytest.raises(DataError, match=r"bad.txt:3: tag 'B-PER' does not occur in the train split"):
        read_conll(path, known_tags=["O", "B-ORG"])


def test_seqeval_scores_on_a_hand_made_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    # entities: gold {PER(0-1), LOC(3), ORG(0), PER(2)}; predicted {PER(0-1), ORG(3), ORG(0)}; 2 match
    scores = entity_scores(gold, predicted, "test")
    assert scores["test_precision"] == pytest.approx(2 / 3)
    assert scores["test_recall"] == pytest.approx(2 / 4)
    assert scores["test_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert scores["test_f1_PER"] == pytest.approx(2 * 1 * 0.5 / 1.5)  # 1 of 1 predicted, 1 of 2 gold
    assert scores["test_f1_ORG"] == pytest.approx(2 * 0.5 * 1 / 1.5)  # 1 of 2 predicted, 1 of 1 gold
    assert scores["test_f1_LOC"] == 0.0
    table = confusion_table(gold, predicted, ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"])
    assert "| B-LOC | 0 | 0 | 1 | 0 | 0 |" in table and "| B-PER | 1 | 0 | 0 | 1 | 0 |" in table


@pytest.mark.parametrize("crf,chars", [(False, False), (True, True)])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_predictions_for_a_padded_bucketed_batch_equal_each_sentence_alone(cell, crf, chars):
    torch.manual_seed(0)
    model = SequenceTagger(vocab_size=30, num_tags=5, embedding_dim=6, cell=cell, hidden_size=7, num_layers=2,
                           bidirectional=True, case_dim=3, char_dim=4 if chars else 0,
                           char_filters=5 if chars else 0, num_chars=12, crf=crf).eval()
    rng = random.Random(1)
    sentences = []
    for length in (7, 1, 4, 9, 2):
        words = ["".join(rng.choices("abcdefgh", k=rng.randint(1, 6))) for _ in range(length)]
        sentences.append(encode_sentence([rng.randint(2, 29) for _ in words], [rng.randint(1, 6) for _ in words],
                                         [rng.randint(0, 4) for _ in words], words,
                                         {ch: i + 2 for i, ch in enumerate("abcdefgh")} if chars else None, 20))
    with torch.no_grad():
        batch = collate(sentences)
        assert (batch["tags"] == IGNORE).sum() == batch["input_ids"].numel() - batch["lengths"].sum()
        together = model.decode(model(batch["input_ids"], batch["lengths"], batch["case_ids"],
                                      batch.get("char_ids")), batch["lengths"])
        for sentence, expected in zip(sentences, together, strict=True):
            one = collate([sentence])
            alone = model.decode(model(one["input_ids"], one["lengths"], one["case_ids"], one.get("char_ids")),
                                 one["lengths"])
            assert alone == [expected]
            assert len(expected) == len(sentence["input_ids"])


def test_padded_tags_do_not_count_in_the_loss():
    torch.manual_seed(0)
    for crf in (False, True):
        model = SequenceTagger(vocab_size=10, num_tags=3, embedding_dim=4, hidden_size=5, crf=crf)
        scores = torch.randn(2, 4, 3)
        tags = torch.tensor([[0, 1, 2, IGNORE], [1, IGNORE, IGNORE, IGNORE]])
        changed = scores.clone()
        changed[0, 3] += 100.0  # scores at padded positions must not matter
        changed[1, 1:] -= 100.0
        assert torch.allclose(model.loss(scores, tags), model.loss(changed, tags))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_crf_decoding_on_a_gpu_matches_the_cpu():
    """The CRF's length mask is built on the scores' device. Before, it was always a CPU tensor, and Viterbi
    decoding of scores on a GPU failed on mixed devices."""
    torch.manual_seed(0)
    model = SequenceTagger(vocab_size=10, num_tags=3, embedding_dim=4, hidden_size=5, crf=True).eval()
    scores, lengths = torch.randn(3, 5, 3), torch.tensor([5, 2, 4])
    on_cpu = model.decode(scores, lengths)
    assert model.cuda().decode(scores.cuda(), lengths.cuda()) == on_cpu


NER_DATA = """\
name: tinyner
format: conll
source: {{kind: local, path: [{train}, {valid}, {test}]}}
files: {{train: train.txt, validation: valid.txt, test: test.txt}}
word_column: 0
tag_column: -1
max_length: null
truncation_side: head
batch_size: 16
eval_batch_size: 64
pool_batches: 4
num_workers: 0
"""


@pytest.fixture(scope="module")
def ner_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nerproject")
    shutil.copytree(REPO / "conf", root / "conf")
    files = {}
    for name, count, seed in (("train", 240, 0), ("valid", 60, 1), ("test", 60, 2)):
        files[name] = root / "raw" / f"{name}.txt"
        files[name].parent.mkdir(exist_ok=True)
        synthetic_conll(files[name], count, seed)
    (root / "conf/data/tinyner.yaml").write_text(NER_DATA.format(**files))
    with open(files["test"], "a") as handle:  # a place seen only in the test text
        handle.write("mr NN O O\nChen NN O B-PER\nvisited NN O O\nZurich NN O B-LOC\n. NN O O\n")
    vectors = root / "vectors.txt"  # stands in for GloVe: lowercase words, 3 values each
    vectors.write_text("zurich 0.1 0.2 0.3\nparis 0.3 0.2 0.1\nunseen 1 1 1\n")
    env = {**os.environ, "RNNLAB_CONF_DIR": str(root / "conf")}
    for script in ("fetch.py", "prepare.py", "tokenize_data.py"):
        subprocess.run([sys.executable, str(REPO / "pipelines" / script), "data=tinyner", "tokenizer=conll",
                        f"tokenizer.pretrained_words.path={vectors}"], cwd=root, env=env, check=True,
                       capture_output=True)
    return root


def test_tokenized_tagging_data_keeps_words_one_to_one_with_case_and_chars(ner_project):
    from datasets import load_from_disk

    data = load_from_disk(str(ner_project / "data/tinyner/tokenized/data"))["train"][0]
    assert len(data["input_ids"]) == len(data["tokens"]) == len(data["tags"]) == len(data["case_ids"])
    assert data["case_ids"][data["tokens"].index("mr") + 1] == 2  # a title-case name
    assert (ner_project / "data/tinyner/tokenized/chars.json").exists()
    assert (ner_project / "data/tinyner/tokenized/tags.json").read_text().count("B-") == 3


def test_test_words_with_a_pretrained_vector_join_the_vocabulary_without_their_tags(ner_project):
    from rnnlab.data.tokenization import load_tokenizer, vocabulary

    tokenized = ner_project / "data/tinyner/tokenized"
    vocab = vocabulary(load_tokenizer(tokenized / "tokenizer.json"))
    stats = json.loads((tokenized / "stats.json").read_text())
    assert stats["pretrained_words_added"] == 1  # zurich: in the test text and the vectors file
    assert vocab[-1] == "zurich" and "unseen" not in vocab  # words only in the vectors file stay out
    assert stats["vocab_size"] == len(vocab)


@pytest.mark.slow
def test_a_tiny_tagger_learns_and_logs_entity_scores_to_mlflow(ner_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    proc = subprocess.run([sys.executable, "-m", "rnnlab.train", "experiment=ner", "data=tinyner", "embedding=learned",
                           "embedding.dim=16", "model.hidden_size=16", "model.crf=true", "model.char_dim=8",
                           "model.char_filters=8", "model.embedding_dropout=0", "model.output_dropout=0", "optimizer.lr=0.02",
                           "trainer.max_epochs=8", "torch_threads=1"],
                          cwd=ner_project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = runs.client(uri)
    run = client.search_runs([client.get_experiment_by_name("ner-tinyner").experiment_id])[0]
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["test_f1"] > 0.9, metrics
    for key in ("test_precision", "test_recall", "test_f1_PER", "test_f1_LOC", "test_f1_ORG", "best_val_f1"):
        assert key in metrics
    assert {"confusion_test.md", "tags.json", "chars.json", "checkpoints"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}
    predicted = subprocess.run([sys.executable, "-m", "rnnlab.predict", f"run_id={run.info.run_id}",
                                "text=the report said mr Chen visited Oslo for Acme Corp .", f"tracking_uri={uri}"],
                               cwd=ner_project, env=env, capture_output=True, text=True)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert "Chen/B-PER" in predicted.stdout and "Oslo/B-LOC" in predicted.stdout
    assert "Acme/B-ORG Corp/I-ORG" in predicted.stdout
    # the run's MLflow model tags the same, loaded by pyfunc and served over HTTP
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    sentence = "the report said mr Chen visited Oslo for Acme Corp ."
    expected = " ".join(pair.rsplit("/", 1)[1] for pair in predicted.stdout.split())
    assert model.predict(pd.DataFrame({"text": [sentence]}))["tags"][0] == expected
    with served_model(f"runs:/{run.info.run_id}/model", uri, tmp_path / "serve.log") as ask:
        assert ask([sentence])["predictions"][0]["tags"] == expected


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_scores_the_whole_split_like_one_process(ner_project, tmp_path):
    # seqeval's entity F1 is not a mean over processes: each process's tag sequences are gathered first
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("RNNLAB_PARENT_RUN_ID", None)
    common = ["experiment=ner", "data=tinyner", "embedding=learned", "embedding.dim=16", "model.hidden_size=16",
              "model.crf=true", "model.char_dim=0", "model.dropout=0", "model.embedding_dropout=0",
              "model.output_dropout=0", "optimizer.lr=0.004", "trainer.max_epochs=2", "torch_threads=1"]
    for name, extra in (("single", []), ("ddp", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])):
        proc = subprocess.run([sys.executable, "-m", "rnnlab.train", *common, *extra, f"run_name={name}",
                               f"hydra.run.dir={tmp_path / name}"], cwd=ner_project, env=env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    client = runs.client(uri)
    found = {r.info.run_name: r.info.run_id
             for r in client.search_runs([client.get_experiment_by_name("ner-tinyner").experiment_id])}
    assert sorted(found) == ["ddp", "single"]
    for key, tolerance in (("val_f1", 1e-6), ("val_loss", 1e-4), ("test_f1", 1e-6)):
        single, ddp = ([m.value for m in client.get_metric_history(found[name], key)] for name in ("single", "ddp"))
        assert len(single) >= 1 and ddp == pytest.approx(single, abs=tolerance), key
