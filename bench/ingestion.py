"""2) Ingestion: /interact accepted events/s (broker confirms, persistent) next to hello.

The ingester (``recsys ingest``) drains the queue concurrently into the fsynced log and
Redis, on the same two cores. Zero loss is checked, not assumed: wrk keeps the event id of
every 200 response and each one must be in the interaction log once the queue is drained.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pika

from bench.lib import (
    AMQP_URL,
    CpuMeter,
    Hello,
    Instance,
    WrkResult,
    interleaved,
    listening_pid,
    log,
    paired_ratio,
    summarise,
    wrk,
)

TARGET_RATIO = 0.5
DRAIN_TIMEOUT = 180.0


def queue_depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        declared = connection.channel().queue_declare(queue, durable=True, passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


def log_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    with open(path, "rb") as file:
        for line in file:
            if line.endswith(b"\n"):
                ids.append(json.loads(line)["event_id"])
    return ids


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


class MachineCpu:
    """Busy cores of the whole machine over the spans it wraps (from /proc/stat).

    Next to the CPU of the measured processes it shows how much of the cores other
    processes took while the rounds ran: on a shared machine the ratio depends on it.
    """

    def __init__(self) -> None:
        self._start = (0.0, 0.0)
        self.reset()

    def reset(self) -> None:
        self.busy_seconds = 0.0
        self.seconds = 0.0

    @staticmethod
    def _read() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:9]]
        idle = ticks[3] + ticks[4]  # idle + iowait; guest time is already inside user
        return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()

    def __enter__(self) -> MachineCpu:
        self._start = self._read()
        return self

    def __exit__(self, *_: object) -> None:
        busy, now = self._read()
        self.busy_seconds += busy - self._start[0]
        self.seconds += now - self._start[1]

    def cores(self) -> float:
        return self.busy_seconds / self.seconds if self.seconds else float("nan")


def classic_queue_v2(queue: str, enable: bool) -> bool:
    """Classic queue v2 for this queue, as the chart's broker has it (RabbitMQ 4.4: v1 storage
    was removed in 4.3).

    The machine's RabbitMQ is older, shared and started before the bench, so v2 is applied as
    a policy on the bench's own queue (or removed). False when rabbitmqctl is
    not available: the run then measures the broker's default."""
    if shutil.which("rabbitmqctl") is None:
        return False
    name = f"{queue}-cqv2"
    command = (
        ["set_policy", name, f"^{queue}$", '{"queue-version":2}', "--apply-to", "queues"]
        if enable
        else ["clear_policy", name]
    )
    done = subprocess.run(["rabbitmqctl", *command], capture_output=True, timeout=60, check=False)
    return enable and done.returncode == 0


def run(*, rounds: int, seconds: float, connections: int) -> dict[str, Any]:
    instance = Instance("ingest")
    log_path = instance.data_dir / "interactions.log"
    queue_v2 = classic_queue_v2(instance.queue, True)
    log(f"ingestion: classic queue version {2 if queue_v2 else 'default'}")
    try:
        instance.start("collector")
        instance.start("ingest")
        instance.wait_healthy(instance.collector)
        env = {"BENCH_COLLECT_IDS": "1"}
        interact_cpu = CpuMeter(
            {
                "collector": instance.processes["collector"].pid,
                "ingester": instance.processes["ingest"].pid,
                "rabbitmq": listening_pid(5672),
                "redis": listening_pid(6379),
            }
        )
        interact_machine, hello_machine = MachineCpu(), MachineCpu()
        accepted: list[str] = []
        per_round_ingest: list[float] = []

        def interact() -> WrkResult:
            before = count_lines(log_path)
            started = time.monotonic()
            with interact_cpu, interact_machine:
                result = wrk(
                    instance.collector,
                    "interact.lua",
                    seconds=seconds,
                    connections=connections,
                    env={**env, "BENCH_PATH": "/interact"},
                )
            per_round_ingest.append((count_lines(log_path) - before) / (time.monotonic() - started))
            accepted.extend(result.ids)
            return result

        with Hello() as hello:
            hello_env = {**env, "BENCH_PATH": "/hello"}
            wrk(hello.url, "interact.lua", seconds=1, connections=connections, env=hello_env)
            interact()  # warm-up (its events are checked for loss too)
            interact_cpu.totals = dict.fromkeys(interact_cpu.totals, 0.0)
            interact_machine.reset()
            hello_cpu = CpuMeter({"hello": hello.process.pid if hello.process else None})
            warmup_accepted = len(accepted)

            def floor() -> WrkResult:
                with hello_cpu, hello_machine:
                    return wrk(
                        hello.url,
                        "interact.lua",
                        seconds=seconds,
                        connections=connections,
                        env=hello_env,
                    )

            log(f"ingestion: {rounds} rounds of {seconds:.0f}s, {connections} connections")
            results = interleaved(
                rounds,
                {"hello": floor, "interact": interact},
            )
        depth_at_end = queue_depth(instance.queue)
        drain_started = time.monotonic()
        while time.monotonic() - drain_started < DRAIN_TIMEOUT:
            if queue_depth(instance.queue) == 0 and count_lines(log_path) >= len(accepted):
                break
            time.sleep(0.5)
        drain_seconds = time.monotonic() - drain_started
        time.sleep(1.0)  # the last batch may be fsynced but not yet acked; let it settle
        stored = log_ids(log_path)
        stored_set = set(stored)
        missing = [i for i in accepted if i not in stored_set]
        duplicates = len(stored) - len(stored_set)
    finally:
        instance.close()
        classic_queue_v2(instance.queue, False)
    events, hello_summary = summarise(results["interact"]), summarise(results["hello"])
    ratio = paired_ratio(results["interact"], results["hello"])
    log(
        f"  accepted {len(accepted):,}, stored {len(stored):,}, missing {len(missing)}, "
        f"queue depth after the last round {depth_at_end:,}, drained in {drain_seconds:.1f}s"
    )
    measured = max(1, len(accepted) - warmup_accepted)
    hello_requests = max(1, sum(r.ok for r in results["hello"]))
    return {
        "classic_queue_v2": queue_v2,
        # Cores busy during the rounds: the whole machine, and the processes measured here
        # (the rest is other load on the shared machine).
        "busy_cores": {
            "interact": {
                "machine": interact_machine.cores(),
                "measured": sum(interact_cpu.totals.values()) / interact_machine.seconds,
            },
            "hello": {
                "machine": hello_machine.cores(),
                "measured": sum(hello_cpu.totals.values()) / hello_machine.seconds,
            },
        },
        "cpu_ms_per_event": {k: 1000 * v / measured for k, v in interact_cpu.totals.items()},
        "cpu_ms_per_hello": {k: 1000 * v / hello_requests for k, v in hello_cpu.totals.items()},
        "connections": connections,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "interact": events,
        "hello": hello_summary,
        "ratio": ratio,
        "accepted": len(accepted),
        "stored": len(stored),
        "missing": len(missing),
        "duplicates_in_log": duplicates,
        "ingested_per_second_during_rounds": per_round_ingest,
        "queue_depth_after_last_round": depth_at_end,
        "drain_seconds": drain_seconds,
        "targets": {"ratio": TARGET_RATIO, "missing": 0},
        "met": {"ratio": ratio["median"] >= TARGET_RATIO, "zero_loss": not missing},
    }
