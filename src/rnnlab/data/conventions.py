"""What every data set and vocabulary in rnnlab agrees on: the split names, and the special tokens with their ids.

Every tokenizer (data/tokenization.py) puts `<pad>` first and `<unk>` second, so their ids are fixed; `<bos>` and
`<eos>` are added where a task needs them (a language model's `<eos>`, a target language's `<bos>` / `<eos>`), and
their ids are read from the tokenizer."""

SPLITS = ("train", "validation", "test")

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
PAD_ID, UNK_ID = 0, 1
