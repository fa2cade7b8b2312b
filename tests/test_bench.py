"""The benchmark harness measures what it says: the same MNIST, real peaks, Keras's real output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import MNIST_DIR, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_serve
import bench_train
import bench_writers
import common
import idx
import results_md


@pytest.mark.integration
def test_the_references_read_the_same_mnist_as_the_package(mnist) -> None:
    plain = idx.load_mnist(MNIST_DIR)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(plain[name], getattr(mnist, name))


def test_a_run_reports_its_peak_memory_and_stops_when_told() -> None:
    script = (
        "import time\nblock = b'x' * (300 * 2**20)\nprint('ready', flush=True)\n"
        "time.sleep(60)\nprint('too late')\n"
    )
    done = common.run([sys.executable, "-c", script], stop=lambda line: line.startswith("ready"))
    assert [line for _, line in done.lines] == ["ready"]
    assert done.returncode == -signal.SIGTERM
    assert done.peak_mb >= 300


def test_server_memory_counts_the_workers_too() -> None:
    worker = "import time\nblock = b'x' * (200 * 2**20)\nprint('ready', flush=True)\ntime.sleep(60)"
    parent = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE)\n"
        "child.stdout.readline()\nprint('ready', flush=True)\nchild.wait()"
    )
    with subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout.readline().strip() == b"ready"
            own = bench_serve._vm_hwm_kb(process.pid) / 1024
            assert own < 100
            assert bench_serve._peak_mb(process.pid) >= own + 200
        finally:
            for child in bench_serve._children(process.pid):
                os.kill(child, signal.SIGTERM)
            process.wait(timeout=30)


def test_the_race_reads_the_digit_accuracy_training_prints(capsys: pytest.CaptureFixture) -> None:
    import keras

    from handwritten.train import DigitAccuracy

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(11, activation="softmax")])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", DigitAccuracy()])
    x = np.eye(4, dtype=np.float32)
    y = np.eye(11, dtype=np.float32)[[0, 1, 10, 10]]
    model.fit(x, y, validation_data=(x, y), epochs=1, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if "val_accuracy" in line]
    assert len(lines) == 1
    accuracy = float(bench_train.KERAS_EPOCH.search(lines[0])[1])
    assert accuracy == pytest.approx(
        float(re.search(r"val_digit_accuracy: ([0-9.]+)", lines[0])[1])
    )


def test_results_md_is_what_results_json_renders_to() -> None:
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    assert results_md.render(results) == (ROOT / "benchmarks" / "RESULTS.md").read_text()


def test_the_lowest_reject_threshold_refuses_at_most_one_percent_of_each_population() -> None:
    """200 digits may lose 2 to refusal, 100 may lose 1: the threshold sits just above the
    higher of the first's third highest "not a digit" score and the second's second highest."""
    first = np.linspace(0.0, 0.5, 200)
    second = np.concatenate([np.zeros(97), [0.55, 0.6, 0.9]])
    threshold = bench_writers._lowest_reject([first, second])
    assert threshold == np.nextafter(0.6, 1)
    assert (first >= threshold).sum() == 0
    assert (second >= threshold).sum() == 1
    assert bench_writers._lowest_reject([first]) == np.nextafter(first[-3], 1)


def test_the_lowest_sure_threshold_keeps_the_sure_answers_right_in_every_set() -> None:
    """Sure answers must be 99.8% right: with one wrong answer among 100, the threshold has to
    rise above its confidence, however many right answers that leaves unsure."""
    confidences = np.linspace(0.5, 0.99, 100)
    outputs = np.zeros((100, 11))
    outputs[:, 3] = confidences
    outputs[:, 4] = 1 - confidences
    labels = np.full(100, 3)
    labels[60] = 4
    sure = bench_writers._lowest_sure([(outputs, labels)], reject=0.5)
    assert sure == confidences[61]
    assert bench_writers._sure(outputs, sure, 0.5).sum() == 39


def test_the_writers_section_puts_each_target_beside_its_figure() -> None:
    figures = {"images": 100, "accuracy": 0.99, "read": 0.98, "refused": 0.005, "sure": 0.9}
    section = {
        "model": "lean",
        "sources": ["mnist", "usps"],
        "populations": {
            "validation": {"mnist": figures, "usps": {**figures, "refused": 0.02}},
            "held_out": {"optdigits-orig": {**figures, "read": 0.96}},
            "test": {"mnist": {**figures, "accuracy": 0.996}, "usps": figures},
        },
        "drawings": {
            "user-digits": {"images": 355, "correct": 352, "sure": 0.97, "sure_accuracy": 1.0},
            "photos": {"images": 51, "correct": 50, "sure": 0.98, "sure_accuracy": 0.998},
        },
        "numbers": {"images": 47, "correct": 41},
        "nondigits": {"images": 115, "refused": 0.91},
        "limits": {
            "nondigits_refused": 0.8,
            "nondigits_refused_without_noisy": 0.92,
            "user_digits_sure": 0.97,
        },
        "multiply_adds": 3_879_072,
        "training_seconds": 612.0,
    }
    met = {label: verdict for label, _, _, verdict in bench_writers.rows(section)}
    assert met["optdigits-orig (never trained on): read"] is False
    assert met["optdigits-orig (never trained on): refused"] is True
    assert met["usps validation: refused"] is False
    assert met["mnist validation: refused"] is True
    assert met["user-digits: read right"] is True
    assert met["photos: read right"] is False
    assert met["MNIST test accuracy"] is True
    assert met["USPS test accuracy"] is True
    assert met["numbers, read digit by digit: right"] is True
    assert (
        met["nondigits refused at the lowest threshold refusing <= 1% of every population"] is False
    )
    assert met["the same, UNIPEN's noisy labels left out"] is True
    assert met["user-digits sure at the lowest threshold keeping sure answers 99.8% right"]
    assert met["training from scratch (the card's)"] is False
    table = bench_writers.markdown(section)
    assert "| optdigits-orig (never trained on): read | 96.00% | >= 97.0% | **no** |" in table
    assert "| multiply-adds an image | 3.88 M | <= 4 M | yes |" in table
