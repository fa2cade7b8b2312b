"""Reading many images: every local core, or a Ray cluster, with results streamed to a file.

`read_many` yields results in input order while a process pool preprocesses the next files
(preprocessing is most of the work; the model then classifies a whole chunk in one batch).
`write_results` streams the same results into a CSV file or a Parquet folder, one chunk at a
time, so millions of files never sit in memory, and a rerun after a kill picks up where the
last one stopped.

How a rerun loses and repeats no row: beside the output, `<output>.job.json` (the sidecar)
records the job (model, mode, inputs) and how much of the output is committed: `rows`, and
for CSV the byte length, for Parquet the number of part files. A chunk is first written in
full (CSV: appended, flushed, fsynced; Parquet: a part file renamed into place), then the
sidecar is replaced atomically: that rename is the commit. A rerun cuts the CSV back to the
committed length and deletes Parquet parts past the committed count, then starts at input
number `rows`. Inputs are listed in a fixed order (folders sorted), and the path of the last
committed row is checked against the listing, so a changed input tree is refused instead of
being resumed wrongly.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

from handwritten import files, predict
from handwritten.errors import HandwrittenError
from handwritten.predict import Classifier, NumberReading, Prediction
from handwritten.runtime import sha256_of

Result = Union[Prediction, NumberReading]  # noqa: UP007 (a runtime alias; py3.10 has |)
Row = dict[str, Any]

CHUNK = 1000  # default rows per committed chunk of output, and per batch the model classifies
TASK = 32  # files per task handed to a pool worker: few enough to keep every core busy
IN_PROCESS_SECONDS = 0.5
"""Files are read in this process for this long before the rest go to a pool of workers.
A pool's fork server and workers take a tenth of a second of both cores to start, which
1,000 drawings at 0.3 ms each did not repay: on two cores shared with a training run,
`predict` over 1,000 PNGs took 0.89 s in one process against 1.36 s with the pool."""
RAY_WINDOW = 50_000  # paths per Ray dataset, so the driver never holds a whole archive's list
SUFFIXES = (".csv", ".parquet")


@dataclass
class Summary:
    """What a `write_results` run did: rows written now, rows already there, unreadable files."""

    output: Path
    written: int
    skipped: int
    errors: int


def read_many(
    paths: Iterable[str | os.PathLike],
    classifier: Classifier,
    *,
    number: bool = False,
    workers: int | None = None,
    progress: bool | None = None,
) -> Iterator[Result]:
    """Predictions (or, with `number`, number readings) for every image, folders expanded,
    in input order: what `predict` prints, with preprocessing spread over every core.

    `progress` None shows a bar when stderr is a terminal; print lines with `tqdm.write` so
    they do not break it.
    """
    paths = list(paths)
    bar = _progress(paths, 0, progress)
    for chunk in _local_chunks(predict.iter_images(paths), classifier, number, workers):
        yield from chunk
        bar.update(len(chunk))
    bar.close()


def write_results(
    paths: Iterable[str | os.PathLike],
    classifier: Classifier,
    output: str | os.PathLike,
    *,
    number: bool = False,
    ray: str | None = None,
    chunk: int = CHUNK,
    workers: int | None = None,
    progress: bool | None = None,
) -> Summary:
    """Read every image and write one row per image to `output` (.csv, or .parquet: a folder
    of part files), resuming what an interrupted run with the same output left.

    The columns are `path` and the fields of `to_json()`; lists and objects are JSON text.
    `ray` is None for this machine's cores, "" for a new local Ray, or a cluster's address.
    `chunk` rows are committed at a time: the most a kill can make a rerun redo.
    """
    paths, output = [str(p) for p in paths], Path(output)
    sink = _open_sink(output)
    if next(predict.iter_images(paths), None) is None:
        raise HandwrittenError(f"{' '.join(paths)}: no image files found (.png, .jpg, ...).")
    job = _resume(output, sink, _new_job(paths, classifier, number))
    remaining = _skip_done(predict.iter_images(paths), job)
    bar = _progress(paths, job.rows, progress)
    written = errors = 0
    for rows in _row_chunks(remaining, classifier, number, ray, chunk, workers):
        sink.write(rows, job)
        job.commit(output, rows)
        written, errors = written + len(rows), errors + sum(bool(r.get("error")) for r in rows)
        bar.update(len(rows))
    bar.close()
    sink.close()
    return Summary(output, written, job.rows - written, errors)


def _row_chunks(
    paths: Iterator[Path],
    classifier: Classifier,
    number: bool,
    ray: str | None,
    size: int,
    workers: int | None,
) -> Iterator[list[Row]]:
    """Chunks of output rows from the local pool or from Ray: the same rows either way."""
    if ray is not None:
        yield from _ray_chunks(paths, classifier, number, ray, size)
        return
    for chunk in _local_chunks(paths, classifier, number, workers, size):
        yield [result.to_json() for result in chunk]


# Reading on this machine: a process pool preprocesses, the parent classifies each chunk.


def _local_chunks(
    paths: Iterator[Path],
    classifier: Classifier,
    number: bool,
    workers: int | None,
    size: int = CHUNK,
) -> Iterator[list[Result]]:
    """Classified results, `size` at a time, in input order. Files are read in this process
    for IN_PROCESS_SECONDS, the rest (if any) by a pool of `workers` (default: one per core);
    with `workers` given, the pool takes all but the first file."""
    head = _read_for(IN_PROCESS_SECONDS if workers is None else 0.0, paths, number)
    following = next(paths, None)
    results: Iterable[Result] = head
    if following is not None:
        rest = _pooled(itertools.chain([following], paths), number, workers or local_cores())
        results = itertools.chain(head, itertools.chain.from_iterable(rest))
    for chunk in _batched(results, size):
        yield classify(chunk, classifier, number)


def _read_for(seconds: float, paths: Iterator[Path], number: bool) -> list[Result]:
    """Preprocess files here, in order, until `seconds` have passed (at least one file)."""
    deadline = time.perf_counter() + seconds
    results = []
    for path in paths:
        results.extend(preprocess([path], number))
        if time.perf_counter() >= deadline:
            break
    return results


def preprocess(paths: list[Path], number: bool) -> list[Result]:
    """Each file's 28x28 image (or a number's digits), not yet classified: a worker's task."""
    find = predict.find_number if number else predict.preprocess_file
    return [find(path) for path in paths]


def classify(results: list[Result], classifier: Classifier, number: bool) -> list[Result]:
    """Classify every image of a chunk in one batch (with `number`, every digit of every
    reading): one call to the model per chunk is what makes bulk reading fast."""
    images = [digit for r in results for digit in r.digits] if number else results
    predict.classify_predictions(images, classifier)
    return results


def _pooled(paths: Iterator[Path], number: bool, workers: int) -> Iterator[list[Result]]:
    """Tasks of TASK files preprocessed by `workers` processes, yielded in submission order,
    with a bounded number in flight so that a long listing is never submitted at once."""
    pool = ProcessPoolExecutor(
        workers, mp_context=_pool_context(), initializer=_exit_with, initargs=(os.getpid(),)
    )
    pending: deque = deque()
    try:
        for task in _batched(paths, TASK):
            pending.append(pool.submit(preprocess, task, number))
            if len(pending) >= 8 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def _exit_with(parent: int) -> None:
    """Make a pool worker end when the process that started it dies, even by SIGKILL: it
    would otherwise wait forever on a queue nobody writes to (and keep the fork server up)."""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _pool_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported preprocessing once: workers start in milliseconds, and
    are forked from a process that holds no model and no threads (forking the parent, whose
    ONNX Runtime has a thread pool, is not safe)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["handwritten.predict"])
    return context


def local_cores() -> int:
    """CPUs this process may run on (a container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _progress(paths: list, done: int, show: bool | None) -> Any:
    """A tqdm bar on stderr when it is a terminal; counting the inputs costs one listing, so
    it is done only then."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if show is None else show
    total = sum(1 for _ in predict.iter_images(paths)) if show else None
    return tqdm(total=total, initial=done, unit="image", disable=not show, file=sys.stderr)


# The job record beside the output: what the job is, and how much of the output is committed.


@dataclass
class Job:
    """The sidecar `<output>.job.json`; its atomic replacement commits each chunk."""

    model: str
    model_sha256: str
    number: bool
    inputs: list[str]
    rows: int = 0
    bytes: int = 0
    parts: int = 0
    last: str | None = None
    columns: list[str] | None = None
    types: dict[str, str] = field(default_factory=dict)

    def commit(self, output: Path, rows: list[Row]) -> None:
        """Record `rows` as written: the last step of a chunk, after its data is on disk."""
        self.rows += len(rows)
        self.last = rows[-1]["path"]
        self.save(output)

    def save(self, output: Path) -> None:
        _write_durably(sidecar(output), json.dumps(asdict(self), indent=1) + "\n")

    def same_job(self, other: Job) -> bool:
        return (self.model_sha256, self.number, self.inputs) == (
            other.model_sha256,
            other.number,
            other.inputs,
        )

    def describe(self) -> str:
        mode = "numbers (--number)" if self.number else "digits"
        return f"model {self.model}, {mode}, inputs {' '.join(self.inputs)}"


def sidecar(output: Path) -> Path:
    """Where the job record of `output` lives: beside it, so a folder of parts stays clean."""
    return output.with_name(output.name + ".job.json")


def _new_job(paths: list[str], classifier: Classifier, number: bool) -> Job:
    model = Path(classifier.path)
    return Job(str(model), sha256_of(model), number, paths)


def _resume(output: Path, sink: _Sink, job: Job) -> Job:
    """The job to continue: a new one for a new output, the recorded one for the same job;
    anything else is refused, as resuming it would mix two jobs' rows in one file."""
    record = sidecar(output)
    if not record.is_file():
        if output.exists():
            raise HandwrittenError(
                f"{output}: exists but was not written by `predict --output` (no {record.name} "
                "beside it); choose another --output or remove it."
            )
        job.save(output)  # Before any data, so a run killed in its first chunk resumes.
        return job
    try:
        recorded = Job(**json.loads(record.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise HandwrittenError(
            f"{record}: not a readable job record ({exc}); remove it and {output} to start over."
        ) from None
    if not recorded.same_job(job):
        raise HandwrittenError(
            f"{output}: started by another job ({recorded.describe()}), not this one "
            f"({job.describe()}); rerun that job to finish it, or choose another --output."
        )
    sink.cut_back(recorded)
    return recorded


def _skip_done(paths: Iterator[Path], job: Job) -> Iterator[Path]:
    """The inputs after the `job.rows` already written, checking the listing still agrees."""
    done = list(itertools.islice(paths, job.rows - 1, job.rows)) if job.rows else []
    if job.rows and (not done or str(done[0]) != job.last):
        found = str(done[0]) if done else "nothing"
        raise HandwrittenError(
            f"the inputs changed since this output was started: image {job.rows} was "
            f"{job.last}, now {found}; finish with the same files, or choose another --output."
        )
    return paths


def _write_durably(path: Path, text: str) -> None:
    """Replace `path` atomically, with its bytes on disk before the rename makes them count."""
    with files.atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


# Output formats: both take whole chunks and can cut back to the last commit.


class _Sink:
    def write(self, rows: list[Row], job: Job) -> None: ...

    def cut_back(self, job: Job) -> None: ...

    def close(self) -> None: ...


def check_output(output: Path) -> None:
    """Refuse an output name whose format is unknown, naming the two there are."""
    if output.suffix not in SUFFIXES:
        raise HandwrittenError(
            f"--output {output}: unknown format; end the name with .csv (a table) or .parquet "
            "(a folder of Parquet part files)."
        )


def _open_sink(output: Path) -> _Sink:
    check_output(output)
    return _CsvSink(output) if output.suffix == ".csv" else _ParquetSink(output)


class _CsvSink(_Sink):
    """One CSV file, appended a chunk at a time; a header line first."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.stream = None

    def cut_back(self, job: Job) -> None:
        """Drop what a killed run wrote after its last commit (a torn or unrecorded chunk)."""
        size = self.output.stat().st_size if self.output.is_file() else 0
        if size < job.bytes:
            raise HandwrittenError(
                f"{self.output}: shorter than its job record says ({size} < {job.bytes} "
                f"bytes), so it was changed outside this job; remove it and "
                f"{sidecar(self.output).name} to start over."
            )
        if self.output.is_file():
            os.truncate(self.output, job.bytes)

    def write(self, rows: list[Row], job: Job) -> None:
        import csv
        import io

        if self.stream is None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(self.output, "ab")  # noqa: SIM115 (open for the whole job)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if job.columns is None:
            job.columns = _columns(rows)
            writer.writerow(job.columns)
        writer.writerows([[_csv_value(row.get(c)) for c in job.columns] for row in rows])
        self.stream.write(text.getvalue().encode("utf-8"))
        self.stream.flush()
        os.fsync(self.stream.fileno())
        job.bytes = self.stream.tell()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


class _ParquetSink(_Sink):
    """A folder of part files `part-000000.parquet`, ..., one per chunk, each renamed into
    place whole: any Parquet reader takes the folder as one table."""

    def __init__(self, output: Path) -> None:
        self.output = output
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise HandwrittenError(
                f"--output {output}: writing Parquet needs pyarrow; install it with "
                "`pip install 'handwritten[parquet]'`, or write a .csv instead."
            ) from None

    def cut_back(self, job: Job) -> None:
        """Delete parts a killed run renamed in after its last commit, and its temporaries."""
        for part in self.output.glob("*.parquet"):
            if part.name.startswith(".") or _part_number(part) >= job.parts:
                part.unlink()

    def write(self, rows: list[Row], job: Job) -> None:
        import pyarrow.parquet as pq

        if job.columns is None:
            job.columns = _columns(rows)
            job.types = {name: _arrow_type(rows, name) for name in job.columns}
        table = _arrow_table(rows, job.columns, job.types)
        with files.atomic_path(self.output / f"part-{job.parts:06d}.parquet") as temporary:
            pq.write_table(table, temporary)
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
        job.parts += 1


def _part_number(part: Path) -> int:
    try:
        return int(part.stem.removeprefix("part-"))
    except ValueError:
        return -1


def _columns(rows: list[Row]) -> list[str]:
    """Every key of the chunk's `to_json()`, in first-seen order: new fields appear by
    themselves, and the first chunk fixes the columns for the whole job."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


ARROW_TYPES: dict[type, str] = {bool: "bool", int: "int64", float: "float64", str: "string"}


def _arrow_type(rows: list[Row], name: str) -> str:
    """The column's type from its first value in the first chunk; lists, objects and a
    column with no value yet are text (JSON), so every part file has the same schema."""
    value = next((row[name] for row in rows if row.get(name) is not None), None)
    return ARROW_TYPES.get(type(value), "string")


def _arrow_table(rows: list[Row], columns: list[str], types: dict[str, str]) -> Any:
    import pyarrow as pa

    convert: dict[str, Callable[[Any], Any]] = {
        name: _csv_value if kind == "string" else _same for name, kind in types.items()
    }
    arrays = {
        name: pa.array(
            [None if r.get(name) is None else convert[name](r[name]) for r in rows],
            type=pa.type_for_alias(types[name]),
        )
        for name in columns
    }
    return pa.table(arrays)


def _same(value: Any) -> Any:
    return value


# The same job on a Ray cluster: Ray Data feeds paths to one reader per worker.


def _ray_chunks(
    paths: Iterator[Path], classifier: Classifier, number: bool, address: str, size: int
) -> Iterator[list[Row]]:
    """Rows `size` at a time, in input order, read by Ray workers; RAY_WINDOW paths per
    dataset, so the driver's list of paths stays bounded however large the archive."""
    ray = _import_ray()
    started = _connect(ray, address)
    try:
        model = ray_model_bytes(classifier)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        for window in _batched(paths, RAY_WINDOW):
            read = ray.data.from_items([{"path": str(p)} for p in window]).map_batches(
                read_on_worker,
                fn_kwargs={"model": model, "number": number},
                batch_size=TASK,
                num_cpus=1,
            )
            for batch in read.iter_batches(batch_size=size, batch_format="numpy"):
                yield [json.loads(row) for row in batch["row"]]
    finally:
        if started:
            ray.shutdown()


def read_on_worker(batch: dict[str, Any], model: bytes, number: bool) -> dict[str, list[str]]:
    """One Ray task: a batch of paths read with the same preprocessing and classification as
    a local run, so the rows are the same. Tasks rather than actors: Ray retries a task whose
    node died on another node, and Ray Data's actors make Ray's core worker log an error line
    on every healthy job (ray-project/ray#57733)."""
    classifier = _worker_model(model)
    results = preprocess([Path(p) for p in batch["path"]], number)
    classify(results, classifier, number)
    return {"row": [json.dumps(result.to_json()) for result in results]}


@functools.lru_cache(maxsize=1)
def _worker_model(model: bytes) -> Classifier:
    """The model, loaded once per Ray worker process (Ray reuses them for task after task)."""
    return open_model_bytes(model)


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise HandwrittenError(
            "--ray needs Ray Data, an optional extra: install it with "
            "`pip install 'handwritten[ray]'`."
        ) from None
    return ray


def _connect(ray: Any, address: str) -> bool:
    """Join the cluster at `address` (none: $RAY_ADDRESS, else a new local Ray); True when
    this call started the connection, so the job ends it."""
    if ray.is_initialized():
        return False
    # Ray Data's own notices (execution plans, "progress bars disabled") are not the user's
    # business; errors still show. The bar is ours, on a terminal only.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    from ray._private.authentication import authentication_token_setup as token_setup

    # Whether a job's own local Ray uses a token is not the user's business either.
    logging.getLogger(token_setup.__name__).setLevel(logging.ERROR)
    if address:
        _send_token_if_there_is_one()
    try:
        ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise HandwrittenError(
            f"--ray {address}: no Ray cluster answers there ({exc}); start one with "
            "`ray start --head`, or give its address as --ray=HOST:PORT. A cluster with token "
            "authentication needs its token here too, in ~/.ray/auth_token or $RAY_AUTH_TOKEN."
        ) from None
    return True


def _send_token_if_there_is_one() -> None:
    """Authenticate to a cluster the way `ray start` does on this machine.

    Since Ray 2.5x a local `ray.init()` (`predict --ray` with no address) writes a token to
    ~/.ray/auth_token, and from then on `ray start --head` turns token authentication on by
    itself; but `ray.init(address=...)` does not send that token unless RAY_AUTH_MODE=token,
    so the job would be refused by the very head it names. Ray's own rule for `ray start`
    (send the token when there is one and RAY_AUTH_MODE says nothing) applies here too; a
    cluster without authentication ignores the token.
    """
    from ray._private.authentication import authentication_token_setup as token_setup

    token_setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def ray_model_bytes(classifier: Classifier) -> bytes:
    """The ONNX file of the classifier, to send to Ray workers that may not have it."""
    from handwritten.runtime import OnnxClassifier

    if not isinstance(classifier, OnnxClassifier):
        raise HandwrittenError(
            f"--ray: {classifier.path} runs on Keras here; Ray workers use ONNX Runtime, so "
            f"export it first (`handwritten export --model {classifier.path}`)."
        )
    return Path(classifier.path).read_bytes()


def open_model_bytes(model: bytes) -> Classifier:
    """A classifier from ONNX bytes: what each Ray worker loads, once."""
    from handwritten.runtime import open_onnx

    with tempfile.NamedTemporaryFile(suffix=".onnx") as copy:
        copy.write(model)
        copy.flush()
        return open_onnx(Path(copy.name))
