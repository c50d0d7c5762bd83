"""Where the course's files live, and the one way it writes a file that must stay whole.

``REPO`` is the repository root (the folder holding ``notebooks/`` and ``deepnets/``);
every module that needs a path in the checkout starts from it. ``write_atomically`` writes
results files and checkpoints: to a temporary file in the same folder first, then renamed
over the target, so a crash or an interrupt mid-write leaves the old file as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from deepnets.checks import ArgumentTypeError, ArgumentValueError

__all__ = ["REPO", "write_atomically"]

REPO = Path(__file__).resolve().parents[1]


def write_atomically(path: str | os.PathLike, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to the path it is given,
    e.g. ``lambda p: torch.save(obj, p)``) to ``path`` whole, or leave ``path`` untouched."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a file path (str or Path), got {type(path).__name__}. "
                                f"Pass e.g. 'build/model.pt'.")
    path = Path(path)
    if path.is_dir():
        raise ArgumentValueError(f"path {path} is a folder, not a file. Pass a file name inside it, "
                                 f"e.g. {path / 'checkpoint.pt'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as e:
        raise ArgumentValueError(f"Cannot write {path}: {e.strerror or e}. Pass a path in a folder "
                                 f"you can write to.") from e
    tmp = Path(tmp_name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the file it replaces was not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
