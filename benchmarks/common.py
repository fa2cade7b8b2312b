"""What every benchmark needs: run a command, timing it and its peak memory; medians; the setting.

Every figure is measured in a fresh process, so one measurement's imports, caches and thread
pools do not flatter the next.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
PYTHON = sys.executable
HANDWRITTEN = str(Path(sys.executable).with_name("handwritten"))
PACKAGES = (
    "handwritten",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "onnxruntime",
    "tf2onnx",
    "onnx",
    "numpy",
    "scipy",
    "pillow",
    "fastapi",
    "uvicorn",
)


@dataclass
class Run:
    """One finished process: wall time, peak resident memory, and its output lines with times."""

    seconds: float
    peak_mb: float
    returncode: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    stderr: str = ""

    @property
    def stdout(self) -> str:
        return "\n".join(line for _, line in self.lines)


def run(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stop: Callable[[str], bool] | None = None,
    timeout: float = 1800,
) -> Run:
    """Run `command` from the repository root, noting when each output line arrives.

    `stop(line)` true ends the process there (a race that is won need not run on). The peak
    memory comes from the kernel's own account of the child (wait4), not from sampling.
    """
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        lines = _read_lines(process, started, stop)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, process.returncode, lines, errors.read())


def _read_lines(
    process: subprocess.Popen, started: float, stop: Callable[[str], bool] | None
) -> list[tuple[float, str]]:
    lines = []
    for line in process.stdout:
        lines.append((time.perf_counter() - started, line.rstrip("\n")))
        if stop is not None and stop(line):
            process.terminate()
            break
    process.stdout.close()
    return lines


def checked(result: Run, what: str) -> Run:
    """The run, if it succeeded; otherwise stop the benchmark with the command's own words."""
    if result.returncode != 0:
        sys.exit(f"{what} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result


def summary(values: Sequence[float]) -> dict[str, float | list[float]]:
    """Median, extremes and every run: one figure in RESULTS.md, the detail in the JSON."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 6) for v in values],
    }


def data_dir() -> Path:
    """MNIST for both the project and the references: $HANDWRITTEN_DATA_DIR, ../shared/mnist,
    or the project's cache (filled on first use)."""
    chosen = os.environ.get("HANDWRITTEN_DATA_DIR")
    if chosen:
        return Path(chosen)
    shared = ROOT.parent / "shared" / "mnist"
    if shared.is_dir():
        return shared
    from handwritten.data import load_mnist, resolve_data_dir

    load_mnist()
    return resolve_data_dir()


def setting() -> dict[str, object]:
    """The machine and the versions: what every figure depends on."""
    return {
        "machine": {
            "cpu": _cpu_model(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {name: _version(name) for name in PACKAGES if _version(name)},
    }


def stamp(mode: str, repeats: dict[str, int]) -> dict[str, object]:
    """When a section started, at which commit, in which mode, and how loaded the machine was."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "mode": mode,
        "repeats": repeats,
        "load_average_at_start": _load_average(),
    }


def finished(started: dict[str, object]) -> dict[str, object]:
    """The section's stamp, completed with the load on the machine when it ended."""
    return {**started, "load_average_at_end": _load_average()}


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _commit() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"
