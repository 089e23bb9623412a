"""Output paths given on the command line, checked before any work starts: a clear error for a
path that is a folder, or that lies inside a regular file, instead of a traceback at the end."""

from __future__ import annotations

import os
from pathlib import Path

from dmpo.errors import DmpoError


def _blocking_file(path: Path) -> Path | None:
    """The first parent of ``path`` that exists and is not a folder, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def output_file(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a file to (over)write: its folder is created; a folder there, or a parent that
    is a file, is an error naming ``flag``."""
    path = Path(path)
    if path.is_dir():
        raise DmpoError(f"{flag} {path}: is a folder; give a file name")
    blocking = _blocking_file(path)
    if blocking is not None:
        raise DmpoError(f"{flag} {path}: {blocking} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DmpoError(f"{flag} {path}: cannot create its folder ({exc.strerror})") from None
    return path


def output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a folder to write into (created); an existing file there, or a parent that is
    a file, is an error naming ``flag``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DmpoError(f"{flag} {path}: is a file, not a folder")
    blocking = _blocking_file(path)
    if blocking is not None:
        raise DmpoError(f"{flag} {path}: {blocking} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DmpoError(f"{flag} {path}: cannot create it ({exc.strerror})") from None
    return path
