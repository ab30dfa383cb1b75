"""A real, tiny filesystem that can be filled up: a tmpfs mounted for one test (needs root).

Where mounting is impossible the test fails under CI=true (nothing may skip there) and is
skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs hands out whole pages


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``path`` (created) and unmount it afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        reason = result.stderr.strip() or f"exit status {result.returncode}"
        mounted = result.returncode == 0
    except OSError as error:  # no mount binary
        reason, mounted = repr(error), False
    if not mounted:
        message = (
            f"cannot mount a tmpfs for the disk-full test ({' '.join(command)}: {reason}); "
            "it needs root or CAP_SYS_ADMIN"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        # Lazy, so a file a failed test left open cannot keep the mount forever.
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=True)


def fill(filler: Path, leave_free: int = 0) -> None:
    """Fill the filesystem holding ``filler`` up, then give back ``leave_free`` bytes
    (whole pages): a write larger than the space left tears after what fits."""
    assert leave_free % PAGE == 0, "tmpfs frees whole pages"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"\0" * (64 * PAGE)
        while True:
            try:
                os.write(fd, block)  # a short write is followed by ENOSPC
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
        os.ftruncate(fd, os.fstat(fd).st_size - leave_free)
    finally:
        os.close(fd)
