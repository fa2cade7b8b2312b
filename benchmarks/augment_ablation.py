"""Measure what each augmentation is worth: the CNN recipe without it, against the whole recipe.

Every run is the full recipe (15 epochs on the 55,000 training images, seed 42) but for its
augmentations: the recipe's own, none, each of the recipe's left out in turn, and the one the
recipe leaves out (elastic) added. Several hours on two cores; --epochs and --limit make a
quicker, rougher table. Scores, the ones choices are made on: accuracy on the 5,000 MNIST
validation images and on the development drawings and photos in ../shared (--drawings DIR,
repeatable, each with a labels.csv). The MNIST test set is not looked at. One seed per run:
differences of a few hundredths of a point on MNIST, or one drawing, are within the noise.

    .venv/bin/python benchmarks/augment_ablation.py --output benchmarks/ablation.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from handwritten import api, registry
from handwritten.augment import AUGMENTATIONS

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT = [ROOT / "../shared/user-digits", ROOT / "../shared/photos"]


def run(name: str, chosen: list[str], args: argparse.Namespace, scratch: Path) -> dict:
    output = scratch / f"{name}.keras"
    card = api.train(
        "cnn",
        output,
        epochs=args.epochs,
        limit=args.limit,
        augmentations=chosen,
        seed=args.seed,
        verbose=0,
    )
    classifier = api.load(output, "keras")
    row = {
        "run": name,
        "augmentations": chosen,
        "validation_accuracy": card["validation"]["accuracy"],
        **{
            folder.name: api.evaluate_drawings(folder, classifier)["correct"]
            for folder in args.drawings
        },
        "seconds": card["training_seconds"],
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="(default: the recipe's)")
    parser.add_argument("--limit", type=int, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drawings", type=Path, action="append", help="(default: ../shared's)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/ablation.json")
    args = parser.parse_args()
    args.drawings = args.drawings or DEVELOPMENT
    recipe = list(registry.get("cnn").recipe.augmentations)
    plan = [("recipe", recipe), ("none", [])]
    plan += [(f"without {name}", [n for n in recipe if n != name]) for name in recipe]
    plan += [(f"with {name}", [*recipe, name]) for name in AUGMENTATIONS if name not in recipe]
    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(name, chosen, args, Path(scratch)) for name, chosen in plan]
    settings = {"epochs": args.epochs, "limit": args.limit, "seed": args.seed}
    args.output.write_text(json.dumps({"settings": settings, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
