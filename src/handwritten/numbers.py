"""Read a whole number the way docTR reads text: finding proposes where the number may be,
the sequence reader (`reader.py`) reads each proposal whole, and the reading the reader is
surest of is the answer: how sure is learned (`fit_chooser`) on generated images, where the
right number is known, from the reader's own confidences.

The proposals (`proposals`): the whole image (a crop of a line or a cell); in a photo or a
scan (`CROP_SIDE` and more), the line of digits that `page.find_digits` finds, with some
paper around it; and the lines of ink in the image (`ink_lines`: a small number in a large
cell, where page finding takes the cell's rules or the scanner's margin for the writing). The
reader learned from generated crops with rules, margins, words and paper around the number,
so a proposal that holds the number reads well and one that cuts through it or holds none
reads with little confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from handwritten import page
from handwritten.errors import DataError
from handwritten.preprocess import gray_on_white
from handwritten.reader import Reader, Reading

WORK_SIDE = 1600
"""Proposals are cut from the image reduced to this longest side: the reader sees 32 pixels
of height, so more detail only costs time (a 12-megapixel photo is 4000 pixels wide)."""
AROUND_FOUND = (0.5, 0.3)
"""Paper kept around the found digits, as a share of their height: sideways (room for a
digit that finding missed at either end) and up and down."""
INK_LINES = 2
"""How many lines of ink are proposed, those with the most ink first."""
LINE_GAP = 1.5
"""Ink closer side by side than this many digit heights is one line: a number's digits sit
up to about 0.8 of a height apart, gaps between groups of three included."""
AROUND_INK = (0.2, 0.5)
"""Paper kept around a line of ink, as shares of its height on every side: each line is
proposed with each, and the reader's surest reading wins (a flourish under the number, or a
neighbour's stroke, may fall inside one and not the other)."""
RULE_SHARE = 0.3
"""Ink running straight for this share of the image's width (or height) is a rule or the
edge of a margin, not writing."""
TALL_RULE_SHARE = 0.9
"""The lines of ink are proposed a second time, taking only an upright run this share of
the crop's height for a rule: in a crop cut tight round a number, a 1 is about as tall as
the crop and went with the rules, while in a large cell the rules beside a small number
are shorter than the cell and need RULE_SHARE. Both sets of lines together read right 1 more
of the 400 seeded register cells (2 more of all 2,697) and 4 more of the 300 seed-43
generated images."""
CROP_SIDE = page.MIN_WORK_SIDE
"""An image whose longer side is shorter than this is a crop of a line or a cell, which page
finding enlarges to this size to cut its digits for the classifier. There, what it finds
adds nothing the whole crop and its lines of ink do not propose, and it took most of a
crop's time, so it is asked only when the lines of ink show none. Against asking it always
(the chooser fitted again each way): 2,460 of the 2,697 register cells read right against
2,437 (character error rate 8.2% against 9.0%), 198 of the 300 seed-43 generated images
against 197, the same 42 of the 47 development numbers, and the bench's line crop in 17 ms
against 51. In a larger image, a photo or a scan, page finding finds the number among
everything else: left out there too, the seed-43 images read 185 and the development
numbers 40. With one chooser, leaving it out below 256 pixels read 200 seed-43 images (and
would not speed up the bench's line crop, 290 wide), below 512 198, below 768 191, below
1,024 187."""
PAPER_AT_EDGE = 0.2
"""Where the writing touches an edge of the image (a crop cut tight round the number, as
people and datasets cut them), a proposal meeting that edge reaches this share of its height
beyond it, onto paper (`_cut`): the reader learned numbers with 0 to 60% of their height of
paper around them, seldom none, and at the edge it dropped a leading 1 or misread a digit as
tall as the crop. On the generator's 500 validation images (seeds 43 and 2024) cut tight, 0
to 5% of the number's height around it: 330 read right against 306 without (0.1 of the
height: 319; on the left and right only: 301). On the images as composed, where writing
seldom meets the edge, 369 against 374; on the 2,697 register cells 2,458 against 2,460
(character error rate 8.6% against 8.2%: three cells now read as long strings); the 47
development numbers 44 against 42 (3600 and 15 gained). The chooser, fitted again on these
proposals, chose no better."""
EDGE_PIXELS = 2
"""Writing this close to an edge of the working copy touches it."""
MARGIN_LEVEL = 100
"""Below this mean 8-bit level over a wide neighbourhood the crop is a dark margin, not paper."""
LOCAL_CONTRAST = 12
"""How much darker than its neighbourhood's mean (in 8-bit levels) a pixel must be to be ink."""
MIN_MARK_AREA = 6
"""Marks of fewer pixels are specks and scanner noise, not strokes."""


Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels."""


@dataclass(frozen=True)
class Proposal:
    """Where the number may be, and what proposed it: "found" (page finding), "whole" (the
    whole image), or "ink" (a line of ink, `ink_lines`). The box may reach beyond the image
    where the writing touches its edge (`PAPER_AT_EDGE`)."""

    kind: str
    box: Box


@dataclass(frozen=True)
class NumberRead:
    """The reader's reading of the best proposal, and that proposal in the image's pixels."""

    reading: Reading
    proposal: Proposal


def read_number(
    image: Image.Image, reader: Reader, found: list[page.DigitBox] | None = None
) -> NumberRead | None:
    """The number in the image as the reader reads its best proposal; None when no ink is
    found (`proposals`) or no proposal reads a digit. `found` is what `page.find_digits`
    found in the image, when the caller has it already."""
    proposed, readings, scale = _read_proposals(image, reader, found)
    scores = sureness(readings, reader.card)
    scored = [(score, i) for i, score in enumerate(scores) if readings[i].digits]
    if not scored:
        return None
    _, best = max(scored)
    box = tuple(round(v / scale) for v in proposed[best].box)
    return NumberRead(readings[best], Proposal(proposed[best].kind, box))


def _read_proposals(
    image: Image.Image, reader: Reader, found: list[page.DigitBox] | None = None
) -> tuple[list[Proposal], list[Reading], float]:
    """The image's proposals (in the working copy's pixels), the reader's reading of each,
    and the scale from the image's pixels to the working copy's. Whether the writing is
    lighter than the paper is judged once, on the whole image, for all its proposals: against
    judging each crop alone, 1 register cell of 2,697 fewer read, 1 of 300 generated images
    more, and a line crop read about 15% faster."""
    grey, scale = _working_grey(image)
    proposed = proposals(image, grey, scale, found)
    if not proposed:
        return [], [], scale
    lighter = page.writing_is_lighter(grey, across_line=True)
    return proposed, reader.read([_cut(grey, p.box) for p in proposed], lighter), scale


CHOOSER_FEATURES = (
    "log mean confidence over the frames",
    "log confidence of the least sure digit",
    "mean log confidence of the digits",
    "log number of digits",
)
"""What the chooser weighs, all from the reader's own reading of a proposal: no feature says
what kind of proposal it was or where, which would learn the generator's scenes (with them,
the choice gained 12 of 300 generated images and lost 5 of 400 register cells)."""


def features(reading: Reading) -> np.ndarray:
    """CHOOSER_FEATURES of a reading with at least one digit."""
    digits = np.log(np.maximum([digit.confidence for digit in reading.digits], 1e-9))
    return np.array(
        [np.log(max(reading.confidence, 1e-9)), digits.min(), digits.mean(), np.log(len(digits))],
        np.float64,
    )


def sureness(readings: Sequence[Reading], card: dict[str, Any] | None) -> list[float]:
    """How likely each reading is to be the number, to choose between proposals; 0 for a
    reading without digits. By the chooser the reader's card carries (`fit_chooser`), else
    by its mean confidence times its least sure digit's: a proposal cutting through the
    number reads some digits surely and one not at all, which the mean alone misses."""
    chooser = (card or {}).get("chooser")
    scores = []
    for reading in readings:
        if not reading.digits:
            scores.append(0.0)
        elif chooser is None:
            least = min(digit.confidence for digit in reading.digits)
            scores.append(reading.confidence * least)
        else:
            scores.append(_chooser_probability(chooser, features(reading)))
    return scores


def _chooser_probability(chooser: dict[str, Any], values: np.ndarray) -> float:
    scaled = (values - np.asarray(chooser["mean"])) / np.asarray(chooser["scale"])
    logit = float(scaled @ np.asarray(chooser["weights"]) + chooser["bias"])
    return float(np.exp(-np.logaddexp(0.0, -logit)))


def fit_chooser(examples: Iterable[tuple[list[Reading], str]]) -> dict[str, Any]:
    """A logistic regression of whether a proposal's reading is the number, on
    CHOOSER_FEATURES, from the readings of every proposal of labelled images
    (`proposal_readings`): what a reader's card keeps under `chooser`. Fitted on generated
    images only: the development and register sets are for measuring it."""
    rows, right = [], []
    for readings, label in examples:
        for reading in readings:
            rows.append(features(reading))
            right.append(reading.text == label)
    if not rows:
        raise DataError("no proposal of the given images read any digit; nothing to fit on.")
    values, targets = np.array(rows), np.array(right, np.float32)
    mean, scale = values.mean(axis=0), values.std(axis=0) + 1e-9
    weights, bias = _logistic_regression((values - mean) / scale, targets)
    return {
        "features": list(CHOOSER_FEATURES),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": weights.tolist(),
        "bias": bias,
        "proposals": len(targets),
        "right_proposals": int(targets.sum()),
    }


def choice_figures(
    examples: Iterable[tuple[list[Reading], str]], chooser: dict[str, Any]
) -> dict[str, int]:
    """Of labelled images (their proposals' readings), how many have the number among the
    readings, and how many the chooser, and the rule it replaces (no chooser), read right."""
    figures = {"images": 0, "among_proposals": 0, "chooser": 0, "product_rule": 0}
    for readings, label in examples:
        figures["images"] += 1
        figures["among_proposals"] += any(r.text == label for r in readings)
        for name, card in (("chooser", {"chooser": chooser}), ("product_rule", None)):
            scores = sureness(readings, card)
            figures[name] += bool(readings) and readings[int(np.argmax(scores))].text == label
    return figures


def proposal_readings(image: Image.Image, reader: Reader) -> list[Reading]:
    """The readings with digits of an image's proposals, as `read_number` reads them."""
    _, readings, _ = _read_proposals(image, reader)
    return [r for r in readings if r.digits]


def _logistic_regression(values: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the mean log loss, by SciPy's L-BFGS (as temperature
    scaling is fitted in `trust`): four features need no network, and no TensorFlow."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    signs = 2.0 * targets - 1.0
    with_bias = np.column_stack([values, np.ones(len(values))])

    def loss_and_gradient(coefficients: np.ndarray) -> tuple[float, np.ndarray]:
        margins = signs * (with_bias @ coefficients)
        gradient = -(with_bias.T @ (signs * expit(-margins))) / len(margins)
        return float(-log_expit(margins).mean()), gradient

    fitted = minimize(loss_and_gradient, np.zeros(with_bias.shape[1]), jac=True, method="L-BFGS-B")
    return fitted.x[:-1], float(fitted.x[-1])


def _cut(grey: np.ndarray, box: Box) -> np.ndarray:
    """The box's part of `grey`; where the box reaches beyond the image (`_paper_beyond`), the
    paper's level (the image's median) fills it."""
    left, top, right, bottom = box
    height, width = grey.shape
    inside = grey[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
    beyond = ((max(0, -top), max(0, bottom - height)), (max(0, -left), max(0, right - width)))
    if not any(sum(beyond, ())):
        return inside
    return np.pad(inside, beyond, constant_values=int(np.median(grey)))


def proposals(
    image: Image.Image,
    grey: np.ndarray,
    scale: float,
    found: list[page.DigitBox] | None = None,
) -> list[Proposal]:
    """Where the number may be, in `grey`'s pixels (`image` reduced by `scale`), each box
    once (finding often proposes the whole crop), the first to propose it named. In a crop
    (`CROP_SIDE`) with lines of ink, page finding is not asked (nor is it when its digits
    are `found` already). None when page finding finds no ink: the reader is not asked to
    find digits in blank paper."""
    height, width = grey.shape
    boxes = [Proposal("whole", (0, 0, width, height))]
    writing = _writing(grey, (RULE_SHARE, TALL_RULE_SHARE))
    marks = [_marks(ink) for ink in writing]
    lines = [
        Proposal("ink", box)
        for ink, its_marks in zip(writing, marks, strict=True)
        for box in _lines_of(ink, its_marks)
    ]
    if max(image.size) >= CROP_SIDE or not lines:
        # A photo or a scan; or a crop where ink_lines sees none, which page finding may
        # yet find (light writing on a dark ground, a drawing a few pixels wide).
        found = page.find_digits(image) if found is None else found
        if not found:
            return []
        boxes.append(Proposal("found", _around_found(found, scale, (width, height))))
    boxes.extend(lines)
    # The marks left once only rules of TALL_RULE_SHARE are taken away: a tall 1 at the edge
    # is writing that touches it.
    touched = _edges_touched(marks[-1], grey.shape)
    distinct: dict[Box, Proposal] = {}
    for proposal in boxes:
        left, top, right, bottom = proposal.box
        if right > left and bottom > top:
            box = _paper_beyond(proposal.box, touched, grey.shape)
            distinct.setdefault(box, Proposal(proposal.kind, box))
    return list(distinct.values())


def _around_found(found: list[page.DigitBox], scale: float, size: tuple[int, int]) -> Box:
    """The box round the found digits, scaled to the working copy, with AROUND_FOUND of
    paper on each side, inside the image of `size` (width, height)."""
    corners = np.array([digit.box for digit in found], np.float64) * scale
    left, top = corners[:, 0].min(), corners[:, 1].min()
    right, bottom = corners[:, 2].max(), corners[:, 3].max()
    side, up = np.array(AROUND_FOUND) * (bottom - top)
    width, height = size
    return (
        max(0, int(left - side)),
        max(0, int(top - up)),
        min(width, int(right + side) + 1),
        min(height, int(bottom + up) + 1),
    )


def ink_lines(
    grey: np.ndarray, count: int = INK_LINES, upright_rules: Sequence[float] = (RULE_SHARE,)
) -> list[Box]:
    """The lines of writing in a grey crop, the most ink first, with paper around each.

    Ink is what is darker than its neighbourhood, so a scanner's black margin, dark but even,
    is not ink; its edge is, and goes with the rules when straight and with the margin when
    not (`_margins`). Marks too small to be writing go; what is left is grouped side by side
    into lines, as a text detector groups letters into words. Each of the `count` lines with
    the most ink comes back once for each share of paper in AROUND_INK. This finds a small
    number in a large cell, where the whole cell reads badly: the reader then sees the number
    at the size it learned, not a speck beside a margin. The lines are found once for each
    of `upright_rules`, the share of the crop's height an upright run must reach to be a
    rule (TALL_RULE_SHARE keeps a tall 1)."""
    return [
        box for ink in _writing(grey, upright_rules) for box in _lines_of(ink, _marks(ink), count)
    ]


def _writing(grey: np.ndarray, upright_rules: Sequence[float]) -> list[np.ndarray]:
    """The ink less rules (`_without_rules`, once for each of `upright_rules`) and margins."""
    margins = _margins(grey)
    cleaned = _without_rules(_local_ink(grey), upright_rules)
    for ink in cleaned:
        ink[margins] = 0
    return cleaned


def _marks(ink: np.ndarray) -> np.ndarray:
    """The connected marks in `ink` of at least MIN_MARK_AREA pixels, as OpenCV's stats rows
    (left, top, width, height, area)."""
    _, _, marks, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return marks[1:][marks[1:, cv2.CC_STAT_AREA] >= MIN_MARK_AREA]


def _edges_touched(marks: np.ndarray, shape: tuple[int, ...]) -> tuple[bool, bool, bool, bool]:
    """Whether one of the `marks` of writing reaches within EDGE_PIXELS of the (left, top,
    right, bottom) edge of an image of `shape`."""
    height, width = shape
    left, top = marks[:, cv2.CC_STAT_LEFT], marks[:, cv2.CC_STAT_TOP]
    right, bottom = left + marks[:, cv2.CC_STAT_WIDTH], top + marks[:, cv2.CC_STAT_HEIGHT]
    return (
        bool((left < EDGE_PIXELS).any()),
        bool((top < EDGE_PIXELS).any()),
        bool((right > width - EDGE_PIXELS).any()),
        bool((bottom > height - EDGE_PIXELS).any()),
    )


def _paper_beyond(box: Box, touched: tuple[bool, ...], shape: tuple[int, ...]) -> Box:
    """The box reaching PAPER_AT_EDGE of its height beyond each edge of the image that it
    meets and that the writing touches."""
    left, top, right, bottom = box
    paper = int(PAPER_AT_EDGE * (bottom - top)) + 1
    at_edge = (left <= 0, top <= 0, right >= shape[1], bottom >= shape[0])
    grow = [
        paper if meets and touches else 0 for meets, touches in zip(at_edge, touched, strict=True)
    ]
    return (left - grow[0], top - grow[1], right + grow[2], bottom + grow[3])


def _lines_of(ink: np.ndarray, marks: np.ndarray, count: int = INK_LINES) -> list[Box]:
    """The `count` lines with the most ink among `marks` (`_marks` of `ink`), each boxed with
    every share of paper in AROUND_INK."""
    if len(marks) == 0:
        return []
    areas = marks[:, cv2.CC_STAT_AREA]
    digit_height = float(np.median(marks[areas >= 0.2 * areas.max(), cv2.CC_STAT_HEIGHT]))
    reach = max(1, int(digit_height * LINE_GAP))
    footprint = np.zeros_like(ink)
    for left, top, width, height, _ in marks:
        footprint[top : top + height, left : left + width] = 255
    grown = cv2.dilate(footprint, np.ones((1, reach), np.uint8))
    count_lines, lines, spans, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    ink_per_line = np.bincount(lines[ink > 0], minlength=count_lines)[1:]
    return [
        _around(spans[1 + index], reach // 2, ink.shape, share)
        for index in np.argsort(-ink_per_line, kind="stable")[:count]
        for share in AROUND_INK
    ]


def _local_ink(grey: np.ndarray) -> np.ndarray:
    """255 where a pixel is LOCAL_CONTRAST darker than the mean of a neighbourhood a quarter
    of the crop's shorter side wide."""
    block = max(3, (min(grey.shape) // 4) | 1)
    return cv2.adaptiveThreshold(
        grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, LOCAL_CONTRAST
    )


def _margins(grey: np.ndarray) -> np.ndarray:
    """Where the crop is dark on average over a neighbourhood a quarter of its shorter side
    wide (a scanner's margin, the table beyond the page), widened by half that sideways so
    the margin's ragged edge goes too. A pen's stroke, far thinner than that, never is."""
    size = max(3, min(grey.shape) // 4)
    dark = np.uint8(cv2.blur(grey, (size, size)) < MARGIN_LEVEL)
    return cv2.dilate(dark, np.ones((3, size // 2 * 2 + 1), np.uint8)) > 0


def _without_rules(ink: np.ndarray, upright_rules: Sequence[float]) -> list[np.ndarray]:
    """The ink less long straight horizontal and vertical runs (and a pixel round them), once
    for each share of the crop's height an upright run must reach to be a rule; the
    horizontal runs, the same for every share, are found once."""
    height, width = ink.shape
    across = cv2.morphologyEx(
        ink, cv2.MORPH_OPEN, np.ones((1, max(8, int(width * RULE_SHARE))), np.uint8)
    )
    cleaned = []
    for upright_rule in upright_rules:
        down = np.ones((max(8, int(height * upright_rule)), 1), np.uint8)
        rules = across | cv2.morphologyEx(ink, cv2.MORPH_OPEN, down)
        cleaned.append(ink & ~cv2.dilate(rules, np.ones((3, 3), np.uint8)))
    return cleaned


def _around(span: np.ndarray, grown: int, shape: tuple[int, ...], share: float) -> Box:
    """A line's box, less the `grown` pixels the grouping added at each end, with paper."""
    left, top, width, height, _ = (int(v) for v in span)
    left, right = left + grown, max(left + grown + 1, left + width - grown)
    paper = int(share * height) + 1
    return (
        max(0, left - paper),
        max(0, top - paper),
        min(shape[1], right + paper),
        min(shape[0], top + height + paper),
    )


def _working_grey(image: Image.Image) -> tuple[np.ndarray, float]:
    """The image as grey uint8 (transparency on white), at most WORK_SIDE on its longer side,
    and the scale from the original's pixels to these."""
    scale = min(1.0, WORK_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BOX,
        )
    return np.round(gray_on_white(image) * 255).astype(np.uint8), scale
