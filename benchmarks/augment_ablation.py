"""Measure what each augmentation is worth: train the CNN without it, compare with all and none.

Short runs (by default 3 epochs on the first 30,000 MNIST images) so the whole table fits in
a coffee break on two cores; the numbers rank the augmentations, they are not the shipped
model's. Scores: MNIST test accuracy and accuracy on the people's drawings in
../shared/user-digits (or --drawings DIR with a labels.csv).

    .venv/bin/python benchmarks/augment_ablation.py --output benchmarks/ablation.json
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from handwritten.augment import AUGMENTATIONS
from handwritten.models import load_classifier
from handwritten.predict import predict_files
from handwritten.train import train

ROOT = Path(__file__).resolve().parents[1]


def drawings_accuracy(model_path: Path, folder: Path) -> float:
    with open(folder / "labels.csv", newline="") as table:
        rows = [(folder / row["file"], int(row["label"])) for row in csv.DictReader(table)]
    results = predict_files([path for path, _ in rows], load_classifier(model_path))
    return sum(r.digit == label for r, (_, label) in zip(results, rows, strict=True)) / len(rows)


def run(name: str, chosen: list[str], args: argparse.Namespace, scratch: Path) -> dict:
    output = scratch / f"{name}.keras"
    card = train(
        "cnn",
        output,
        epochs=args.epochs,
        limit=args.limit,
        augmentations=chosen,
        seed=args.seed,
        verbose=0,
    )
    row = {
        "run": name,
        "augmentations": chosen,
        "mnist_test_accuracy": card["metrics"]["test_accuracy"],
        "drawings_accuracy": drawings_accuracy(output, args.drawings),
        "seconds": card["training_seconds"],
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drawings", type=Path, default=ROOT / "../shared/user-digits")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/ablation.json")
    args = parser.parse_args()
    every = list(AUGMENTATIONS)
    plan = [("all", every), ("none", [])]
    plan += [(f"without {name}", [n for n in every if n != name]) for name in every]
    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(name, chosen, args, Path(scratch)) for name, chosen in plan]
    settings = {"epochs": args.epochs, "limit": args.limit, "seed": args.seed}
    args.output.write_text(json.dumps({"settings": settings, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
