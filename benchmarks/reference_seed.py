"""The original tutorial's recipe in plain Keras: the yardstick for `train --model seed`.

Flatten, Dense 128 relu, Dense 128 relu, Dense 10 softmax; Adam; sparse categorical
cross-entropy; pixels / 255; 3 epochs of batch 32; then the test accuracy. Prints one line,
`RESULT {"test_accuracy": ..., "fit_seconds": ...}`.

    HANDWRITTEN_DATA_DIR=../shared/mnist .venv/bin/python benchmarks/reference_seed.py 42
"""

import json
import sys
import time

import keras
from idx import load_mnist


def main(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    mnist = load_mnist()
    x_train, x_test = mnist["x_train"] / 255.0, mnist["x_test"] / 255.0
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, mnist["y_train"], epochs=3, batch_size=32, verbose=2)
    fit_seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(x_test, mnist["y_test"], verbose=0)
    print("RESULT", json.dumps({"test_accuracy": accuracy, "fit_seconds": fit_seconds}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 42)
