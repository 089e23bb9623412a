"""Output paths given by a user, checked before any work starts: a clear error for a path that
is a folder where a file belongs (or a file where a folder belongs), that lies inside a regular
file, or that is one of the command's own inputs — instead of a traceback at the end."""

from __future__ import annotations

import os
from pathlib import Path

from dmpo.errors import DmpoError


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def check_output_file(path: str | os.PathLike, flag: str, *, inputs: tuple[Path, ...] = ()) -> Path:
    """DmpoError unless a file can be written at ``path`` (changes nothing)."""
    path = Path(path)
    if path.is_dir():
        raise DmpoError(f"{flag} {path} is a folder; give a file name")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise DmpoError(f"{flag} {path}: {ancestor} is a file, not a folder")
    if path.exists() and any(path.resolve() == Path(p).resolve() for p in inputs if Path(p).exists()):
        raise DmpoError(f"{flag} {path} is one of this command's input files; refusing to overwrite it")
    return path


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """DmpoError unless a folder can be written at ``path`` (changes nothing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DmpoError(f"{flag} {path} is a file, not a folder")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise DmpoError(f"{flag} {path}: {ancestor} is a file, not a folder")
    return path


def _mkdir(path: Path, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DmpoError(f"{flag} {path}: cannot create it ({exc.strerror})") from None


def output_file(path: str | os.PathLike, flag: str) -> Path:
    """:func:`check_output_file`, then its folder created."""
    path = check_output_file(path, flag)
    _mkdir(path.parent, flag)
    return path


def output_dir(path: str | os.PathLike, flag: str) -> Path:
    """:func:`check_output_dir`, then the folder created."""
    path = check_output_dir(path, flag)
    _mkdir(path, flag)
    return path
