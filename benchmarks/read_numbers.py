"""How well the product reads the development sets: whole numbers, photos, drawings.

Reads `../shared/numbers` (labels.csv: file,label; labels are strings, leading zeros kept)
through `api.read_numbers`, exactly as `handwritten predict --number` does, and prints how
many are read exactly, each failure (expected and read) and the time per image; then the
single-digit sets `../shared/photos` and `../shared/user-digits` through `api.predict`.

    .venv/bin/python benchmarks/read_numbers.py [--model cnn] [--runtime onnx] [-v]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from handwritten import api

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"


def numbers(classifier: api.Classifier, folder: Path, verbose: bool) -> dict:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as table:
        rows = [(folder / row["file"], row["label"]) for row in csv.DictReader(table)]
    exact, seconds = 0, []
    for path, label in rows:
        started = time.perf_counter()
        (reading,) = api.read_numbers([path], classifier)
        seconds.append(time.perf_counter() - started)
        exact += reading.number == label
        if verbose and reading.number != label:
            print(f"  {path.name}: expected {label}, read {reading.number}")
    return {
        "exact": exact,
        "images": len(rows),
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="(default: the default model)")
    parser.add_argument("--runtime", default=None)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure")
    args = parser.parse_args()
    classifier = api.load(args.model, args.runtime)
    read = numbers(classifier, args.shared / "numbers", args.verbose)
    print(
        f"numbers: {read['exact']}/{read['images']} read exactly; per image median "
        f"{read['median_seconds'] * 1000:.0f} ms, max {read['max_seconds'] * 1000:.0f} ms"
    )
    for name in ("photos", "user-digits"):
        result = api.evaluate_drawings(args.shared / name, classifier)
        print(f"{name}: {result['correct']}/{result['images']} read right")
        if args.verbose:
            for miss in result["wrong"]:
                print(f"  {Path(miss['path']).name}: {miss['label']} read as {miss['read']}")


if __name__ == "__main__":
    main()
