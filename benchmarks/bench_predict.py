"""Prediction: one image from a cold start, bulk throughput per model and runtime, a folder of PNGs.

Each figure compares the ONNX path with the Keras path in the same run, alternating the two so
that a change in the machine's load hits both alike.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from common import BENCHMARKS, HANDWRITTEN, PYTHON, ROOT, checked, run, summary
from PIL import Image

from handwritten.data import load_mnist
from handwritten.registry import names, shipped_path

ONE_IMAGE = ROOT / "digits" / "digit3-pencil.png"
RUNTIMES = ("onnx", "keras")
FOLDER_SIZE = 1000


def cold_start(repeats: int) -> dict[str, dict]:
    """`handwritten predict one.png`, whole process: wall time and peak memory per runtime."""
    results = {}
    for name in names():
        runs: dict[str, list] = {runtime: [] for runtime in RUNTIMES}
        for _ in range(repeats):
            for runtime in RUNTIMES:
                command = [HANDWRITTEN, "predict", "--model", name, "--runtime", runtime]
                runs[runtime].append(checked(run([*command, ONE_IMAGE]), "predict"))
        results[name] = _compare(runs)
    return results


def _compare(runs: dict[str, list]) -> dict[str, dict]:
    figures = {
        runtime: {
            "seconds": summary([r.seconds for r in done]),
            "peak_mb": summary([r.peak_mb for r in done]),
        }
        for runtime, done in runs.items()
    }
    figures["keras_over_onnx"] = {
        "seconds": figures["keras"]["seconds"]["median"] / figures["onnx"]["seconds"]["median"],
        "peak_mb": figures["keras"]["peak_mb"]["median"] / figures["onnx"]["peak_mb"]["median"],
    }
    return figures


def bulk_throughput(repeats: int, data_dir: Path) -> dict[str, dict]:
    """Images per second over the MNIST test set, for every shipped model and each runtime.

    A network that is not shipped yet (the CNN, before it is trained) is measured with its
    initial weights: speed does not depend on them, accuracy does (so it is not reported).
    """
    models = {name: name for name in names() if shipped_path(name).is_file()}
    with tempfile.TemporaryDirectory() as scratch:
        for architecture in names():
            if architecture not in models:
                models[f"{architecture} (untrained)"] = _untrained(architecture, Path(scratch))
        return {label: _throughput(model, repeats, data_dir) for label, model in models.items()}


def _untrained(architecture: str, folder: Path) -> str:
    output = folder / f"{architecture}.keras"
    command = [PYTHON, BENCHMARKS / "throughput.py", "--untrained", architecture]
    checked(run([*command, "--output", output]), f"making an untrained {architecture}")
    return str(output)


def _throughput(model: str, repeats: int, data_dir: Path) -> dict[str, dict]:
    figures = {}
    for runtime in RUNTIMES:
        command = [PYTHON, BENCHMARKS / "throughput.py", "--model", model, "--runtime", runtime]
        done = checked(run([*command, "--repeats", repeats, "--data-dir", data_dir]), "throughput")
        answer = json.loads(done.lines[-1][1])
        figures[runtime] = {
            "images_per_second": summary(answer["images_per_second"]),
            "accuracy": answer["accuracy"],
            "classifier": answer["classifier"],
        }
    figures["onnx_over_keras"] = (
        figures["onnx"]["images_per_second"]["median"]
        / figures["keras"]["images_per_second"]["median"]
    )
    return figures


def folder_throughput(repeats: int, data_dir: Path) -> dict[str, dict]:
    """`handwritten predict --json DIR` over 1,000 PNG files, end to end, per runtime.

    The files are MNIST test images inverted to dark ink on white, as a scanner gives them, so
    every one goes through the full drawing normalisation.
    """
    mnist = load_mnist(data_dir)
    with tempfile.TemporaryDirectory() as folder:
        for index, image in enumerate(mnist.x_test[:FOLDER_SIZE]):
            Image.fromarray(255 - image).save(Path(folder) / f"{index:04d}.png")
        runs: dict[str, list] = {runtime: [] for runtime in RUNTIMES}
        for _ in range(repeats):
            for runtime in RUNTIMES:
                command = [HANDWRITTEN, "predict", "--json", "--runtime", runtime, folder]
                runs[runtime].append(checked(run(command), "predict over a folder"))
    figures = _compare(runs)
    for runtime in RUNTIMES:
        figures[runtime]["images_per_second"] = summary(
            [FOLDER_SIZE / r.seconds for r in runs[runtime]]
        )
        figures[runtime]["accuracy"] = _accuracy(runs[runtime][0], mnist.y_test[:FOLDER_SIZE])
    return figures


def _accuracy(done, labels: np.ndarray) -> float:
    digits = [json.loads(line)["digit"] for _, line in done.lines]
    return float(np.mean(np.array(digits) == labels))
