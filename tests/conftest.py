"""Shared fixtures: the real MNIST, the shipped models, and the people's drawings in ../shared."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MNIST_DIR = Path(os.environ.get("HANDWRITTEN_DATA_DIR") or ROOT / "../shared/mnist").resolve()
SHARED = (ROOT / "../shared").resolve()
USER_DIGITS = SHARED / "user-digits"
WRITERS_DIR = Path(os.environ.get("HANDWRITTEN_WRITERS_DIR") or SHARED / "writers").resolve()
os.environ["HANDWRITTEN_WRITERS_DIR"] = str(WRITERS_DIR)


def default_sigint() -> None:
    """A child's `preexec_fn`: let Ctrl-C reach it even when pytest itself runs in the
    background, where the shell ignores SIGINT and children would inherit that (Python then
    keeps ignoring it, and the command rightly leaves it so, as a background job's)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The development sets people made (../shared): read, never copied into the project."""
    return SHARED


@pytest.fixture(scope="session")
def mnist():
    from handwritten.data import load_mnist

    return load_mnist(MNIST_DIR)


@pytest.fixture(scope="session")
def seed_model():
    from handwritten import api

    return api.load("seed")


@pytest.fixture(scope="session")
def user_digits() -> list[tuple[Path, int]]:
    """The labelled drawings people made: (image path, digit)."""
    with open(USER_DIGITS / "labels.csv", newline="") as table:
        return [(USER_DIGITS / row["file"], int(row["label"])) for row in csv.DictReader(table)]


@pytest.fixture(scope="session")
def cnn_model():
    from handwritten import api

    return api.load("cnn")
