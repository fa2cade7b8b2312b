"""Pictures that explain a model: the data, its training, what it saw, and where it goes wrong."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from handwritten import evaluate, files
from handwritten.errors import HandwrittenError
from handwritten.predict import NumberReading, Prediction
from handwritten.preprocess import open_image

NON_INTERACTIVE_BACKENDS = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}
DPI = 100
GRID_COLUMNS = 10
CELL_WIDTH = 1.0  # inches, like every size below: at DPI 100 one inch is 100 pixels
CELL_HEIGHT = 1.3
CELL_TITLE = 0.35
GRID_HEADER = 0.4
GRID_FOOTER = 0.05
GRID_MIN_WIDTH = 6.0
MISTAKES_SHOWN = 100
GALLERY_COUNT = 40
GALLERY_MAX = 500
HISTORY_PANELS = {"loss": ("loss",), "accuracy": ("accuracy", "digit_accuracy")}
"""Each panel's title and the metrics drawn in it, its own first."""


def as_drawn(name: str) -> str:
    """A file name as a title can draw it: bytes that are not UTF-8 (kept by Python as lone
    surrogates) written as escapes. Titles holding names are also drawn with
    parse_math=False, or `a$\\frac$.png` would be read as TeX and fail."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


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
    bars.set_title(prediction.answer())
    figure.suptitle(as_drawn(prediction.path), parse_math=False)
    figure.tight_layout()
    return figure


def _seen(prediction: Prediction) -> np.ndarray:
    return prediction.image if prediction.image is not None else np.zeros((28, 28), np.uint8)


def show(predictions: list[Prediction] | list[NumberReading]) -> None:
    """Open a window per readable prediction; refuse clearly where no window can open."""
    if matplotlib.get_backend().lower() in NON_INTERACTIVE_BACKENDS:
        raise HandwrittenError(
            "--show needs a display (none found); use --preview DIR to save the pictures instead."
        )
    for prediction in predictions:
        if prediction.error is None:
            _figure_of(prediction)
    plt.show()


def _figure_of(result: Prediction | NumberReading) -> Figure:
    return number_figure(result) if isinstance(result, NumberReading) else prediction_figure(result)


def save_previews(predictions: list[Prediction] | list[NumberReading], folder: Path) -> list[Path]:
    """Save one preview PNG per readable input into `folder`, named after the input: a digit
    beside what the model saw, or a number's photo with its boxes beside each digit's image.

    Inputs sharing a stem (`a/7.png`, `b/7.png`, `7.jpg`) get `7`, `7-2`, `7-3`, in input order,
    so no preview overwrites another; each picture's title names its input in full.
    """
    readable = [p for p in predictions if p.error is None]
    stems = _unique_stems([Path(p.path).stem for p in readable])
    written = []
    for prediction, stem in zip(readable, stems, strict=True):
        target = Path(folder) / f"{stem}.preview.png"
        save_figure(_figure_of(prediction), target)
        written.append(target)
    return written


def number_figure(reading: NumberReading) -> Figure:
    """The photo with a box and the digit read drawn on each digit found, and beside it each
    28x28 image the model saw, left to right."""
    count = max(1, len(reading.digits))
    figure = plt.figure(figsize=(max(6, 1.2 * count), 5))
    grid = figure.add_gridspec(2, count, height_ratios=[3, 1])
    photo = figure.add_subplot(grid[0, :])
    photo.imshow(open_image(reading.path).convert("RGBA"))
    positions = reading.positions()
    for digit in positions:
        left, top, right, bottom = digit.box
        photo.add_patch(
            Rectangle((left, top), right - left, bottom - top, fill=False, color="tab:red", lw=2)
        )
        photo.annotate(
            str(digit.digit),
            (left, top),
            color="tab:red",
            fontsize=14,
            fontweight="bold",
            xytext=(0, 4),
            textcoords="offset points",
        )
    photo.set_title(
        f"{as_drawn(Path(reading.path).name)}: read {reading.number or 'no digits'}",
        parse_math=False,
    )
    for index, digit in enumerate(positions):
        seen = figure.add_subplot(grid[1, index])
        seen.imshow(_seen(digit), cmap="gray", vmin=0, vmax=255)
        seen.set_title(digit.brief(), fontsize=9)
    for axis in figure.axes:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure


def _unique_stems(stems: list[str]) -> list[str]:
    """Number repeated stems; compared case-blind, as macOS and Windows file systems do."""
    taken: set[str] = set()
    unique = []
    for stem in stems:
        name, copy = stem, 1
        while name.casefold() in taken:
            copy += 1
            name = f"{stem}-{copy}"
        taken.add(name.casefold())
        unique.append(name)
    return unique


def training_history_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """Loss and accuracy per epoch, training beside validation, one panel each.

    Validation pulling away from training is the picture of overfitting; the numbers alone
    hide it. A network with a "not a digit" output also gets its accuracy on the digits
    alone, dashed: the figure the model card and `make bench` report.
    """
    figure, panels = plt.subplots(1, len(HISTORY_PANELS), figsize=(10, 4))
    for axis, (title, metrics) in zip(panels, HISTORY_PANELS.items(), strict=True):
        for metric in metrics:
            if metric != title and _same_curve(history, metric, title):
                continue
            for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
                if key in history:
                    epochs = range(1, len(history[key]) + 1)
                    style = {} if metric == title else {"linestyle": "--"}
                    suffix = "" if metric == title else ", digits alone"
                    axis.plot(epochs, history[key], marker="o", label=label + suffix, **style)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axis.lines:
            axis.legend()
    figure.tight_layout()
    return figure


def _same_curve(history: Mapping[str, Sequence[float]], one: str, other: str) -> bool:
    """Whether `one` adds no line to `other`'s: never recorded, or recorded with the same
    numbers (a ten-output network's digit accuracy is its accuracy), when drawing both
    would only hide one line under the other."""
    pairs = [(prefix + one, prefix + other) for prefix in ("", "val_") if prefix + one in history]
    return all(key in history and np.allclose(history[mine], history[key]) for mine, key in pairs)


def save_training_history(
    history: Mapping[str, Sequence[float]], model_path: Path
) -> tuple[Path, Path]:
    """Write `<stem>.history.json` and `<stem>.history.png` beside the model they describe.

    Takes Keras's `History.history`; the JSON keeps every metric it recorded, as plain floats.
    """
    model_path = Path(model_path)
    numbers = {key: [float(value) for value in values] for key, values in history.items()}
    json_path = model_path.with_name(f"{model_path.stem}.history.json")
    png_path = model_path.with_name(f"{model_path.stem}.history.png")
    files.write_json(json_path, numbers)
    save_figure(training_history_figure(numbers), png_path)
    return json_path, png_path


def confusion_figure(confusion: Sequence[Sequence[int]]) -> Figure:
    """The confusion matrix as a heat map with its counts written in.

    The colour scale is logarithmic: on a linear one the thousand-strong diagonal washes out
    the handful of confusions that are the point of the picture. Zero cells stay white.
    """
    counts = np.asarray(confusion)
    norm = LogNorm(vmin=1, vmax=max(2, int(counts.max())))
    colours = plt.get_cmap("Blues").with_extremes(bad="white")
    figure, axis = plt.subplots(figsize=(7, 6))
    image = axis.imshow(np.ma.masked_equal(counts, 0), cmap=colours, norm=norm)
    for (row, column), count in np.ndenumerate(counts):
        dark = count > 0 and norm(count) > 0.6
        axis.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )
    classes = range(len(counts))
    axis.set_xticks(classes)
    axis.set_yticks(classes)
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    axis.set_title(f"confusion matrix: {counts.sum()} images, {np.trace(counts)} right")
    figure.colorbar(image, ax=axis, label="images (log scale)")
    figure.tight_layout()
    return figure


def reliability_figure(bins: Sequence[Mapping[str, float]], ece: float) -> Figure:
    """The reliability diagram: accuracy against confidence, bin by bin (see
    `trust.reliability`). A calibrated model's bars reach the diagonal; the count of answers
    in each bin is written on its bar, since most answers sit in the last one."""
    figure, axis = plt.subplots(figsize=(6, 6))
    widths = [row["high"] - row["low"] for row in bins]
    axis.bar(
        [row["low"] for row in bins],
        [row["accuracy"] for row in bins],
        width=widths,
        align="edge",
        edgecolor="black",
        color="#4c72b0",
        label="accuracy",
    )
    axis.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
    axis.plot(
        [row["confidence"] for row in bins],
        [row["accuracy"] for row in bins],
        "o",
        color="#dd8452",
        label="mean confidence",
    )
    for row in bins:
        axis.text(
            row["low"] + (row["high"] - row["low"]) / 2,
            0.02,
            str(row["count"]),
            ha="center",
            fontsize=7,
            rotation=90,
            color="white",
        )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence of the best digit")
    axis.set_ylabel("accuracy")
    axis.set_title(f"reliability: expected calibration error {ece:.2%}")
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def mistakes_figure(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    limit: int = MISTAKES_SHOWN,
) -> Figure:
    """The misclassified images, most confidently wrong first, at most `limit` of them."""
    order = evaluate.mistakes(probabilities, labels)
    shown = order[:limit]
    titles = [
        f"true {labels[i]}, read {probabilities[i].argmax()}\n{probabilities[i].max():.2%}"
        for i in shown
    ]
    heading = (
        f"{len(shown)} most confident of {len(order)} mistakes "
        "(true digit, what the model read, how sure it was)"
    )
    return image_grid(images[shown], titles, heading)


def gallery_figure(
    images: np.ndarray,
    labels: np.ndarray,
    heading: str,
    *,
    digit: int | None = None,
    count: int = GALLERY_COUNT,
) -> Figure:
    """The first `count` images (of one `digit`, if given), each titled with its label."""
    if count > GALLERY_MAX:
        raise HandwrittenError(f"--count {count}: at most {GALLERY_MAX} images fit a picture.")
    chosen = sample_indices(labels, digit, count)
    if not len(chosen):
        raise HandwrittenError(f"no images of digit {digit} to show.")
    return image_grid(images[chosen], [str(labels[i]) for i in chosen], heading)


def sample_indices(labels: np.ndarray, digit: int | None, count: int) -> np.ndarray:
    """The first `count` positions holding `digit` (any digit if None): the same every run."""
    positions = np.arange(len(labels)) if digit is None else np.flatnonzero(labels == digit)
    return positions[:count]


def image_grid(images: np.ndarray, titles: Sequence[str], heading: str) -> Figure:
    """28x28 images in rows of ten, each under its title; an empty grid says so.

    The layout is set in inches, so the picture is CELL_WIDTH x CELL_HEIGHT per image plus a
    header, whatever the number of rows: titles never run into the row above.
    """
    columns = min(GRID_COLUMNS, max(1, len(images)))
    rows = max(1, math.ceil(len(images) / columns))
    width = max(columns * CELL_WIDTH, GRID_MIN_WIDTH)
    height = GRID_HEADER + rows * CELL_HEIGHT + GRID_FOOTER
    figure = plt.figure(figsize=(width, height))
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=GRID_FOOTER / height,
        top=1 - (GRID_HEADER + CELL_TITLE) / height,
        hspace=CELL_TITLE / (CELL_HEIGHT - CELL_TITLE),
        wspace=0.1,
    )
    figure.suptitle(heading, fontsize=10, y=1 - 0.1 / height, va="top")
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, image, title in zip(axes.flat, images, titles, strict=False):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(title, fontsize=8)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "none", ha="center", va="center", fontsize=14)
    return figure


def save_figure(figure: Figure, path: Path) -> None:
    """Save a figure atomically and free its memory."""
    with files.atomic_path(Path(path)) as temporary:
        figure.savefig(temporary, dpi=DPI)
    plt.close(figure)
