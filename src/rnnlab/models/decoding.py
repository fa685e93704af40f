"""Decoding an encoder-decoder (models/seq2seq.py): greedy and beam search, each over a whole batch at once
(`beam_search_sentence` is the one-sentence beam search kept as the reference the batched one must equal).
Each stops a sentence at `<eos>` or after `max_length` words (by default `max_length_for` its own source
length); the ids they return exclude `<bos>` and `<eos>`.

Beam search keeps the `beam` best partial translations by summed log-probability; a finished one is ranked
by its score divided by length ** `length_penalty` (0 = raw sum, which favours short output; 1 = mean per
word). With beam=1 it is greedy decoding exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnlab.errors import ConfigError
from rnnlab.models.modes import in_eval_mode


@dataclass
class Decoded:
    ids: list[int]  # the words, without <bos> / <eos>
    attention: torch.Tensor | None  # [len(ids) + 1, S]: one row per emitted word and the final <eos>
    score: float  # summed log-probability


def max_length_for(source_lengths: torch.Tensor, factor: float = 2.0, extra: int = 10) -> int:
    return int(int(source_lengths.max()) * factor) + extra


def _select_state(state: list, rows: torch.Tensor) -> list:
    """The decoder state (one entry per layer: a tensor, or an LSTM's (h, c)) of the given rows."""
    return [tuple(t.index_select(0, rows) for t in s) if isinstance(s, tuple) else s.index_select(0, rows)
            for s in state]


@in_eval_mode
@torch.no_grad()
def greedy(model, source_ids: torch.Tensor, source_lengths: torch.Tensor, bos_id: int, eos_id: int,
           max_length: int | None = None) -> list[Decoded]:
    """The most likely word at every step, for every sentence of the batch."""
    max_length = int(max_length or max_length_for(source_lengths))
    memory, state = model.encode(source_ids, source_lengths)
    batch = source_ids.size(0)
    previous = torch.full((batch,), bos_id, dtype=torch.long, device=source_ids.device)
    done = torch.zeros(batch, dtype=torch.bool, device=source_ids.device)
    words, weights, scores = [], [], torch.zeros(batch, device=source_ids.device)
    for _ in range(max_length + 1):
        feature, state, attention = model.step(previous, state, memory)
        log_probs = torch.log_softmax(model.logits(feature), dim=-1)
        best = log_probs.argmax(-1)
        scores += torch.where(done, 0.0, log_probs.gather(1, best.unsqueeze(1)).squeeze(1))
        words.append(best)
        weights.append(attention)
        done |= best == eos_id
        if bool(done.all()):
            break
        previous = best
    steps = torch.stack(words, dim=1).tolist()
    out = []
    for row, ids in enumerate(steps):
        end = ids.index(eos_id) if eos_id in ids else min(len(ids), max_length)
        rows = torch.stack([w[row] for w in weights[:end + 1]]) if weights[0] is not None else None
        out.append(Decoded(ids[:end], rows, float(scores[row])))
    return out


@in_eval_mode
@torch.no_grad()
def beam_search_sentence(model, source_ids: torch.Tensor, source_lengths: torch.Tensor, bos_id: int, eos_id: int,
                         beam: int = 5, length_penalty: float = 1.0, max_length: int | None = None) -> Decoded:
    """The best translation of ONE source sentence (source_ids [1, S]) found with a beam of `beam`: the
    reference `beam_search` is tested and benchmarked against."""
    if beam < 1:
        raise ConfigError(f"beam size {beam} must be at least 1")
    if source_ids.size(0) != 1:
        raise ValueError("beam_search decodes one sentence: source_ids must be [1, S]")
    max_length = int(max_length or max_length_for(source_lengths))
    memory, state = model.encode(source_ids, source_lengths)
    device = source_ids.device
    # live hypotheses: their words, scores, attention rows; state / memory rows follow them
    words: list[list[int]] = [[]]
    rows: list[list[torch.Tensor]] = [[]]
    scores = torch.zeros(1, device=device)
    previous = torch.tensor([bos_id], device=device)
    finished: list[tuple[float, Decoded]] = []
    for step in range(max_length + 1):
        feature, state, attention = model.step(previous, state, memory)
        log_probs = torch.log_softmax(model.logits(feature), dim=-1)  # [live, V]
        if step == max_length:  # out of room: only <eos> may follow
            forced = torch.full_like(log_probs, float("-inf"))
            forced[:, eos_id] = log_probs[:, eos_id]
            log_probs = forced
        candidates = (scores.unsqueeze(1) + log_probs).flatten()
        top = candidates.topk(min(beam, candidates.numel()))
        vocab = log_probs.size(1)
        keep_rows, keep_words, keep_scores = [], [], []
        for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            row, word = divmod(flat, vocab)
            attn = [*rows[row], attention[row]] if attention is not None else []
            if word == eos_id:
                length = len(words[row]) + 1
                ranked = score / (length ** length_penalty)
                finished.append((ranked, Decoded(words[row], torch.stack(attn) if attn else None, score)))
            else:
                keep_rows.append(row)
                keep_words.append(word)
                keep_scores.append(score)
        best_finished = max((r for r, _ in finished), default=float("-inf"))
        # stop when nothing is live, or when no live hypothesis can still beat the best finished one
        # (scores only fall as words are added, and with length_penalty=0 ranking is by raw score)
        if not keep_rows or (length_penalty == 0 and max(keep_scores) <= best_finished):
            break
        if len(finished) >= beam:
            break
        index = torch.tensor(keep_rows, device=device)
        words = [[*words[r], w] for r, w in zip(keep_rows, keep_words, strict=True)]
        rows = [[*rows[r], attention[r]] if attention is not None else [] for r in keep_rows]
        scores = torch.tensor(keep_scores, device=device)
        previous = torch.tensor(keep_words, device=device)
        state = _select_state(state, index)
        memory = memory.select(torch.zeros(len(keep_rows), dtype=torch.long, device=device))  # one sentence
    return max(finished, key=lambda item: item[0])[1]


@in_eval_mode
@torch.no_grad()
def beam_search(model, source_ids: torch.Tensor, source_lengths: torch.Tensor, bos_id: int, eos_id: int,
                beam: int = 5, length_penalty: float = 1.0, max_length: int | None = None) -> list[Decoded]:
    """The best translation of every sentence of the batch (source_ids [B, S], right-padded), all beams decoded
    together: the same search as `beam_search_sentence` on each sentence alone (same candidates, ranking, stopping
    and per-sentence `max_length`), as B * beam rows, of which a sentence's unused rows score -inf. A finished
    sentence leaves the batch."""
    if beam < 1:
        raise ConfigError(f"beam size {beam} must be at least 1")
    device, inf = source_ids.device, float("inf")
    lengths = source_lengths.tolist()
    limits = [int(max_length) if max_length else max_length_for(source_lengths[b]) for b in range(len(lengths))]
    memory, state = model.encode(source_ids, source_lengths)
    groups = torch.arange(len(lengths), device=device).repeat_interleave(beam)  # row -> its sentence's row
    memory, state = memory.select(groups), _select_state(state, groups)
    scores = torch.full((len(lengths), beam), -inf, device=device)
    scores[:, 0] = 0.0  # one live hypothesis (the empty one) per sentence to start
    previous = torch.full((len(lengths) * beam,), bos_id, dtype=torch.long, device=device)
    words = torch.zeros((len(lengths) * beam, 0), dtype=torch.long, device=device)
    history = None  # [rows, step, S]: the attention rows of each hypothesis's words so far
    active = list(range(len(lengths)))  # the sentences still decoded, in row-group order
    finished: list[list[tuple[float, Decoded]]] = [[] for _ in lengths]
    for step in range(max(limits, default=-1) + 1):
        feature, state, attention = model.step(previous, state, memory)
        log_probs = torch.log_softmax(model.logits(feature), dim=-1)  # [A * beam, V]
        vocab = log_probs.size(1)
        log_probs = log_probs.view(len(active), beam, vocab)
        out_of_room = [i for i, b in enumerate(active) if step == limits[b]]
        if out_of_room:  # only <eos> may follow
            rows = torch.tensor(out_of_room, device=device)
            eos = log_probs[rows, :, eos_id]
            log_probs[rows] = -inf
            log_probs[rows, :, eos_id] = eos
        if attention is not None:
            history = (attention.unsqueeze(1) if history is None
                       else torch.cat([history, attention.unsqueeze(1)], dim=1))
        top = (scores.unsqueeze(2) + log_probs).view(len(active), beam * vocab).topk(beam, dim=1)
        kept_groups = []
        for i, (b, values, flats) in enumerate(zip(active, top.values.tolist(), top.indices.tolist(), strict=True)):
            kept = []
            for score, flat in zip(values, flats, strict=True):
                if score == -inf:  # an unused row's candidate, or past room: not a hypothesis
                    continue
                row = i * beam + flat // vocab
                word = flat % vocab
                if word == eos_id:
                    rows = history[row, :, :lengths[b]] if history is not None else None
                    decoded = Decoded(words[row].tolist(), rows, score)
                    finished[b].append((score / ((step + 1) ** length_penalty), decoded))
                else:
                    kept.append((row, word, score))
            best_finished = max((r for r, _ in finished[b]), default=-inf)
            # stop as beam_search_sentence does: nothing live, no live hypothesis can still win (length_penalty
            # 0 ranks by the raw score, which only falls), `beam` finished, or out of room
            if not kept or (length_penalty == 0 and max(s for _, _, s in kept) <= best_finished) \
                    or len(finished[b]) >= beam or step == limits[b]:
                continue
            kept_groups.append((i, b, kept))
        if not kept_groups:
            break
        rows, next_words, next_scores = [], [], []
        for i, _, kept in kept_groups:
            kept = kept + [(i * beam, eos_id, -inf)] * (beam - len(kept))  # unused rows
            rows += [row for row, _, _ in kept]
            next_words += [word for _, word, _ in kept]
            next_scores += [score for _, _, score in kept]
        index = torch.tensor(rows, device=device)
        state = _select_state(state, index)
        if len(kept_groups) < len(active):  # a sentence finished: its rows leave the memory too
            memory = memory.select(torch.tensor([i * beam for i, _, _ in kept_groups], device=device)
                                   .repeat_interleave(beam))
        words = torch.cat([words.index_select(0, index), torch.tensor(next_words, device=device).unsqueeze(1)], 1)
        history = history.index_select(0, index) if history is not None else None
        scores = torch.tensor(next_scores, device=device).view(len(kept_groups), beam)
        previous = torch.tensor(next_words, device=device)
        active = [b for _, b, _ in kept_groups]
    return [max(found, key=lambda item: item[0])[1] for found in finished]
