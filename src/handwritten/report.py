"""The evaluation report: one folder of pictures and tables that any browser opens offline.

Everything links relatively and nothing is fetched from elsewhere, so the folder can be
zipped, attached to an issue or kept beside a model card and still open as it was written.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handwritten import files, plots, trust
from handwritten.evaluate import Evaluation, mistakes

CONFUSION_PNG = "confusion.png"
MISTAKES_PNG = "mistakes.png"
RELIABILITY_PNG = "reliability.png"
EVALUATION_JSON = "evaluation.json"
PER_CLASS_CSV = "per_class.csv"
PER_CLASS_JSON = "per_class.json"
MISTAKES_CSV = "mistakes.csv"
INDEX_HTML = "index.html"
REPORT_FILES = (
    CONFUSION_PNG,
    MISTAKES_PNG,
    RELIABILITY_PNG,
    EVALUATION_JSON,
    PER_CLASS_CSV,
    PER_CLASS_JSON,
    MISTAKES_CSV,
    INDEX_HTML,
)


def write_report(
    folder: Path,
    result: Evaluation,
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    model: str,
) -> list[Path]:
    """Write the report for `result` into `folder` and return the files, index.html last.

    `probabilities` are the model's outputs `result` was scored from: the pictures and the
    tables then describe the very same predictions as the headline numbers.
    """
    folder = Path(folder)
    probabilities = trust.digit_probabilities(probabilities)
    plots.save_figure(plots.confusion_figure(result.confusion), folder / CONFUSION_PNG)
    bins = trust.reliability(probabilities, labels)
    plots.save_figure(plots.reliability_figure(bins, result.ece), folder / RELIABILITY_PNG)
    plots.save_figure(plots.mistakes_figure(images, labels, probabilities), folder / MISTAKES_PNG)
    files.write_json(folder / EVALUATION_JSON, result.to_json())
    files.write_json(folder / PER_CLASS_JSON, result.per_class())
    files.write_text(folder / PER_CLASS_CSV, _csv(result.per_class()))
    files.write_text(folder / MISTAKES_CSV, _csv(mistake_rows(labels, probabilities)))
    files.write_text(folder / INDEX_HTML, _html(result, model))
    return [folder / name for name in REPORT_FILES]


def mistake_rows(labels: np.ndarray, probabilities: np.ndarray) -> list[dict[str, Any]]:
    """Every misclassified test image, in the order of the picture: most confident first.

    `index` is the position in the MNIST test set, so a mistake can be looked up again.
    """
    return [
        {
            "index": int(i),
            "true": int(labels[i]),
            "predicted": int(probabilities[i].argmax()),
            "confidence": float(probabilities[i].max()),
        }
        for i in mistakes(probabilities, labels)
    ]


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV with full-precision numbers, so it agrees exactly with the JSON."""
    fields = list(rows[0]) if rows else ["index", "true", "predicted", "confidence"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _html(result: Evaluation, model: str) -> str:
    rows = "\n".join(
        f"<tr><td>{row['digit']}</td><td>{row['precision']:.4f}</td><td>{row['recall']:.4f}</td>"
        f"<td>{row['f1']:.4f}</td><td>{row['support']}</td></tr>"
        for row in result.per_class()
    )
    wrong = result.n - sum(result.confusion[d][d] for d in range(len(result.confusion)))
    links = ", ".join(
        f'<a href="{name}">{name}</a>'
        for name in (EVALUATION_JSON, PER_CLASS_CSV, PER_CLASS_JSON, MISTAKES_CSV)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Evaluation of {html.escape(model)}</title>
<style>
body {{ font-family: sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>Evaluation on the MNIST test set</h1>
<p>Model <code>{html.escape(model)}</code>: accuracy <b>{result.accuracy:.4f}</b>,
loss {result.loss:.4f}, {wrong} mistakes in {result.n} images, expected calibration error
{result.ece:.2%}.</p>
<h2>Per digit</h2>
<table>
<tr><th>digit</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>
{rows}
</table>
<p>Data: {links}.</p>
<h2>Confusion matrix</h2>
<p>Rows are the true digits, columns what the model read.</p>
<img src="{CONFUSION_PNG}" alt="confusion matrix">
<h2>Mistakes</h2>
<p>The most confident mistakes first; <a href="{MISTAKES_CSV}">{MISTAKES_CSV}</a> lists them
all with their positions in the test set.</p>
<img src="{MISTAKES_PNG}" alt="misclassified test images">
<h2>Calibration</h2>
<p>Accuracy against confidence in 15 bins: a calibrated model's bars reach the diagonal,
so that of the answers given with 90% confidence, 90% are right.</p>
<img src="{RELIABILITY_PNG}" alt="reliability diagram">
</body>
</html>
"""
