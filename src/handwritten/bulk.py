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
number `rows`. Inputs are listed in a fixed order (folders sorted), and the sidecar keeps a
hash chained over the path and size of every committed input: a rerun recomputes it over the
same first `rows` inputs, so a file renamed, added, removed or rewritten anywhere in the
committed part is refused instead of being resumed wrongly. The sidecar also counts the error
rows committed, so a resumed run reports the unreadable files of the whole job.

One job at a time per output: a run holds an exclusive lock (`filelock`: flock on POSIX,
LockFileEx on Windows) on `<output>.lock` for as long as it writes, and a second run on the
same output is refused at once. The system drops the lock when the process ends, however it
ends, so a kill leaves nothing to clear. On POSIX the empty lock file stays: removing it
would let two runs each lock a file of that name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import signal
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

import filelock

from handwritten import files, predict
from handwritten.errors import HandwrittenError
from handwritten.predict import Classifier, NumberReading, Prediction
from handwritten.reader import Reader
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
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


@dataclass
class Summary:
    """What a `write_results` run did: rows written now, rows already there, and the
    unreadable files of the whole output (rows of an earlier, interrupted run included)."""

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
    reader: Reader | None = None,
) -> Iterator[Result]:
    """Predictions (or, with `number`, number readings) for every image, folders expanded,
    in input order: what `predict` prints, with preprocessing spread over every core. With
    `number` and a sequence `reader`, the workers read each number whole with it.

    `progress` None shows a bar when stderr is a terminal; print lines with `tqdm.write` so
    they do not break it.
    """
    paths = list(paths)
    bar = _progress(paths, 0, progress)
    whole = Whole.of(reader) if number else None
    images = predict.iter_images(paths)
    for chunk in _local_chunks(images, classifier, number, workers, whole=whole):
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
    reader: Reader | None = None,
) -> Summary:
    """Read every image and write one row per image to `output` (.csv, or .parquet: a folder
    of part files), resuming what an interrupted run with the same output left.

    The columns are `path` and the fields of `to_json()`; lists and objects are JSON text.
    `ray` is None for this machine's cores, "" for a new local Ray, or a cluster's address.
    `chunk` rows are committed at a time: the most a kill can make a rerun redo. With
    `number`, a sequence `reader` reads each number whole, here and on Ray alike.
    """
    # `big`, `big/` and `./big` are one input: the same job, resumed alike.
    paths, output = [str(Path(p)) for p in paths], Path(output)
    sink = _open_sink(output)
    if next(predict.iter_images(paths), None) is None:
        raise HandwrittenError(f"{' '.join(paths)}: no image files found (.png, .jpg, ...).")
    with _locked(output):
        whole = Whole.of(reader) if number else None
        job = _resume(output, sink, _new_job(paths, classifier, number, whole))
        remaining = _skip_done(predict.iter_images(paths), job)
        bar = _progress(paths, job.rows, progress)
        written = 0
        for rows in _row_chunks(remaining, classifier, number, ray, chunk, workers, whole):
            sink.write(rows, job)
            job.commit(output, rows)
            written += len(rows)
            bar.update(len(rows))
        bar.close()
        sink.close()
    return Summary(output, written, job.rows - written, job.errors)


@contextlib.contextmanager
def _locked(output: Path) -> Iterator[None]:
    """Hold the output's lock for the block, or refuse at once if another run holds it."""
    path = output.with_name(output.name + ".lock")
    files.make_folder(output.parent)
    lock = filelock.FileLock(path, timeout=0)
    try:
        path.touch()  # first: filelock reports a lock file it cannot make as one held
        lock.acquire()
    except filelock.Timeout:
        raise HandwrittenError(
            f"{output}: another `predict --output` is writing it now (it holds "
            f"{path.name}); wait for that run to finish, or choose another --output."
        ) from None
    except OSError as exc:
        raise HandwrittenError(
            f"--output {output}: its lock file {path} cannot be made ({exc.strerror}); "
            "choose another --output."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _row_chunks(
    paths: Iterator[Path],
    classifier: Classifier,
    number: bool,
    ray: str | None,
    size: int,
    workers: int | None,
    whole: Whole | None = None,
) -> Iterator[list[Row]]:
    """Chunks of output rows from the local pool or from Ray: the same rows either way."""
    if ray is not None:
        yield from _ray_chunks(paths, classifier, number, ray, size, whole)
        return
    for chunk in _local_chunks(paths, classifier, number, workers, size, whole):
        yield [result.to_json() for result in chunk]


@dataclass(frozen=True)
class Whole:
    """The sequence reader numbers are read whole with: its ONNX file's bytes go to the pool's
    workers and to Ray's tasks (each opens it once); a reader that runs on Keras reads here."""

    reader: Reader
    onnx: bytes | None
    sha256: str

    @staticmethod
    def of(reader: Reader | None) -> Whole | None:
        if reader is None:
            return None
        data = Path(reader.path).read_bytes()
        onnx = data if Path(reader.path).suffix == ".onnx" else None
        return Whole(reader, onnx, hashlib.sha256(data).hexdigest())


# Reading on this machine: a process pool preprocesses, the parent classifies each chunk.


def _local_chunks(
    paths: Iterator[Path],
    classifier: Classifier,
    number: bool,
    workers: int | None,
    size: int = CHUNK,
    whole: Whole | None = None,
) -> Iterator[list[Result]]:
    """Classified results, `size` at a time, in input order. Files are read in this process
    for IN_PROCESS_SECONDS, the rest (if any) by a pool of `workers` (default: one per core);
    with `workers` given, the pool takes all but the first file. Numbers read whole by a
    reader on Keras are all read here."""
    onnx = whole.onnx if whole else None
    if whole is not None and onnx is None:
        results: Iterable[Result] = (
            predict.read_number_whole(path, whole.reader, str(path)) for path in paths
        )
    else:
        head = _read_for(IN_PROCESS_SECONDS if workers is None else 0.0, paths, number, whole)
        following = next(paths, None)
        results = head
        if following is not None:
            rest = _pooled(
                itertools.chain([following], paths), number, workers or local_cores(), onnx
            )
            results = itertools.chain(head, itertools.chain.from_iterable(rest))
    for chunk in _batched(results, size):
        yield classify(chunk, classifier, number)


def _read_for(
    seconds: float, paths: Iterator[Path], number: bool, whole: Whole | None = None
) -> list[Result]:
    """Preprocess files here, in order, until `seconds` have passed (at least one file);
    numbers read whole by the reader this process already holds."""
    deadline = time.perf_counter() + seconds
    results = []
    for path in paths:
        if number and whole is not None:
            results.append(predict.read_number_whole(path, whole.reader, str(path)))
        else:
            results.extend(preprocess([path], number))
        if time.perf_counter() >= deadline:
            break
    return results


def preprocess(paths: list[Path], number: bool, reader: bytes | None = None) -> list[Result]:
    """Each file's 28x28 image (or a number's digits), not yet classified: a worker's task.
    With a `reader` (an ONNX sequence reader's bytes), each number is read whole here."""
    if number and reader is not None:
        whole = _worker_reader(reader)
        return [predict.read_number_whole(path, whole, str(path)) for path in paths]
    find = predict.find_number if number else predict.preprocess_file
    return [find(path) for path in paths]


@functools.lru_cache(maxsize=1)
def _worker_reader(reader: bytes) -> Reader:
    """The sequence reader, opened once per worker process."""
    from handwritten.reader import reader_from_onnx_bytes

    return reader_from_onnx_bytes(reader)


def classify(results: list[Result], classifier: Classifier, number: bool) -> list[Result]:
    """Classify every image of a chunk in one batch (with `number`, every digit of every
    reading the sequence reader has not read already): one call to the model per chunk is
    what makes bulk reading fast."""
    if number:
        images = [digit for r in results if r.proposal == "digits" for digit in r.digits]
    else:
        images = results
    predict.classify_predictions(images, classifier)
    return results


def _pooled(
    paths: Iterator[Path], number: bool, workers: int, reader: bytes | None = None
) -> Iterator[list[Result]]:
    """Tasks of TASK files preprocessed by `workers` processes, yielded in submission order,
    with a bounded number in flight so that a long listing is never submitted at once."""
    pool = ProcessPoolExecutor(
        workers, mp_context=_pool_context(), initializer=_exit_with, initargs=(os.getpid(),)
    )
    pending: deque = deque()
    try:
        for task in _batched(paths, TASK):
            pending.append(pool.submit(preprocess, task, number, reader))
            if len(pending) >= 8 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def _exit_with(parent: int) -> None:
    """Make a pool worker end when the process that started it dies, even by SIGKILL: it
    would otherwise wait forever on a queue nobody writes to (and keep the fork server up).

    A worker also ignores Ctrl-C, which the terminal sends to the whole process group: the
    parent alone decides what an interruption stops (a worker dying of KeyboardInterrupt
    printed a traceback and could leave the parent waiting on it for ever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1)
            if _ended(parent):
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _ended(pid: int) -> bool:
    """Whether process `pid` has ended: gone, or a zombie (ended, not yet reaped by whoever
    started it, which still answers kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # No /proc (not Linux): a zombie cannot be told apart; it is reaped soon.
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _pool_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported preprocessing once: workers start in milliseconds, and
    are forked from a process that holds no model and no threads (forking the parent, whose
    ONNX Runtime has a thread pool, is not safe)."""
    # A second Ctrl-C ends this process without shutting the pool down (see cli.main); the
    # resource tracker then removes the pool's semaphores, as it should, but also warns of
    # them as "leaked". It takes its warning filters from sys.warnoptions when it starts.
    if QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(QUIET_TRACKER)
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["handwritten.predict"])
    _start_deaf_to_ctrl_c()
    return context


def _start_deaf_to_ctrl_c() -> None:
    """Start the fork server (and the resource tracker) with SIGINT blocked: a blocked signal
    stays blocked through fork and exec, so Ctrl-C, which the terminal sends to the whole
    process group, never reaches them or the workers forked from them, even while they still
    import (a KeyboardInterrupt there printed a traceback). This process handles it alone."""
    from multiprocessing import forkserver, resource_tracker

    # The tracker first: starting, it blocks then unblocks SIGINT here, whatever was blocked.
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


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
    reader_sha256: str | None = None
    """With `number`: the sequence reader's file, when numbers are read whole."""
    rows: int = 0
    bytes: int = 0
    parts: int = 0
    last: str | None = None
    prefix: str | None = None
    """The hash chained over the path and size of each committed input (see `chain`); None
    in a record of an earlier version, which kept only `last`."""
    errors: int = 0
    columns: list[str] | None = None
    types: dict[str, str] = field(default_factory=dict)

    def commit(self, output: Path, rows: list[Row]) -> None:
        """Record `rows` as written: the last step of a chunk, after its data is on disk."""
        self.rows += len(rows)
        self.last = rows[-1]["path"]
        self.errors += sum(bool(row.get("error")) for row in rows)
        for row in rows:
            self.prefix = chain(self.prefix or "", row["path"])
        self.save(output)

    def save(self, output: Path) -> None:
        _write_durably(sidecar(output), json.dumps(asdict(self), indent=1) + "\n")

    def same_job(self, other: Job) -> bool:
        return (self.model_sha256, self.number, self.inputs, self.reader_sha256) == (
            other.model_sha256,
            other.number,
            other.inputs,
            other.reader_sha256,
        )

    def describe(self) -> str:
        mode = "numbers (--number)" if self.number else "digits"
        if self.reader_sha256:
            mode += f" read whole by reader {self.reader_sha256[:12]}"
        return f"model {self.model}, {mode}, inputs {' '.join(self.inputs)}"


def sidecar(output: Path) -> Path:
    """Where the job record of `output` lives: beside it, so a folder of parts stays clean."""
    return output.with_name(output.name + ".job.json")


def _new_job(
    paths: list[str], classifier: Classifier, number: bool, whole: Whole | None = None
) -> Job:
    model = Path(classifier.path)
    return Job(str(model), sha256_of(model), number, paths, whole.sha256 if whole else None)


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
    """The inputs after the `job.rows` already written, checking that the listing still
    begins with the very files (names and sizes) that those rows are about."""
    prefix, last = "", None
    for path in itertools.islice(paths, job.rows):
        prefix, last = chain(prefix, str(path)), str(path)
    if job.prefix is None and last == job.last:
        job.prefix = prefix  # An earlier version's record: its last path is all it can check.
    if prefix != job.prefix:
        raise HandwrittenError(
            f"the inputs changed since this output was started: its first {job.rows} rows "
            f"(up to {job.last}) are not about the first {job.rows} images listed now (a file "
            "renamed, added, removed or changed among them); finish with the same files, or "
            "choose another --output."
        )
    return paths


def chain(prefix: str, path: str) -> str:
    """The hash of the inputs so far (`prefix`) extended by one input: its path and size
    (-1 when it is gone), so the same inputs in the same order always give the same hash."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1
    entry = f"{prefix}\0{path}\0{size}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(entry).hexdigest()


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
    """A cell's text; a file name's bytes that are not UTF-8 (lone surrogates to Python,
    which no UTF-8 writer takes) are written as escapes, as `--json` writes them."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
    paths: Iterator[Path],
    classifier: Classifier,
    number: bool,
    address: str,
    size: int,
    whole: Whole | None = None,
) -> Iterator[list[Row]]:
    """Rows `size` at a time, in input order, read by Ray workers; RAY_WINDOW paths per
    dataset, so the driver's list of paths stays bounded however large the archive."""
    ray = _import_ray()
    started = _connect(ray, address)
    try:
        model = ray_model_bytes(classifier)
        reader = _ray_reader_bytes(whole)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        for window in _batched(paths, RAY_WINDOW):
            read = ray.data.from_items([{"path": str(p)} for p in window]).map_batches(
                read_on_worker,
                fn_kwargs={"model": model, "number": number, "reader": reader},
                batch_size=TASK,
                num_cpus=1,
            )
            for batch in read.iter_batches(batch_size=size, batch_format="numpy"):
                yield [json.loads(row) for row in batch["row"]]
    finally:
        if started:
            ray.shutdown()


def read_on_worker(
    batch: dict[str, Any], model: bytes, number: bool, reader: bytes | None = None
) -> dict[str, list[str]]:
    """One Ray task: a batch of paths read with the same preprocessing and classification as
    a local run, so the rows are the same. Tasks rather than actors: Ray retries a task whose
    node died on another node, and Ray Data's actors make Ray's core worker log an error line
    on every healthy job (ray-project/ray#57733)."""
    classifier = _worker_model(model)
    results = preprocess([Path(p) for p in batch["path"]], number, reader)
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


def _ray_reader_bytes(whole: Whole | None) -> bytes | None:
    """The sequence reader's ONNX file, for Ray workers that may not have it."""
    if whole is None:
        return None
    if whole.onnx is None:
        raise HandwrittenError(
            f"--ray: the reader {whole.reader.path} runs on Keras here; Ray workers use ONNX "
            f"Runtime, so export it first (`handwritten export --model {whole.reader.path}`)."
        )
    return whole.onnx


def open_model_bytes(model: bytes) -> Classifier:
    """A classifier from ONNX bytes: what each Ray worker loads, once."""
    from handwritten.runtime import open_onnx

    with tempfile.NamedTemporaryFile(suffix=".onnx") as copy:
        copy.write(model)
        copy.flush()
        return open_onnx(Path(copy.name))
