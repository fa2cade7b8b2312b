"""Load test of `handwritten serve`: many concurrent clients sending drawings, on this machine only.

Starts a server with --workers N (or, with --port, targets one already running), sends
--requests predictions of the sample drawings in digits/ from --clients concurrent clients,
and reports requests per second, latency percentiles and errors. An error is any answer other
than 200, a failed request, or a digit that differs from the one the same image got before
the load began (a server that breaks under concurrency answers inconsistently). The target is
always 127.0.0.1; every request has a timeout and the whole run a deadline, so it stops by
itself. Exit status 1 when there was any error.

    .venv/bin/python benchmarks/load.py --workers 2
    .venv/bin/python benchmarks/load.py --port 8000       # a server you started yourself
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import numpy as np

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "digits").glob("*.png"))
HANDWRITTEN = Path(sys.executable).with_name("handwritten")
START_SECONDS = 180
REQUEST_SECONDS = 30


@dataclass
class Result:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payloads = [path.read_bytes() for path in SAMPLES]
    with server(args.port, args.workers) as url:
        expected = asyncio.run(baseline(url, payloads))
        run = load(url, payloads, expected, args.requests, args.clients)
        try:
            result = asyncio.run(asyncio.wait_for(run, args.deadline))
        except TimeoutError:
            sys.exit(f"the load did not finish within --deadline {args.deadline:g} s")
    print(report(result, args))
    return 1 if result.errors else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="workers of the server started")
    parser.add_argument("--port", type=int, help="target a server already on 127.0.0.1:PORT")
    parser.add_argument("--requests", type=int, default=2000, help="(default: 2000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent (default: 32)")
    parser.add_argument("--deadline", type=float, default=600, help="seconds (default: 600)")
    args = parser.parse_args(argv)
    if min(args.workers, args.requests, args.clients) < 1 or args.deadline <= 0:
        parser.error("--workers, --requests, --clients and --deadline must be positive")
    return args


@contextlib.contextmanager
def server(port: int | None, workers: int) -> Iterator[str]:
    """The URL of the server to load: the one on --port, or one started here and stopped after."""
    if port is not None:
        yield f"http://{HOST}:{port}"
        return
    with socket.create_server((HOST, 0)) as probe:
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        command = [HANDWRITTEN, "serve", "--host", HOST, "--port", str(port)]
        with open(log, "w") as output:
            process = subprocess.Popen(
                [*command, "--workers", str(workers)], stdout=output, stderr=subprocess.STDOUT
            )
        try:
            wait_for_workers(f"http://{HOST}:{port}", process, log, workers)
            yield f"http://{HOST}:{port}"
        finally:
            process.terminate()
            process.wait(timeout=60)


def wait_for_workers(url: str, process: subprocess.Popen, log: Path, workers: int) -> None:
    """Wait until every worker has loaded the model, so the first requests are not queued."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"handwritten serve exited with {process.returncode}:\n{log.read_text()}")
        if log.read_text().count("Application startup complete.") >= workers:
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{url}/api/health", timeout=5).status_code == 200:
                    return
        time.sleep(0.25)
    sys.exit(f"handwritten serve not ready after {START_SECONDS} s:\n{log.read_text()}")


async def baseline(url: str, payloads: list[bytes]) -> list[int]:
    """Each sample's digit, asked one at a time; this also warms the server up."""
    async with httpx2.AsyncClient(base_url=url, timeout=REQUEST_SECONDS) as http:
        answers = [await predict(http, body) for body in payloads]
    return [answer.json()["digit"] for answer in answers]


async def predict(http: httpx2.AsyncClient, body: bytes) -> httpx2.Response:
    response = await http.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
    response.raise_for_status()
    return response


async def load(
    url: str, payloads: list[bytes], expected: list[int], requests: int, clients: int
) -> Result:
    """Send `requests` predictions from `clients` concurrent clients, timing each one."""
    result = Result()
    numbers = itertools.count()
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=url, timeout=REQUEST_SECONDS, limits=limits) as http:

        async def client() -> None:
            while (number := next(numbers)) < requests:
                sample = number % len(payloads)
                start = time.perf_counter()
                try:
                    digit = (await predict(http, payloads[sample])).json()["digit"]
                except httpx2.HTTPError as exc:
                    result.errors[type(exc).__name__] += 1
                    continue
                result.latencies.append(time.perf_counter() - start)
                if digit != expected[sample]:
                    result.errors[f"{SAMPLES[sample].name} read as {digit}"] += 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


def report(result: Result, args: argparse.Namespace) -> str:
    target = f"port {args.port}" if args.port else f"--workers {args.workers}"
    done = len(result.latencies) + sum(result.errors.values())
    p50, p99 = np.percentile(np.array(result.latencies or [np.nan]) * 1000, [50, 99])
    lines = [
        f"{target}: {done} requests from {args.clients} clients in {result.seconds:.1f} s",
        f"  {done / result.seconds:.1f} requests/s, latency p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        f"  errors: {sum(result.errors.values())}",
    ]
    lines += [f"    {count} x {kind}" for kind, count in result.errors.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
