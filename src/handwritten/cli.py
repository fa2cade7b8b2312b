"""The `handwritten` command: parse arguments, call the library, print results.

Heavy imports (TensorFlow takes seconds) happen inside the commands, so `--help` and argument
errors answer at once. A HandwrittenError is printed as one line and exit status 1: users see
what to fix, not a traceback. The exit statuses: 0 done, 1 an error (or an image that could
not be read), 2 a wrong argument, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import _thread
import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from handwritten import __version__, registry
from handwritten.errors import HandwrittenError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    ctrl_c = CtrlC()
    try:
        status = args.run(args)
    except HandwrittenError as exc:
        print(f"handwritten: error: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        return ctrl_c.stopped()
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    except Exception:
        # A library interrupted midway may fail its own way (onnxruntime's import says
        # "initialization failed"): after a Ctrl-C, that is the interruption, not a bug.
        if not ctrl_c.pressed:
            raise
        return ctrl_c.stopped()
    ctrl_c.restore()
    return status


class CtrlC:
    """Ctrl-C stops a command in two steps.

    The first raises KeyboardInterrupt, so the command stops where it is and cleans up (a
    `predict --output` keeps every committed row). A second, while that cleanup or a process
    pool's shutdown is still going, ends the process at once with status 130, its pool's
    workers first: nothing is left half-written, as every file is replaced atomically and
    rows are committed whole. Left alone when SIGINT is ignored (a background job) or off
    the main thread.

    Python raises the KeyboardInterrupt wherever the interpreter is when the signal lands. In a
    finaliser or a weakref callback (importlib's module locks have them) it cannot propagate:
    Python prints "Exception ignored" with a traceback, and the command would run on as if
    the key had not been pressed. So such a lost interrupt is caught on its way to
    `sys.unraisablehook` and delivered again, from the main thread's next plain step."""

    def __init__(self) -> None:
        self.pressed = False
        self.previous = signal.getsignal(signal.SIGINT)
        self.previous_hook = sys.unraisablehook
        self.installed = (
            threading.current_thread() is threading.main_thread()
            and self.previous is signal.default_int_handler
        )
        if self.installed:
            signal.signal(signal.SIGINT, self._first)
            sys.unraisablehook = self._redeliver_lost

    def _first(self, signum: int, frame: object) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, self._again)
        raise KeyboardInterrupt

    def _redeliver_lost(self, unraisable: sys.UnraisableHookArgs) -> None:
        lost = isinstance(unraisable.exc_value, KeyboardInterrupt)
        if not lost or threading.current_thread() is not threading.main_thread():
            self.previous_hook(unraisable)
            return
        # It stopped nothing, so the next delivery is a first Ctrl-C again. A real signal, so
        # that it wakes a blocking wait, sent from another thread, which waits for the GIL:
        # sent from here, it would land in this hook, where it would be lost too.
        signal.signal(signal.SIGINT, self._first)
        main = threading.main_thread().ident
        _thread.start_new_thread(signal.pthread_kill, (main, signal.SIGINT))

    @staticmethod
    def _again(signum: int, frame: object) -> None:
        os.write(sys.stderr.fileno(), b"handwritten: interrupted\n")
        if "multiprocessing" in sys.modules:
            for child in sys.modules["multiprocessing"].active_children():
                child.kill()  # Before they read what this process shares with them.
        os._exit(INTERRUPTED)

    def stopped(self) -> int:
        """Say so, and keep the second Ctrl-C's handler: what is left (a pool shutting down
        at exit) must not turn a second Ctrl-C into a traceback or a wait."""
        print("handwritten: interrupted", file=sys.stderr)
        return INTERRUPTED

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
            sys.unraisablehook = self.previous_hook


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handwritten", description="Recognise handwritten digits with MNIST-trained models."
    )
    parser.add_argument("--version", action="version", version=f"handwritten {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_tune(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_gallery(commands)
    _add_serve(commands)
    _add_export(commands)
    _add_models(commands)
    _add_sources(commands)
    _add_synth(commands)
    _add_train_reader(commands)
    _add_fit_chooser(commands)
    return parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=_path,
        help="folder with the four MNIST files (default: $HANDWRITTEN_DATA_DIR, else a cache "
        "folder, downloading into it when empty)",
    )


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=_text,
        help=f"a model's name ({', '.join(registry.names())}) or a .keras or .onnx file "
        f"(default: {registry.DEFAULT_MODEL})",
    )


def _add_reader(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reader",
        type=_text,
        metavar="READER",
        help="what reads whole numbers: a reader's name (crnn) or .keras/.onnx file, or "
        "`none` to find each digit and classify it with --model (default: the shipped "
        "reader, crnn)",
    )


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train a model on its recipe's sources (MNIST and writer collections)"
    )
    parser.add_argument(
        "--model",
        default="seed",
        choices=registry.names(),
        help="the model to train, with its recipe (default: seed)",
    )
    parser.add_argument(
        "--output", type=_path, default=Path("handwritten.keras"), help="where to save the model"
    )
    parser.add_argument("--epochs", type=_positive_int, help="override the recipe's epochs")
    parser.add_argument("--seed", type=_seed, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--limit",
        type=_positive_int,
        help="train on the first N images of each source only, N an epoch",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    parser.add_argument(
        "--augment",
        type=_text,
        metavar="LIST",
        help="augmentations: all, none, or some of styles,rotate,zoom,shear,translate,stroke,"
        "elastic,blur,contrast (default: the recipe's: all but elastic for cnn, none for seed)",
    )
    parser.add_argument(
        "--extra-data",
        type=_path,
        metavar="DIR",
        help="your own labelled digits, DIR/0/*.png ... DIR/9/*.png, mixed into training",
    )
    parser.add_argument(
        "--sources",
        metavar="LIST",
        type=_text,
        help="train on only these of the recipe's sources, comma-separated, to leave some out "
        "(e.g. one whose licence does not suit you); `handwritten sources` lists them "
        "(default: all the recipe's)",
    )
    _add_writers_dir(parser)
    _add_data_dir(parser)
    parser.set_defaults(run=_train)


def _add_tune(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tune", help="fine-tune a model on your own drawings in under a minute"
    )
    parser.add_argument(
        "folder",
        type=_path,
        metavar="DIR",
        help="your labelled drawings, DIR/0/*.png ... DIR/9/*.png (what serve --collect saves)",
    )
    parser.add_argument("--output", type=_path, required=True, help="where to save the model")
    parser.add_argument(
        "--from",
        type=_text,
        dest="source",
        metavar="MODEL",
        help=f"the model to start from: a model's name ({', '.join(registry.names())}) or a "
        f".keras file (default: {registry.DEFAULT_MODEL})",
    )
    parser.add_argument("--steps", type=_positive_int, help="training steps (default: 100)")
    parser.add_argument("--seed", type=_seed, default=42, help="random seed (default: 42)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    _add_data_dir(parser)
    parser.set_defaults(run=_tune)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate", help="score a model on the MNIST test set, or on labelled drawings"
    )
    _add_model(parser)
    _add_data_dir(parser)
    parser.add_argument(
        "--drawings",
        type=_path,
        action="append",
        metavar="DIR",
        help="score on labelled drawings instead (DIR/labels.csv with file,label, or "
        "DIR/0 ... DIR/9); repeat for several",
    )
    parser.add_argument(
        "--numbers",
        type=_path,
        action="append",
        metavar="DIR",
        help="score on photos or drawings of whole numbers instead (DIR/labels.csv with "
        "file,label, the label being the digits); repeat for several",
    )
    parser.add_argument(
        "--nondigits",
        type=_path,
        action="append",
        metavar="DIR",
        help='how many images that are not digits are answered "not a digit" (DIR of images, '
        "or DIR/labels.csv with file,kind); repeat for several",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="with --drawings, --numbers or --nondigits: record the scores in the model's card "
        "(and so in `handwritten models`); with --drawings, first choose the thresholds of "
        "sure and not-a-digit answers on them and on the validation split, and record those",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--report",
        type=_path,
        metavar="DIR",
        help="also write pictures, tables and an index.html of the results into DIR",
    )
    _add_runtime(parser)
    _add_reader(parser)
    parser.set_defaults(run=_evaluate)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="read the digit in image files or folders")
    parser.add_argument(
        "paths", nargs="+", type=_path, metavar="PATH", help="image files or folders"
    )
    _add_model(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--show", action="store_true", help="show what the model saw")
    parser.add_argument(
        "--number",
        action="store_true",
        help="each image (a photo, a scan, a drawing) holds a number written on one line",
    )
    parser.add_argument(
        "--preview",
        type=_path,
        metavar="DIR",
        help="save a picture of what the model saw (with --number: the boxes on the photo)",
    )
    parser.add_argument(
        "--output",
        type=_path,
        metavar="FILE",
        help="write one row per image to FILE (.csv, or .parquet: a folder of parts) as it "
        "goes; a rerun with the same FILE resumes where an interrupted one stopped",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="with --output: run the job on the Ray cluster at ADDRESS (host:port; write "
        "--ray=ADDRESS before the paths, or --ray after them), or on a new local Ray when "
        "none is given; needs `pip install 'handwritten[ray]'`",
    )
    parser.add_argument(
        "--chunk",
        type=_positive_int,
        default=1000,
        metavar="ROWS",
        help="with --output: rows written and committed at a time, the most a rerun after a "
        "kill redoes; with .parquet, rows per part file (default: 1000)",
    )
    _add_runtime(parser)
    _add_reader(parser)
    parser.set_defaults(run=_predict)


def _add_gallery(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("gallery", help="save a picture of MNIST images and labels")
    parser.add_argument(
        "--split", choices=("train", "test"), default="train", help="(default: train)"
    )
    parser.add_argument("--digit", type=_digit, metavar="N", help="only this digit (0-9)")
    parser.add_argument("--count", type=_positive_int, default=40, help="images (default: 40)")
    parser.add_argument(
        "--output", type=_png_file, default=Path("gallery.png"), help="(default: gallery.png)"
    )
    _add_data_dir(parser)
    parser.set_defaults(run=_gallery)


def _add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="serve the drawing page and the JSON API")
    parser.add_argument(
        "--host",
        type=_text,  # An empty host would listen on every interface, not on none.
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, only here)",
    )
    parser.add_argument("--port", type=_port, default=8000, help="(default: 8000)")
    _add_model(parser)
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="processes serving requests (default: 1)"
    )
    _add_runtime(parser)
    parser.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long the requests in flight may take to finish (default: 30)",
    )
    parser.add_argument(
        "--drain",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep serving this long with /api/health/ready answering 503, for a "
        "load balancer that polls it, before the port closes (default: 0)",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="close a connection whose request headers take longer than this to arrive, or "
        "whose body pauses longer than this (default: 60)",
    )
    parser.add_argument(
        "--collect",
        type=_path,
        metavar="DIR",
        help="let people correct a wrong answer on the page, saving their drawings, labelled, "
        "in DIR/<digit>/ for `handwritten tune DIR` (default: no correcting, nothing saved)",
    )
    _add_reader(parser)
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
        type=_text,
        action="append",
        help="a model's name or a .keras file; repeat for several (default: every shipped model "
        "and number reader)",
    )
    parser.set_defaults(run=_export)


def _add_models(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list the models with their cards' figures")
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    parser.set_defaults(run=_models)


def _add_sources(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sources", help="list the collections of handwriting with their licences and checksums"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per source")
    parser.add_argument(
        "--preview",
        type=_path,
        metavar="DIR",
        help="save DIR/<source>.png: each source's digits as the network sees them "
        "(downloads what is missing)",
    )
    _add_writers_dir(parser)
    _add_data_dir(parser)
    parser.set_defaults(run=_sources)


def _add_writers_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--writers-dir",
        type=_path,
        metavar="DIR",
        help="folder with one sub-folder per source, like ../shared/writers (default: "
        "$HANDWRITTEN_WRITERS_DIR, else a cache folder, downloading into it when needed)",
    )


def _add_synth(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "synth", help="compose labelled images of handwritten numbers from real digits"
    )
    parser.add_argument("kind", choices=("numbers",), help="what to make (numbers)")
    parser.add_argument("count", type=_positive_int, metavar="N", help="how many images")
    parser.add_argument(
        "folder", type=_path, metavar="DIR", help="a new or empty folder for the images"
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="random seed: the same seed makes the same images"
    )
    parser.add_argument(
        "--sources",
        metavar="LIST",
        type=_names,
        help="the sources whose training digits to use, comma-separated "
        "(default: all; see `handwritten sources`)",
    )
    _add_writers_dir(parser)
    _add_data_dir(parser)
    parser.set_defaults(run=_synth)


def _add_train_reader(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-reader",
        help="train the number reader (CRNN) on number images composed from real digits",
    )
    parser.add_argument(
        "--output", type=_path, required=True, help="where to save the reader (.keras)"
    )
    parser.add_argument("--seed", type=_seed, default=42, help="random seed (default: 42)")
    parser.add_argument("--steps", type=_positive_int, help="override the recipe's steps")
    parser.add_argument(
        "--images", type=_positive_int, help="override the recipe's number of generated images"
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        help="processes composing the images (default: one per core)",
    )
    parser.add_argument(
        "--sources",
        metavar="LIST",
        type=_names,
        help="the sources whose training digits to compose from, comma-separated (default: all)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    _add_writers_dir(parser)
    _add_data_dir(parser)
    parser.set_defaults(run=_train_reader)


def _add_fit_chooser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fit-chooser",
        help="fit how a number reader chooses between the places a number may be, on "
        "generated images, and keep it in the reader's card",
    )
    parser.add_argument(
        "--reader", type=_path, required=True, help="the reader's .keras file (train-reader's)"
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=42,
        help="the reader's seed: fitted on the generator's images for seed + 2, scored on "
        "seed + 1's (default: 42)",
    )
    parser.add_argument("--images", type=_positive_int, help="images to fit on (default: 1500)")
    parser.add_argument(
        "--checks", type=_positive_int, help="validation images to score on (default: 300)"
    )
    parser.add_argument(
        "--sources",
        metavar="LIST",
        type=_names,
        help="the sources whose training digits to compose from, comma-separated (default: all)",
    )
    _add_writers_dir(parser)
    _add_data_dir(parser)
    parser.set_defaults(run=_fit_chooser)


def _names(text: str) -> list[str]:
    from handwritten import sources
    from handwritten.mixture import parse_sources

    chosen = parse_sources(text)
    unknown = [name for name in chosen if name not in sources.names()]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown source {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(sources.names())}"
        )
    return chosen


# Argument types: argparse shows their message, so each says in words what it wants (a
# ValueError would show the function's name instead: "invalid _positive_int value").


def _port(text: str) -> int:
    value = _whole_number(text, "a port number from 1 to 65535")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {text}")
    return value


def _png_file(text: str) -> Path:
    if Path(text).suffix.lower() != ".png":  # Not text.endswith: ".png" alone is a name.
        raise argparse.ArgumentTypeError(f"must be a .png file, not {text!r}")
    return Path(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = _whole_number(text, "a whole number above 0")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text}")
    return value


SEEDS = 2**32
"""Seeds NumPy, TensorFlow and Python's random all take: 0 to 2**32 - 1."""


def _seed(text: str) -> int:
    value = _whole_number(text, f"a whole number from 0 to {SEEDS - 1}")
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {SEEDS - 1}, not {text}"
        )
    return value


def _digit(text: str) -> int:
    if text.strip() not in [str(digit) for digit in range(10)]:
        raise argparse.ArgumentTypeError(f"must be a digit from 0 to 9, not {text!r}")
    return int(text)


def _whole_number(text: str, wanted: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}") from None


def _path(text: str) -> Path:
    """A file or folder name; an empty one is refused, as Path("") would mean this folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a file or folder name, not {text!r}")
    return Path(text)


def _text(text: str) -> str:
    """A name or a list (a model, augmentations): empty would silently mean the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, not {text!r}")
    return text


def _train(args: argparse.Namespace) -> int:
    from handwritten import api

    api.check_new_model(args.output, args.force)
    from handwritten.augment import parse_augmentations
    from handwritten.data import load_digit_folders
    from handwritten.mixture import parse_sources

    augmentations = None if args.augment is None else parse_augmentations(args.augment)
    extra = None
    if args.extra_data:
        extra, problems = load_digit_folders(args.extra_data)
        for problem in problems:
            print(f"handwritten: skipped {problem}", file=sys.stderr)
    card = api.train(
        args.model,
        args.output,
        data_dir=args.data_dir,
        writers_dir=args.writers_dir,
        sources=parse_sources(args.sources) if args.sources is not None else None,
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


def _tune(args: argparse.Namespace) -> int:
    from handwritten import api

    steps = {"steps": args.steps} if args.steps else {}
    card = api.tune(
        args.folder,
        args.output,
        source=args.source,
        data_dir=args.data_dir,
        seed=args.seed,
        force=args.force,
        **steps,
    )
    print(
        f"saved {args.output}: tuned on {card['tuning']['drawings']} drawings in "
        f"{card['training_seconds']:.0f} s; MNIST validation accuracy "
        f"{card['validation_before']['accuracy']:.4f} -> {card['validation']['accuracy']:.4f}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from handwritten import api
    from handwritten.data import load_mnist
    from handwritten.evaluate import format_report

    if args.drawings or args.numbers or args.nondigits:
        if args.report:
            raise HandwrittenError(
                "--report draws MNIST's test set; with --drawings, --numbers or --nondigits "
                "there is no report to write: leave out --report (--json gives every figure)."
            )
        return _evaluate_labelled(args, api.load(args.model, args.runtime))
    if args.record:
        raise HandwrittenError(
            "--record keeps scores on --drawings, --numbers or --nondigits in the model's "
            "card (its MNIST test figures are recorded when it is trained): add one of those "
            "options, or leave out --record."
        )
    mnist = load_mnist(args.data_dir)  # A broken MNIST file is named before a model loads.
    classifier = api.load(args.model, args.runtime)
    scored = api.evaluate(classifier, mnist)
    print(json.dumps(scored.result.to_json()) if args.json else format_report(scored.result))
    if args.report:
        from handwritten.report import write_report

        written = write_report(
            args.report,
            scored.result,
            scored.images,
            scored.labels,
            scored.probabilities,
            model=str(classifier.path),
        )
        print(f"report: {written[-1]}", file=sys.stderr)
    return 0


def _evaluate_labelled(args: argparse.Namespace, classifier) -> int:
    from handwritten import api

    thresholds = mix = None
    if args.record and args.drawings:
        mix = api.load_mixture(classifier, args.data_dir)
        thresholds = api.choose_trust(classifier, args.drawings, mix=mix)
        classifier.card = {**(classifier.card or {}), "trust": thresholds}
    results = [api.evaluate_drawings(folder, classifier) for folder in args.drawings or ()]
    if args.numbers:
        reader = api.load_reader(args.reader)
        results += [api.evaluate_numbers(folder, classifier, reader) for folder in args.numbers]
    results += [api.evaluate_nondigits(folder, classifier) for folder in args.nondigits or ()]
    for result in results:
        print(json.dumps(result) if args.json else _labelled_summary(result))
    if args.record:
        recorded = api.record_development(args.model, results, thresholds)
        print(f"recorded in {recorded}", file=sys.stderr)
    if mix is not None:
        populations = api.score_populations(classifier, mix)
        print(_populations_summary(populations))
        api.record_populations(args.model, populations)
    return 0


def _populations_summary(populations: dict) -> str:
    """One line per source and group: read and refused, with the thresholds just chosen."""
    lines = []
    for group in ("validation", "held_out", "test"):
        for name, figures in populations[group].items():
            if figures.get("images"):
                lines.append(
                    f"{group} {name}: {figures['read']:.2%} of {figures['images']} read, "
                    f"{figures['refused']:.2%} refused"
                )
    return "\n".join(lines)


def _labelled_summary(result: dict) -> str:
    """A few lines for one labelled folder: what was read right, and every miss."""
    if "refused" in result:
        lines = [f"{result['folder']}: {result['refused']:.1%} of {result['images']} refused"]
        lines += [
            _one_line(f"  {seen['path']}: read as {seen['read']} ({seen['confidence']:.1%})")
            for seen in result["still_read_as_digit"]
        ]
        return "\n".join(lines)
    line = f"{result['folder']}: {result['correct']} of {result['images']} read right"
    if "cer" in result:
        line += f" ({result['accuracy']:.1%} exact); character error rate {result['cer']:.1%}"
    if result.get("left_out", {}).get("rows"):
        left_out = result["left_out"]
        line += (
            f"; left out {left_out['rows']} rows whose labels are more than digits "
            f"(such as {', '.join(left_out['examples'])})"
        )
    if "sure" in result:
        right = result["sure_accuracy"]
        line += f"; {result['sure']:.1%} sure" + (f", {right:.1%} of those right" if right else "")
    misses = [
        _one_line(f"  {m['path']}: {m['label']} read as {m['read']}") for m in result["wrong"]
    ]
    return "\n".join([line, *misses])


CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in [*range(32), 127]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def _one_line(text: str) -> str:
    """A line of text output with control characters escaped as Python writes them: a file
    name holding a newline must not break the one-line-per-image output in two. A name's
    bytes that are not UTF-8 are escaped too, as a UTF-8 terminal would refuse them."""
    escaped = text.translate(CONTROL_CHARACTERS)
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")


def _predict(args: argparse.Namespace) -> int:
    from handwritten import api

    if args.output or args.ray is not None:
        return _predict_to_file(args)
    classifier = api.load(args.model, args.runtime)
    reader = api.load_reader(args.reader) if args.number else None
    results = api.read_many(args.paths, classifier, number=args.number, reader=reader)
    status, predictions = _print_results(results, args, keep=bool(args.preview or args.show))
    if args.preview or args.show:
        from handwritten import plots

        if args.preview:
            plots.save_previews(predictions, args.preview)
        if args.show:
            plots.show(predictions)
    return status


def _print_results(results: Iterable, args: argparse.Namespace, keep: bool) -> tuple[int, list]:
    """Print each result as it comes (through tqdm, so a progress bar stays intact); the
    exit status, and the results themselves only when `keep` (previews need their images)."""
    from tqdm import tqdm

    kept, count, failed = [], 0, False
    for result in results:
        tqdm.write(json.dumps(result.to_json()) if args.json else _one_line(result.describe()))
        count, failed = count + 1, failed or bool(result.error)
        if keep:
            kept.append(result)
    if not count:
        raise HandwrittenError(
            f"{' '.join(map(str, args.paths))}: no image files found (.png, .jpg, ...)."
        )
    return (1 if failed else 0), kept


def _predict_to_file(args: argparse.Namespace) -> int:
    from handwritten import api

    if args.output is None:
        raise HandwrittenError("--ray writes its rows to a file: add --output results.csv.")
    if args.json or args.preview or args.show:
        raise HandwrittenError(
            "--output writes rows to a file; --json, --preview and --show print or draw "
            "them instead: leave those out, or leave out --output."
        )
    api.check_output(args.output)  # A wrong suffix is named before a model loads.
    classifier = api.load(args.model, args.runtime)
    reader = api.load_reader(args.reader) if args.number else None
    done = api.write_results(
        args.paths,
        classifier,
        args.output,
        number=args.number,
        ray=args.ray,
        chunk=args.chunk,
        reader=reader,
    )
    print(
        f"{done.output}: {done.written} rows written, {done.skipped} already there; "
        f"{done.errors} files could not be read",
        file=sys.stderr,
    )
    return 1 if done.errors else 0


def _gallery(args: argparse.Namespace) -> int:
    from handwritten import api

    saved = api.gallery(args.output, args.split, args.digit, args.count, args.data_dir)
    print(f"saved {saved}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from handwritten import api

    shipped_readers = [n for n in registry.READERS if registry.shipped_reader_path(n).is_file()]
    for model in args.model or [*registry.names(), *shipped_readers]:
        print(f"saved {api.export(model)}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from handwritten import api

    rows = [info.headline() for info in api.models()]
    readers = api.readers()
    if args.json:
        for row in [*rows, *readers]:
            print(json.dumps(row))
        return 0
    print(_models_table(rows))
    for reader in readers:
        print(_reader_line(reader))
    return 0


def _reader_line(reader: dict) -> str:
    """The number reader under the digit models: its file and its validation figures."""
    if not reader["shipped"]:
        return f"number reader {reader['name']}: {reader['file']} (missing)"
    validation = reader["validation"] or {}
    return (
        f"number reader {reader['name']} (default for --number): {reader['file']}; "
        f"{validation.get('exact_rate', 0):.1%} of {validation.get('what', 'its validation')} "
        f"read exactly, character error rate {validation.get('cer', 0):.1%}; sources "
        f"{','.join(reader['sources']) or '-'}"
    )


def _sources(args: argparse.Namespace) -> int:
    from handwritten import api

    if args.preview is not None:
        for path in api.preview_sources(
            args.preview, writers_dir=args.writers_dir, mnist_dir=args.data_dir
        ):
            print(f"saved {path}")
        return 0
    rows = api.list_sources(writers_dir=args.writers_dir, mnist_dir=args.data_dir)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(_sources_table(rows))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from handwritten import api

    made = api.synth_numbers(
        args.count,
        args.folder,
        seed=args.seed,
        names=args.sources,
        writers_dir=args.writers_dir,
        mnist_dir=args.data_dir,
    )
    print(f"saved {made.images} images and {made.labels}")
    return 0


def _train_reader(args: argparse.Namespace) -> int:
    from handwritten import api

    def progress(step: int, loss: float) -> None:
        print(f"step {step}: loss {loss:.3f}", file=sys.stderr, flush=True)

    card = api.train_reader(
        args.output,
        seed=args.seed,
        names=args.sources,
        writers_dir=args.writers_dir,
        mnist_dir=args.data_dir,
        steps=args.steps,
        images=args.images,
        workers=args.workers,
        force=args.force,
        progress=progress,
    )
    validation = card["validation"]
    print(
        f"saved {args.output}: {validation['exact']}/{validation['images']} generated "
        f"validation numbers read exactly, CER {validation['cer']:.1%}, "
        f"in {card['training_seconds']:.0f} s"
    )
    return 0


def _fit_chooser(args: argparse.Namespace) -> int:
    from handwritten import api

    chooser = api.fit_chooser(
        args.reader,
        seed=args.seed,
        images=args.images or api.CHOOSER_IMAGES,
        checks=args.checks or api.CHOOSER_CHECKS,
        names=args.sources,
        writers_dir=args.writers_dir,
        mnist_dir=args.data_dir,
    )
    checked = chooser["validation"]
    print(
        f"kept in {args.reader}'s card: of {checked['images']} generated validation numbers, "
        f"{checked['chooser']} read right by the chosen proposal ({checked['product_rule']} "
        f"without the chooser; {checked['among_proposals']} among the proposals)"
    )
    return 0


def _sources_table(rows: list[dict]) -> str:
    """One line per source: what `handwritten sources` shows."""
    header = ("source", "digits", "others", "writers", "how written", "licence", "checksums")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["name"],
                f"{row['digits']:,}",
                f"{row['others']:,}",
                _figure(row["writers"], "{:,}"),
                row["how_written"],
                row["licence"],
                row["checksums"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    notes = [
        f"{row['name']}: {row['licence_note']}" for row in rows if "unclear" in row["licence_note"]
    ]
    return "\n".join([table, *notes])


def _models_table(rows: list[dict]) -> str:
    """One line per model: what `handwritten models` shows."""
    header = (
        "model",
        "file",
        "params",
        "MMACs",
        "val acc",
        "test acc",
        "onnx img/s",
        "sources",
        "drawings",
    )
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["name"] + (" (default)" if row["default"] else ""),
                row["file"] if row["shipped"] else f"{row['file']} (missing)",
                _figure(row["parameters"], "{:,}"),
                _figure(row["multiply_adds"] and row["multiply_adds"] / 1e6, "{:.2f}"),
                _figure(row["validation_accuracy"], "{:.2%}"),
                _figure(row["test_accuracy"], "{:.2%}"),
                _figure(row["onnx_images_per_second"], "{:,.0f}"),
                ",".join(row["sources"]) or "-",
                ", ".join(f"{name} {score}" for name, score in row["drawings"].items()) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        + "  "
        + line[-1]
        for line in lines
    )


def _figure(value: float | int | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def _serve(args: argparse.Namespace) -> int:
    from handwritten.serve import serve

    serve(
        host=args.host,
        port=args.port,
        model=args.model,
        workers=args.workers,
        runtime=args.runtime,
        grace=args.grace,
        drain=args.drain,
        collect=args.collect,
        read_timeout=args.read_timeout,
        number_reader=args.reader,
    )
    return 0
