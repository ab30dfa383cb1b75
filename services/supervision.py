"""Keeping `recsys up`'s processes running: restart with backoff, and say why one died.

A full disk makes the embedded Redis exit (an AOF write error under ``appendfsync always``)
and may take a component with it. Stopping everything then left the service down after
the space came back (issue #7). Instead each process is restarted after a delay that
doubles with every quick death up to a cap (a process that keeps dying does not spin), and
falls back to the first delay once the process stayed up long enough.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_UNKNOWN = object()

# Less free space than this on the data directory's filesystem is reported as a full disk.
_NEARLY_FULL = 1024 * 1024


@dataclass
class Backoff:
    """Restart delays: ``initial``, doubling per death up to ``maximum``; reset to
    ``initial`` once a process stayed up ``reset_after`` seconds."""

    initial: float
    maximum: float
    reset_after: float
    deaths: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.reset_after:
            self.deaths = 0
        # A plain doubling: tenacity's waits need a retry call's state, not a process's.
        delay = min(self.maximum, self.initial * 2.0**self.deaths)
        self.deaths += 1
        return delay


@dataclass
class Supervised:
    """One process under supervision: how to start and poll it, and where its data is."""

    name: str
    start: Callable[[], None]
    poll: Callable[[], int | None]
    backoff: Backoff
    data_dir: Path
    # A log whose last warning may say why it died (the embedded Redis writes one).
    log_path: Path | None = None
    # Where that log ended once the process was up: older lines are no cause of its death.
    log_offset: int = 0
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None
    restarts: int = 0
    last_cause: str | None = None


class Supervisor:
    """Polls every process; restarts the dead ones after their backoff delay.

    ``report`` receives a one-line note while a process is being restarted or was
    restarted less than ``reset_after`` ago, and ``None`` once every process has been up
    that long (the launcher shows it in /healthcheck).
    """

    def __init__(
        self,
        processes: list[Supervised],
        report: Callable[[str | None], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = processes
        self.report = report
        self.clock = clock
        # Unknown at first: the first round clears a note a previous launcher left.
        self._reported: object = _UNKNOWN

    def check(self) -> None:
        """One supervision round: note deaths, restart what is due, update the report."""
        now = self.clock()
        for process in self.processes:
            if process.restart_at is None:
                code = process.poll()
                if code is not None:
                    self._died(process, code, now)
            elif now >= process.restart_at:
                self._restart(process, now)
        self._update_report(now)

    def _died(self, process: Supervised, code: int, now: float) -> None:
        cause = describe_exit(code, process.data_dir, process.log_path, process.log_offset)
        delay = process.backoff.next_delay(now - process.started_at)
        process.restart_at = now + delay
        process.last_cause = cause
        log.error(
            "%s exited (%s) after %.1fs up; restarting it in %.1fs",
            process.name,
            cause,
            now - process.started_at,
            delay,
        )

    def _restart(self, process: Supervised, now: float) -> None:
        try:
            process.start()
        except Exception as error:  # e.g. the embedded Redis exits again while loading
            process.started_at = now
            self._died(process, 1, now)
            log.error("%s did not start: %s", process.name, error)
            return
        process.log_offset = log_size(process.log_path)  # its start-up lines are no cause
        process.started_at = self.clock()  # start() may have taken a while (Redis loading)
        process.restart_at = None
        process.restarts += 1
        log.warning("%s restarted (restart %d)", process.name, process.restarts)

    def _update_report(self, now: float) -> None:
        recent = [
            p
            for p in self.processes
            if p.last_cause is not None
            and (p.restart_at is not None or now - p.started_at < p.backoff.reset_after)
        ]
        note = (
            "; ".join(
                f"{p.name} "
                + ("down" if p.restart_at is not None else f"restarted {p.restarts}x")
                + f" (last exit: {p.last_cause})"
                for p in recent
            )
            or None
        )
        if note is None:
            for p in self.processes:
                p.last_cause = None
        if note != self._reported:
            try:
                self.report(note)
            except Exception as error:  # Redis may be the one that is down: try next round
                log.debug("status note not written yet: %s", error)
                return
            self._reported = note


def describe_exit(
    code: int, data_dir: Path, log_path: Path | None = None, log_offset: int = 0
) -> str:
    """Why a process ended, in one line: its exit status, a full disk, its last warning."""
    if code < 0:
        try:
            parts = [f"killed by {signal.Signals(-code).name}"]
        except ValueError:
            parts = [f"killed by signal {-code}"]
    else:
        parts = [f"exit code {code}"]
    try:
        stats = os.statvfs(data_dir)
        free = stats.f_bavail * stats.f_frsize
        if free < _NEARLY_FULL:
            parts.append(f"the data directory's filesystem is full ({free // 1024} KiB free)")
    except OSError as error:
        parts.append(f"data directory unreadable: {error.strerror}")
    warning = last_warning(log_path, log_offset) if log_path is not None else None
    if warning:
        parts.append(f"its log: {warning!r}")
    return "; ".join(parts)


def log_size(log_path: Path | None) -> int:
    try:
        return 0 if log_path is None else log_path.stat().st_size
    except OSError:
        return 0


def last_warning(log_path: Path, since: int = 0) -> str | None:
    """The last warning line of a Redis log (`` # `` marks the warning level) written after
    byte ``since``, if any (on a full disk the dying words may not have been written)."""
    try:
        with open(log_path, "rb") as file:
            file.seek(max(since, file.seek(0, os.SEEK_END) - 8192))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if " # " in line:
            return line.split(" # ", 1)[1].strip()[:300]
    return None
