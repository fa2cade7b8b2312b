"""The `handwritten` command: parse arguments, call the library, print results.

Heavy imports (TensorFlow takes seconds) happen inside the commands, so `--help` and argument
errors answer at once. A HandwrittenError is printed as one line and exit status 1: users see
what to fix, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from handwritten import __version__
from handwritten.errors import HandwrittenError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except HandwrittenError as exc:
        print(f"handwritten: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("handwritten: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handwritten", description="Recognise handwritten digits with MNIST-trained models."
    )
    parser.add_argument("--version", action="version", version=f"handwritten {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_gallery(commands)
    _add_serve(commands)
    _add_export(commands)
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
        "--model", help="a shipped model (cnn, seed) or a .keras file (default: cnn)"
    )


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a model on MNIST and save it")
    parser.add_argument(
        "--model", default="seed", help="architecture to train: seed or cnn (default: seed)"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("handwritten.keras"), help="where to save the model"
    )
    parser.add_argument("--epochs", type=_positive_int, help="override the recipe's epochs")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--limit", type=_positive_int, help="train on the first N images only")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    parser.add_argument(
        "--augment",
        metavar="LIST",
        help="augmentations: all, none, or some of styles,rotate,zoom,shear,translate,stroke,"
        "elastic,blur,contrast (default: the recipe's: all but elastic for cnn, none for seed)",
    )
    parser.add_argument(
        "--extra-data",
        type=Path,
        metavar="DIR",
        help="your own labelled digits, DIR/0/*.png ... DIR/9/*.png, mixed into training",
    )
    _add_data_dir(parser)
    parser.set_defaults(run=_train)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="score a model on the MNIST test set")
    _add_model(parser)
    _add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write pictures, tables and an index.html of the results into DIR",
    )
    _add_runtime(parser)
    parser.set_defaults(run=_evaluate)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="read the digit in image files or folders")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    _add_model(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--show", action="store_true", help="show what the model saw")
    parser.add_argument(
        "--number", action="store_true", help="each image holds several digits side by side"
    )
    parser.add_argument(
        "--preview", type=Path, metavar="DIR", help="save a picture of what the model saw"
    )
    _add_runtime(parser)
    parser.set_defaults(run=_predict)


def _add_gallery(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("gallery", help="save a picture of MNIST images and labels")
    parser.add_argument(
        "--split", choices=("train", "test"), default="train", help="(default: train)"
    )
    parser.add_argument(
        "--digit", type=int, choices=range(10), metavar="N", help="only this digit (0-9)"
    )
    parser.add_argument("--count", type=_positive_int, default=40, help="images (default: 40)")
    parser.add_argument(
        "--output", type=_png_file, default=Path("gallery.png"), help="(default: gallery.png)"
    )
    _add_data_dir(parser)
    parser.set_defaults(run=_gallery)


def _add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="serve the drawing page and the JSON API")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, only here)"
    )
    parser.add_argument("--port", type=_port, default=8000, help="(default: 8000)")
    _add_model(parser)
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="processes serving requests (default: 1)"
    )
    parser.set_defaults(run=_serve)


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=("auto", "onnx", "keras"),
        help="onnx: the model's .onnx copy (fast start, no TensorFlow); keras: the .keras file; "
        "auto: onnx when an up-to-date copy exists (default: $HANDWRITTEN_RUNTIME, else auto)",
    )


def _add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write a model's ONNX copy beside it, for fast prediction"
    )
    parser.add_argument(
        "--format", choices=("onnx",), default="onnx", help="(default and only choice: onnx)"
    )
    parser.add_argument(
        "--model",
        action="append",
        help="a shipped model's name or a .keras file; repeat for several "
        "(default: every shipped model)",
    )
    parser.set_defaults(run=_export)


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {text}")
    return value


def _png_file(text: str) -> Path:
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"must be a .png file, not {text}")
    return Path(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _train(args: argparse.Namespace) -> int:
    from handwritten.runtime import import_keras_quietly

    import_keras_quietly()
    from handwritten.augment import parse_augmentations
    from handwritten.data import load_digit_folders
    from handwritten.train import train

    augmentations = parse_augmentations(args.augment) if args.augment else None
    extra = None
    if args.extra_data:
        extra, problems = load_digit_folders(args.extra_data)
        for problem in problems:
            print(f"handwritten: skipped {problem}", file=sys.stderr)
    card = train(
        args.model,
        args.output,
        data_dir=args.data_dir,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        augmentations=augmentations,
        extra=extra,
        force=args.force,
    )
    print(
        f"saved {args.output}: validation accuracy {card['validation']['accuracy']:.4f}, "
        f"test accuracy {card['test']['accuracy']:.4f}, trained in "
        f"{card['training_seconds']:.0f} s"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from handwritten.data import load_mnist
    from handwritten.evaluate import format_report, score
    from handwritten.runtime import load_classifier

    classifier = load_classifier(args.model, args.runtime)
    mnist = load_mnist(args.data_dir)
    probabilities = classifier.probabilities(mnist.x_test)
    result = score(probabilities, mnist.y_test)
    print(json.dumps(result.to_json()) if args.json else format_report(result))
    if args.report:
        from handwritten.report import write_report

        written = write_report(
            args.report,
            result,
            mnist.x_test,
            mnist.y_test,
            probabilities,
            model=str(classifier.path),
        )
        print(f"report: {written[-1]}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from handwritten.predict import predict_files, read_numbers
    from handwritten.runtime import load_classifier

    classifier = load_classifier(args.model, args.runtime)
    if args.number:
        return _print_results(read_numbers(args.paths, classifier), args)
    predictions = predict_files(args.paths, classifier)
    status = _print_results(predictions, args)
    if args.preview or args.show:
        from handwritten import plots

        if args.preview:
            plots.save_previews(predictions, args.preview)
        if args.show:
            plots.show(predictions)
    return status


def _print_results(results: list, args: argparse.Namespace) -> int:
    if not results:
        raise HandwrittenError(f"{' '.join(args.paths)}: no image files found (.png, .jpg, ...).")
    for result in results:
        print(json.dumps(result.to_json()) if args.json else result.describe())
    return 1 if any(r.error for r in results) else 0


def _gallery(args: argparse.Namespace) -> int:
    from handwritten import plots
    from handwritten.data import load_mnist

    mnist = load_mnist(args.data_dir)
    images, labels = (
        (mnist.x_train, mnist.y_train) if args.split == "train" else (mnist.x_test, mnist.y_test)
    )
    figure = plots.gallery_figure(
        images, labels, f"MNIST {args.split} set", digit=args.digit, count=args.count
    )
    plots.save_figure(figure, args.output)
    print(f"saved {args.output}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from handwritten.registry import names
    from handwritten.runtime import export_onnx

    for model in args.model or names():
        print(f"saved {export_onnx(model)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from handwritten.serve import serve

    serve(host=args.host, port=args.port, model=args.model, workers=args.workers)
    return 0
