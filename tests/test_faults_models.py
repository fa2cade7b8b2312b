"""Model files from strangers: code, hostile configs, bombs, impostors and misfits.

tests/test_models.py covers a Lambda layer, a non-model, a truncated file and the wrong
shapes. This file adds configs that name arbitrary modules and classes, a Lambda whose code
would leave a mark if it ever ran, an archive that unpacks to far more than a model, other
formats under a .keras name, a folder, models with several inputs or outputs, and the same
through every command that loads a model, where each must be one line and exit 1. Last, the source
tree is read for any way to run code from data (pickle, marshal, eval, unsafe Keras loading).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import socket
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import pytest
from conftest import MNIST_DIR, ROOT
from drawings import draw

from handwritten.cli import main
from handwritten.errors import ModelError
from handwritten.models import MAX_CONFIG_BYTES, load_model
from handwritten.registry import resolve_model

SOURCE = ROOT / "src" / "handwritten"


def seed_archive() -> tuple[dict, dict[str, bytes]]:
    """The shipped model's config and every member of its archive."""
    with zipfile.ZipFile(resolve_model("seed")) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(members["config.json"]), members


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def with_config(path: Path, change: Callable[[dict], None]) -> Path:
    """The shipped model with its config.json edited by `change`: real weights, hostile plan."""
    config, members = seed_archive()
    config = copy.deepcopy(config)
    change(config)
    return write_archive(path, {**members, "config.json": json.dumps(config).encode()})


def dense(config: dict) -> dict:
    return config["config"]["layers"][2]


def function_ref(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


HOSTILE_CONFIGS: dict[str, Callable[[dict], None]] = {
    "model-class-os.system": lambda c: c.update(module="os", class_name="system"),
    "layer-class-builtins.eval": lambda c: dense(c).update(
        module="builtins", class_name="eval", registered_name="builtins>eval"
    ),
    "layer-registered-in-__main__": lambda c: dense(c).update(
        module=None, registered_name="__main__>Exploit"
    ),
    "activation-os.system": lambda c: dense(c)["config"].update(
        activation=function_ref("os", "system")
    ),
    "activation-subprocess.getoutput": lambda c: dense(c)["config"].update(
        activation=function_ref("subprocess", "getoutput")
    ),
    "activation-enables-unsafe-loading": lambda c: dense(c)["config"].update(
        activation=function_ref("keras.config", "enable_unsafe_deserialization")
    ),
    "initializer-from-importlib": lambda c: dense(c)["config"].update(
        kernel_initializer={
            "module": "importlib",
            "class_name": "import_module",
            "config": {"name": "antigravity"},
            "registered_name": None,
        }
    ),
}


@pytest.mark.parametrize("hostile", HOSTILE_CONFIGS)
def test_a_config_naming_code_outside_keras_is_refused(tmp_path: Path, hostile: str) -> None:
    path = with_config(tmp_path / f"{hostile}.keras", HOSTILE_CONFIGS[hostile])
    with pytest.raises(ModelError, match="cannot be loaded safely") as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert len(message) < 500, "a hostile config is not echoed back whole"
    assert "antigravity" not in sys.modules


def canary_model(path: Path, canary: Path) -> Path:
    """A model whose Lambda layer creates `canary` whenever its code runs.

    The lambda is written to a file and imported, so its code holds the path as a constant
    and needs no globals: loaded without safe mode, it would run (and does: Keras calls it
    to build the model), so only safe mode stands between it and this machine.
    """
    source = path.with_name(f"{path.stem}_payload.py")
    source.write_text(
        f"leave_a_mark = lambda x: (__import__('pathlib').Path({str(canary)!r}).touch(), x)[1]\n"
    )
    spec = importlib.util.spec_from_file_location(source.stem, source)
    payload = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(payload)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Lambda(payload.leave_a_mark),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(path)
    canary.unlink()
    return path


def test_a_lambda_never_runs_even_after_hostile_configs(tmp_path: Path) -> None:
    """After every hostile config above was tried in this process, safe mode still holds."""
    for hostile, change in HOSTILE_CONFIGS.items():
        with pytest.raises(ModelError):
            load_model(with_config(tmp_path / f"{hostile}.keras", change))
    canary = tmp_path / "code-ran"
    path = canary_model(tmp_path / "lambda.keras", canary)
    with pytest.raises(ModelError, match="cannot be loaded safely"):
        load_model(path)
    assert not canary.exists()


def test_an_archive_that_unpacks_to_far_more_than_a_model_is_refused_unread(
    tmp_path: Path,
) -> None:
    """64 MB of config.json compresses to 64 KB; refused from the zip directory, unread."""
    _, members = seed_archive()
    bomb = b"{" + b" " * (16 * MAX_CONFIG_BYTES) + b"}"
    path = write_archive(tmp_path / "bomb.keras", {**members, "config.json": bomb})
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="unpacks to") as caught:
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value).startswith(f"{path}: unpacks to ")
    assert peak < len(bomb) // 4


def test_a_zip_directory_that_lies_about_sizes_is_refused(tmp_path: Path) -> None:
    """A member whose directory entry claims a huge size: refused before Keras opens it."""
    _, members = seed_archive()
    path = write_archive(tmp_path / "lies.keras", members)
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # The first central directory entry.
    raw[entry + 24 : entry + 28] = (2**31 - 1).to_bytes(4, "little")  # Its uncompressed size.
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="unpacks to"):
        load_model(path)


def legacy_h5(path: Path) -> Path:
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.save(path.with_suffix(".h5"))
    path.with_suffix(".h5").rename(path)
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def png(path: Path) -> Path:
    draw().save(path, "PNG")
    return path


IMPOSTORS: dict[str, Callable[[Path], Path]] = {
    "h5-renamed-to-keras": lambda d: legacy_h5(d / "legacy.keras"),
    "h5-as-such": lambda d: legacy_h5(d / "legacy.h5"),
    "folder-named-keras": lambda d: folder(d / "folder.keras"),
    "zip-with-a-broken-config": lambda d: write_archive(
        d / "broken.keras", {**seed_archive()[1], "config.json": b"{not json"}
    ),
    "zip-without-weights": lambda d: write_archive(
        d / "no-weights.keras",
        {k: v for k, v in seed_archive()[1].items() if k != "model.weights.h5"},
    ),
    "weights-of-another-model": lambda d: write_archive(
        d / "mixed.keras", {**seed_archive()[1], "model.weights.h5": b"\x89HDF\r\n\x1a\n" * 64}
    ),
    "png-named-keras": lambda d: png(d / "picture.keras"),
}
IMPOSTOR_MESSAGES = {
    "folder-named-keras": "is a folder, not a model file",
    "h5-renamed-to-keras": "not a Keras model file",
    "h5-as-such": "not a Keras model file",
    "png-named-keras": "not a Keras model file",
}


@pytest.mark.parametrize("impostor", IMPOSTORS)
def test_something_else_under_a_model_name_is_a_clear_error(tmp_path: Path, impostor: str) -> None:
    path = IMPOSTORS[impostor](tmp_path)
    says = IMPOSTOR_MESSAGES.get(impostor, "cannot be loaded safely")
    with pytest.raises(ModelError, match=says) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: ")


def two_inputs() -> keras.Model:
    a, b = keras.Input((28, 28)), keras.Input((28, 28))
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(a), keras.layers.Flatten()(b)])
    return keras.Model([a, b], keras.layers.Dense(10, activation="softmax")(joined))


def two_outputs() -> keras.Model:
    image = keras.Input((28, 28))
    flat = keras.layers.Flatten()(image)
    heads = [keras.layers.Dense(10, activation="softmax")(flat) for _ in range(2)]
    return keras.Model(image, heads)


MISFITS: dict[str, tuple[Callable[[], keras.Model], str]] = {
    "two-inputs": (two_inputs, "has 2 inputs and 1 outputs"),
    "two-outputs": (two_outputs, "has 1 inputs and 2 outputs"),
    "colour-input": (
        lambda: keras.Sequential(
            [keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]
        ),
        "not a 28x28 image",
    ),
    "grid-output": (
        lambda: keras.Sequential([keras.Input((28, 28)), keras.layers.Dense(10)]),
        "not 10 digit classes",
    ),
}


@pytest.mark.parametrize("misfit", MISFITS)
def test_a_model_for_another_task_is_refused_by_its_shape(tmp_path: Path, misfit: str) -> None:
    build, says = MISFITS[misfit]
    path = tmp_path / f"{misfit}.keras"
    build().save(path)
    with pytest.raises(ModelError, match=says):
        load_model(path)


# Through the command line.


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-models")
    made = {name: IMPOSTORS[name](folder) for name in ("folder-named-keras", "h5-as-such")}
    made["hostile-config"] = with_config(
        folder / "hostile.keras", HOSTILE_CONFIGS["activation-os.system"]
    )
    made["misfit"] = folder / "misfit.keras"
    two_outputs().save(made["misfit"])
    made["lambda"] = canary_model(folder / "lambda.keras", folder / "code-ran")
    made["garbage-onnx"] = folder / "garbage.onnx"
    made["garbage-onnx"].write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    made["missing"] = folder / "missing.keras"
    return made


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
@pytest.mark.parametrize(
    "bad",
    [
        "folder-named-keras",
        "h5-as-such",
        "hostile-config",
        "lambda",
        "misfit",
        "garbage-onnx",
        "missing",
    ],
)
def test_every_command_refuses_a_bad_model_in_one_line(
    bad_models: dict[str, Path],
    bad: str,
    command: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve` must fail before it listens; `evaluate`, which reads MNIST first (so a broken
    data file is named without waiting for a model), on the model it is given."""
    path = bad_models[bad]
    rest = {
        "predict": [str(ROOT / "digits")],
        "evaluate": ["--data-dir", str(MNIST_DIR)],
        "serve": ["--port", str(free_port())],
    }[command]
    assert main([command, "--model", str(path), *rest]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"handwritten: error: {path}: "), err
    assert not (path.parent / "code-ran").exists()


# No way to run code from data anywhere in the package.

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}
FORBIDDEN_MODULES |= {"joblib", "torch"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_METHODS = {"enable_unsafe_deserialization"}
FORBIDDEN_KEYWORDS = {("safe_mode", False), ("allow_pickle", True)}


def code_from_data_uses(tree: ast.AST) -> list[str]:
    """Imports, calls and keyword arguments that can turn a file into running code."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Call):
            builtin = getattr(node.func, "id", None)
            method = getattr(node.func, "attr", None)
            if builtin in FORBIDDEN_BUILTINS:
                found.append(f"{builtin}()")
            elif method in FORBIDDEN_METHODS or (method == "load" and _is_yaml(node)):
                found.append(f"{method}()")
            for keyword in node.keywords:
                value = getattr(keyword.value, "value", None)
                if (keyword.arg, value) in FORBIDDEN_KEYWORDS:
                    found.append(f"{keyword.arg}={value}")
    return found


def _is_yaml(node: ast.Call) -> bool:
    return getattr(getattr(node.func, "value", None), "id", None) == "yaml"


def test_the_scan_finds_each_kind_of_use() -> None:
    planted = (
        "import pickle\nfrom marshal import loads\nimport yaml\neval('1')\nexec('x')\n"
        "keras.config.enable_unsafe_deserialization()\nload_model(p, safe_mode=False)\n"
        "model.compile(optimizer='adam')\n"
        "np.load(f, allow_pickle=True)\nyaml.load(s)\n"
    )
    assert sorted(code_from_data_uses(ast.parse(planted))) == sorted(
        [
            "pickle",
            "marshal",
            "eval()",
            "exec()",
            "enable_unsafe_deserialization()",
            "safe_mode=False",
            "allow_pickle=True",
            "load()",
        ]
    )


@pytest.mark.parametrize(
    "path", sorted(SOURCE.rglob("*.py")), ids=lambda p: str(p.relative_to(SOURCE))
)
def test_no_code_from_data_in_the_package(path: Path) -> None:
    assert code_from_data_uses(ast.parse(path.read_text(encoding="utf-8"))) == []
