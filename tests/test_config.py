"""The composed configuration: defaults, experiments, and one clear error for a wrong value."""

import pytest

from rnnlab.config import compose
from rnnlab.errors import ConfigError


def test_default_and_experiment_compose():
    cfg = compose()
    assert (cfg.data.name, cfg.embedding.name, cfg.model.cell) == ("rotten_tomatoes", "word2vec", "lstm")
    imdb = compose(["experiment=imdb"])
    assert imdb.data.name == "imdb" and imdb.data.filter.source == "imdb"
    assert (imdb.model.num_layers, imdb.model.bidirectional) == (2, True)
    assert imdb.data.source == cfg.data.source  # the same pinned artifact, another row filter


@pytest.mark.parametrize("override,message", [
    ("data=nope", "Could not find 'data/nope'"),
    ("model.no_such_key=1", "Could not override 'model.no_such_key'"),
    ("embedding=", "embedding"),
])
def test_a_wrong_value_is_one_config_error(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        compose([override])
    assert "\n" not in str(err.value)
