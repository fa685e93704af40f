"""Embeddings: GloVe co-occurrence counts and training, word2vec alignment and repeatability, pretrained-file
reading and alignment (and its errors), the one-hot input, loading built matrices, intrinsic evaluation."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rnnlab.data.tokenization import build_tokenizer, vocabulary, words
from rnnlab.embeddings.build import build_embedding
from rnnlab.embeddings.evaluate import intrinsic_scores, keyed_vectors, nearest_neighbours
from rnnlab.embeddings.glove import cooccurrence, count_cooccurrences, train_glove
from rnnlab.embeddings.matrix import KINDS, check_onehot_size, embedding_dir, load_matrix
from rnnlab.embeddings.pretrained import read_vectors
from rnnlab.embeddings.word2vec import train_word2vec
from rnnlab.errors import ConfigError, DataError
from rnnlab.models.inputs import OneHot, make_embedding

TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog ran to the park",
    "the bird sang in the tree",
    "a dog chased the cat up the tree",
]
WORD2VEC = {"name": "word2vec", "dim": 8, "window": 2, "min_count": 1, "sg": 1, "negative": 5, "epochs": 3,
            "workers": 1, "seed": 3, "freeze": False, "corpus": None}


def _tokenizer(texts=TEXTS, lowercase=True):
    cfg = OmegaConf.create({"lowercase": lowercase, "unicode_normalization": "nfkc", "strip": [],
                            "min_frequency": 1, "max_vocab_size": 1000})
    return build_tokenizer(texts, cfg)


def _dense(counts):
    return np.asarray(counts.todense())


def _random_corpus(seed=0, lines=40, vocab=12):
    """Lines of random ids with some out-of-vocabulary (-1) ids and some length-0/1 lines."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-1, vocab, size=rng.integers(0, 15)) for _ in range(lines)]


# ----------------------------------------------------------------------------------------------- cooccurrence


def test_cooccurrence_matches_hand_count():
    # Line 1: 0 1 2 3      distance 1: (0,1) (1,2) (2,3) += 1     distance 2: (0,2) (1,3) += 1/2
    # Line 2: 3 -1 2  ->  -1 is dropped first, so 3 and 2 are adjacent: (3,2) += 1
    # No pair crosses the line boundary (the 3 ending line 1 and the 3 starting line 2 never meet: X[3,3] = 0).
    # Each pair adds to both X[i,j] and X[j,i]:
    #   X[0,1] = 1, X[1,2] = 1, X[2,3] = 1 + 1 = 2, X[0,2] = 1/2, X[1,3] = 1/2, X[0,3] = 0 (distance 3 > window)
    expected = np.array([
        [0.0, 1.0, 0.5, 0.0],
        [1.0, 0.0, 1.0, 0.5],
        [0.5, 1.0, 0.0, 2.0],
        [0.0, 0.5, 2.0, 0.0],
    ])
    counts = cooccurrence([np.array([0, 1, 2, 3]), np.array([3, -1, 2])], vocab_size=4, window=2)
    assert counts.shape == (4, 4)
    assert counts.dtype == np.float64
    np.testing.assert_array_equal(_dense(counts), expected)


def test_cooccurrence_window_one_drops_the_distance_two_pairs():
    lines = [np.array([0, 1, 2, 3]), np.array([3, -1, 2])]
    one = _dense(cooccurrence(lines, vocab_size=4, window=1))
    two = _dense(cooccurrence(lines, vocab_size=4, window=2))
    # window 1 keeps only the distance-1 pairs (0,1) (1,2) (2,3) (3,2)
    np.testing.assert_array_equal(one, [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 2], [0, 0, 2, 0]])
    # window 2 adds exactly the distance-2 pairs (0,2) and (1,3), weight 1/2 each, both ways
    difference = np.zeros((4, 4))
    difference[0, 2] = difference[2, 0] = difference[1, 3] = difference[3, 1] = 0.5
    np.testing.assert_array_equal(two - one, difference)


@pytest.mark.parametrize("window", [2, 3])
def test_cooccurrence_of_random_corpus_is_symmetric_with_the_expected_total(window):
    corpus = _random_corpus(seed=1)
    dense = _dense(cooccurrence(corpus, vocab_size=12, window=window))
    if window == 2:  # weights 1 and 1/2 are exact in binary: symmetric bit for bit
        np.testing.assert_array_equal(dense, dense.T)
    else:  # 1/3 rounds, and X[i,j] and X[j,i] are summed in different orders: equal up to rounding
        np.testing.assert_allclose(dense, dense.T, rtol=1e-12, atol=0)
    # After dropping OOV ids a line of n tokens has n - d pairs at distance d, each adding 2/d to the total.
    total = 0.0
    for line in corpus:
        n = int((line >= 0).sum())
        total += sum(2.0 * (n - d) / d for d in range(1, min(window, n - 1) + 1))
    assert dense.sum() == pytest.approx(total, rel=1e-12)


def test_cooccurrence_in_chunks_equals_all_at_once():
    corpus = _random_corpus(seed=2, lines=60)
    # window 2: weights 1 and 1/2 are exact in binary, so the summation order cannot change a bit
    chunked = cooccurrence(corpus, vocab_size=12, window=2, chunk_tokens=3)
    whole = cooccurrence(corpus, vocab_size=12, window=2, chunk_tokens=10**9)
    assert chunked.nnz > 0
    np.testing.assert_array_equal(_dense(chunked), _dense(whole))


def test_cooccurrence_line_of_one_token_contributes_nothing():
    assert cooccurrence([np.array([2])], vocab_size=4, window=2).nnz == 0
    assert cooccurrence([np.array([-1, 2, -1]), np.array([], dtype=np.int64)], vocab_size=4, window=2).nnz == 0
    base = [np.array([0, 1, 2])]
    padded = [np.array([3]), np.array([0, 1, 2]), np.array([-1, 3])]
    np.testing.assert_array_equal(_dense(cooccurrence(base, 4, window=2)), _dense(cooccurrence(padded, 4, window=2)))


def test_glove_trains_on_the_counted_triangle_as_on_the_full_matrix_and_frees_the_triangle():
    """The embed stage trains from the upper triangle (the full matrix is never built): the same vectors, bit for
    bit, as from the CSR matrix of the same counts; the triangle is empty afterwards (its memory handed over)."""
    corpus = _random_corpus(seed=4, lines=80)
    triangle = count_cooccurrences(corpus, vocab_size=12, window=3, chunk_tokens=7)
    matrix = triangle.to_csr()
    assert triangle.nnz == matrix.nnz > 0
    np.testing.assert_array_equal(_dense(matrix), _dense(cooccurrence(corpus, vocab_size=12, window=3, chunk_tokens=7)))
    from_matrix = train_glove(matrix, dim=6, iterations=3, seed=5)
    from_triangle = train_glove(triangle, dim=6, iterations=3, seed=5)
    np.testing.assert_array_equal(from_triangle, from_matrix)
    assert len(triangle.keys) == len(triangle.sums) == 0


# ----------------------------------------------------------------------------------------------------- GloVe

GROUP_A, GROUP_B = list(range(0, 8)), list(range(8, 16))


def _grouped_counts(seed=0):
    """Lines drawn from one of two groups of ids: words co-occur only with their own group."""
    rng = np.random.default_rng(seed)
    lines = [rng.choice(GROUP_A if i % 2 else GROUP_B, size=10) for i in range(200)]
    return cooccurrence(lines, vocab_size=16, window=3)


def _glove(counts, seed=0, iterations=25, on_iteration=None):
    return train_glove(counts, dim=8, iterations=iterations, x_max=10.0, alpha=0.75, learning_rate=0.05,
                       seed=seed, threads=1, on_iteration=on_iteration)


def _cosine(matrix):
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit @ unit.T


def test_glove_loss_decreases_and_groups_separate():
    counts = _grouped_counts()
    calls = []
    vectors = _glove(counts, on_iteration=lambda iteration, loss: calls.append((iteration, loss)))
    assert vectors.shape == (16, 8)
    assert vectors.dtype == np.float32
    assert [iteration for iteration, _ in calls] == list(range(25))
    losses = [loss for _, loss in calls]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    sims = _cosine(vectors.astype(np.float64))
    same = [sims[i, j] for group in (GROUP_A, GROUP_B) for i in group for j in group if i != j]
    across = [sims[i, j] for i in GROUP_A for j in GROUP_B]
    assert np.mean(same) > np.mean(across) + 0.3


def test_glove_is_repeatable_with_a_seed():
    counts = _grouped_counts()
    first = _glove(counts, seed=5, iterations=5)
    second = _glove(counts, seed=5, iterations=5)
    other = _glove(counts, seed=6, iterations=5)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_build_glove_writes_aligned_matrix(tmp_path):
    tokenizer = _tokenizer()
    cfg = OmegaConf.create({"name": "glove", "dim": 6, "window": 3, "x_max": 10.0, "alpha": 0.75, "iterations": 4,
                            "learning_rate": 0.05, "chunk_tokens": 1000, "threads": 1,
                            "seed": 0, "freeze": False, "corpus": None})
    facts = build_embedding(cfg, tokenizer, TEXTS, tmp_path)
    matrix = np.load(tmp_path / "matrix.npy")
    assert matrix.shape == (tokenizer.get_vocab_size(), 6)
    assert not matrix[0].any()  # <pad>
    assert len(facts["losses"]) == 4
    assert facts["nonzeros"] > 0
    assert json.loads((tmp_path / "facts.json").read_text())["dim"] == 6
    # a corpus in which no two vocabulary words share a window is refused, not divided by zero
    with pytest.raises(DataError, match="no two vocabulary words"):
        build_embedding(cfg, tokenizer, ["cat", "zzz qqq", ""], tmp_path / "empty")


# -------------------------------------------------------------------------------------------------- word2vec

W2V_SCRIPT = textwrap.dedent("""
    import sys

    import numpy as np
    from omegaconf import OmegaConf

    from rnnlab.embeddings.word2vec import train_word2vec

    lines = [("the cat sat on the mat " * 3).split(), "a dog ran to the park and the cat ran too".split(),
             "the bird sang in the tree near the park".split()] * 5
    cfg = OmegaConf.create({"dim": 8, "window": 2, "min_count": 1, "sg": 1, "negative": 5, "epochs": 3,
                            "workers": 1, "seed": 3})
    kv = train_word2vec(lines, cfg)
    np.save(sys.argv[1], np.stack([kv[w] for w in ["the", "cat", "park", "bird", "ran"]]))
""")


def test_word2vec_single_worker_repeats_across_processes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(W2V_SCRIPT)
    outputs = []
    for run, hash_seed in enumerate(("1", "2")):  # different string hashing in each process
        out = tmp_path / f"vectors{run}.npy"
        subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        outputs.append(np.load(out))
    assert outputs[0].shape == (5, 8)
    assert np.abs(outputs[0]).sum() > 0
    assert np.array_equal(outputs[0], outputs[1])


def test_build_word2vec_rows_follow_token_ids(tmp_path):
    tokenizer = _tokenizer()
    cfg = OmegaConf.create(WORD2VEC)
    facts = build_embedding(cfg, tokenizer, TEXTS, tmp_path)
    matrix = np.load(tmp_path / "matrix.npy")
    vocab_size = tokenizer.get_vocab_size()
    assert matrix.shape == (vocab_size, 8)
    assert not matrix[0].any()  # <pad>
    kv = train_word2vec([words(tokenizer, text) for text in TEXTS], cfg)  # same seed, one worker: same vectors
    for word in ("cat", "tree", "park"):
        np.testing.assert_array_equal(matrix[tokenizer.token_to_id(word)], kv[word])
    # every corpus word has a vector, so every row but <pad> and <unk> is one
    assert facts["found"] == vocab_size - 2
    written = json.loads((tmp_path / "facts.json").read_text())
    assert written["vocab_size"] == vocab_size
    assert written["name"] == "word2vec"
    assert written["dim"] == 8


# ------------------------------------------------------------------------------------------------ pretrained

DIM = 4
# Values are multiples of 1/8, exact in float32, so the text and the parsed float32 agree bit for bit.
FILE_VECTORS = {
    "the": [0.125, -0.25, 0.5, 1.0],
    "cat": [1.5, 0.0, -0.625, 0.25],
    "dog": [-1.0, 2.0, 0.375, -0.125],
    "Tree": [0.75, 0.75, -0.75, 0.875],  # only capitalised in the file; the vocabulary is lowercased
    "zebra": [3.0, -3.0, 0.5, 0.5],  # not in the vocabulary
    "Quux": [0.25, 0.25, 0.25, 0.25],  # not in the vocabulary
}
COVERED = ("the", "cat", "dog")  # vocabulary words with a vector ("tree" has none: see test below)


def _vector_lines(vectors):
    return [f"{word} {' '.join(repr(v) for v in values)}" for word, values in vectors.items()]


def _write_vectors(path, lines):
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _pretrained_cfg(path, missing="zero", seed=0, dim=DIM):
    return OmegaConf.create({"name": "pretrained", "path": str(path), "dim": dim, "missing": missing, "seed": seed,
                             "freeze": False})


@pytest.mark.parametrize("filename", ["vectors.txt", "vectors.txt.gz", "vectors.txt.bz2"])
def test_pretrained_rows_and_coverage(tmp_path, filename):
    tokenizer = _tokenizer()
    vocab = vocabulary(tokenizer)
    path = _write_vectors(tmp_path / filename, _vector_lines(FILE_VECTORS))
    facts = build_embedding(_pretrained_cfg(path, missing="zero"), tokenizer, TEXTS, tmp_path / "out")
    matrix = np.load(tmp_path / "out" / "matrix.npy")
    assert matrix.shape == (len(vocab), DIM)
    assert matrix.dtype == np.float32
    for word in COVERED:
        np.testing.assert_array_equal(matrix[tokenizer.token_to_id(word)], np.array(FILE_VECTORS[word], np.float32))
    # <pad> and <unk> count as neither found nor missing; every other vocabulary word is one or the other
    words_in_vocab = len(vocab) - 2
    expected = {"vocab_size": len(vocab), "found": len(COVERED), "missing": words_in_vocab - len(COVERED),
                "coverage": len(COVERED) / words_in_vocab, "dim": DIM}
    assert {key: facts[key] for key in expected} == pytest.approx(expected)
    written = json.loads((tmp_path / "out" / "facts.json").read_text())
    assert {key: written[key] for key in expected} == pytest.approx(expected)
    # missing=zero: every uncovered row (and <pad>, <unk>) is zero
    covered_rows = {tokenizer.token_to_id(word) for word in COVERED}
    for row in range(len(vocab)):
        if row not in covered_rows:
            assert not matrix[row].any(), vocab[row]


def test_pretrained_lowercase_fallback_goes_from_cased_vocabulary_to_lowercase_file(tmp_path):
    # align_pretrained looks up vocab_word.lower() when vocab_word has no vector: a cased vocabulary word finds
    # a lowercase file word, but a lowercase vocabulary word does not find a capitalised-only file word.
    tokenizer = _tokenizer(["Paris is big", "Tree and tree", "paris"], lowercase=False)
    vocab = vocabulary(tokenizer)
    assert {"Paris", "paris", "Tree", "tree", "is", "big", "and"} <= set(vocab)
    path = _write_vectors(tmp_path / "v.txt", _vector_lines({"paris": [1.0, 2.0, 3.0, 4.0],
                                                            "Tree": [0.5, 0.5, 0.5, 0.5]}))
    facts = build_embedding(_pretrained_cfg(path), tokenizer, [], tmp_path / "out")
    matrix = np.load(tmp_path / "out" / "matrix.npy")
    np.testing.assert_array_equal(matrix[tokenizer.token_to_id("Paris")], [1.0, 2.0, 3.0, 4.0])  # fallback
    np.testing.assert_array_equal(matrix[tokenizer.token_to_id("paris")], [1.0, 2.0, 3.0, 4.0])  # exact
    np.testing.assert_array_equal(matrix[tokenizer.token_to_id("Tree")], [0.5, 0.5, 0.5, 0.5])  # exact
    assert not matrix[tokenizer.token_to_id("tree")].any()  # no upper-casing fallback
    assert facts["found"] == 3
    assert facts["missing"] == len(vocab) - 2 - 3


def test_pretrained_capitalised_only_file_word_is_missing_for_lowercase_vocabulary(tmp_path):
    tokenizer = _tokenizer()
    assert "tree" in tokenizer.get_vocab()
    path = _write_vectors(tmp_path / "v.txt", _vector_lines(FILE_VECTORS))
    build_embedding(_pretrained_cfg(path, missing="zero"), tokenizer, TEXTS, tmp_path / "out")
    assert not np.load(tmp_path / "out" / "matrix.npy")[tokenizer.token_to_id("tree")].any()


def test_pretrained_missing_random_is_seeded(tmp_path):
    tokenizer = _tokenizer()
    vocab = vocabulary(tokenizer)
    path = _write_vectors(tmp_path / "v.txt", _vector_lines(FILE_VECTORS))
    matrices = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        build_embedding(_pretrained_cfg(path, missing="random", seed=seed), tokenizer, TEXTS, tmp_path / name)
        matrices[name] = np.load(tmp_path / name / "matrix.npy")
    covered_rows = {tokenizer.token_to_id(word) for word in COVERED}
    uncovered = [row for row in range(2, len(vocab)) if row not in covered_rows]
    assert uncovered
    for row in covered_rows:
        np.testing.assert_array_equal(matrices["a"][row], np.array(FILE_VECTORS[vocab[row]], np.float32))
    assert all(np.abs(matrices["a"][row]).min() > 0 for row in uncovered)
    assert not matrices["a"][0].any() and not matrices["a"][1].any()  # <pad>, <unk>
    np.testing.assert_array_equal(matrices["a"], matrices["b"])
    assert not np.array_equal(matrices["a"][uncovered], matrices["c"][uncovered])


def test_pretrained_bad_missing_option_is_a_config_error(tmp_path):
    tokenizer = _tokenizer()
    path = _write_vectors(tmp_path / "v.txt", _vector_lines(FILE_VECTORS))
    with pytest.raises(ConfigError, match="embedding.missing='mean'"):
        build_embedding(_pretrained_cfg(path, missing="mean"), tokenizer, TEXTS, tmp_path / "out")


def test_pretrained_word2vec_header_is_skipped(tmp_path):
    tokenizer = _tokenizer()
    lines = [f"{len(FILE_VECTORS)} {DIM}"] + _vector_lines(FILE_VECTORS)
    path = _write_vectors(tmp_path / "w2v.txt", lines)
    facts = build_embedding(_pretrained_cfg(path), tokenizer, TEXTS, tmp_path / "out")
    matrix = np.load(tmp_path / "out" / "matrix.npy")
    assert facts["found"] == len(COVERED)
    np.testing.assert_array_equal(matrix[tokenizer.token_to_id("cat")], np.array(FILE_VECTORS["cat"], np.float32))


def test_read_vectors_infers_the_dimension_from_the_first_line(tmp_path):
    path = _write_vectors(tmp_path / "v.txt", _vector_lines(FILE_VECTORS))
    found, dim = read_vectors(path, {"cat", "zebra", "absent"})
    assert dim == DIM
    assert set(found) == {"cat", "zebra"}
    np.testing.assert_array_equal(found["zebra"], np.array(FILE_VECTORS["zebra"], np.float32))


# ------------------------------------------------------------------------------------- bad pretrained files


def _raises_for(path, pattern, dim=DIM):
    tokenizer = _tokenizer()
    with pytest.raises(DataError, match=pattern):
        build_embedding(_pretrained_cfg(path, dim=dim), tokenizer, TEXTS, path.parent / "out")


def test_pretrained_wrong_dimension(tmp_path):
    path = _write_vectors(tmp_path / "v.txt", _vector_lines(FILE_VECTORS))
    _raises_for(path, re.escape(f"{path}:1: 4 values where 5 were expected"), dim=5)


def test_pretrained_inconsistent_line(tmp_path):
    lines = _vector_lines(FILE_VECTORS)
    lines[2] = "dog 1.0 2.0 3.0"
    path = _write_vectors(tmp_path / "v.txt", lines)
    _raises_for(path, re.escape(f"{path}:3: 3 values where 4 were expected"))
    with pytest.raises(DataError, match=re.escape(f"{path}:3: 3 values where 4 were expected")):
        read_vectors(path, {"cat"}, None)  # no dimension given: the first line sets it


def test_pretrained_non_numeric_value(tmp_path):
    lines = _vector_lines(FILE_VECTORS)
    lines[1] = "cat 0.5 abc 0.25 0.125"
    path = _write_vectors(tmp_path / "v.txt", lines)
    _raises_for(path, re.escape(f"{path}:2: non-numeric value"))


def test_pretrained_truncated_gz(tmp_path):
    many = {f"word{i}": [float(i % 7) / 8, 0.5, -0.25, float(i % 3)] for i in range(2000)}
    path = _write_vectors(tmp_path / "v.txt.gz", _vector_lines({**FILE_VECTORS, **many}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises_for(path, re.escape(f"{path}: cannot be read"))


def test_pretrained_binary_garbage(tmp_path):
    path = tmp_path / "garbage.txt"
    path.write_bytes(bytes(range(256)) * 64)
    _raises_for(path, re.escape(f"{path}: cannot be read"))


def test_pretrained_missing_path(tmp_path):
    path = tmp_path / "nowhere.txt"
    _raises_for(path, re.escape(f"{path}: no such vectors file"))


# --------------------------------------------------------------------------------------------------- one-hot


def test_onehot_refuses_a_vocabulary_over_the_limit(tmp_path):
    tokenizer = _tokenizer()
    vocab_size = tokenizer.get_vocab_size()
    assert vocab_size > 5
    cfg = OmegaConf.create({"name": "onehot", "max_vocab_size": 5, "freeze": True})
    for call in (lambda: check_onehot_size(cfg, vocab_size), lambda: build_embedding(cfg, tokenizer, TEXTS, tmp_path)):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "embedding.max_vocab_size=5" in message
        assert f"has {vocab_size} words" in message
        assert "embedding=learned" in message
    assert not (tmp_path / "facts.json").exists()
    check_onehot_size(cfg, 5)  # at the limit: allowed


def test_onehot_within_the_limit_writes_facts_only(tmp_path):
    tokenizer = _tokenizer()
    vocab_size = tokenizer.get_vocab_size()
    cfg = OmegaConf.create({"name": "onehot", "max_vocab_size": vocab_size, "freeze": True})
    facts = build_embedding(cfg, tokenizer, TEXTS, tmp_path)
    assert not (tmp_path / "matrix.npy").exists()
    written = json.loads((tmp_path / "facts.json").read_text())
    assert written["vocab_size"] == facts["vocab_size"] == vocab_size
    assert written["dim"] == vocab_size


def test_onehot_module_maps_ids_to_unit_vectors():
    module = OneHot(4)
    ids = torch.tensor([[2, 0, 3], [1, 3, 0]])
    expected = torch.tensor([
        [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
        [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]],
    ])
    out = module(ids)
    assert out.dtype == torch.float32
    assert torch.equal(out, expected)
    assert module.embedding_dim == 4


def test_make_embedding_onehot_has_no_parameters():
    module = make_embedding(7, dim=3, weights=None, freeze=False, kind="onehot")
    assert isinstance(module, OneHot)
    assert list(module.parameters()) == []
    assert module.embedding_dim == 7
    assert len(list(make_embedding(7, dim=3, weights=None, freeze=False).parameters())) == 1  # learned: has one


# ----------------------------------------------------------------------------------------------- load_matrix


@pytest.mark.parametrize("name", ["learned", "onehot"])
def test_load_matrix_model_built_kinds_return_none(tmp_path, name):
    assert load_matrix(OmegaConf.create({"name": name}), tmp_path) is None


def test_load_matrix_missing_build_and_existing_build(tmp_path):
    cfg = OmegaConf.create({"name": "word2vec"})
    with pytest.raises(ConfigError, match="dvc repro"):
        load_matrix(cfg, tmp_path)
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    embedding_dir(tmp_path, "word2vec").mkdir()
    np.save(embedding_dir(tmp_path, "word2vec") / "matrix.npy", matrix)
    np.testing.assert_array_equal(load_matrix(cfg, tmp_path), matrix)


def test_load_matrix_unknown_kind(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_matrix(OmegaConf.create({"name": "fasttext"}), tmp_path)
    assert "fasttext" in str(info.value)
    for kind in KINDS:
        assert kind in str(info.value)


# ------------------------------------------------------------------------------------------------ evaluation


def test_intrinsic_scores_all_out_of_vocabulary_gives_none():
    vocab = ["qzxvb", "blorfen", "wuggle", "snorp"]
    kv = keyed_vectors(vocab, np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    scores = intrinsic_scores(kv)
    assert scores["wordsim353_spearman"] is None and scores["wordsim353_oov"] == 1.0
    assert scores["simlex999_spearman"] is None and scores["simlex999_oov"] == 1.0
    assert scores["analogy_accuracy"] is None and scores["analogy_answered"] == 0


def test_intrinsic_scores_partly_in_vocabulary_gives_numbers():
    # real WordSim-353 / SimLex-999 words, random vectors: a score exists and some pairs are in vocabulary
    vocab = ["tiger", "cat", "dog", "book", "paper", "computer", "keyboard", "love", "sex", "money", "bank", "car",
             "old", "new", "happy", "sad", "king", "queen", "man", "woman"]
    kv = keyed_vectors(vocab, np.random.default_rng(0).normal(size=(len(vocab), 5)).astype(np.float32))
    scores = intrinsic_scores(kv)
    assert isinstance(scores["wordsim353_spearman"], float)
    assert 0.0 < scores["wordsim353_oov"] < 1.0


def test_keyed_vectors_skips_special_rows():
    matrix = np.array([[0.0, 0.0], [9.0, 9.0], [1.0, 2.0]], dtype=np.float32)
    kv = keyed_vectors(["<pad>", "<unk>", "word"], matrix, skip=2)
    assert list(kv.key_to_index) == ["word"]
    np.testing.assert_array_equal(kv["word"], [1.0, 2.0])


def test_nearest_neighbours_ordered_by_cosine():
    vocab = ["probe", "near", "side", "away", "far"]
    matrix = np.array([
        [1.0, 0.0],
        [3.0, 4.0],    # cos with probe = 3/5 = 0.6
        [0.0, 2.0],    # cos = 0
        [-1.0, 1.0],   # cos = -1/sqrt(2) = -0.7071
        [-2.0, 0.0],   # cos = -1
    ], dtype=np.float32)
    kv = keyed_vectors(vocab, matrix)
    result = nearest_neighbours(kv, ["probe", "unknown"], k=4)
    assert list(result) == ["probe"]  # a probe without a vector is left out
    assert [word for word, _ in result["probe"]] == ["near", "side", "away", "far"]
    assert [sim for _, sim in result["probe"]] == pytest.approx([0.6, 0.0, -0.7071, -1.0], abs=1e-4)
    assert len(nearest_neighbours(kv, ["probe"], k=2)["probe"]) == 2
