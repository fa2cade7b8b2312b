"""The notebook runs top to bottom on real MNIST, as a newcomer would run it, and is kept
without outputs so its diffs stay readable."""

from __future__ import annotations

import time

import nbformat
import pytest
from conftest import MNIST_DIR, ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "notebooks" / "handwritten_digits.ipynb"
TIME_LIMIT = 120


def read_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    return notebook


def test_notebook_is_committed_without_outputs() -> None:
    code = [cell for cell in read_notebook().cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == []
        assert cell.execution_count is None


@pytest.mark.integration
def test_notebook_runs_top_to_bottom(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDWRITTEN_DATA_DIR", str(MNIST_DIR))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = read_notebook()
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=TIME_LIMIT,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    assert time.perf_counter() - started < TIME_LIMIT
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 4, "gallery, confusion matrix, mistakes, what the model saw"
    text = "".join(output.get("text", "") for output in outputs)
    assert "accuracy" in text
    assert "digit3-pencil.png: 3 (" in text
