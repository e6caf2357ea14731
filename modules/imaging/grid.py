"""Image grids laid out the way A1111 lays them out by default."""

from __future__ import annotations

import math

from PIL import Image


def grid_layout(count: int, rows: int | None = None, prevent_empty_spots: bool = False) -> tuple[int, int]:
    """Return ``(rows, columns)`` for ``count`` images.

    Without ``rows``, A1111's default (``n_rows = -1``) is
    ``round(sqrt(count))`` rows; with ``prevent_empty_spots`` (A1111's
    ``grid_prevent_empty_spots``) it is the largest divisor of ``count`` not
    above ``floor(sqrt(count))``. Rows never exceed ``count``; columns are
    ``ceil(count / rows)``.
    """
    if count < 1:
        raise ValueError("a grid needs at least one image")
    if rows is None or rows < 1:
        if prevent_empty_spots:
            rows = math.isqrt(count)
            while count % rows:
                rows -= 1
        else:
            rows = max(1, round(math.sqrt(count)))
    rows = min(rows, count)
    return rows, math.ceil(count / rows)


def image_grid(
    images: list[Image.Image],
    rows: int | None = None,
    *,
    prevent_empty_spots: bool = False,
) -> Image.Image:
    """Paste ``images`` row by row onto a black RGB canvas.

    Every cell has the size of the first image (as in A1111); the layout comes
    from ``grid_layout``.
    """
    rows, columns = grid_layout(len(images), rows, prevent_empty_spots)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height), color="black")
    for index, image in enumerate(images):
        cell = image if image.mode in ("RGB", "L") else image.convert("RGB")
        grid.paste(cell, (index % columns * width, index // columns * height))
    return grid
