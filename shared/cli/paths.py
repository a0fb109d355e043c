"""Output paths checked before any work starts: a missing folder or a folder named as the file is a one-line error."""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written; the CLI prints it on one line and exits 2."""


def check_output(path: str | None, option: str) -> None:
    """Refuse a path whose folder is missing or not writable, or that is itself a folder."""
    if not path or path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; give a file name inside it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"{option} {path}: folder {folder} is not writable")
