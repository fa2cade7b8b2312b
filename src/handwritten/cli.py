"""The `handwritten` command: parse arguments, call the library, print results.

Heavy imports (TensorFlow takes seconds) happen inside the commands, so `--help` and argument
errors answer at once. A HandwrittenError is printed as one line and exit status 1: users see
what to fix, not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from handwritten import __version__
from handwritten.errors import HandwrittenError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _native_stderr_silenced():
            import keras  # noqa: F401  (TensorFlow's native start-up chatter goes here)
        return args.run(args)
    except HandwrittenError as exc:
        print(f"handwritten: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("handwritten: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ core prints to file descriptor 2 while it loads.

    TF_CPP_MIN_LOG_LEVEL no longer reaches the oneDNN notice that absl logs before it is
    initialised; Python-level errors still surface as exceptions.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handwritten", description="Recognise handwritten digits with MNIST-trained models."
    )
    parser.add_argument("--version", action="version", version=f"handwritten {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    return parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the four MNIST files (default: $HANDWRITTEN_DATA_DIR, else a cache "
        "folder, downloading into it when empty)",
    )


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="a shipped model's name (seed) or a .keras file (default: seed)"
    )


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a model on MNIST and save it")
    parser.add_argument("--model", default="seed", help="architecture to train (default: seed)")
    parser.add_argument(
        "--output", type=Path, default=Path("handwritten.keras"), help="where to save the model"
    )
    parser.add_argument("--epochs", type=_positive_int, help="override the recipe's epochs")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--limit", type=_positive_int, help="train on the first N images only")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    _add_data_dir(parser)
    parser.set_defaults(run=_train)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="score a model on the MNIST test set")
    _add_model(parser)
    _add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=_evaluate)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="read the digit in image files or folders")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    _add_model(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--show", action="store_true", help="show what the model saw")
    parser.add_argument(
        "--preview", type=Path, metavar="DIR", help="save a picture of what the model saw"
    )
    parser.set_defaults(run=_predict)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _train(args: argparse.Namespace) -> int:
    from handwritten.train import train

    card = train(
        args.model,
        args.output,
        data_dir=args.data_dir,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        force=args.force,
    )
    metrics = card["metrics"]
    print(
        f"saved {args.output}: test accuracy {metrics['test_accuracy']:.4f}, "
        f"loss {metrics['test_loss']:.4f}, trained in {card['training_seconds']:.0f} s"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from handwritten.data import load_mnist
    from handwritten.evaluate import evaluate_model, format_report
    from handwritten.models import load_classifier

    classifier = load_classifier(args.model)
    mnist = load_mnist(args.data_dir)
    result = evaluate_model(classifier, mnist.x_test, mnist.y_test)
    print(json.dumps(result.to_json()) if args.json else format_report(result))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from handwritten.models import load_classifier
    from handwritten.predict import predict_files

    predictions = predict_files(args.paths, load_classifier(args.model))
    if not predictions:
        raise HandwrittenError(f"{' '.join(args.paths)}: no image files found (.png, .jpg, ...).")
    for prediction in predictions:
        print(json.dumps(prediction.to_json()) if args.json else prediction.describe())
    if args.preview or args.show:
        from handwritten import plots

        if args.preview:
            plots.save_previews(predictions, args.preview)
        if args.show:
            plots.show(predictions)
    return 1 if any(p.error for p in predictions) else 0
