"""Does `handwritten tune` help? Tune on half of each project's drawings, score the other half.

For each project in ../shared/user-digits with at least MIN_DRAWINGS drawings (a project is
one person's, or one team's, drawings: the file name starts with its repository), the
drawings are split in two halves, stratified by digit and seeded; `handwritten tune` runs on
one half as a user would (a fresh process, a folder-per-digit tree), from the default model
and from the tutorial's `seed` network, and the other half is read before and after. The
tune card gives the MNIST validation accuracy before and after (the target: no drop over 0.1
point). Separately, the time to tune on 50 drawings (5 of each digit, from all projects) is
measured, start-up included (the target: 60 s at most). `make bench BENCH=full` runs it as
its section "tune" (`benchmarks/run.py --only tune` alone).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import HANDWRITTEN, ROOT, checked, run

from handwritten import registry

USER_DIGITS = ROOT.parent / "shared" / "user-digits"
MIN_DRAWINGS = 12
SEED = 42
TIMED_DRAWINGS_PER_DIGIT = 5
SOURCES = (registry.DEFAULT_MODEL, "seed")
"""The default model, and the tutorial's network, which misreads more, so has more to gain."""


def drawings_by_project() -> dict[str, list[tuple[Path, int]]]:
    """(file, digit) per project, the project being the file name's `owner+repo` prefix."""
    projects: dict[str, list[tuple[Path, int]]] = defaultdict(list)
    with open(USER_DIGITS / "labels.csv", newline="") as table:
        for row in csv.DictReader(table):
            path = USER_DIGITS / row["file"]
            projects[path.name.split("__")[0]].append((path, int(row["label"])))
    return dict(projects)


def halves(
    drawings: list[tuple[Path, int]], seed: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Split in two, each digit's drawings shuffled and dealt alternately, so both halves
    have every digit that has two drawings, and the lone ones are shared out evenly."""
    rng = np.random.default_rng(seed)
    ordered = []
    for digit in sorted({d for _, d in drawings}):
        mine = [item for item in drawings if item[1] == digit]
        ordered += [mine[i] for i in rng.permutation(len(mine))]
    return ordered[0::2], ordered[1::2]


def make_tree(folder: Path, drawings: list[tuple[Path, int]]) -> Path:
    """A folder-per-digit tree of copies, as `tune` and `evaluate --drawings` read it."""
    for path, digit in drawings:
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / str(digit) / path.name)
    return folder


def tune(tree: Path, output: Path, data: Path, source: str | None = None) -> tuple[dict, float]:
    """Run `handwritten tune` in a fresh process; its card and its wall time."""
    command = [HANDWRITTEN, "tune", tree, "--output", output, "--data-dir", data]
    result = checked(run(command + (["--from", source] if source else [])), f"tune {tree}")
    card = json.loads(output.with_name(f"{output.stem}.card.json").read_text())
    return card, result.seconds


def per_project(work: Path, data: Path, source: str) -> list[dict]:
    """Tune `source` on half of each project's drawings; score the other half before and
    after."""
    from handwritten import api

    original = api.load(source)
    results = []
    for project, drawings in sorted(drawings_by_project().items()):
        if len(drawings) < MIN_DRAWINGS:
            continue
        taught, held_out = halves(drawings, SEED)
        tree = make_tree(work / project / "tune", taught)
        scored = make_tree(work / project / "score", held_out)
        output = work / project / f"{source}-tuned.keras"
        card, seconds = tune(tree, output, data, source)
        tuned = api.load(output, "keras")
        before, after = (api.evaluate_drawings(scored, c) for c in (original, tuned))
        results.append(
            {
                "project": project,
                "source": source,
                "tuned_on": len(taught),
                "scored_on": len(held_out),
                "correct_before": before["correct"],
                "correct_after": after["correct"],
                "mnist_validation_before": card["validation_before"]["accuracy"],
                "mnist_validation_after": card["validation"]["accuracy"],
                "tune_seconds": round(seconds, 1),
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def timed_fifty(work: Path, data: Path) -> dict:
    """Tune on 50 drawings from across the projects, 5 of each digit, timed from the start."""
    rng = np.random.default_rng(SEED)
    everything = [item for items in drawings_by_project().values() for item in items]
    chosen = []
    for digit in range(10):
        mine = [item for item in everything if item[1] == digit]
        chosen += [mine[i] for i in rng.choice(len(mine), TIMED_DRAWINGS_PER_DIGIT, False)]
    card, seconds = tune(make_tree(work / "fifty", chosen), work / "fifty.keras", data)
    return {
        "drawings": card["tuning"]["drawings"],
        "seconds": round(seconds, 1),
        "training_seconds": card["training_seconds"],
        "target_seconds": 60,
        "mnist_validation_before": card["validation_before"]["accuracy"],
        "mnist_validation_after": card["validation"]["accuracy"],
        "source": card["source"],
        "tuning": {k: v for k, v in card["tuning"].items() if k not in ("folder", "skipped")},
    }


def summarise(projects: list[dict]) -> dict:
    drops = [p["mnist_validation_before"] - p["mnist_validation_after"] for p in projects]
    return {
        "source": projects[0]["source"],
        "projects": len(projects),
        "scored": sum(p["scored_on"] for p in projects),
        "correct_before": sum(p["correct_before"] for p in projects),
        "correct_after": sum(p["correct_after"] for p in projects),
        "largest_mnist_validation_drop_points": round(100 * max(drops), 2),
        "target_largest_drop_points": 0.1,
    }


def tune_section(data: Path) -> dict:
    """The section of `make bench`: 50 drawings timed, then every project from each source."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        fifty = timed_fifty(work, data)
        projects = {source: per_project(work, data, source) for source in SOURCES}
    return {
        "fifty_drawings": fifty,
        "summary": [summarise(rows) for rows in projects.values()],
        "per_project": [row for rows in projects.values() for row in rows],
    }


def markdown(section: dict) -> str:
    """The section of RESULTS.md."""
    fifty = section["fifty_drawings"]
    lines = [
        "## Learning one person's handwriting: `tune`",
        "",
        f"`handwritten tune` on {fifty['drawings']} drawings (5 of each digit, from across "
        f"`../shared/user-digits`), from `{fifty['source']['name']}`: {fifty['seconds']} s from "
        f"the command's start ({fifty['training_seconds']} s of training); MNIST validation "
        f"{fifty['mnist_validation_before']:.4f} before, {fifty['mnist_validation_after']:.4f} "
        "after.",
        "",
        f"Each project of {MIN_DRAWINGS} or more drawings, tuned on half (stratified by digit, "
        "seeded) and scored on the other half:",
        "",
        "| from | projects | held-out drawings | right before | right after | "
        "largest MNIST validation drop |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in section["summary"]:
        lines.append(
            f"| {row['source']} | {row['projects']} | {row['scored']} | {row['correct_before']} "
            f"| {row['correct_after']} | {row['largest_mnist_validation_drop_points']:.2f} points |"
        )
    return "\n".join(lines)
