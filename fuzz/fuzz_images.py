"""Coverage-guided fuzzing of image decoding and preprocessing, as a stranger's upload meets it.

Run through `make fuzz` (bounded time), or by hand with libFuzzer's flags:

    python fuzz/fuzz_images.py -max_total_time=60 -timeout=10 .fuzz/corpus fuzz/corpus

Any input is fine as long as `load_digit` either returns a 28x28 uint8 digit (or None
for no ink) or raises ImageError. Anything else is a finding: another exception escaping
(a 500 in the server, a traceback in the CLI), a hang (libFuzzer's -timeout), or memory
beyond a fixed ceiling (the address-space limit set below turns runaway allocation into a
MemoryError that escapes, instead of the machine swapping).
"""

from __future__ import annotations

import resource
import sys
import warnings

import atheris
import numpy as np

MEMORY_LIMIT = 3 * 2**30
"""Address space for the whole process: libraries take ~1 GB, the largest image allowed
(40 million pixels, RGBA) and its working copies a few hundred MB more."""

with atheris.instrument_imports(include=["PIL", "handwritten"]):
    from PIL import Image

    from handwritten.errors import ImageError
    from handwritten.predict import load_digit

    Image.init()  # Import every decoder now, inside the block, so they are instrumented too.


def test_one_input(data: bytes) -> None:
    """One input: a digit, no digit, or ImageError; anything else is a crash to report."""
    try:
        result = load_digit(data, "fuzz-input")
    except ImageError as error:
        if "fuzz-input" not in str(error):
            raise AssertionError(f"error does not name the input: {error}") from None
        return
    if result is not None and (result.shape != (28, 28) or result.dtype != np.uint8):
        raise AssertionError(f"load_digit returned {result.dtype} {result.shape}")


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    warnings.simplefilter("ignore")  # Pillow warns on every odd TIFF tag; open_image still
    # turns its DecompressionBombWarning into an error inside its own catch_warnings.
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
