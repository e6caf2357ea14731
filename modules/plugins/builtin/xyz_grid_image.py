"""Labelled image grids: column labels on top, row labels on the left, margins between cells.

Used by the X/Y/Z plot (one grid per Z value plus a combined grid with Z titles) and by the
prompt matrix (labels made of several lines, the inactive ones drawn struck through in grey).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)
BACKGROUND = (255, 255, 255)
ACTIVE_COLOUR = (0, 0, 0)
INACTIVE_COLOUR = (153, 153, 153)
LINE_SPACING = 1.25


@dataclass(frozen=True)
class GridLabel:
    """One line of a cell label; inactive lines are grey and struck through."""

    text: str
    active: bool = True


LabelLines = Sequence[GridLabel]


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when the system has it, else PIL's bundled default font at ``size``."""
    for candidate in FONT_CANDIDATES:
        if candidate.is_file():
            return ImageFont.truetype(str(candidate), size)
    return ImageFont.load_default(size)


def font_size_for(cell_width: int, cell_height: int) -> int:
    """A label size that scales with the cell, as A1111's grids do (about 1/16 of the short side)."""
    return max(10, min(48, round(min(cell_width, cell_height) / 16) + 6))


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, max_width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width`` (a single long word stays whole)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and _text_width(draw, candidate, font) > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    return lines


def _layout_label(draw: ImageDraw.ImageDraw, label: LabelLines, font: ImageFont.ImageFont, max_width: int) -> list[tuple[str, bool]]:
    return [(line, item.active) for item in label for line in wrap_text(draw, item.text, font, max_width)]


def _line_height(font: ImageFont.ImageFont) -> int:
    return int(round(getattr(font, "size", 10) * LINE_SPACING))


def _draw_lines(draw: ImageDraw.ImageDraw, lines: list[tuple[str, bool]], font: ImageFont.ImageFont, centre_x: float, top: float) -> None:
    line_height = _line_height(font)
    for index, (text, active) in enumerate(lines):
        colour = ACTIVE_COLOUR if active else INACTIVE_COLOUR
        y = top + index * line_height
        draw.text((centre_x, y), text, font=font, fill=colour, anchor="ma")
        if not active:
            width = _text_width(draw, text, font)
            middle = y + line_height * 0.4
            draw.line((centre_x - width / 2, middle, centre_x + width / 2, middle), fill=colour, width=max(1, line_height // 12))


def as_label(value: str | LabelLines) -> LabelLines:
    """A plain string becomes a one-line active label."""
    return [GridLabel(value)] if isinstance(value, str) else value


def draw_labeled_grid(
    images: Sequence[Image.Image],
    column_labels: Sequence[str | LabelLines],
    row_labels: Sequence[str | LabelLines],
    *,
    margin: int = 0,
    draw_legend: bool = True,
) -> Image.Image:
    """Lay ``images`` out row by row (``len(row_labels)`` rows × ``len(column_labels)`` columns).

    Every cell takes the size of the first image; ``margin`` pixels separate cells. With
    ``draw_legend`` the column labels go in a band above and the row labels in a band on the
    left (a band is left out when all its labels are empty).
    """
    columns, rows = max(1, len(column_labels)), max(1, len(row_labels))
    if len(images) != columns * rows:
        raise ValueError(f"images: a {columns}×{rows} grid needs {columns * rows} images, got {len(images)}")
    cell_width, cell_height = images[0].size
    font = load_font(font_size_for(cell_width, cell_height))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = _line_height(font)
    top_lines = [_layout_label(measure, as_label(label), font, cell_width) for label in column_labels] if draw_legend else []
    left_max_width = max(cell_width * 3 // 4, 64)
    left_lines = [_layout_label(measure, as_label(label), font, left_max_width) for label in row_labels] if draw_legend else []
    has_top = any(text for lines in top_lines for text, _ in lines)
    has_left = any(text for lines in left_lines for text, _ in lines)
    pad_top = (max(len(lines) for lines in top_lines) * line_height + line_height) if has_top else 0
    pad_left = (max(_text_width(measure, text, font) for lines in left_lines for text, _ in lines) + line_height * 2) if has_left else 0
    width = pad_left + columns * cell_width + (columns - 1) * margin
    height = pad_top + rows * cell_height + (rows - 1) * margin
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        cell = image if image.size == (cell_width, cell_height) else image.resize((cell_width, cell_height))
        grid.paste(cell.convert("RGB"), (pad_left + column * (cell_width + margin), pad_top + row * (cell_height + margin)))
    if has_top:
        for column, lines in enumerate(top_lines):
            centre = pad_left + column * (cell_width + margin) + cell_width / 2
            block = len(lines) * line_height
            _draw_lines(draw, lines, font, centre, (pad_top - block) / 2)
    if has_left:
        for row, lines in enumerate(left_lines):
            block = len(lines) * line_height
            top = pad_top + row * (cell_height + margin) + (cell_height - block) / 2
            _draw_lines(draw, lines, font, pad_left / 2, top)
    return grid


def combine_grids(grids: Sequence[Image.Image], titles: Sequence[str], *, margin: int = 0, draw_legend: bool = True) -> Image.Image:
    """Put the sub-grids side by side (each may differ in size) with their titles above them."""
    if len(grids) != len(titles):
        raise ValueError(f"titles: {len(grids)} grids need {len(grids)} titles, got {len(titles)}")
    font = load_font(font_size_for(*grids[0].size) if grids else 12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = _line_height(font)
    title_lines = [_layout_label(measure, as_label(title), font, grid.width) for grid, title in zip(grids, titles, strict=True)]
    has_titles = draw_legend and any(text for lines in title_lines for text, _ in lines)
    pad_top = (max(len(lines) for lines in title_lines) * line_height + line_height) if has_titles else 0
    width = sum(grid.width for grid in grids) + margin * (len(grids) - 1)
    height = pad_top + max(grid.height for grid in grids)
    combined = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(combined)
    left = 0
    for grid, lines in zip(grids, title_lines, strict=True):
        combined.paste(grid, (left, pad_top))
        if has_titles:
            _draw_lines(draw, lines, font, left + grid.width / 2, (pad_top - len(lines) * line_height) / 2)
        left += grid.width + margin
    return combined
