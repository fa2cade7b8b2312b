"""Loading a model to classify with, and the fast path: ONNX Runtime, without TensorFlow.

`load_classifier` is the one loader: a shipped model's name or a .keras or .onnx file in, a
classifier out, for the CLI, the server, the notebook and the tests alike.

Importing TensorFlow takes seconds and hundreds of MB, most of a one-image `predict`; ONNX
Runtime loads in a fraction of that and runs the same network at least as fast. The .keras
file stays the source of truth: `export_onnx` writes `<model>.onnx` beside it, stamped with
the SHA-256 of the .keras file it was made from and carrying the model card in its metadata,
and `load_classifier` uses the .onnx only while that stamp matches, falling back to Keras when
the .onnx is missing or stale. Pixel scaling is inside the network, so an .onnx copied
anywhere needs nothing else to be used right; its card says which preprocessing it expects.

An .onnx file holds a graph of standard operators and weights, no code, so loading one from
a stranger cannot run anything here (unlike a pickle); its input and output shapes are still
checked, as for a .keras file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from handwritten import files
from handwritten.errors import ModelError
from handwritten.models import (
    BATCH_SIZE,
    INPUT_SHAPE,
    OUTPUT_SIZES,
    card_path,
    check_preprocessing,
    model_input,
    read_card,
)
from handwritten.registry import resolve_model

if TYPE_CHECKING:
    import onnxruntime

    from handwritten.predict import Classifier

RUNTIMES = ("auto", "onnx", "keras")
RUNTIME_ENV = "HANDWRITTEN_RUNTIME"
SOURCE_SHA256 = "handwritten.source_sha256"
SOURCE_FILE = "handwritten.source_file"
CARD = "handwritten.card"
THREADS_ENV = "HANDWRITTEN_ONNX_THREADS"
"""Threads per ONNX Runtime session; unset, the usable CPUs. `serve` sets 1 for its workers:
each classifies one request's image at a time, and for a batch of one a second thread only
adds the cost of waking it."""
EXPORT_TOLERANCE = 1e-4
ONNX_BATCH_SIZE = 128
"""Images per ONNX Runtime call in bulk. Small enough that a batch's activations stay in the
CPU's cache: the lean network read MNIST's test set about twice as fast in batches of 64-128
as in batches of 1,024 on this project's 2-core machine (see benchmarks/RESULTS.md)."""

logger = logging.getLogger(__name__)


def onnx_path(model_path: Path) -> Path:
    """The ONNX copy sits beside its model: `handwritten.keras` -> `handwritten.onnx`."""
    return Path(model_path).with_suffix(".onnx")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks: what ties an .onnx to its .keras."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class OnnxClassifier:
    """An ONNX model behind the same interface as `models.KerasClassifier`."""

    session: onnxruntime.InferenceSession
    path: Path
    source: Path | None = None
    card: dict | None = None

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 28x28 images (the network scales them itself)."""
        batches = [
            self._run(images[i : i + ONNX_BATCH_SIZE])
            for i in range(0, len(images), ONNX_BATCH_SIZE)
        ]
        if batches:
            return np.concatenate(batches)
        return np.zeros((0, self.session.get_outputs()[0].shape[-1]), np.float32)

    def _run(self, images: np.ndarray) -> np.ndarray:
        feed = self.session.get_inputs()[0]
        pixels = model_input(images).reshape(-1, *feed.shape[1:])
        return self.session.run(None, {feed.name: pixels})[0]


def open_onnx(path: Path, source: Path | None = None) -> OnnxClassifier:
    """Load an .onnx file with ONNX Runtime on the CPU, refusing one that is not a digit model
    or that does not say, in its card, how it wants its input."""
    session = open_onnx_unchecked(path)
    _check_signature(session, path)
    return OnnxClassifier(session, Path(path), source, _embedded_card(session, path))


def open_onnx_unchecked(path: Path) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU, tuned for two shared cores; nothing checked yet."""
    import onnxruntime

    # ONNX Runtime sends usage events to its makers unless told not to; nothing here should
    # talk to the network behind the user's back.
    onnxruntime.disable_telemetry_events()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get(THREADS_ENV) or 0) or _usable_cpus()
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: on two shared cores a spinning pool takes CPU
    # from the image decoding and preprocessing around each call (and from other programs).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({_first_line(exc)}).") from None
    return session


def _embedded_card(session: onnxruntime.InferenceSession, path: Path) -> dict:
    """The model card an export put in the metadata: without it, how the network wants its
    pixels is unknown, so the file is refused rather than read wrong."""
    text = session.get_modelmeta().custom_metadata_map.get(CARD)
    try:
        card = json.loads(text) if text else None
    except ValueError:
        card = None
    if not isinstance(card, dict):
        raise ModelError(
            f"{path}: carries no handwritten model card, so how it expects its pixels is "
            "unknown; export it with `handwritten export --model FILE.keras`."
        )
    return card


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_signature(session: onnxruntime.InferenceSession, path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None
    if input_shape not in (INPUT_SHAPE, (*INPUT_SHAPE, 1)) or inputs[0].type != "tensor(float)":
        raise ModelError(
            f"{path}: takes {_describe(inputs)}, not one float 28x28 image; not a digit model."
        )
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) not in [(n,) for n in OUTPUT_SIZES]:
        raise ModelError(f"{path}: outputs {_describe(outputs)}, not 10 digit classes.")


def _describe(arguments: list) -> str:
    return ", ".join(f"{a.type} {a.shape}" for a in arguments) or "nothing"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_classifier(
    name_or_file: str | os.PathLike | None = None, runtime: str | None = None
) -> Classifier:
    """Load a model to classify with: a shipped model's name, or a .keras or .onnx file.

    `runtime` is "auto" (the default, or $HANDWRITTEN_RUNTIME): the .onnx beside the .keras
    file if it was exported from this very file, else Keras. "onnx" refuses to fall back,
    "keras" never uses the .onnx. An .onnx file given directly is loaded as it is, alone. A
    stale or broken .onnx is worth a warning: it means the export step was forgotten. A model
    made with another preprocessing version than this installation's loads with a warning.
    """
    runtime = runtime or os.environ.get(RUNTIME_ENV) or "auto"
    if runtime not in RUNTIMES:
        raise ModelError(f"runtime {runtime}: unknown; choose one of {', '.join(RUNTIMES)}.")
    path = resolve_model(name_or_file)
    if path.suffix == ".onnx":
        classifier = _load_onnx_file(path, runtime)
    else:
        classifier = _load_keras_or_fresh_onnx(path, runtime)
    check_preprocessing(classifier.card, path)
    return classifier


def _load_keras_or_fresh_onnx(path: Path, runtime: str) -> Classifier:
    if runtime != "keras":
        try:
            return fresh_onnx(path)
        except ModelError as exc:
            if runtime == "onnx":
                raise
            if onnx_path(path).is_file():
                logger.warning("handwritten: warning: %s Using the .keras file meanwhile.", exc)
    return load_keras_classifier(path)


def _load_onnx_file(path: Path, runtime: str) -> OnnxClassifier:
    if runtime == "keras":
        raise ModelError(f"{path}: an ONNX file cannot run on the Keras runtime.")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; pass a .keras or .onnx file.")
    return open_onnx(path)


def fresh_onnx(model_path: Path) -> OnnxClassifier:
    """The .onnx exported from exactly this .keras file; ModelError says why there is none."""
    candidate = onnx_path(model_path)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: no such model file, so no ONNX copy of it to trust.")
    if not candidate.is_file():
        raise ModelError(f"{candidate}: missing; run `handwritten export --model {model_path}`.")
    classifier = open_onnx(candidate, model_path)
    stamp = classifier.session.get_modelmeta().custom_metadata_map.get(SOURCE_SHA256)
    if stamp != sha256_of(model_path):
        raise ModelError(
            f"{candidate}: was not exported from {model_path} as it is now; run "
            f"`handwritten export --model {model_path}` again."
        )
    return classifier


def load_keras_classifier(path: Path) -> Classifier:
    """The Keras path: TensorFlow is imported here, its native start-up chatter hidden."""
    import_keras_quietly()
    from handwritten.models import KerasClassifier, load_model

    return KerasClassifier(load_model(path), path, read_card(path))


def import_keras_quietly() -> None:
    """Import Keras (and so TensorFlow) with its native start-up chatter hidden."""
    with native_stderr_silenced():
        import keras  # noqa: F401


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ core prints to file descriptor 2 while it loads.

    TF_CPP_MIN_LOG_LEVEL no longer reaches the oneDNN notice that absl logs before it is
    initialised; Python-level errors still surface as exceptions.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def export_onnx(name_or_file: str | os.PathLike | None = None) -> Path:
    """Write `<model>.onnx` beside a .keras model, stamped with the .keras file's SHA-256 and
    carrying its model card.

    The export is checked before it is kept: ONNX Runtime must give the same probabilities as
    Keras (within 1e-4) on a fixed batch of MNIST-like inputs, or nothing is written.
    """
    import_keras_quietly()
    from handwritten.models import KerasClassifier, load_model

    path = resolve_model(name_or_file)
    model = load_model(path)
    card = read_card(path)
    target = onnx_path(path)
    with files.atomic_path(target) as temporary:
        _convert(model, temporary)
        if card is not None:
            card = {
                **card,
                "speed": _speed(OnnxClassifier(open_onnx_unchecked(temporary), temporary)),
            }
        stamp_onnx(temporary, path, card or _minimal_card(path))
        _check_agreement(KerasClassifier(model, path), open_onnx(temporary, path), target)
    if card is not None:
        files.write_json(card_path(path), card)
    return target


def _speed(classifier: OnnxClassifier, repeats: int = 5) -> dict:
    """Images per second in bulk through ONNX Runtime, the median of a few batches: a rough
    figure of the exporting machine, for `handwritten models`; `make bench` measures properly."""
    images = _probe_images(count=BATCH_SIZE * 4)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.probabilities(images)
        rates.append(len(images) / (time.perf_counter() - started))
    return {
        "onnx_images_per_second": round(statistics.median(rates)),
        "cpus": _usable_cpus(),
        "measured": "at export, on the exporting machine",
    }


def _minimal_card(path: Path) -> dict:
    """What an export knows of a .keras file whose card is missing: its input and the
    preprocessing of this installation, so its .onnx can still be used alone."""
    from handwritten.preprocess import preprocessing_spec

    return {"name": path.stem, "preprocessing": preprocessing_spec(), "note": "no card found"}


def _convert(model, output: Path) -> None:
    """Keras 3's own ONNX export (tf2onnx underneath), after one call so the model is built."""
    model(np.zeros((1, *INPUT_SHAPE), np.float32))
    try:
        with warnings.catch_warnings(), native_stderr_silenced():
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(output), format="onnx", verbose=False)
    except ImportError as exc:
        raise ModelError(
            f"ONNX export needs tf2onnx and onnx ({exc}); install them with "
            "`pip install 'handwritten[export]'`."
        ) from None


def stamp_onnx(onnx_file: Path, source: Path, card: dict) -> None:
    """Put the .keras file's SHA-256 and name, and the model card, in the ONNX metadata."""
    import onnx

    graph = onnx.load(str(onnx_file))
    graph.metadata_props.add(key=SOURCE_SHA256, value=sha256_of(source))
    graph.metadata_props.add(key=SOURCE_FILE, value=source.name)
    graph.metadata_props.add(key=CARD, value=json.dumps(card))
    onnx.save(graph, str(onnx_file))


def _check_agreement(keras_model: Classifier, onnx_model: Classifier, target: Path) -> None:
    images = _probe_images()
    difference = np.abs(keras_model.probabilities(images) - onnx_model.probabilities(images))
    if difference.max() > EXPORT_TOLERANCE:
        raise ModelError(
            f"{target}: ONNX Runtime differs from Keras by {difference.max():.2g}; not exported."
        )


def _probe_images(count: int = 256, seed: int = 0) -> np.ndarray:
    """Blank, saturated and random images: a cheap check that two runtimes compute the same."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(count - 2, *INPUT_SHAPE), dtype=np.uint8)
    sparse = np.where(rng.random(noise.shape) < 0.8, 0, noise).astype(np.uint8)
    extremes = np.stack([np.zeros(INPUT_SHAPE, np.uint8), np.full(INPUT_SHAPE, 255, np.uint8)])
    return np.concatenate([extremes, sparse])
