"""Writing a model folder all at once: build it in a temporary sibling, then rename it into place.

An interrupted preparation (crash, Ctrl-C, kill -9) therefore never leaves a half-written model under
its final name, and a finished one is found instantly by the next run. A lock file serialises concurrent
preparations of the same folder (two test sessions sharing one state folder), so the work is done once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

PARTIAL_MARK = ".partial-"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, even on kill -9
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_folder_once(target: Path, build: Callable[[Path], None]) -> bool:
    """Create `target` by calling `build(tmp)` on an empty temporary folder, then renaming it.

    Requires the parent of `target` to be writable (it is created if missing). Returns False without
    calling `build` when `target` already exists (the rename is atomic, so an existing folder is a
    finished one), True when it built it. Leftovers of interrupted earlier runs are removed first.
    """
    target = target.resolve()
    if target.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if target.is_dir():  # another process finished it while we waited for the lock
            return False
        # Under the lock no one else is building this target, so any partial folder is a leftover.
        for stale in target.parent.glob(f".{target.name}{PARTIAL_MARK}*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_MARK}", dir=target.parent))
        try:
            build(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it private; the finished model is meant to be shared
            _fsync_tree(tmp)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return True


def _fsync_tree(folder: Path) -> None:
    """Flush every file so the rename never publishes a folder whose data is still only in page cache."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
