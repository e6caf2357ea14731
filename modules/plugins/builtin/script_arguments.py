"""Checks for built-in scripts' positional arguments (they arrive untyped from the UI and the API's
`script_args`). Each raises ValueError starting with the argument's name, which the API turns into a 422."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def number_argument(name: str, value: Any, low: float, high: float) -> float:
    """`value` as a float within [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name}: expected a number between {low:g} and {high:g}, got {value!r}")
    return number


def whole_argument(name: str, value: Any, low: int, high: int) -> int:
    """`value` as an int within [low, high]; 4.0 is accepted, 4.5 is not."""
    number = number_argument(name, value, low, high)
    if not number.is_integer():
        raise ValueError(f"{name}: expected a whole number between {low} and {high}, got {value!r}")
    return int(number)


def choices_argument(name: str, value: Any, choices: Sequence[str]) -> list[str]:
    """A non-empty list drawn from `choices` (a single string counts as a one-item list)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or any(item not in choices for item in value):
        raise ValueError(f"{name}: expected a non-empty list of {', '.join(choices)}, got {value!r}")
    return list(value)
