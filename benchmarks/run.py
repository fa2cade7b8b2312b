"""Run every benchmark and write benchmarks/RESULTS.md and benchmarks/results.json.

    make bench                 # quick: all but the race to 99% and tune (about 10 minutes)
    make bench BENCH=full      # adds them, and more repeats (about an hour and a half)
    .venv/bin/python benchmarks/run.py --mode quick --only predict,serve
    .venv/bin/python benchmarks/run.py --mode quick --only race,tune   # once each

Figures are medians of several runs in fresh processes; each comparison runs both sides in
the same session, alternating, and reports their ratio. On a machine shared with other work
the absolute figures move with the load (RESULTS.md records it); the ratios move less. A
section not measured in this run (the race and tune, in quick mode) keeps its last figures, stamped
with the date, commit and mode they were measured in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from common import BENCHMARKS, data_dir, finished, setting, stamp

from handwritten import files

SECTIONS = ("train", "race", "predict", "serve", "numbers", "bulk", "trust", "writers", "tune")
FULL_ONLY = ("race", "tune")
"""Sections too long for quick mode (an hour of training, some minutes of tuning)."""


@dataclass(frozen=True)
class Mode:
    """How many times each figure is measured, and whether the long sections run unasked."""

    train_repeats: int
    race_repeats: int
    long_sections: bool
    cold_repeats: int
    bulk_repeats: int
    folder_repeats: int
    serve_repeats: int
    serve_requests: int
    numbers_repeats: int


MODES = {
    "quick": Mode(3, 1, False, 5, 5, 3, 3, 1000, 3),
    "full": Mode(3, 3, True, 9, 7, 5, 3, 2000, 5),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES[args.mode]
    data = data_dir()
    for section in args.only:
        print(f"benchmark: {section} ...", file=sys.stderr, flush=True)
        started = stamp(args.mode, asdict(mode))
        figures = RUNNERS[section](mode, data)
        write_section(args.output, section, {"measured": finished(started), **figures})
    print(f"wrote {args.output / 'RESULTS.md'} and results.json", file=sys.stderr)
    return 0


def write_section(folder: Path, name: str, figures: dict) -> None:
    """Put one section into both files as soon as it is measured, so a long run that fails
    late keeps what it measured. The other sections are read from the file at that moment,
    not when the run started: they stay as last measured (each says when and how), even when
    another run wrote one of them meanwhile."""
    previous = folder / "results.json"
    sections = json.loads(previous.read_text())["sections"] if previous.is_file() else {}
    results = {**setting(), "sections": {**sections, name: figures}}
    files.write_json(previous, results)
    files.write_text(folder / "RESULTS.md", markdown(results))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default=os.environ.get("BENCH") or "quick")
    parser.add_argument(
        "--only", help="comma-separated sections to measure (default: all the mode runs)"
    )
    parser.add_argument("--output", type=Path, default=BENCHMARKS, help="folder for the results")
    args = parser.parse_args(argv)
    asked = args.only is not None
    args.only = [s for s in (args.only or ",".join(SECTIONS)).split(",") if s]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if not asked and not MODES[args.mode].long_sections:
        args.only = [section for section in args.only if section not in FULL_ONLY]
    return args


def _train(mode: Mode, data: Path) -> dict:
    from bench_train import seed_training

    return {"seed": seed_training(mode.train_repeats, data)}


def _race(mode: Mode, data: Path) -> dict:
    from bench_train import race_to_99

    return race_to_99(mode.race_repeats, data)


def _predict(mode: Mode, data: Path) -> dict:
    import bench_predict

    return {
        "cold_start": bench_predict.cold_start(mode.cold_repeats),
        "bulk": bench_predict.bulk_throughput(mode.bulk_repeats, data),
        "folder": bench_predict.folder_throughput(mode.folder_repeats, data),
    }


def _serve(mode: Mode, data: Path) -> dict:
    from bench_serve import serving

    return serving(mode.serve_repeats, mode.serve_requests)


def _numbers(mode: Mode, data: Path) -> dict:
    from bench_numbers import numbers

    return numbers(mode.numbers_repeats)


def _bulk(mode: Mode, data: Path) -> dict:
    from bench_bulk import bulk

    return bulk(mode.folder_repeats, data)


def _trust(mode: Mode, data: Path) -> dict:
    from bench_trust import trust

    return trust(data)


def _writers(mode: Mode, data: Path) -> dict:
    from bench_writers import writers

    return writers(data)


def _tune(mode: Mode, data: Path) -> dict:
    from tune_users import tune_section

    return tune_section(data)


RUNNERS = {
    "train": _train,
    "race": _race,
    "predict": _predict,
    "serve": _serve,
    "numbers": _numbers,
    "bulk": _bulk,
    "trust": _trust,
    "writers": _writers,
    "tune": _tune,
}


def markdown(results: dict) -> str:
    """RESULTS.md: the setting, then one table per section, medians with their ratios."""
    from results_md import render

    return render(results)


if __name__ == "__main__":
    sys.exit(main())
