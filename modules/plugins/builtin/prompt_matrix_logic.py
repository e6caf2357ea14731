"""Prompt matrix: every combination of the ``|``-separated parts of a prompt, and its grid labels.

``"a cat|in a hat|on a mat"`` has the fixed part ``a cat`` and two optional parts, so four
prompts: combination ``i`` includes optional part ``j`` when bit ``j`` of ``i`` is set. The low
half of the bits picks the grid column and the high half the row, so the labels of a column (or
row) list which parts are on and which are off.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.plugins.builtin.xyz_grid_image import GridLabel

MAX_OPTIONAL_PARTS = 12
JOINERS = {"comma": ", ", "space": " "}


class PromptMatrixError(ValueError):
    """A prompt that cannot be turned into a matrix; the message names the field."""


@dataclass(frozen=True)
class PromptMatrix:
    """The prompts of a matrix in grid order plus the labels of its columns and rows."""

    prompts: list[str]
    optional_parts: list[str]
    column_labels: list[list[GridLabel]]
    row_labels: list[list[GridLabel]]

    @property
    def columns(self) -> int:
        return len(self.column_labels)

    @property
    def rows(self) -> int:
        return len(self.row_labels)


def split_prompt(prompt: str, variable_parts_at_start: bool = False) -> tuple[str, list[str]]:
    """The fixed part and the optional parts; at start, every part (the first too) is optional."""
    parts = [part.strip() for part in prompt.split("|")]
    if variable_parts_at_start:
        return "", [part for part in parts if part]
    return parts[0], [part for part in parts[1:] if part]


def combine(fixed: str, optional_parts: list[str], mask: int, joiner: str, variable_parts_at_start: bool) -> str:
    """The prompt holding the optional parts whose bits are set in ``mask``."""
    chosen = [part for index, part in enumerate(optional_parts) if mask & (1 << index)]
    pieces = [*chosen, fixed] if variable_parts_at_start else [fixed, *chosen]
    return joiner.join(piece for piece in pieces if piece)


def _labels(parts: list[str], count_bits: int) -> list[list[GridLabel]]:
    return [[GridLabel(part, bool(position & (1 << index))) for index, part in enumerate(parts)] for position in range(1 << count_bits)]


def build_matrix(prompt: str, *, variable_parts_at_start: bool = False, joiner: str = "comma") -> PromptMatrix:
    """All ``2**n`` prompts of ``prompt`` (n optional parts) with the grid's column and row labels."""
    if joiner not in JOINERS:
        raise PromptMatrixError(f"joining character: expected one of {', '.join(JOINERS)}, got {joiner!r}")
    fixed, optional = split_prompt(prompt, variable_parts_at_start)
    if not optional:
        raise PromptMatrixError("prompt: separate the optional parts with | (for example: a cat|in a hat|on a mat)")
    if len(optional) > MAX_OPTIONAL_PARTS:
        raise PromptMatrixError(f"prompt: {len(optional)} optional parts give too many images; use at most {MAX_OPTIONAL_PARTS}")
    prompts = [combine(fixed, optional, mask, JOINERS[joiner], variable_parts_at_start) for mask in range(1 << len(optional))]
    column_bits = (len(optional) + 1) // 2
    column_parts, row_parts = optional[:column_bits], optional[column_bits:]
    return PromptMatrix(prompts, optional, _labels(column_parts, len(column_parts)), _labels(row_parts, len(row_parts)))
