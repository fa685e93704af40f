"""DVC stage `prepare`: raw CSV -> seeded, stratified train / validation / test DatasetDict."""

from rnnlab.data.prepare import prepare
from rnnlab.errors import exit_on_user_error
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    cfg = stage_config()
    stats = prepare(cfg.data, cfg.paths.raw_dir, cfg.paths.prepared_dir)
    print(f"prepare: {cfg.data.name}: {stats}")


if __name__ == "__main__":
    main()
