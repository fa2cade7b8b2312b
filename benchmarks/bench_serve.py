"""The server under load: requests per second, p50 and p99 latency, peak memory, per runtime.

The load itself is `load.py`'s (the server's own load test): the same sample drawings, the same
checks that every answer is right. Here a server is started per runtime, loaded with 1 client
(the time one request takes) and with 32 (the target's concurrency), and its peak resident
memory read from the kernel before it is stopped.
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
from common import HANDWRITTEN, summary

RUNTIMES = ("onnx", "keras")
CLIENTS = (1, 32)


def serving(repeats: int, requests: int) -> dict[str, dict]:
    """Each runtime's server: load figures per number of clients, and its peak memory."""
    return {runtime: _serve_one(runtime, repeats, requests) for runtime in RUNTIMES}


def _serve_one(runtime: str, repeats: int, requests: int) -> dict:
    payloads = [path.read_bytes() for path in load.SAMPLES]
    figures: dict = {}
    with _server(runtime) as (url, process):
        expected = asyncio.run(load.baseline(url, payloads))
        for clients in CLIENTS:
            results = [
                asyncio.run(load.load(url, payloads, expected, requests, clients))
                for _ in range(repeats)
            ]
            figures[f"{clients}_clients"] = _figures(results)
        figures["peak_mb"] = _peak_mb(process.pid)
    return figures


def _figures(results: list[load.Result]) -> dict:
    errors = sum(sum(r.errors.values()) for r in results)
    if errors:
        raise SystemExit(f"the server answered {errors} requests wrongly under load")
    latencies = [np.array(r.latencies) * 1000 for r in results]
    return {
        "requests_per_second": summary([len(r.latencies) / r.seconds for r in results]),
        "p50_ms": summary([float(np.percentile(x, 50)) for x in latencies]),
        "p99_ms": summary([float(np.percentile(x, 99)) for x in latencies]),
    }


@contextlib.contextmanager
def _server(runtime: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`handwritten serve` with one worker on a free local port, stopped afterwards."""
    with socket.create_server((load.HOST, 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://{load.HOST}:{port}"
    command = [HANDWRITTEN, "serve", "--host", load.HOST, "--port", str(port)]
    env = {**os.environ, "HANDWRITTEN_RUNTIME": runtime}
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        with open(log, "w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            load.wait_for_workers(url, process, log, workers=1)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=60)


def _peak_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
