"""Training: the project's recipes against plain Keras scripts of the recipes they improve on.

(a) `handwritten train --model seed` against the original tutorial (reference_seed.py): the
same accuracy is expected, in no more time. (b) The time the default model's recipe takes
to reach 99.0% MNIST accuracy, against the official Keras convnet example
(reference_convnet.py). Each run is a fresh process, project and reference alternating.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from common import BENCHMARKS, HANDWRITTEN, PYTHON, Run, checked, run, summary

from handwritten.registry import DEFAULT_MODEL

TARGET_ACCURACY = 0.99
RACE_TIMEOUT = 3600
KERAS_EPOCH = re.compile(r"val_digit_accuracy: ([0-9.]+)")
REFERENCE_EPOCH = re.compile(r"EPOCH (\d+) test_accuracy ([0-9.]+) monitor_seconds ([0-9.]+)")


def seed_training(repeats: int, data_dir: Path) -> dict[str, dict]:
    """Whole-process time, time in fit() and test accuracy, project against reference."""
    project: list[dict] = []
    reference: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(repeats):
            seed = 42 + attempt
            project.append(_train_project("seed", seed, data_dir, Path(scratch)))
            reference.append(_train_reference_seed(seed, data_dir))
    figures = {"project": _collect(project), "reference": _collect(reference)}
    for key in ("wall_seconds", "fit_seconds"):
        figures[f"{key}_ratio"] = (
            figures["project"][key]["median"] / figures["reference"][key]["median"]
        )
    figures["accuracy_points_difference"] = 100 * (
        figures["project"]["test_accuracy"]["median"]
        - figures["reference"]["test_accuracy"]["median"]
    )
    return figures


def _train_project(architecture: str, seed: int, data_dir: Path, scratch: Path) -> dict:
    output = scratch / f"{architecture}-{seed}.keras"
    command = [HANDWRITTEN, "train", "--model", architecture, "--seed", seed, "--force"]
    done = checked(run([*command, "--output", output, "--data-dir", data_dir]), "train")
    card = json.loads(output.with_name(f"{output.stem}.card.json").read_text())
    return {
        "wall_seconds": done.seconds,
        "fit_seconds": card["training_seconds"],
        "test_accuracy": card["test"]["accuracy"],
    }


def _train_reference_seed(seed: int, data_dir: Path) -> dict:
    done = checked(
        run([PYTHON, BENCHMARKS / "reference_seed.py", seed], env=_data_env(data_dir)),
        "reference_seed.py",
    )
    result = json.loads(done.lines[-1][1].removeprefix("RESULT "))
    return {"wall_seconds": done.seconds, **result}


def _data_env(data_dir: Path) -> dict[str, str]:
    return {"HANDWRITTEN_DATA_DIR": str(data_dir)}


def _collect(runs: list[dict]) -> dict[str, dict]:
    return {key: summary([r[key] for r in runs]) for key in runs[0]}


def race_to_99(repeats: int, data_dir: Path) -> dict[str, dict]:
    """Seconds from launch until the end of the first epoch at 99.0% held-out accuracy, and
    the default model's whole training time.

    The project's training scores its 5,000 validation digits after every epoch (Keras
    prints it as val_digit_accuracy: the generated non-digits beside them are left out), and
    that time counts; it trains on to the end, so its card gives the time the whole recipe
    takes (`training_seconds`, in fit()). The reference's recipe does not score after each
    epoch, so the time its extra scoring of the test set takes is left out; it stops once it
    has reached 99%.
    """
    project, reference = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(repeats):
            seed = 42 + attempt
            project.append(_race_project(seed, data_dir, Path(scratch)))
            reference.append(_race_reference(seed, data_dir))
    figures = {
        "model": DEFAULT_MODEL,
        "project": _finish(project),
        "reference": _finish(reference),
        "training": _collect(
            [
                {k: r[k] for k in ("fit_seconds", "wall_seconds", "validation_accuracy")}
                for r in project
            ]
        ),
    }
    if figures["project"]["seconds"] and figures["reference"]["seconds"]:
        figures["project_over_reference"] = (
            figures["project"]["seconds"]["median"] / figures["reference"]["seconds"]["median"]
        )
    return figures


def _race_project(seed: int, data_dir: Path, scratch: Path) -> dict:
    output = scratch / f"{DEFAULT_MODEL}-{seed}.keras"
    command = [HANDWRITTEN, "train", "--model", DEFAULT_MODEL, "--seed", seed, "--force"]
    arguments = [*command, "--output", output, "--data-dir", data_dir]
    done = checked(run(arguments, timeout=RACE_TIMEOUT), "train")
    epochs = [(t, float(m[1])) for t, line in done.lines if (m := KERAS_EPOCH.search(line))]
    card = json.loads(output.with_name(f"{output.stem}.card.json").read_text())
    return {
        **_outcome(done, [(t, accuracy, 0.0) for t, accuracy in epochs]),
        "fit_seconds": card["training_seconds"],
        "wall_seconds": done.seconds,
        "validation_accuracy": card["validation"]["accuracy"],
    }


def _race_reference(seed: int, data_dir: Path) -> dict:
    command = [PYTHON, BENCHMARKS / "reference_convnet.py", seed]
    done = run(command, env=_data_env(data_dir), stop=_reference_reached, timeout=RACE_TIMEOUT)
    found = [(t, REFERENCE_EPOCH.search(line)) for t, line in done.lines]
    return _outcome(done, [(t, float(m[2]), float(m[3])) for t, m in found if m])


def _reference_reached(line: str) -> bool:
    found = REFERENCE_EPOCH.search(line)
    return found is not None and float(found[2]) >= TARGET_ACCURACY


def _outcome(done: Run, epochs: list[tuple[float, float, float]]) -> dict:
    """When 99% was first reached (None if never), and the accuracy after each epoch."""
    if not epochs:
        checked(done, "training")
        raise SystemExit(f"no epoch finished:\n{done.stderr[-3000:]}")
    reached = next((i for i, (_, a, _) in enumerate(epochs) if a >= TARGET_ACCURACY), None)
    if reached is None:
        checked(done, "training")
    seconds = None if reached is None else epochs[reached][0] - epochs[reached][2]
    return {
        "seconds": seconds,
        "epochs": None if reached is None else reached + 1,
        "accuracies": [a for _, a, _ in epochs],
    }


def _finish(runs: list[dict]) -> dict:
    reached = [r for r in runs if r["seconds"] is not None]
    return {
        "seconds": summary([r["seconds"] for r in reached]) if reached else None,
        "epochs": summary([r["epochs"] for r in reached]) if reached else None,
        "reached": f"{len(reached)} of {len(runs)}",
        "accuracies": [r["accuracies"] for r in runs],
    }
