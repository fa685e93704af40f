"""Beam search: the batched decoder (`beam_search`, every sentence of a batch at once) against the one-sentence
reference (`beam_search_sentence`, what the translation task used before), on the real Tatoeba test sentences.

    python benchmarks/beam_search.py [--sentences 512] [--beam 5] [--length-penalty 1.0] [--train-steps 300]
                                     [--rounds 3] [--threads 1] [--device cpu|cuda] [--out PATH] [overrides ...]

The model is `experiment=translation`'s (GRU, bidirectional encoder, additive attention, the configured sizes),
trained for `--train-steps` batches of the train split first so that it ends its sentences the way a trained
model does (an untrained one runs every sentence to its maximum length). Both decoders read the same test
sentences, in the task's own test batches (eval_batch_size, bucketed by source length), taken evenly across the
split; the rounds alternate which goes first. Printed: sentences per second of each (median over rounds), the ratio, and how many sentences got
different words (must be 0) and the largest score difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from training_step import compose_config, cpu_name, quiet_lightning, synchronize  # noqa: E402


def trained_model(cfg, datamodule, source_tokenizer, target_tokenizer, steps: int, device: str):
    import torch

    from rnnlab.tasks.translation import make_model, sequence_loss

    torch.manual_seed(cfg.seed)
    model = make_model(cfg, source_tokenizer, target_tokenizer).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.optimizer.lr))
    model.train()
    done = 0
    while done < steps:
        for batch in datamodule.train_dataloader():
            batch = {k: v.to(device) for k, v in batch.items()}
            logits, _ = model(batch["source_ids"], batch["source_lengths"], batch["target_ids"][:, :-1])
            loss = sequence_loss(logits, batch["target_ids"][:, 1:])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            done += 1
            if done % 50 == 0:
                print(f"  trained {done}/{steps} batches, loss {float(loss):.3f}", flush=True)
            if done >= steps:
                break
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/beam_search.json")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    import torch

    from rnnlab.data.conventions import BOS, EOS
    from rnnlab.data.pairs import PairDataModule
    from rnnlab.data.tokenization import load_tokenizer
    from rnnlab.models.decoding import beam_search, beam_search_sentence

    quiet_lightning()
    torch.set_num_threads(args.threads)
    cfg = compose_config(["experiment=translation", *args.overrides])
    tokenized = Path(cfg.paths.tokenized_dir)
    source_tokenizer = load_tokenizer(tokenized / "tokenizer.json")
    target_tokenizer = load_tokenizer(tokenized / "target_tokenizer.json")
    bos, eos = target_tokenizer.token_to_id(BOS), target_tokenizer.token_to_id(EOS)
    datamodule = PairDataModule(str(tokenized), bos_id=bos, eos_id=eos, batch_size=cfg.data.batch_size,
                                eval_batch_size=cfg.data.eval_batch_size, pool_batches=cfg.data.pool_batches,
                                num_workers=0, seed=cfg.seed)
    datamodule.setup()
    model = trained_model(cfg, datamodule, source_tokenizer, target_tokenizer, args.train_steps, args.device)
    # test batches spread evenly over the split (its batches run from short to long sentences)
    everything = list(datamodule.test_dataloader())
    size = everything[0]["source_ids"].size(0)
    wanted = max(1, min(len(everything), -(-args.sentences // size)))
    batches, taken = [], 0
    for index in sorted({round(i * (len(everything) - 1) / max(wanted - 1, 1)) for i in range(wanted)}):
        batch = everything[index]
        keep = min(batch["source_ids"].size(0), args.sentences - taken)
        lengths = batch["source_lengths"][:keep]
        batches.append((batch["source_ids"][:keep, :int(lengths.max())].to(args.device), lengths.to(args.device)))
        taken += keep
    options = {"bos_id": bos, "eos_id": eos, "beam": args.beam, "length_penalty": args.length_penalty}

    def batched():
        return [d for ids, lengths in batches for d in beam_search(model, ids, lengths, **options)]

    def one_at_a_time():
        return [beam_search_sentence(model, ids[row:row + 1, :n], lengths[row:row + 1], **options)
                for ids, lengths in batches for row, n in enumerate(lengths.tolist())]

    seconds: dict[str, list[float]] = {"batched": [], "one sentence at a time": []}
    outputs = {}
    for round_ in range(args.rounds):
        order = list(seconds) if round_ % 2 == 0 else list(reversed(seconds))
        for name in order:
            synchronize(args.device)
            start = time.perf_counter()
            outputs[name] = (batched if name == "batched" else one_at_a_time)()
            synchronize(args.device)
            seconds[name].append(time.perf_counter() - start)
    new, old = outputs["batched"], outputs["one sentence at a time"]
    differing = sum(a.ids != b.ids for a, b in zip(new, old, strict=True))
    score_gap = max(abs(a.score - b.score) for a, b in zip(new, old, strict=True))
    rate = {name: taken / statistics.median(s) for name, s in seconds.items()}
    ratio = rate["batched"] / rate["one sentence at a time"]
    mean_words = statistics.fmean(len(d.ids) for d in new)
    result = {"device": args.device if args.device == "cuda" else cpu_name(), "threads": args.threads,
              "sentences": taken, "beam": args.beam, "length_penalty": args.length_penalty,
              "train_steps": args.train_steps, "mean_output_words": round(mean_words, 2),
              "sentences_per_second": {k: round(v, 2) for k, v in rate.items()}, "ratio": round(ratio, 2),
              "sentences_with_different_words": differing, "largest_score_difference": score_gap}
    print(f"{taken} test sentences, beam {args.beam}, length penalty {args.length_penalty}, "
          f"{args.threads} thread(s) on {result['device']}; outputs {mean_words:.1f} words on average")
    for name, value in rate.items():
        print(f"  {name:>24}: {value:8.1f} sentences/s")
    print(f"  batched / one at a time: {ratio:.2f}x; sentences with different words: {differing}; "
          f"largest score difference {score_gap:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
