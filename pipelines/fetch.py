"""DVC stage `fetch`: the pinned raw artifact -> data/<name>/raw/ (sha256-checked; nothing left on failure)."""

from rnnlab.data.sources import fetch
from rnnlab.errors import exit_on_user_error
from rnnlab.io import atomic_dir
from rnnlab.pipeline import stage_config


@exit_on_user_error
def main() -> None:
    cfg = stage_config()
    with atomic_dir(cfg.paths.raw_dir) as tmp:
        path = fetch(cfg.data.source, tmp)
    print(f"fetch: {cfg.data.name}: {cfg.paths.raw_dir}/{path.name}")


if __name__ == "__main__":
    main()
