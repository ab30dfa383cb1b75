"""The durable interaction log: append-only JSON lines, fsynced before any ack."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from services.common.events import StoredEvent

log = logging.getLogger(__name__)


class LogRewrittenError(RuntimeError):
    """The log no longer continues what a cursor has read (truncated by /cleanup)."""


@dataclass
class LogCursor:
    """How far an incremental reader got: a byte offset just past a complete line, and that
    line, which identifies the log it came from (every line carries a unique event id)."""

    offset: int = 0
    last_line: bytes = b""


class InteractionLog:
    """One file per instance. A torn last line (crash mid-write) is cut at open, and the
    part a failed append wrote (disk full, I/O error) is cut at once."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._fd: int | None
        # Where the log ended before a failed append whose cut-back failed too.
        self._torn_at: int | None = None
        if read_only:
            # A reader beside a running ingester (recsys rebuild) must not cut the line
            # the ingester is writing right now; read() skips an unfinished last line.
            if not path.exists():
                raise FileNotFoundError(f"no interaction log at {path}")
            self._fd = None
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        # Unbuffered: a failed append must not leave bytes in a buffer that a later flush
        # would write after the cut-back.
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def _recover(self) -> None:
        if not self.path.exists():
            self.path.touch(mode=0o600)  # users' behaviour: the service's user only
            _fsync_dir(self.path.parent)
            return
        with open(self.path, "rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return
            # Walk back to the last newline; anything after it is a torn write.
            chunk = 1 << 16
            end = size
            while end > 0:
                start = max(0, end - chunk)
                file.seek(start)
                data = file.read(end - start)
                newline = data.rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                end = start
            else:
                keep = 0
            if keep < size:
                log.warning("interaction log: cutting %d bytes of a torn write", size - keep)
                file.truncate(keep)
                file.flush()
                os.fsync(file.fileno())

    def append(self, events: Sequence[StoredEvent]) -> None:
        """Write the events and fsync: when this returns they survive a crash.

        On OSError nothing of this call stays in the log (cut back, best effort, before the
        error is raised), so retrying the same events cannot glue a torn line to the next.
        """
        if not events:
            return
        fd = self._writable()
        if self._torn_at is not None:
            self._cut_back(fd, self._torn_at)
        payload = memoryview(b"".join(event.model_dump_json().encode() + b"\n" for event in events))
        size = os.fstat(fd).st_size
        try:
            while payload:
                written = os.write(fd, payload)
                if written == 0:  # a regular file never should; do not spin on it
                    raise OSError(errno.EIO, "write wrote nothing", str(self.path))
                payload = payload[written:]
            os.fsync(fd)
        except OSError:
            try:
                self._cut_back(fd, size)
            except OSError as error:
                self._torn_at = size  # the next append cuts first, or fails
                log.error("interaction log: cannot cut a failed write back (%r)", error)
            raise

    def _cut_back(self, fd: int, size: int) -> None:
        if os.fstat(fd).st_size > size:
            log.info("interaction log: cutting a failed write back to %d bytes", size)
            os.ftruncate(fd, size)
            os.fsync(fd)
        self._torn_at = None

    def _writable(self) -> int:
        assert self._fd is not None, "interaction log opened read-only or closed"
        return self._fd

    def read(self) -> Iterator[StoredEvent]:
        with open(self.path, "rb") as file:
            for number, line in enumerate(file, 1):
                if not line.endswith(b"\n"):
                    break  # being written right now by the ingester
                try:
                    yield StoredEvent.model_validate_json(line)
                except ValidationError:
                    log.warning("interaction log: skipping unreadable line %d", number)

    def read_new(self, cursor: LogCursor) -> Iterator[StoredEvent]:
        """Events appended after ``cursor``, advancing it past every complete line consumed.

        Raises LogRewrittenError before yielding anything when the log does not continue
        what the cursor saw: it is shorter than the cursor's offset, or the bytes before the
        offset are no longer the cursor's last line (truncated, then written again). The
        check and the read use one file handle, so they see the same file.
        """
        with open(self.path, "rb") as file:
            if cursor.offset:
                size = os.fstat(file.fileno()).st_size
                start = cursor.offset - len(cursor.last_line)
                file.seek(start)
                if size < cursor.offset or file.read(len(cursor.last_line)) != cursor.last_line:
                    raise LogRewrittenError(f"{self.path} was rewritten since offset {start}")
            for line in file:
                if not line.endswith(b"\n"):
                    break  # being written right now by the ingester; read it next time
                cursor.offset += len(line)
                cursor.last_line = line
                try:
                    event = StoredEvent.model_validate_json(line)
                except ValidationError:
                    log.warning("interaction log: skipping an unreadable line at %d", cursor.offset)
                    continue
                yield event

    @property
    def snapshot_path(self) -> Path:
        """Where a trainer keeps its parsed copy of this log (``InteractionStore.save``)."""
        return self.path.with_name(self.path.name + ".snapshot.npz")

    def first_line(self) -> bytes:
        """The log's first complete line (b"" if none): with its unique event id, it tells
        this log apart from one truncated and written again (a /cleanup)."""
        try:
            with open(self.path, "rb") as file:
                line = file.readline()
        except FileNotFoundError:
            return b""
        return line if line.endswith(b"\n") else b""

    def event_ids(self) -> set[str]:
        ids: set[str] = set()
        with open(self.path, "rb") as file:
            for line in file:
                try:
                    ids.add(json.loads(line)["event_id"])
                except (ValueError, KeyError, TypeError):
                    continue
        return ids

    def truncate(self) -> None:
        fd = self._writable()
        os.ftruncate(fd, 0)
        os.fsync(fd)
        self._torn_at = None
        # The trainer's parsed copy of what was just wiped (it would be refused anyway).
        self.snapshot_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
