"""Pictures that explain the model: what it was given, what it saw, and how sure it was."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from handwritten import files
from handwritten.errors import HandwrittenError
from handwritten.predict import Prediction
from handwritten.preprocess import open_image

NON_INTERACTIVE_BACKENDS = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def prediction_figure(prediction: Prediction) -> Figure:
    """The input as drawn, the 28x28 image the model saw, and the ten probabilities."""
    figure, (drawn, seen, bars) = plt.subplots(
        1, 3, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 1, 1.4]}
    )
    drawn.imshow(open_image(prediction.path).convert("RGBA"))
    drawn.set_title("your image")
    seen.imshow(_seen(prediction), cmap="gray", vmin=0, vmax=255)
    seen.set_title("what the model saw")
    for axis in (drawn, seen):
        axis.set_xticks([])
        axis.set_yticks([])
    probabilities = prediction.probabilities or [0.0] * 10
    colours = ["tab:blue" if d == prediction.digit else "tab:gray" for d in range(10)]
    bars.bar(range(10), probabilities, color=colours)
    bars.set_xticks(range(10))
    bars.set_ylim(0, 1)
    bars.set_title(_verdict(prediction))
    figure.suptitle(Path(prediction.path).name)
    figure.tight_layout()
    return figure


def _seen(prediction: Prediction) -> np.ndarray:
    return prediction.image if prediction.image is not None else np.zeros((28, 28), np.uint8)


def _verdict(prediction: Prediction) -> str:
    if prediction.digit is None:
        return "no digit found"
    return f"probably a {prediction.digit} ({prediction.confidence:.1%})"


def show(predictions: list[Prediction]) -> None:
    """Open a window per readable prediction; refuse clearly where no window can open."""
    if matplotlib.get_backend().lower() in NON_INTERACTIVE_BACKENDS:
        raise HandwrittenError(
            "--show needs a display (none found); use --preview DIR to save the pictures instead."
        )
    for prediction in predictions:
        if prediction.error is None:
            prediction_figure(prediction)
    plt.show()


def save_previews(predictions: list[Prediction], folder: Path) -> list[Path]:
    """Save one preview PNG per readable input into `folder`, named after the input."""
    written = []
    for prediction in predictions:
        if prediction.error is not None:
            continue
        target = Path(folder) / f"{Path(prediction.path).stem}.preview.png"
        save_figure(prediction_figure(prediction), target)
        written.append(target)
    return written


def save_figure(figure: Figure, path: Path) -> None:
    """Save a figure atomically and free its memory."""
    with files.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
