"""A tiny MNIST reader for the reference scripts, which must not depend on the package.

Reads the four IDX files (plain or .gz) from $HANDWRITTEN_DATA_DIR with numpy alone, as any
plain Keras tutorial would after downloading MNIST.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def load_mnist(folder: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The four MNIST arrays by name: uint8 images (n, 28, 28) and uint8 labels (n,)."""
    root = Path(folder or os.environ["HANDWRITTEN_DATA_DIR"])
    return {name: read_idx(root, stem) for name, stem in FILES.items()}


def read_idx(root: Path, stem: str) -> np.ndarray:
    plain, packed = root / stem, root / f"{stem}.gz"
    payload = plain.read_bytes() if plain.exists() else gzip.decompress(packed.read_bytes())
    dimensions = payload[3]
    shape = [int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions)]
    return np.frombuffer(payload, np.uint8, offset=4 + 4 * dimensions).reshape(shape)
