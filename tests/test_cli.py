"""The console scripts' key=value arguments: a typo is one clear error naming it, never silently ignored."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["rnnlab.predict", "rnnlab.translate", "rnnlab.report", "rnnlab.analyze",
                                    "rnnlab.generate"])
def test_an_unknown_or_malformed_argument_is_one_clear_error(module, capsys):
    main = importlib.import_module(module).main
    for argv, message in ((["bogus=1"], "unknown argument(s) ['bogus']"),
                          (["textwithoutequals"], "'textwithoutequals' is not key=value")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "usage: rnnlab-" in err and "Traceback" not in err


@pytest.mark.parametrize("module", ["rnnlab.predict", "rnnlab.translate", "rnnlab.report", "rnnlab.analyze",
                                    "rnnlab.generate"])
def test_help_prints_the_usage(module, capsys):
    importlib.import_module(module).main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: rnnlab-{module.split('.')[1]} ")
