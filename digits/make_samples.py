"""Draw the sample digits in this folder, the way people draw them in a paint program.

Run from the project root: `.venv/bin/python digits/make_samples.py`. Each digit is a few pen
strokes, rendered in one of the styles people's drawings come in (dark on white, white on
black, ink only in the alpha channel, a 1-px pencil on a 28x28 canvas, a thick marker on a
large canvas), so `make run` shows the preprocessing coping with each.
"""

from pathlib import Path

from PIL import Image, ImageDraw

STROKES = {
    0: [
        [
            (0.5, 0.1),
            (0.25, 0.25),
            (0.2, 0.55),
            (0.3, 0.85),
            (0.55, 0.9),
            (0.75, 0.7),
            (0.78, 0.35),
            (0.65, 0.12),
            (0.5, 0.1),
        ]
    ],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [
        [
            (0.25, 0.3),
            (0.4, 0.12),
            (0.65, 0.12),
            (0.75, 0.3),
            (0.65, 0.5),
            (0.25, 0.88),
            (0.8, 0.88),
        ]
    ],
    3: [
        [(0.25, 0.15), (0.7, 0.15), (0.45, 0.45), (0.7, 0.6), (0.7, 0.8), (0.5, 0.9), (0.25, 0.82)]
    ],
    4: [[(0.6, 0.9), (0.6, 0.1), (0.2, 0.65), (0.8, 0.65)]],
    5: [
        [
            (0.75, 0.12),
            (0.32, 0.12),
            (0.28, 0.45),
            (0.55, 0.42),
            (0.72, 0.58),
            (0.7, 0.8),
            (0.5, 0.9),
            (0.25, 0.82),
        ]
    ],
    6: [
        [
            (0.68, 0.1),
            (0.4, 0.3),
            (0.27, 0.6),
            (0.35, 0.85),
            (0.6, 0.88),
            (0.72, 0.68),
            (0.6, 0.5),
            (0.38, 0.52),
            (0.28, 0.65),
        ]
    ],
    7: [[(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)]],
    8: [
        [
            (0.5, 0.48),
            (0.3, 0.3),
            (0.42, 0.12),
            (0.62, 0.14),
            (0.68, 0.3),
            (0.5, 0.48),
            (0.27, 0.68),
            (0.38, 0.88),
            (0.62, 0.88),
            (0.72, 0.68),
            (0.5, 0.48),
        ]
    ],
    9: [
        [(0.7, 0.35), (0.55, 0.15), (0.33, 0.2), (0.3, 0.42), (0.5, 0.5), (0.7, 0.35), (0.68, 0.9)]
    ],
}

STYLES = {
    "marker": dict(size=280, width=22, ink=(0, 0, 0, 255), paper=(255, 255, 255, 255)),
    "chalk": dict(size=200, width=14, ink=(255, 255, 255, 255), paper=(0, 0, 0, 255)),
    "alpha": dict(size=128, width=9, ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)),
    "pencil": dict(size=28, width=1, ink=(40, 40, 40, 255), paper=(255, 255, 255, 255)),
    "pen": dict(size=400, width=12, ink=(20, 40, 160, 255), paper=(250, 248, 240, 255)),
}


def draw(digit: int, size: int, width: int, ink: tuple, paper: tuple) -> Image.Image:
    image = Image.new("RGBA", (size, size), paper)
    pen = ImageDraw.Draw(image)
    for stroke in STROKES[digit]:
        points = [(x * (size - 1), y * (size - 1)) for x, y in stroke]
        pen.line(points, fill=ink, width=width, joint="curve")
        if width > 2:
            for x, y in points:
                pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], ink)
    return image


def main() -> None:
    folder = Path(__file__).parent
    names = list(STYLES)
    for digit in STROKES:
        style = names[digit % len(names)]
        image = draw(digit, **STYLES[style])
        if style != "alpha":
            image = image.convert("RGB")
        image.save(folder / f"digit{digit}-{style}.png")


if __name__ == "__main__":
    main()
