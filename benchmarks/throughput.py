"""Images per second over the 10,000 MNIST test images, for one model on one runtime.

Run in its own process by `run.py`, so the ONNX figure is taken without TensorFlow loaded.
Prints one JSON line: the images per second of each timed pass (after one warm-up pass), the
test accuracy, and which classifier ran.

    .venv/bin/python benchmarks/throughput.py --model seed --runtime onnx --repeats 5
    .venv/bin/python benchmarks/throughput.py --untrained cnn --output /tmp/cnn.keras
"""

from __future__ import annotations

import argparse
import json
import time

from handwritten.data import load_mnist
from handwritten.runtime import load_classifier
from handwritten.trust import digit_probabilities


def main() -> None:
    args = parse_args()
    if args.untrained:
        make_untrained(args.untrained, args.output)
        return
    mnist = load_mnist(args.data_dir)
    classifier = load_classifier(args.model, args.runtime)
    probabilities = classifier.probabilities(mnist.x_test)
    rates = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        classifier.probabilities(mnist.x_test)
        rates.append(len(mnist.x_test) / (time.perf_counter() - started))
    # The best guess among the digits, as the model card scores it: on MNIST every image is one.
    accuracy = float((digit_probabilities(probabilities).argmax(axis=1) == mnist.y_test).mean())
    kind = type(classifier).__name__
    print(json.dumps({"images_per_second": rates, "accuracy": accuracy, "classifier": kind}))


def make_untrained(architecture: str, output: str) -> None:
    """A network with its initial weights, saved and exported: speed does not need training."""
    import keras

    from handwritten.registry import get
    from handwritten.runtime import export_onnx

    keras.utils.set_random_seed(0)
    get(architecture).build().save(output)
    export_onnx(output)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a shipped model's name or a model file")
    parser.add_argument("--runtime", choices=("onnx", "keras"), default="onnx")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir")
    parser.add_argument("--untrained", metavar="ARCH", help="make an untrained model instead")
    parser.add_argument("--output", help="where --untrained saves its .keras file")
    return parser.parse_args()


if __name__ == "__main__":
    main()
