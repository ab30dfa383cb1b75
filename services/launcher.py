"""``recsys up``: the api, the collector and the trainer as one supervised group."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)

COMPONENTS = ("api", "collector", "trainer")


def up(components: tuple[str, ...] = COMPONENTS) -> int:
    """Start every component; stop all of them when one dies or on Ctrl-C / SIGTERM."""
    children = {
        name: subprocess.Popen([sys.executable, "-m", "services.cli", name], env=os.environ.copy())
        for name in components
    }
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("started %s", ", ".join(f"{n} (pid {p.pid})" for n, p in children.items()))
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                log.error("%s exited with code %s; stopping the others", name, code)
                exit_code = code or 1
                stopping = True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code
