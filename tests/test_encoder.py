"""The recurrent encoder handles padding exactly: a padded batch gives each sequence's own outputs."""

import pytest
import torch
from conftest import ENCODER_CASES, garbage_padded_batch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.models.classifier import SequenceClassifier
from rnnlab.models.encoder import RecurrentEncoder, reverse_within_length
from rnnlab.models.inputs import count_parameters

CASES = ENCODER_CASES


@pytest.mark.parametrize("cell,layers,bidirectional", CASES)
def test_padded_batch_equals_each_sequence_alone(cell, layers, bidirectional):
    torch.manual_seed(1)
    encoder = RecurrentEncoder(5, cell=cell, hidden_size=7, num_layers=layers, bidirectional=bidirectional,
                               dropout=0.5).eval()
    lengths = [6, 1, 4, 9]
    x, lens = garbage_padded_batch(lengths)
    with torch.no_grad():
        outputs, summary = encoder(x, lens)
        for row, n in enumerate(lengths):
            alone_out, alone_summary = encoder(x[row:row + 1, :n], torch.tensor([n]))
            torch.testing.assert_close(outputs[row, :n], alone_out[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(summary[row], alone_summary[0], rtol=1e-5, atol=1e-6)
            assert torch.all(outputs[row, n:] == 0)
    assert outputs.shape[-1] == summary.shape[-1] == encoder.output_size == 7 * (2 if bidirectional else 1)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_packed_torch_module_with_same_weights(cell):
    """Same numbers as nn.<CELL>(bidirectional=True, num_layers=2) over packed sequences."""
    torch.manual_seed(2)
    ours = RecurrentEncoder(5, cell=cell, hidden_size=6, num_layers=2, bidirectional=True).eval()
    reference = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](
        5, 6, num_layers=2, bidirectional=True, batch_first=True).eval()
    with torch.no_grad():
        for layer in range(2):
            for suffix, module in (("", ours.forward_layers[layer]), ("_reverse", ours.backward_layers[layer])):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(reference, f"{name}_l{layer}{suffix}").copy_(getattr(module, f"{name}_l0"))
        x, lens = garbage_padded_batch([3, 7, 5])
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        ref_out, ref_h = reference(packed)
        ref_out, _ = nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=True, total_length=x.size(1))
        out, summary = ours(x, lens)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    h_n = ref_h[0] if cell == "lstm" else ref_h  # [layers * 2, B, H]: top layer's forward and backward final
    torch.testing.assert_close(summary, torch.cat([h_n[-2], h_n[-1]], dim=-1), rtol=1e-5, atol=1e-6)
    assert count_parameters(ours)["params_total"] == sum(p.numel() for p in reference.parameters())


def test_reverse_within_length_keeps_pads_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert out[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]


def test_unknown_cell_and_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="model.cell='transformer'"):
        RecurrentEncoder(4, cell="transformer")
    with pytest.raises(ConfigError, match="model.nonlinearity"):
        RecurrentEncoder(4, cell="rnn", nonlinearity="sigmoid")
    with pytest.raises(ConfigError, match="model.num_layers"):
        RecurrentEncoder(4, num_layers=0)
    with pytest.raises(ConfigError, match="model.pooling"):
        SequenceClassifier(10, 2, pooling="median")


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_classifier_logits_do_not_depend_on_padding(pooling):
    torch.manual_seed(3)
    model = SequenceClassifier(vocab_size=20, num_classes=3, embedding_dim=4, hidden_size=5, cell="gru",
                               bidirectional=True, num_layers=2, pooling=pooling).eval()
    ids = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]])
    lens = torch.tensor([3, 5])
    with torch.no_grad():
        batch_logits = model(ids, lens)
        alone = model(ids[:1, :3], lens[:1])
    torch.testing.assert_close(batch_logits[0], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("budget", [150_000, 600_000])
def test_a_parameter_budget_matches_every_cell_depth_and_direction_within_two_percent(budget):
    """What the cells study compares at equal parameters: the real modules' counts, not the formula's."""
    hidden = {}
    for cell, layers, bidirectional in CASES:
        model = SequenceClassifier(vocab_size=50, num_classes=2, embedding_dim=100, cell=cell, num_layers=layers,
                                   bidirectional=bidirectional, param_budget=budget)
        counts = count_parameters(model)
        assert abs(counts["params_encoder"] / budget - 1) <= 0.02, (cell, layers, bidirectional, counts)
        assert counts["hidden_size"] == model.encoder.hidden_size
        hidden[cell, layers, bidirectional] = model.encoder.hidden_size
    # equal parameters: the cell with fewer gate blocks gets the wider state, a second direction a narrower one
    assert hidden["rnn", 1, False] > hidden["gru", 1, False] > hidden["lstm", 1, False]
    assert hidden["lstm", 1, False] > hidden["lstm", 1, True] and hidden["gru", 1, False] > hidden["gru", 2, False]


@pytest.mark.parametrize("cell,layers,bidirectional", CASES)
def test_the_parameter_formula_counts_what_pytorch_builds(cell, layers, bidirectional):
    from rnnlab.models.encoder import recurrent_parameters

    encoder = RecurrentEncoder(13, cell=cell, hidden_size=9, num_layers=layers, bidirectional=bidirectional)
    assert recurrent_parameters(cell, 13, 9, layers, bidirectional) == sum(p.numel() for p in encoder.parameters())


def test_a_budget_too_small_to_match_is_refused():
    with pytest.raises(ConfigError, match=r"model.param_budget=500: the nearest 2-layer bidirectional lstm encoder "
                                          r"\(hidden size 1, input 100\) has .* more than 2% off"):
        RecurrentEncoder(100, cell="lstm", num_layers=2, bidirectional=True, param_budget=500)
