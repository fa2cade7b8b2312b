"""Bulk reading: `predict --output` over 10,000 PNGs, and the same 10,000 through Ray on a
two-node cluster started here, against the local run. (`predict` over a folder of 1,000 is
measured in the section "predict", with no Ray cluster taking CPU beside it.)

The PNGs are MNIST test images inverted to dark ink on white, as a scanner gives them, so each
goes through the full drawing normalisation. Each figure is a whole fresh process, start-up
included, the sides alternating so a change in the machine's load hits them alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from common import HANDWRITTEN, PYTHON, checked, run, summary
from PIL import Image

from handwritten.data import load_mnist

BULK_SIZE = 10_000
TARGETS = {"output": 1500, "ray_over_local": 0.7}
RAY = str(Path(PYTHON).with_name("ray"))


def bulk(repeats: int, data_dir: Path) -> dict:
    """Images per second for each way of reading, medians of `repeats` fresh processes."""
    mnist = load_mnist(data_dir)
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "bulk"
        images.mkdir()
        for index, image in enumerate(mnist.x_test[:BULK_SIZE]):
            Image.fromarray(255 - image).save(images / f"{index:05d}.png")
        cluster = TwoNodes()
        try:
            rates = _measure(repeats, images, Path(scratch), cluster.address)
        finally:
            cluster.stop()
    figures = {name: summary(values) for name, values in rates.items()}
    figures["ray_over_local"] = figures["ray"]["median"] / figures["output"]["median"]
    figures["targets"] = TARGETS
    figures["cores"] = len(os.sched_getaffinity(0))
    return figures


def _measure(repeats: int, images: Path, scratch: Path, address: str) -> dict:
    rates: dict[str, list[float]] = {"output": [], "ray": []}
    for attempt in range(repeats):
        for name, extra in (("output", []), ("ray", [f"--ray={address}"])):
            output = scratch / f"{name}-{attempt}.csv"
            command = [HANDWRITTEN, "predict", "--output", output, *extra, images]
            rates[name].append(
                BULK_SIZE / checked(run(command), f"predict --output ({name})").seconds
            )
    return rates


class TwoNodes:
    """A Ray head and a second node on this machine, one CPU each, in their own temp folder;
    `stop` kills only the processes that name that folder, and their children."""

    def __init__(self) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="hwbench", dir="/tmp"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        common = ["--num-cpus", "1", "--disable-usage-stats"]
        head = ["--head", "--port", str(port), "--temp-dir", str(self.temp)]
        subprocess.run([RAY, "start", *head, "--include-dashboard", "false", *common], check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([RAY, "start", "--address", self.address, *common], check=True,
                       capture_output=True)  # fmt: skip

    def stop(self) -> None:
        table = _process_table()
        ours = {pid for pid, (_, args) in table.items() if str(self.temp) in args}
        while True:
            children = {pid for pid, (parent, _) in table.items() if parent in ours} - ours
            if not children:
                break
            ours |= children
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, UnicodeDecodeError):
                continue
            table[int(entry.name)] = (int(stat[1]), args)
    return table


def markdown(section: dict) -> str:
    """The section of RESULTS.md: each figure beside its target."""
    rows = [
        ("`predict --output` over 10,000 PNGs, images/s", section["output"], "output"),
        ("`--ray`, two local nodes of one CPU each, images/s", section["ray"], None),
    ]
    lines = [
        "## Bulk reading",
        "",
        f"On {section['cores']} cores; every figure a whole process, start-up included.",
        "",
        "| figure | median | runs | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, figure, target in rows:
        goal = TARGETS.get(target) if target else None
        met = "-" if goal is None else ("yes" if figure["median"] >= goal else "**no**")
        runs = ", ".join(f"{r:,.0f}" for r in figure["runs"])
        lines.append(
            f"| {label} | {figure['median']:,.0f} | {runs} | "
            f"{'-' if goal is None else f'>= {goal:,}'} | {met} |"
        )
    ratio = section["ray_over_local"]
    met = "yes" if ratio >= TARGETS["ray_over_local"] else "**no**"
    lines.append(f"| Ray over local `--output` | {ratio:.2f} | | >= 0.70 | {met} |")
    return "\n".join(lines)
