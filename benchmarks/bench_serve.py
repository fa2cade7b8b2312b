"""The server under load: requests per second, p50 and p99 latency, peak memory, per runtime.

The load itself is `load.py`'s (the server's own load test): the same sample drawings, the same
checks that every answer is right. Here a server is started per runtime, loaded with 1 client
(the time one request takes) and with 32 (the target's concurrency), and its peak resident
memory read from the kernel before it is stopped. The same load against `floor_app.py`, the
same HTTP stack answering without any work, is the floor no predict path can go below here.

Requests per second per worker (the total divided by the server's workers) is the figure
that scales out: N replicas of one worker each, behind a load balancer, answer about N times
it (README, "Scaling out"). The clients run on the same cores here, so it is a lower bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import load
import numpy as np
from common import BENCHMARKS, HANDWRITTEN, PYTHON, summary

SERVERS = {"onnx": ("onnx", 1), "onnx, 2 workers": ("onnx", 2), "keras": ("keras", 1)}
SERVERS |= {"floor": ("floor", 1), "floor, 2 workers": ("floor", 2)}
"""Name in the results: (runtime, or the floor app; uvicorn workers)."""
CLIENTS = (1, 32)


def serving(repeats: int, requests: int) -> dict[str, dict]:
    """Each server's load figures per number of clients, and its peak memory."""
    return {name: _serve_one(*setup, repeats, requests) for name, setup in SERVERS.items()}


def _serve_one(runtime: str, workers: int, repeats: int, requests: int) -> dict:
    payloads = [path.read_bytes() for path in load.SAMPLES]
    figures: dict = {}
    with _server(runtime, workers) as (url, process):
        expected = asyncio.run(load.baseline(url, payloads))
        for clients in CLIENTS:
            results = [
                asyncio.run(load.load(url, payloads, expected, requests, clients))
                for _ in range(repeats)
            ]
            figures[f"{clients}_clients"] = _figures(results, workers)
        figures["peak_mb"] = _peak_mb(process.pid)
    figures["workers"] = workers
    return figures


def _figures(results: list[load.Result], workers: int) -> dict:
    errors = sum(sum(r.errors.values()) for r in results)
    if errors:
        raise SystemExit(f"the server answered {errors} requests wrongly under load")
    latencies = [np.array(r.latencies) * 1000 for r in results]
    per_second = [len(r.latencies) / r.seconds for r in results]
    return {
        "requests_per_second": summary(per_second),
        "requests_per_second_per_worker": summary([rate / workers for rate in per_second]),
        "p50_ms": summary([float(np.percentile(x, 50)) for x in latencies]),
        "p99_ms": summary([float(np.percentile(x, 99)) for x in latencies]),
    }


@contextlib.contextmanager
def _server(runtime: str, workers: int) -> Iterator[tuple[str, subprocess.Popen]]:
    """`handwritten serve` (or the floor app) on a free local port, stopped afterwards."""
    with socket.create_server((load.HOST, 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://{load.HOST}:{port}"
    address = ["--host", load.HOST, "--port", str(port), "--workers", str(workers)]
    command = [HANDWRITTEN, "serve", *address]
    if runtime == "floor":
        command = [PYTHON, "-m", "uvicorn", "floor_app:app", "--app-dir", str(BENCHMARKS)]
        command += [*address, "--no-access-log", "--http", "handwritten.serve:NoDelayH11Protocol"]
    env = {**os.environ, "HANDWRITTEN_RUNTIME": runtime}
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        with open(log, "w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            load.wait_for_workers(url, process, log, workers)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=60)


def _peak_mb(pid: int) -> float:
    """High-water marks of resident memory (VmHWM) of the server and its workers, summed, in MB."""
    return _vm_hwm_kb(pid) / 1024 + sum(_peak_mb(child) for child in _children(pid))


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]
