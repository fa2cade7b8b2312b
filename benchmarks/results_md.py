"""Turn results.json into RESULTS.md: the setting, the targets at a glance, then the detail."""

from __future__ import annotations

BULK_TARGET_IMAGES_PER_SECOND = 20_000
TRAINING_TARGET_SECONDS = 300
FOLDER_TARGET_IMAGES_PER_SECOND = 1_500
SERVE_BASELINE_REQUESTS_PER_SECOND = 317
"""Requests/s of `serve --workers 2` at 32 clients when issue #14 asked for twice as many
(RESULTS.md at commit 5948966, full mode)."""
LONE_CLIENT_TARGET_MS = 10


def render(results: dict) -> str:
    sections = results["sections"]
    parts = [_setting(results), _targets(sections)]
    if "train" in sections:
        parts.append(_measured(_train(sections["train"]["seed"]), sections["train"]))
    race = sections.get("race")
    parts.append(_measured(_race(race), race) if race else _race(race))
    if "predict" in sections:
        predict = sections["predict"]
        parts += [
            _measured(_cold(predict["cold_start"]), predict),
            _measured(_bulk(predict["bulk"]), predict),
            _measured(_folder(predict["folder"]), predict),
        ]
    if "serve" in sections:
        parts.append(_measured(_serve(sections["serve"]), sections["serve"]))
    if "numbers" in sections:
        parts.append(_measured(_numbers(sections["numbers"]), sections["numbers"]))
    from bench_bulk import markdown as bulk
    from bench_trust import markdown as trust
    from bench_trust import network_markdown as network
    from bench_writers import markdown as writers
    from tune_users import markdown as tune

    for name, section_markdown in (
        ("bulk", bulk),
        ("trust", trust),
        ("trust", network),
        ("writers", writers),
        ("tune", tune),
    ):
        if name in sections:
            parts.append(_measured(section_markdown(sections[name]), sections[name]))
    return "\n\n".join(parts) + "\n"


def _setting(results: dict) -> str:
    machine = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in results["versions"].items())
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench` (`benchmarks/run.py`): quick mode measures everything but "
            "the race to 99% accuracy and `tune`, `make bench BENCH=full` adds them and repeats "
            "more. "
            "Every figure is the median of several runs in fresh processes (`results.json` has "
            "every run); each comparison ran both sides in the same session, alternating. Each "
            "section says when, at which commit and in which mode it was measured, and the load "
            "average (1, 5, 15 min) of the machine then: above 0, other work shared the cores, "
            "which slows absolute figures more than ratios.",
            "",
            f"Machine: {machine['cpu']}, {machine['cpus_usable']} usable cores, "
            f"{machine['memory_gb']} GB, {machine['platform']}, Python {machine['python']}.",
            "",
            f"Versions: {versions}.",
        ]
    )


def _measured(text: str, section: dict) -> str:
    stamp = section["measured"]
    return (
        f"{text}\n\n_Measured {stamp['date']} at commit `{stamp['commit']}`, {stamp['mode']} "
        f"mode; load average {_load(stamp['load_average_at_start'])} at the start, "
        f"{_load(stamp['load_average_at_end'])} at the end._"
    )


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) or "unknown"


def _targets(sections: dict) -> str:
    rows = [
        "## Targets",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
    ]
    rows += _train_targets(sections.get("train"), sections.get("race"))
    rows += _predict_targets(sections.get("predict"))
    rows += _serve_targets(sections.get("serve"))
    rows += _numbers_targets(sections.get("numbers"))
    rows += _tune_targets(sections.get("tune"))
    return "\n".join(rows)


def _row(figure: str, measured: str, target: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("yes" if met else "**no**")
    return f"| {figure} | {measured} | {target} | {verdict} |"


def _train_targets(train: dict | None, race: dict | None) -> list[str]:
    rows = []
    if train:
        seed = train["seed"]
        rows.append(
            _row(
                "seed training, project / plain Keras, whole process",
                f"{seed['wall_seconds_ratio']:.2f}x",
                "<= 1.0x",
                seed["wall_seconds_ratio"] <= 1.0,
            )
        )
        difference = seed["accuracy_points_difference"]
        rows.append(
            _row(
                "seed test accuracy, project - plain Keras",
                f"{difference:+.2f} points",
                "within 0.3 points",
                abs(difference) <= 0.3,
            )
        )
    if race and "training" in race:
        seconds = race["training"]["fit_seconds"]["median"]
        rows.append(
            _row(
                f"training the default model ({race['model']}), in fit()",
                f"{seconds:,.0f} s",
                f"<= {TRAINING_TARGET_SECONDS} s",
                seconds <= TRAINING_TARGET_SECONDS,
            )
        )
    ratio = (race or {}).get("project_over_reference")
    rows.append(
        _row(
            f"time to 99% accuracy, project {(race or {}).get('model', 'cnn')} / Keras example",
            "-" if ratio is None else f"{ratio:.2f}x",
            "<= 0.33x",
            None if ratio is None else ratio <= 1 / 3,
        )
    )
    return rows


def _predict_targets(predict: dict | None) -> list[str]:
    if not predict:
        return []
    rows = []
    for name, cold in predict["cold_start"].items():
        seconds = cold["onnx"]["seconds"]["median"]
        rows.append(
            _row(f"`predict` one image, {name}, ONNX", f"{seconds:.2f} s", "<= 1.0 s", seconds <= 1)
        )
        ratio = cold["keras_over_onnx"]["seconds"]
        rows.append(
            _row(f"`predict` one image, {name}, Keras / ONNX", f"{ratio:.1f}x", ">= 3x", ratio >= 3)
        )
    folder = predict["folder"]["onnx"]["images_per_second"]["median"]
    rows.append(
        _row(
            "`predict` over a folder of 1,000 PNGs, ONNX, whole process",
            f"{folder:,.0f} images/s",
            f">= {FOLDER_TARGET_IMAGES_PER_SECOND:,} images/s",
            folder >= FOLDER_TARGET_IMAGES_PER_SECOND,
        )
    )
    for name, bulk in predict["bulk"].items():
        if name in ("cnn", "lean"):
            rate = bulk["onnx"]["images_per_second"]["median"]
            rows.append(
                _row(
                    f"bulk, {name}, ONNX",
                    f"{rate:,.0f} images/s",
                    f">= {BULK_TARGET_IMAGES_PER_SECOND:,} images/s",
                    rate >= BULK_TARGET_IMAGES_PER_SECOND,
                )
            )
    return rows


def _serve_targets(serve: dict | None) -> list[str]:
    if not serve:
        return []
    rows = []
    for kind, label in (("onnx", "ONNX"), ("floor", "a server doing no work (floor)")):
        measured = [
            (figures["32_clients"]["p50_ms"]["median"], name)
            for name, figures in serve.items()
            if name.startswith(kind)
        ]
        if not measured:
            continue
        p50, name = min(measured)
        rows.append(
            _row(
                f"server p50 at 32 concurrent clients, {label}, best of `{name}`",
                f"{p50:.1f} ms",
                "<= 10 ms",
                p50 <= 10,
            )
        )
    two = serve.get("onnx, 2 workers")
    if two:
        rate = two["32_clients"]["requests_per_second"]["median"]
        ratio = rate / SERVE_BASELINE_REQUESTS_PER_SECOND
        lone = two["1_clients"]["p50_ms"]["median"]
        rows += [
            _row(
                "server, 2 workers, 32 clients: requests/s over the "
                f"{SERVE_BASELINE_REQUESTS_PER_SECOND} when issue #14 was filed",
                f"{rate:,.0f} requests/s, {ratio:.2f}x",
                ">= 2x",
                ratio >= 2,
            ),
            _row(
                "server, 2 workers, a lone client: p50",
                f"{lone:.1f} ms",
                f"<= {LONE_CLIENT_TARGET_MS} ms",
                lone <= LONE_CLIENT_TARGET_MS,
            ),
        ]
    return rows


def _numbers_targets(numbers: dict | None) -> list[str]:
    if not numbers:
        return []
    seconds = numbers["twelve_megapixel"]["seconds"]["median"]
    rows = [
        _row(
            "a 12 MP photo of a number, read after start-up",
            f"{seconds:.2f} s",
            "<= 0.5 s",
            seconds <= 0.5,
        )
    ]
    if "line_crop" in numbers:
        crop = numbers["line_crop"]["seconds"]["median"]
        rows.append(
            _row(
                "a crop of one line, read after start-up",
                f"{crop * 1000:.0f} ms",
                "<= 20 ms",
                crop <= 0.02,
            )
        )
    return rows


def _tune_targets(tune: dict | None) -> list[str]:
    if not tune:
        return []
    fifty = tune["fifty_drawings"]
    rows = [
        _row(
            f"`tune` on {fifty['drawings']} drawings, whole command",
            f"{fifty['seconds']:.0f} s",
            f"<= {fifty['target_seconds']} s",
            fifty["seconds"] <= fifty["target_seconds"],
        )
    ]
    for summary in tune["summary"]:
        drop = summary["largest_mnist_validation_drop_points"]
        rows.append(
            _row(
                f"`tune` from {summary['source']}: held-out drawings right, before -> after; "
                "largest MNIST validation drop",
                f"{summary['correct_before']} -> {summary['correct_after']} of "
                f"{summary['scored']}; {drop:.2f} points",
                f"more right; drop <= {summary['target_largest_drop_points']} points",
                summary["correct_after"] > summary["correct_before"]
                and drop <= summary["target_largest_drop_points"],
            )
        )
    return rows


def _numbers(numbers: dict) -> str:
    photo = numbers["twelve_megapixel"]
    lines = [
        "## Numbers on paper",
        "",
        f"A 12-megapixel JPEG (4032x3024) of `{photo['written']}` written a fiftieth of the "
        f"photo tall, read by `api.read_numbers` (decode included) after start-up: "
        f"{_median(photo['seconds'])} s; read as {', '.join(map(str, photo['read']))}.",
    ]
    if "line_crop" in numbers:
        crop = numbers["line_crop"]
        width, height = crop["size"]
        lines += [
            "",
            f"The number cut from that photo ({width}x{height}, a line as a user crops it), "
            f"read the same way: {_median(crop['seconds'], 3)} s; read as "
            f"{', '.join(map(str, crop['read']))}.",
        ]
    if numbers.get("development"):
        lines += ["", "The development sets in `../shared` (`benchmarks/read_numbers.py`):", ""]
        lines += [f"    {line}" for line in numbers["development"]]
    return "\n".join(lines)


def _median(figure: dict, digits: int = 2) -> str:
    return (
        f"{figure['median']:,.{digits}f} ({figure['min']:,.{digits}f}-{figure['max']:,.{digits}f})"
    )


def _train(seed: dict) -> str:
    rows = [
        "## Training the seed network (3 epochs)",
        "",
        "`handwritten train --model seed` against `reference_seed.py`, the tutorial in plain "
        "Keras, same seed per pair of runs. Median (min-max).",
        "",
        "| | whole process, s | in fit(), s | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for side in ("project", "reference"):
        figures = seed[side]
        rows.append(
            f"| {side} | {_median(figures['wall_seconds'], 1)} | "
            f"{_median(figures['fit_seconds'], 1)} | {_median(figures['test_accuracy'], 4)} |"
        )
    rows.append(
        f"| project / reference | {seed['wall_seconds_ratio']:.2f}x | "
        f"{seed['fit_seconds_ratio']:.2f}x | {seed['accuracy_points_difference']:+.2f} points |"
    )
    rows += [
        "",
        "The project's fit() also scores held-out images after each epoch (its history and "
        "card record them: the test set at commits before the validation split, the 5,000 "
        "validation images since); the reference scores the test set once at the end.",
    ]
    return "\n".join(rows)


def _race(race: dict | None) -> str:
    title = "## Time to 99% MNIST test accuracy"
    if not race:
        return f"{title}\n\nNot measured: `make bench BENCH=full` runs it."
    rows = [
        title,
        "",
        "Seconds from launch to the end of the first epoch scoring >= 99.0%: "
        f"`handwritten train --model {race.get('model', 'cnn')}` on its validation digits "
        "(its per-epoch scoring included) against `reference_convnet.py`, the Keras example, "
        "on the test set (its extra per-epoch scoring left out). Median (min-max).",
        "",
        "| | seconds | epochs | runs that reached 99% |",
        "| --- | --- | --- | --- |",
    ]
    for side in ("project", "reference"):
        figures = race[side]
        seconds = _median(figures["seconds"], 0) if figures["seconds"] else "never"
        epochs = _median(figures["epochs"], 0) if figures["epochs"] else "-"
        rows.append(f"| {side} | {seconds} | {epochs} | {figures['reached']} |")
    if "project_over_reference" in race:
        rows.append(f"| project / reference | {race['project_over_reference']:.2f}x | | |")
    if "training" in race:
        training = race["training"]
        rows += [
            "",
            f"The project's runs trained on to the end of the recipe: "
            f"{_median(training['fit_seconds'], 0)} s in fit(), "
            f"{_median(training['wall_seconds'], 0)} s for the whole process; validation "
            f"accuracy {_median(training['validation_accuracy'], 4)}.",
        ]
    return "\n".join(rows)


def _cold(cold: dict) -> str:
    rows = [
        "## `predict` one image, from a cold start",
        "",
        "`handwritten predict --runtime onnx|keras --model NAME digits/digit3-pencil.png`, the "
        "whole process: wall time and peak resident memory (the kernel's count, wait4). "
        "Median (min-max).",
        "",
        "| model | runtime | seconds | peak MB |",
        "| --- | --- | --- | --- |",
    ]
    for name, figures in cold.items():
        for runtime in ("onnx", "keras"):
            rows.append(
                f"| {name} | {runtime} | {_median(figures[runtime]['seconds'])} | "
                f"{_median(figures[runtime]['peak_mb'], 0)} |"
            )
        ratio = figures["keras_over_onnx"]
        rows.append(
            f"| {name} | keras / onnx | {ratio['seconds']:.1f}x | {ratio['peak_mb']:.1f}x |"
        )
    return "\n".join(rows)


def _bulk(bulk: dict) -> str:
    rows = [
        "## Prediction in bulk",
        "",
        "`classifier.probabilities` over the 10,000 MNIST test images (uint8 in, probabilities "
        "out, batches of 1,024), one process per model and runtime, after a warm-up pass. "
        "An untrained network is measured for speed only. Median (min-max).",
        "",
        "| model | runtime | images/s | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, figures in bulk.items():
        for runtime in ("onnx", "keras"):
            accuracy = "-" if "untrained" in name else f"{figures[runtime]['accuracy']:.4f}"
            rows.append(
                f"| {name} | {runtime} | {_median(figures[runtime]['images_per_second'], 0)} | "
                f"{accuracy} |"
            )
        rows.append(f"| {name} | onnx / keras | {figures['onnx_over_keras']:.1f}x | |")
    return "\n".join(rows)


def _folder(folder: dict) -> str:
    rows = [
        "## `predict` over a folder of 1,000 PNG files",
        "",
        "`handwritten predict --json DIR`, end to end (start-up included), on 1,000 MNIST test "
        "images saved as dark-on-white PNGs, so each goes through the full drawing "
        "normalisation. Median (min-max).",
        "",
        "| runtime | seconds | images/s | peak MB | accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for runtime in ("onnx", "keras"):
        figures = folder[runtime]
        rows.append(
            f"| {runtime} | {_median(figures['seconds'])} | "
            f"{_median(figures['images_per_second'], 0)} | {_median(figures['peak_mb'], 0)} | "
            f"{figures['accuracy']:.3f} |"
        )
    return "\n".join(rows)


def _serve(serve: dict) -> str:
    rows = [
        "## The server",
        "",
        "`handwritten serve` (one uvicorn worker unless said) loaded by `load.py`'s clients "
        "with the sample drawings, every answer checked; peak memory is the VmHWM of the "
        "server's processes, summed. The `floor` rows "
        "are `floor_app.py`: the same FastAPI and uvicorn answering a fixed digit without "
        "decoding, preprocessing or a model, loaded by the same clients on the same cores, so "
        "the latency no predict path can beat here. Median (min-max).",
        "",
        "| server | clients | requests/s | p50 ms | p99 ms | peak MB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for runtime, figures in serve.items():
        for key, load in figures.items():
            if key.endswith("_clients"):
                rows.append(
                    f"| {runtime} | {key.split('_')[0]} | "
                    f"{_median(load['requests_per_second'], 0)} | {_median(load['p50_ms'], 1)} | "
                    f"{_median(load['p99_ms'], 1)} | {figures['peak_mb']:.0f} |"
                )
    return "\n".join(rows)
