"""Writing text with a trained model, one word at a time: the next-word rule, a language model continuing a prompt
and a conditional generator writing for a label (what `rnnlab-generate` and the generation task's samples use).

Strategies: greedy (the most probable word: deterministic), sample (from softmax(logits / temperature)), topk (the
same, among the top_k words only). The random draws come from the caller's `torch.Generator`, so the same seed
gives the same text. `<pad>` is never chosen."""

from __future__ import annotations

import torch

from rnnlab.data.conventions import EOS, PAD_ID
from rnnlab.errors import ConfigError
from rnnlab.models.modes import in_eval_mode

STRATEGIES = ("greedy", "sample", "topk")
# the options of `continue_prompt` / `write_for_label` and their defaults: an MLflow model's params (lm, generate)
DEFAULTS = {"words": 20, "strategy": "greedy", "temperature": 1.0, "top_k": 10, "seed": 0}


def options_from(params: dict) -> dict:
    """`DEFAULTS` with the given params, each of its default's type (an MLflow model's request)."""
    return {key: type(default)(params.get(key, default)) for key, default in DEFAULTS.items()}


def choose_next(logits, strategy: str, temperature: float, top_k: int, generator, banned=(PAD_ID,)):
    """The next id of each row of logits [B, V], by `strategy`; the `banned` ids are never chosen."""
    logits = logits.float().clone()
    logits[:, list(banned)] = float("-inf")
    if strategy == "greedy":
        return logits.argmax(-1)
    if strategy == "topk":
        kept = torch.topk(logits, min(top_k, logits.size(-1) - len(banned)), dim=-1)
        choice = torch.multinomial(torch.softmax(kept.values / temperature, -1), 1, generator=generator)
        return kept.indices.gather(-1, choice).squeeze(-1)
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator).squeeze(-1)


def choose_one(logits, strategy: str, temperature: float, top_k: int, generator) -> int:
    """The next id from one step's logits [V] (never `<pad>`)."""
    return int(choose_next(logits.unsqueeze(0), strategy, temperature, top_k, generator)[0])


@in_eval_mode
def continue_prompt(model, tokenizer, prompt: str, words: int = 20, strategy: str = "greedy",
                    temperature: float = 1.0, top_k: int = 10, seed: int = 0) -> list[str]:
    """The `words` tokens a language model (models/language_model.py) emits after reading `<eos>` (it learned
    that a sentence starts after one) and the prompt, `<eos>` included as a token."""
    eos_id = tokenizer.token_to_id(EOS)
    if eos_id is None:
        raise ConfigError(f"the run's tokenizer has no {EOS} token: it is not a language model's tokenizer")
    generator = torch.Generator().manual_seed(seed)
    ids = [eos_id, *tokenizer.encode(prompt).ids] if prompt.strip() else [eos_id]
    emitted = []
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        for _ in range(words):
            next_id = choose_one(logits[0, -1], strategy, temperature, top_k, generator)
            emitted.append(tokenizer.id_to_token(next_id))
            logits, state = model(torch.tensor([[next_id]]), state)
    return emitted


def write_for_label(model, tokenizer, label_id: int, prompt: str = "", words: int = 20, strategy: str = "greedy",
                    temperature: float = 1.0, top_k: int = 10, seed: int = 0) -> list[str]:
    """The words a conditional generator (models/conditional_lm.py) writes for class `label_id` after `<bos>`
    and the prompt: until its `<eos>` (not included) or `words` words."""
    prompt_ids = tokenizer.encode(prompt).ids if prompt.strip() else []
    generator = torch.Generator().manual_seed(seed)
    (written,) = model.sample(torch.tensor([label_id]), words, strategy, temperature, top_k, generator,
                              prompts=[prompt_ids])
    return [tokenizer.id_to_token(i) for i in written]
