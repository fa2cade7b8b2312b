"""MNIST as one source among the others: `data.py` finds, downloads and verifies it.

Its images are MNIST's own 28x28 normalisation, the one the project's normaliser rebuilds,
so they are used as they are. No writer ids are published; the test set's writers are not
the training set's.
"""

from __future__ import annotations

import os

import numpy as np

from handwritten import data
from handwritten.sources._core import Samples, Source

SOURCE = Source(
    name="mnist",
    title="MNIST handwritten digits",
    creators="Y. LeCun, C. Cortes and C. J. C. Burges, from NIST's Special Databases 1 and 3",
    licence="CC BY-SA 3.0",
    licence_note="as Yann LeCun's page and TensorFlow Datasets give it",
    homepage="http://yann.lecun.com/exdb/mnist/",
    how_written="paper forms: 28x28 grey scans",
    writers_note="about 500 writers per set, US Census Bureau staff and high-school students",
    files=data.data_checksums(),
    kind="scans",
    digits=70000,
    downloads={name: f"{data.MIRRORS[0]}{name}.gz" for name in data.IDX_FILES.values()},
)


def load(data_dir: str | os.PathLike[str] | None = None) -> Samples:
    """MNIST's training then test images, as `data.load_mnist` finds them."""
    mnist = data.load_mnist(data_dir)
    labels = np.concatenate([mnist.y_train, mnist.y_test]).astype(np.int64)
    return Samples(
        source=SOURCE.name,
        images=np.concatenate([mnist.x_train, mnist.x_test]),
        labels=labels,
        chars=labels.astype(str),
        writers=np.full(len(labels), "", dtype=str),
        split=np.array(["train"] * len(mnist.y_train) + ["test"] * len(mnist.y_test)),
    )
