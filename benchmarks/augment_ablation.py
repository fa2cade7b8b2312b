"""Measure what each augmentation is worth: the CNN recipe without it, against the whole recipe.

Every run is the full recipe (15 epochs on all 60,000 images, seed 42) but for its
augmentations: the recipe's own, none, each of the recipe's left out in turn, and the one the
recipe leaves out (elastic) added. About an hour on two cores; --epochs and --limit make a
quicker, rougher table. Scores: MNIST test accuracy and accuracy on the people's drawings in
../shared/user-digits (or --drawings DIR with a labels.csv). One seed per run: differences of
a few hundredths of a point on MNIST, or one drawing, are within the noise.

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
from handwritten.train import RECIPES, train

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
    parser.add_argument("--epochs", type=int, help="(default: the recipe's)")
    parser.add_argument("--limit", type=int, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drawings", type=Path, default=ROOT / "../shared/user-digits")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/ablation.json")
    args = parser.parse_args()
    recipe = list(RECIPES["cnn"].augmentations)
    plan = [("recipe", recipe), ("none", [])]
    plan += [(f"without {name}", [n for n in recipe if n != name]) for name in recipe]
    plan += [(f"with {name}", [*recipe, name]) for name in AUGMENTATIONS if name not in recipe]
    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(name, chosen, args, Path(scratch)) for name, chosen in plan]
    settings = {"epochs": args.epochs, "limit": args.limit, "seed": args.seed}
    args.output.write_text(json.dumps({"settings": settings, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
