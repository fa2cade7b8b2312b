"""Corrections from the page (`serve --collect`): what lands where, the caps, and that nothing
is written without --collect. The app runs in-process around a classifier made here."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from drawings import draw, encode
from fastapi.testclient import TestClient
from PIL import Image

from handwritten import collect
from handwritten.cli import main
from handwritten.errors import HandwrittenError
from handwritten.predict import load_digit
from handwritten.serve import COLLECT_ENV, MODEL_ENV, app_from_env, create_app

SEVEN = encode(draw())
WAIT_SECONDS = 60
"""The longest a test waits for something to happen before it fails: never a measured time."""
BLANK = encode(Image.new("L", (280, 280), 255))


class AlwaysThree:
    """A classifier that reads every drawing as 3: so a 7 is a wrong answer to correct."""

    path = None
    card: ClassVar = {"name": "always-three"}

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.tile(np.eye(10, dtype=np.float32)[3], (len(images), 1))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "collected"


@pytest.fixture
def client(folder: Path) -> Iterator[TestClient]:
    with TestClient(create_app(AlwaysThree(), collect=folder)) as client:
        yield client


def correct(client: TestClient, data: bytes = SEVEN, digit: str = "7", name: str = "d.png"):
    return client.post(
        "/api/corrections", files={"file": (name, data, "image/png")}, data={"digit": digit}
    )


def images_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix in (".png", ".jpg"))


def test_the_page_learns_whether_corrections_are_kept(client: TestClient) -> None:
    assert client.get("/api/config").json() == {"collecting": True}
    with TestClient(create_app(AlwaysThree())) as plain:
        assert plain.get("/api/config").json() == {"collecting": False}


def test_a_correction_keeps_the_drawing_as_sent_and_as_the_model_saw_it(
    client: TestClient, folder: Path
) -> None:
    response = correct(client)

    assert response.status_code == 201
    answer = response.json()
    assert answer["digit"] == 7
    drawing, seen = folder / answer["drawing"], folder / answer["seen"]
    assert drawing.parent == folder / "7"
    assert seen.parent == folder / "7" / "seen"
    assert drawing.read_bytes() == SEVEN
    np.testing.assert_array_equal(np.asarray(Image.open(seen)), load_digit(SEVEN))
    assert images_under(folder) == sorted([drawing, seen])


def test_a_jpeg_is_kept_as_a_jpeg(client: TestClient, folder: Path) -> None:
    photo = encode(draw().convert("RGB"), "JPEG")
    answer = correct(client, photo, "4", "photo.jpg").json()
    assert answer["drawing"].endswith(".jpg")
    assert (folder / answer["drawing"]).read_bytes() == photo


def test_every_correction_gets_its_own_name(client: TestClient, folder: Path) -> None:
    names = {correct(client).json()["drawing"] for _ in range(5)}
    assert len(names) == 5
    assert len(list((folder / "7").glob("*.png"))) == 5
    assert len(list((folder / "7" / "seen").glob("*.png"))) == 5


def test_a_name_already_taken_is_never_overwritten(tmp_path: Path) -> None:
    taken = tmp_path / "7" / "mine.png"
    taken.parent.mkdir()
    taken.write_bytes(b"first")
    with pytest.raises(FileExistsError):
        collect._write_new(taken, b"second")
    assert taken.read_bytes() == b"first"
    assert list(taken.parent.iterdir()) == [taken]  # No temporary file left behind.


def test_a_file_over_the_cap_is_refused_and_nothing_written(
    client: TestClient, folder: Path
) -> None:
    client.app.state.collection = collect.Collection(folder, max_file_bytes=len(SEVEN) - 1)
    response = correct(client)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    client.app.state.collection = collect.Collection(folder, max_file_bytes=len(SEVEN))
    assert correct(client).status_code == 201


def test_a_full_folder_answers_507_and_writes_nothing(client: TestClient, folder: Path) -> None:
    correct(client)
    used = sum(path.stat().st_size for path in images_under(folder))
    client.app.state.collection = collect.Collection(folder, max_folder_bytes=used + 100)
    kept = images_under(folder)

    response = correct(client)

    assert response.status_code == 507
    assert "full" in response.json()["detail"]
    assert images_under(folder) == kept


def test_without_collect_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(AlwaysThree())) as plain:
        response = correct(plain)
    assert response.status_code == 404
    assert "--collect" in response.json()["detail"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("files", "form", "status", "named"),
    [
        ({"file": ("d.png", SEVEN, "image/png")}, {}, 422, "digit"),
        ({"file": ("d.png", SEVEN, "image/png")}, {"digit": "12"}, 422, "digit"),
        ({"file": ("d.png", SEVEN, "image/png")}, {"digit": "x"}, 422, "digit"),
        (None, {"digit": "7"}, 422, "file"),
        ({"file": ("blank.png", BLANK, "image/png")}, {"digit": "7"}, 422, "blank.png"),
        ({"file": ("junk.png", b"not an image", "image/png")}, {"digit": "7"}, 400, "junk.png"),
        ({"file": ("empty.png", b"", "image/png")}, {"digit": "7"}, 400, "empty.png"),
    ],
)
def test_bad_corrections_say_what_to_send_and_write_nothing(
    client: TestClient, folder: Path, files, form, status, named
) -> None:
    response = client.post("/api/corrections", files=files, data=form)
    assert response.status_code == status
    assert named in response.json()["detail"]
    assert images_under(folder) == []


def test_tune_reads_the_collected_folder_as_it_is(client: TestClient, folder: Path) -> None:
    from handwritten.tune import read_drawings

    for digit in "717":
        assert correct(client, digit=digit).status_code == 201

    drawings = read_drawings(folder)

    assert sorted(drawings.labels.tolist()) == [1, 7, 7]
    assert drawings.skipped == []
    np.testing.assert_array_equal(drawings.images[0], load_digit(SEVEN))


def test_the_api_docs_describe_corrections(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/corrections"]["post"]
    assert {"201", "404", "413", "422", "507"} <= set(post["responses"])
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    assert {"file", "digit"} <= set(schema["components"]["schemas"][form]["properties"])
    assert "collecting" in schema["components"]["schemas"]["ConfigOut"]["properties"]


def test_workers_take_the_collect_folder_from_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, "seed")
    monkeypatch.setenv(COLLECT_ENV, str(folder))
    with TestClient(app_from_env()) as client:
        assert client.get("/api/config").json() == {"collecting": True}
        assert correct(client).status_code == 201
    assert len(list((folder / "7").glob("*.png"))) == 1


def test_a_collect_folder_that_cannot_be_made_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(HandwrittenError, match="--collect"):
        collect.prepare_folder(a_file / "corrections")

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = str(probe.getsockname()[1])
    assert main(["serve", "--port", port, "--model", "seed", "--collect", str(a_file)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"handwritten: error: --collect {a_file}")
    assert "Traceback" not in error


@pytest.mark.parametrize("digit", ["²", "٣", "\uff11", "⁷"])
def test_only_ascii_digits_are_digits(client: TestClient, folder: Path, digit: str) -> None:
    """`"²".isdigit()` is true and `int("²")` raises: that was a 500. An Arabic-Indic ٣ and
    a full-width 1 were kept as 3 and 1."""
    response = correct(client, digit=digit)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("field `digit`:")
    assert images_under(folder) == []


def test_a_digit_sent_as_a_file_is_named_as_the_field_digit(
    client: TestClient, folder: Path
) -> None:
    upload = {"file": ("d.png", SEVEN, "image/png"), "digit": ("seven.txt", b"7", "text/plain")}
    response = client.post("/api/corrections", files=upload)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("digit: ")
    assert "form field `digit` (text, not a file)" in detail
    assert "`file`" not in detail
    assert images_under(folder) == []


def test_an_mpo_jpeg_from_a_phone_is_kept_as_a_jpeg(client: TestClient, folder: Path) -> None:
    """Many phone cameras write MPO: a JPEG followed by more images. Pillow names it MPO."""
    buffer = io.BytesIO()
    seven = draw().convert("RGB")
    seven.save(buffer, "MPO", save_all=True, append_images=[seven.rotate(90)])
    with Image.open(buffer) as opened:
        assert opened.format == "MPO"
    response = correct(client, buffer.getvalue(), "7", "phone.jpg")
    assert response.status_code == 201, response.text
    assert response.json()["drawing"].endswith(".jpg")
    assert (folder / response.json()["drawing"]).read_bytes() == buffer.getvalue()


def test_head_asks_for_the_config_as_monitors_do(client: TestClient) -> None:
    response = client.head("/api/config")
    assert response.status_code == 200
    assert response.content == b""


def test_collect_takes_the_error_model_from_below_not_from_serve() -> None:
    """collect and serve imported each other; the error model now sits below both."""
    code = "import sys, handwritten.collect; print('handwritten.serve' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_corrections_are_decoded_one_at_a_time_like_predictions(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's pool decoded up to 40 uploads at once: 12 large PNGs took 5.7 GB. Four
    corrections arrive together; the first decode waits until the other three are either
    decoding beside it (no bound) or queued for the reader /api/predict uses (the bound)."""
    senders = 4
    reader = client.app.state.reader
    guard = threading.Lock()
    decoding = {"now": 0, "most": 0, "first": True}
    real_load_digit = collect.load_digit

    def counted_load_digit(data: bytes, name: str) -> np.ndarray | None:
        with guard:
            decoding["now"] += 1
            decoding["most"] = max(decoding["most"], decoding["now"])
            first, decoding["first"] = decoding["first"], False
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while first and time.monotonic() < deadline:
                queued = reader.statistics().tasks_waiting
                if decoding["now"] == senders or queued == senders - 1:
                    break
                time.sleep(0.01)
            return real_load_digit(data, name)
        finally:
            with guard:
                decoding["now"] -= 1

    monkeypatch.setattr(collect, "load_digit", counted_load_digit)
    with ThreadPoolExecutor(senders) as pool:
        statuses = list(pool.map(lambda _: correct(client).status_code, range(senders)))
    assert statuses == [201] * senders
    assert decoding["most"] == 1


def disk_used(folder: Path) -> tuple[int, int]:
    """What `du` would say, but for the count the server keeps: bytes in whole blocks, and
    the number of entries (inodes)."""
    entries = [path for path in folder.rglob("*") if path.name != collect.USAGE]
    return sum(path.lstat().st_blocks * 512 for path in entries), len(entries)


def test_the_server_and_bulk_reading_import_where_there_is_no_fcntl() -> None:
    """fcntl is POSIX only: importing it made `handwritten serve` and `predict --output` fail
    on Windows before reading anything."""
    script = (
        "import sys\nsys.modules['fcntl'] = None\n"
        "import handwritten.serve, handwritten.bulk, handwritten.download\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("size", "counted"), [(0, 0), (1, 4096), (4096, 4096), (4097, 8192)])
def test_where_the_system_reports_no_blocks_a_file_counts_whole_clusters(
    size: int, counted: int
) -> None:
    """Windows' stat has no st_blocks: reading it there failed every correction."""
    without_blocks = os.stat_result((0o100644, 0, 0, 1, 0, 0, size, 0, 0, 0))
    assert collect._disk_bytes(without_blocks) == counted


def test_the_folder_cap_counts_disk_blocks_not_file_sizes(client: TestClient, folder: Path) -> None:
    """A 489-byte drawing takes a whole block: counting sizes let the cap pass many times
    over. Corrections are kept until the folder is full, and then the disk holds no more
    than the cap."""
    cap = 16 * 2**16
    client.app.state.collection = collect.Collection(folder, max_folder_bytes=cap)
    statuses = [correct(client).status_code for _ in range(300)]
    assert 201 in statuses
    assert statuses[-1] == 507
    assert disk_used(folder)[0] <= cap


def test_the_folder_cap_counts_files(client: TestClient, folder: Path) -> None:
    client.app.state.collection = collect.Collection(folder, max_folder_files=10)
    statuses = [correct(client).status_code for _ in range(10)]
    assert statuses[:3] == [201] * 3
    assert statuses[-1] == 507
    assert "files" in correct(client).json()["detail"]
    assert disk_used(folder)[1] <= 10


def test_the_folder_is_walked_once_at_start_not_on_every_save(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each save walked the whole folder under the shared lock: 50 ms a save at 7,000 files,
    growing with the folder. Now the start-up walks it and each save adds what it wrote."""
    walks = []
    real_walk = os.walk

    def counted_walk(top, *args, **kwargs):
        walks.append(top)
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(collect.os, "walk", counted_walk)
    with TestClient(create_app(AlwaysThree(), collect=folder)) as client:
        assert len(walks) == 1
        for digit in "7717":
            assert correct(client, digit=digit).status_code == 201
    assert len(walks) == 1
    monkeypatch.setattr(collect.os, "walk", real_walk)
    assert collect._recorded(folder) == collect._usage_of(folder)


def test_every_worker_adds_to_the_one_count(folder: Path) -> None:
    """Two workers' collections on one folder (as `serve --workers 2` has): each save adds to
    the count kept in the folder, so the cap holds across them."""
    first, second = collect.open_collection(folder), collect.open_collection(folder)
    seen = load_digit(SEVEN)
    for collection, digit in ((first, 1), (second, 2), (first, 3)):
        collection.save(SEVEN, ".png", seen, digit)
    blocks, entries = disk_used(folder)
    recorded = collect._recorded(folder)
    assert recorded == collect._usage_of(folder)
    assert recorded == collect.Usage(blocks, entries)


def test_an_unreadable_correction_is_told_what_is_wrong_without_internals(
    client: TestClient,
) -> None:
    response = correct(client, b"\x00not an image at all", "7", "scan.png")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("scan.png: not a readable image (its bytes are no image format")
    for internal in ("Error", "<", "0x", "BytesIO", "object at"):
        assert internal not in detail
