"""Input representations aligned to a tokenizer's vocabulary (row i = token id i)."""
