"""Issue #23's targets for the default model, each beside its figure: populations never
trained on, every source's validation writers, the test sets, people's drawings, photos,
numbers and non-digits, the network's cost and its training time.

Nothing here is timed: the training time is the one the model's card records. The figures
come from the same public functions `handwritten evaluate --record` calls, with the
thresholds the card records.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT

SHARED = ROOT.parent / "shared"
NUMBERS_BEFORE = 41
"""Numbers of ../shared/numbers the default model read right before the mixture (the lean's
card at commit 078c5af): "no worse" is measured against it."""
TARGETS = {
    "held_out_read": 0.97,
    "held_out_refused": 0.01,
    "validation_refused": 0.01,
    "user_digits_read": 352,
    "sure": 0.97,
    "sure_accuracy": 0.998,
    "nondigits_refused": 0.90,
    "mnist_test": 0.995,
    "usps_test": 0.975,
    "photos_read": 51,
    "numbers_read": NUMBERS_BEFORE,
    "multiply_adds": 4_000_000,
    "training_seconds": 600,
}


def writers(data: Path) -> dict:
    """The default model's figures for every target of issue #23."""
    from handwritten import api, registry

    classifier = api.load(registry.DEFAULT_MODEL)
    card = classifier.card or {}
    populations = api.score_populations(classifier, api.load_mixture(classifier, data))
    drawings = {
        folder: api.evaluate_drawings(SHARED / folder, classifier)
        for folder in ("user-digits", "photos")
    }
    numbers = api.evaluate_numbers(SHARED / "numbers", classifier)
    nondigits = api.evaluate_nondigits(SHARED / "nondigits", classifier)
    return {
        "model": registry.DEFAULT_MODEL,
        "sources": [
            entry["name"] for entry in card.get("sources") or [] if entry.get("role") == "training"
        ],
        "held_out": [
            entry["name"] for entry in card.get("sources") or [] if entry.get("role") == "held out"
        ],
        "populations": populations,
        "drawings": {
            name: {key: result[key] for key in ("images", "correct", "sure", "sure_accuracy")}
            for name, result in drawings.items()
        },
        "numbers": {key: numbers[key] for key in ("images", "correct")},
        "nondigits": {key: nondigits[key] for key in ("images", "refused")},
        "multiply_adds": card.get("multiply_adds"),
        "training_seconds": card.get("training_seconds"),
    }


def rows(section: dict) -> list[tuple[str, str, str, bool]]:
    """(figure, measured, target, met) for every target, one row per source where the target
    is per source."""
    found: list[tuple[str, str, str, bool]] = []
    populations = section["populations"]
    for name, figures in populations["held_out"].items():
        found += [
            _at_least(f"{name} (never trained on): read", figures["read"], "held_out_read"),
            _at_most(f"{name} (never trained on): refused", figures["refused"], "held_out_refused"),
        ]
    for name, figures in populations["validation"].items():
        found.append(
            _at_most(f"{name} validation: refused", figures["refused"], "validation_refused")
        )
    users, photos = section["drawings"]["user-digits"], section["drawings"]["photos"]
    found += [
        _count("user-digits: read right", users, "user_digits_read"),
        _count("photos: read right", photos, "photos_read"),
    ]
    for name, result in section["drawings"].items():
        found += [
            _at_least(f"{name}: sure answers", result["sure"], "sure"),
            _at_least(
                f"{name}: sure answers right", result["sure_accuracy"] or 0.0, "sure_accuracy"
            ),
        ]
    found.append(_count("numbers: read right", section["numbers"], "numbers_read"))
    found.append(
        _at_least("nondigits: refused", section["nondigits"]["refused"], "nondigits_refused")
    )
    tests = populations["test"]
    found.append(_at_least("MNIST test accuracy", tests["mnist"]["accuracy"], "mnist_test"))
    if "usps" in tests:
        found.append(_at_least("USPS test accuracy", tests["usps"]["accuracy"], "usps_test"))
    adds, seconds = section["multiply_adds"], section["training_seconds"]
    found += [
        (
            "multiply-adds an image",
            f"{adds / 1e6:.2f} M",
            f"<= {TARGETS['multiply_adds'] / 1e6:.0f} M",
            adds <= TARGETS["multiply_adds"],
        ),
        (
            "training from scratch (the card's)",
            f"{seconds:.0f} s",
            f"<= {TARGETS['training_seconds']} s",
            seconds <= TARGETS["training_seconds"],
        ),
    ]
    return found


def _at_least(label: str, value: float, target: str) -> tuple[str, str, str, bool]:
    return label, f"{value:.2%}", f">= {TARGETS[target]:.1%}", value >= TARGETS[target]


def _at_most(label: str, value: float, target: str) -> tuple[str, str, str, bool]:
    return label, f"{value:.2%}", f"<= {TARGETS[target]:.1%}", value <= TARGETS[target]


def _count(label: str, result: dict, target: str) -> tuple[str, str, str, bool]:
    goal = TARGETS[target]
    return (
        label,
        f"{result['correct']} of {result['images']}",
        f">= {goal}",
        result["correct"] >= goal,
    )


def markdown(section: dict) -> str:
    """The section of RESULTS.md: issue #23's targets, each beside its figure."""
    lines = [
        "## Many writers",
        "",
        f"Issue #23's targets for the default model ({section['model']}), trained on "
        f"{', '.join(section['sources']) or 'MNIST'}, never on "
        f"{', '.join(section.get('held_out') or []) or 'any other'}; thresholds as its card "
        "records them. Validation is every training source's validation writers; the test sets "
        "are scored once, never chosen on. The training time is the card's, measured where the "
        "model was trained.",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {label} | {measured} | {target} | {'yes' if met else '**no**'} |"
        for label, measured, target, met in rows(section)
    ]
    return "\n".join(lines)
