"""How well the product reads the development sets: whole numbers, photos, drawings.

Reads `../shared/numbers` (labels.csv: file,label; labels are strings, leading zeros kept)
through `api.read_numbers`, exactly as `handwritten predict --number` does (with the shipped
number reader unless `--reader none`), and prints how many are read exactly, the character
error rate, each failure (expected and read) and the time per image; the same two rates on
the register cells of `../shared/registers` (validation only; rows labelled with more than
digits left out, as `evaluate --numbers` does) and on the generator's validation images (200
composed by `api.synth_numbers` with seed 2024 from the writers in `../shared/writers`),
beside how many of those have every digit read right by the cnn alone (`api.digits_alone`);
then the single-digit sets `../shared/photos` and `../shared/user-digits`.

    .venv/bin/python benchmarks/read_numbers.py [--model cnn] [--reader none] [-v]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from handwritten import api
from handwritten.evaluate import character_error_rate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"


def numbers(
    classifier: api.Classifier, reader: api.Reader | None, folder: Path, verbose: bool
) -> dict:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as table:
        rows = [(folder / row["file"], row["label"]) for row in csv.DictReader(table)]
    rows = [(path, label) for path, label in rows if label.isdigit()]
    exact, seconds, read = 0, [], []
    for path, label in rows:
        started = time.perf_counter()
        (reading,) = api.read_numbers([path], classifier, reader)
        seconds.append(time.perf_counter() - started)
        exact += reading.number == label
        read.append(reading.number)
        if verbose and reading.number != label:
            print(f"  {path.name}: expected {label}, read {reading.number}")
    return {
        "exact": exact,
        "images": len(rows),
        "cer": character_error_rate(read, [label for _, label in rows]),
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
    }


SYNTH_SEED = 2024


def synthetic(
    classifier: api.Classifier, reader: api.Reader | None, shared: Path, count: int = 200
) -> dict:
    """The generator's validation images, made afresh (the same every run) and scored;
    composed from `shared`'s writers and MNIST unless the environment names others."""
    os.environ.setdefault("HANDWRITTEN_WRITERS_DIR", str(shared / "writers"))
    os.environ.setdefault("HANDWRITTEN_DATA_DIR", str(shared / "mnist"))
    with tempfile.TemporaryDirectory() as folder:
        made = api.synth_numbers(count, Path(folder) / "numbers", seed=SYNTH_SEED)
        return api.evaluate_numbers(made.folder, classifier, reader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="(default: the default model)")
    parser.add_argument("--runtime", default=None)
    parser.add_argument("--reader", default=None, help="(default: the shipped reader)")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure")
    args = parser.parse_args()
    classifier = api.load(args.model, args.runtime)
    reader = api.load_reader(args.reader)
    print(f"numbers read by: {reader.path.name if reader else 'each digit, --model'}")
    for name in ("numbers", "registers"):
        read = numbers(classifier, reader, args.shared / name, args.verbose)
        print(
            f"{name}: {read['exact']}/{read['images']} read exactly; per image median "
            f"{read['median_seconds'] * 1000:.0f} ms, max {read['max_seconds'] * 1000:.0f} ms"
        )
        print(f"{name}: character error rate {read['cer']:.1%}")
    generated = synthetic(classifier, reader, args.shared)
    print(
        f"generated numbers (200, seed {SYNTH_SEED}): {generated['correct']}/"
        f"{generated['images']} read exactly; character error rate {generated['cer']:.1%}"
    )
    alone = api.digits_alone(api.load("cnn"), generated["images"], SYNTH_SEED)
    print(
        f"generated numbers (200, seed {SYNTH_SEED}): {alone['every_digit_read']}/"
        f"{alone['images']} with every digit read right alone by the cnn "
        f"({alone['digits_read']}/{alone['digits']} digits): the ceiling of the 98% target"
    )
    for name in ("photos", "user-digits"):
        result = api.evaluate_drawings(args.shared / name, classifier)
        print(f"{name}: {result['correct']}/{result['images']} read right")
        if args.verbose:
            for miss in result["wrong"]:
                print(f"  {Path(miss['path']).name}: {miss['label']} read as {miss['read']}")


if __name__ == "__main__":
    main()
