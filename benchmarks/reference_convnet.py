"""The official Keras "Simple MNIST convnet" example recipe, the yardstick for the project's CNN.

Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10
softmax; Adam; categorical cross-entropy; batch 128; 15 epochs; validation_split 0.1.

After every epoch the benchmark (not the recipe) scores the MNIST test set and prints
`EPOCH n test_accuracy a monitor_seconds s`, s being the time spent so far on those extra
evaluations, so the runner can leave it out of the time to reach 99%.

    HANDWRITTEN_DATA_DIR=../shared/mnist .venv/bin/python benchmarks/reference_convnet.py 42
"""

import sys
import time

import keras
import numpy as np
from idx import load_mnist


class TestAccuracy(keras.callbacks.Callback):
    """Score the test set at each epoch's end and say so at once on standard output."""

    def __init__(self, x_test: np.ndarray, y_test: np.ndarray) -> None:
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.monitor_seconds = 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        started = time.perf_counter()
        _, accuracy = self.model.evaluate(self.x_test, self.y_test, batch_size=1024, verbose=0)
        self.monitor_seconds += time.perf_counter() - started
        print(
            f"EPOCH {epoch + 1} test_accuracy {accuracy:.4f} "
            f"monitor_seconds {self.monitor_seconds:.3f}",
            flush=True,
        )


def main(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    mnist = load_mnist()
    x_train = np.expand_dims(mnist["x_train"].astype("float32") / 255, -1)
    x_test = np.expand_dims(mnist["x_test"].astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(mnist["y_train"], 10)
    y_test = keras.utils.to_categorical(mnist["y_test"], 10)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=15,
        validation_split=0.1,
        callbacks=[TestAccuracy(x_test, y_test)],
        verbose=2,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 42)
