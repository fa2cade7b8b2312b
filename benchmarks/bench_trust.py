"""Answers you can trust, side by side for every shipped model: calibration, sure answers,
and "not a digit".

Nothing here is timed. For each model: the expected calibration error (ECE) on MNIST's test
set and on people's drawings; the share of people's drawings and photos answered with a sure
`digit`, and how often those are right; the share of them refused as "not a digit"; the
share of people's non-digits refused; and the best guess's MNIST test accuracy. The figures
come from the same public functions `handwritten evaluate` calls, with the thresholds each
model's card records.
"""

from __future__ import annotations

from pathlib import Path

from common import ROOT

SHARED = ROOT.parent / "shared"
DIGIT_SETS = ("user-digits", "photos")
TARGETS = {
    "ece_test": 0.01,
    "ece_drawings": 0.03,
    "sure": 0.97,
    "sure_accuracy": 0.998,
    "refused_digits": 0.01,
    "refused_nondigits": 0.90,
    "test_accuracy": 0.996,
}
"""Issue #13's targets, for the default model."""
LEAN_TARGETS = {
    "multiply_adds": 4_000_000,
    "validation_accuracy": 0.996,
    "test_accuracy": 0.996,
    "user-digits": 0.99,
}
"""Issue #14's targets for the default network; its photos should be read no worse than by
the cnn."""


def trust(data: Path) -> dict:
    """The figures of every shipped model, the default first."""
    from handwritten import registry
    from handwritten.data import load_mnist, split_mnist

    mnist = load_mnist(data)
    split = split_mnist(mnist)
    names = [registry.DEFAULT_MODEL] + [n for n in registry.names() if n != registry.DEFAULT_MODEL]
    models = {n: _model(n, mnist, split) for n in names}
    return {"default": registry.DEFAULT_MODEL, "models": models}


def _model(name: str, mnist, split) -> dict:
    from handwritten import api

    classifier = api.load(name)
    scored = api.evaluate(classifier, mnist).result
    card = classifier.card or {}
    figures: dict = {
        "test_accuracy": scored.accuracy,
        "ece_test": scored.ece,
        "validation_accuracy": (card.get("validation") or {}).get("accuracy"),
        "multiply_adds": card.get("multiply_adds"),
    }
    for folder in DIGIT_SETS:
        result = api.evaluate_drawings(SHARED / folder, classifier)
        figures[folder] = {
            key: result[key] for key in ("images", "accuracy", "sure", "sure_accuracy", "ece")
        } | {"refused": result["answers"]["not-a-digit"] / result["images"]}
    figures["validation"] = _validation_answers(classifier, split)
    nondigits = api.evaluate_nondigits(SHARED / "nondigits", classifier)
    figures["nondigits"] = {k: nondigits[k] for k in ("images", "refused", "refused_by_kind")}
    return figures


def _validation_answers(classifier, split) -> dict:
    """The card's thresholds on MNIST's validation split: how many answers are sure there,
    where digits are cleaner than people's. The sure threshold must keep these 99.8% right
    too, so this share is about as high as the drawings' can go."""
    from handwritten import trust

    probabilities = classifier.probabilities(split.x_val)
    shares = trust.answer_shares(probabilities, split.y_val, trust.thresholds_of(classifier.card))
    return {
        "images": shares["images"],
        "sure": shares["digit"],
        "sure_accuracy": shares["sure_accuracy"],
    }


def markdown(section: dict) -> str:
    """The section of RESULTS.md: one row per figure, one column per model."""
    names = list(section["models"])
    rows = [
        ("MNIST test accuracy (best guess)", "test_accuracy", lambda m: m["test_accuracy"]),
        ("ECE, MNIST test", "ece_test", lambda m: m["ece_test"]),
        ("ECE, user-digits", "ece_drawings", lambda m: m["user-digits"]["ece"]),
    ]
    for folder in DIGIT_SETS:
        rows += [
            (f"{folder}: sure answers", "sure", lambda m, f=folder: m[f]["sure"]),
            (
                f"{folder}: sure answers right",
                "sure_accuracy",
                lambda m, f=folder: m[f]["sure_accuracy"],
            ),
            (
                f"{folder}: refused as not a digit",
                "refused_digits",
                lambda m, f=folder: m[f]["refused"],
            ),
        ]
    rows.append(("nondigits: refused", "refused_nondigits", lambda m: m["nondigits"]["refused"]))
    rows += [
        ("MNIST validation: sure answers", None, lambda m: m["validation"]["sure"]),
        (
            "MNIST validation: sure answers right",
            None,
            lambda m: m["validation"]["sure_accuracy"],
        ),
    ]
    lines = [
        "## Answers you can trust",
        "",
        "Thresholds as each model's card records them; not timed. The target applies to the "
        f"default model ({section['default']}). The last two rows have none: the sure "
        "threshold keeps MNIST's validation digits 99.8% right as well, and the share of "
        "sure answers there is about as high as the share on people's drawings can go.",
        "",
        *_table_head(names),
    ]
    for label, target, pick in rows:
        cells = [_share(pick(section["models"][n])) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_bound(target)} |")
    return "\n".join(lines)


def _bound(target: str | None) -> str:
    if target is None:
        return "none"
    bound = "<=" if target.startswith(("ece", "refused_digits")) else ">="
    return f"{bound} {_share(TARGETS[target])}"


def network_markdown(section: dict) -> str:
    """The default network against issue #14's targets, every model beside it."""
    models = section["models"]
    names = list(models)
    photos = models.get("cnn", {}).get("photos", {}).get("accuracy")
    rows = [
        ("multiply-adds an image", "multiply_adds", lambda m: _count(m.get("multiply_adds"))),
        (
            "MNIST validation accuracy (card)",
            "validation_accuracy",
            lambda m: _share(m.get("validation_accuracy")),
        ),
        ("MNIST test accuracy", "test_accuracy", lambda m: _share(m["test_accuracy"])),
        ("user-digits read right", "user-digits", lambda m: _share(m["user-digits"]["accuracy"])),
    ]
    targets = {
        "multiply_adds": f"<= {_count(LEAN_TARGETS['multiply_adds'])}",
        **{k: f">= {_share(v)}" for k, v in LEAN_TARGETS.items() if k != "multiply_adds"},
    }
    lines = [
        "## The default network",
        "",
        f"Issue #14's targets apply to the default model ({section['default']}); the photos "
        "should be read no worse than by the cnn.",
        "",
        *_table_head(names),
    ]
    for label, key, pick in rows:
        lines.append(
            f"| {label} | " + " | ".join(pick(models[n]) for n in names) + f" | {targets[key]} |"
        )
    cells = [_share(models[n]["photos"]["accuracy"]) for n in names]
    lines.append("| photos read right | " + " | ".join(cells) + f" | >= {_share(photos)} (cnn) |")
    return "\n".join(lines)


def _table_head(names: list[str]) -> list[str]:
    """A figure column, one column per model, then the target."""
    return [
        "| figure | " + " | ".join(names) + " | target |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f} M"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
