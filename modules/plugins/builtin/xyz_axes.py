"""Axis types of the X/Y/Z plot: how a value text is parsed, checked and applied to a job.

An axis turns the text the user typed (``"1-5"``, ``"1-10 (+3)"``, ``"0-1 [5]"``,
``"Euler, \\"DPM++ 2M, Karras\\""``) into a list of typed values, checks names against the
registries it is given, and sets each value on a processing object ``p`` before that cell runs.
Nothing here imports the model or the UI, so every rule can be tested on its own.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INTEGER = r"[+-]?\s*\d+"
DECIMAL = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
INTEGER_RANGE = re.compile(rf"^\s*({INTEGER})\s*-\s*({INTEGER})\s*(?:\(\s*({INTEGER})\s*\))?\s*$")
INTEGER_COUNT_RANGE = re.compile(rf"^\s*({INTEGER})\s*-\s*({INTEGER})\s*\[\s*(\d+)\s*\]\s*$")
DECIMAL_RANGE = re.compile(rf"^\s*({DECIMAL})\s*-\s*({DECIMAL})\s*(?:\(\s*({DECIMAL})\s*\))?\s*$")
DECIMAL_COUNT_RANGE = re.compile(rf"^\s*({DECIMAL})\s*-\s*({DECIMAL})\s*\[\s*(\d+)\s*\]\s*$")
MAX_AXIS_VALUES = 10_000


class AxisError(ValueError):
    """A value text that cannot be used on an axis; the message names the axis and the value."""


@dataclass
class AxisChoices:
    """The names an axis may take, by registry; an empty tuple means "not checked"."""

    samplers: Sequence[str] = ()
    schedulers: Sequence[str] = ()
    checkpoints: Sequence[str] = ()
    vaes: Sequence[str] = ()
    styles: Sequence[str] = ()

    @classmethod
    def from_registries(cls, checkpoints: Sequence[str] = (), vaes: Sequence[str] = (), styles: Sequence[str] = ()) -> AxisChoices:
        """Sampler and schedule names from the sampling registries plus the given lists."""
        from modules.sampling.samplers import SAMPLERS
        from modules.sampling.schedules import SCHEDULES

        return cls(
            samplers=tuple(SAMPLERS), schedulers=tuple(SCHEDULES), checkpoints=tuple(checkpoints), vaes=tuple(vaes), styles=tuple(styles)
        )


def split_values(text: str) -> list[str]:
    """Split on commas like a CSV line: double quotes keep commas inside a value; blanks are dropped."""
    rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    return [item.strip() for row in rows for item in row if item.strip()]


def _number(text: str, kind: type) -> int | float:
    return kind(text.replace(" ", ""))


def _check_count(axis_label: str, count: int) -> None:
    if count > MAX_AXIS_VALUES:
        raise AxisError(f"{axis_label}: a range gives {count} values, more than the limit of {MAX_AXIS_VALUES}")


def expand_integer(axis_label: str, item: str) -> list[int]:
    """``a-b`` (inclusive), ``a-b (+s)`` (step, may be negative), ``a-b [n]`` (n evenly spaced), or one number."""
    counted = INTEGER_COUNT_RANGE.match(item)
    if counted:
        start, end, count = _number(counted[1], int), _number(counted[2], int), int(counted[3])
        _check_count(axis_label, count)
        return [int(value) for value in np.linspace(start, end, num=count)]
    stepped = INTEGER_RANGE.match(item)
    if stepped:
        start, end = _number(stepped[1], int), _number(stepped[2], int)
        step = _number(stepped[3], int) if stepped[3] else (1 if end >= start else -1)
        if step == 0:
            raise AxisError(f"{axis_label}: the step in {item!r} must not be 0")
        _check_count(axis_label, abs(end - start) // abs(step) + 1)
        return list(range(start, end + (1 if step > 0 else -1), step))
    try:
        return [_number(item, int)]
    except ValueError:
        raise AxisError(f"{axis_label}: {item!r} is not a whole number or a range like 1-5, 1-5 (+2) or 1-10 [5]") from None


def expand_decimal(axis_label: str, item: str) -> list[float]:
    """Float ranges: ``a-b`` (step 1), ``a-b (+s)`` (end included when reached), ``a-b [n]``, or one number."""
    counted = DECIMAL_COUNT_RANGE.match(item)
    if counted:
        start, end, count = _number(counted[1], float), _number(counted[2], float), int(counted[3])
        _check_count(axis_label, count)
        return [round(float(value), 8) for value in np.linspace(start, end, num=count)]
    stepped = DECIMAL_RANGE.match(item)
    if stepped:
        start, end = _number(stepped[1], float), _number(stepped[2], float)
        step = _number(stepped[3], float) if stepped[3] else (1.0 if end >= start else -1.0)
        if step == 0:
            raise AxisError(f"{axis_label}: the step in {item!r} must not be 0")
        count = int(np.floor((end - start) / step + 1e-9)) + 1
        if count < 1:
            raise AxisError(f"{axis_label}: the step in {item!r} goes away from the end value")
        _check_count(axis_label, count)
        return [round(start + index * step, 8) for index in range(count)]
    try:
        return [_number(item, float)]
    except ValueError:
        raise AxisError(f"{axis_label}: {item!r} is not a number or a range like 0.5-2 (+0.5) or 1-10 [5]") from None


def _ensure_override_settings(p: Any) -> dict[str, Any]:
    settings = getattr(p, "override_settings", None)
    if settings is None:
        settings = {}
        p.override_settings = settings
    return settings


def _set_field(name: str) -> Callable[[Any, Any, list[Any]], None]:
    def apply(p: Any, value: Any, values: list[Any]) -> None:
        setattr(p, name, value)

    return apply


def _set_option(key: str) -> Callable[[Any, Any, list[Any]], None]:
    def apply(p: Any, value: Any, values: list[Any]) -> None:
        _ensure_override_settings(p)[key] = value

    return apply


def _apply_nothing(p: Any, value: Any, values: list[Any]) -> None:
    return None


def _apply_prompt_replace(p: Any, value: str, values: list[Any]) -> None:
    search = values[0]
    if search not in p.prompt and search not in p.negative_prompt:
        raise AxisError(f"Prompt S/R: {search!r} is found neither in the prompt nor in the negative prompt")
    p.prompt = p.prompt.replace(search, value)
    p.negative_prompt = p.negative_prompt.replace(search, value)


def _apply_prompt_order(p: Any, value: tuple[str, ...], values: list[Any]) -> None:
    p.prompt = reorder_tokens(p.prompt, value)
    p.negative_prompt = reorder_tokens(p.negative_prompt, value)


def reorder_tokens(prompt: str, order: Sequence[str]) -> str:
    """Put the tokens of ``order`` into the prompt in that order, at the places where they occur now."""
    found = sorted((prompt.find(token), token) for token in order if token in prompt)
    if not found:
        return prompt
    pieces: list[str] = []
    cursor = 0
    for position, token in found:
        pieces.append(prompt[cursor:position])
        cursor = position + len(token)
    tail = prompt[cursor:]
    wanted = [token for token in order if token in prompt]
    return "".join(piece + token for piece, token in zip(pieces, wanted, strict=True)) + tail


def _apply_styles(p: Any, value: str, values: list[Any]) -> None:
    names = [name.strip() for name in value.split(",") if name.strip()]
    p.styles = [*list(getattr(p, "styles", None) or []), *names]


def _format_with_label(axis: AxisType, value: Any) -> str:
    if isinstance(value, float):
        value = round(value, 8)
    return f"{axis.label}: {value}"


def _format_plain(axis: AxisType, value: Any) -> str:
    return str(value)


def _format_joined(axis: AxisType, value: Any) -> str:
    return ", ".join(value)


@dataclass(frozen=True)
class AxisType:
    """One selectable axis: its label, value type, how a value is applied and shown.

    ``apply(p, value, all_values)`` is called on the cell's processing object before that
    cell is generated; it may change any field of ``p`` (or ``p.override_settings``).
    ``choices`` names the `AxisChoices` field the values must belong to, if any.
    """

    label: str
    value_type: type
    apply: Callable[[Any, Any, list[Any]], None]
    format_label: Callable[[AxisType, Any], str] = _format_with_label
    choices: str | None = None
    img2img_only: bool = False
    sort_key: Callable[[Any], Any] | None = field(default=None)

    def parse(self, text: str, choices: AxisChoices | None = None) -> list[Any]:
        """The values of ``text`` for this axis; raises `AxisError` naming the axis on bad input."""
        if self.value_type is type(None):
            return [None]
        items = split_values(text)
        if self.label == "Prompt order":
            if not items:
                raise AxisError("Prompt order: enter the prompt parts to permute, separated by commas")
            if len(items) > 7:
                raise AxisError(f"Prompt order: {len(items)} parts give too many orders; use at most 7")
            return list(itertools.permutations(items))
        if not items:
            raise AxisError(f"{self.label}: no values given")
        if self.value_type is int:
            values: list[Any] = [number for item in items for number in expand_integer(self.label, item)]
        elif self.value_type is float:
            values = [number for item in items for number in expand_decimal(self.label, item)]
        else:
            values = items
        if self.choices and choices is not None:
            values = [self._match_choice(value, getattr(choices, self.choices)) for value in values]
        return values

    def _match_choice(self, value: str, names: Sequence[str]) -> str:
        if not names:
            return value
        if self.choices == "styles":
            for name in (part.strip() for part in value.split(",")):
                if name and name not in names:
                    raise AxisError(f"{self.label}: unknown style {name!r}; valid values are: {', '.join(names)}")
            return value
        lookup = {name.casefold(): name for name in names}
        match = lookup.get(value.casefold())
        if match is None and self.choices == "checkpoints":
            match = next((name for name in names if name.casefold().startswith(value.casefold())), None)
        if match is None:
            raise AxisError(f"{self.label}: unknown value {value!r}; valid values are: {', '.join(names)}")
        return match


AXIS_TYPES: tuple[AxisType, ...] = (
    AxisType("Nothing", type(None), _apply_nothing, _format_plain),
    AxisType("Seed", int, _set_field("seed")),
    AxisType("Var. seed", int, _set_field("subseed")),
    AxisType("Var. strength", float, _set_field("subseed_strength")),
    AxisType("Steps", int, _set_field("steps")),
    AxisType("CFG Scale", float, _set_field("cfg_scale")),
    AxisType("Prompt S/R", str, _apply_prompt_replace, _format_plain),
    AxisType("Prompt order", str, _apply_prompt_order, _format_joined),
    AxisType("Sampler", str, _set_field("sampler_name"), _format_plain, choices="samplers"),
    AxisType("Schedule type", str, _set_field("scheduler"), _format_plain, choices="schedulers"),
    AxisType("Checkpoint name", str, _set_option("sd_model_checkpoint"), _format_plain, choices="checkpoints"),
    AxisType("VAE", str, _set_option("sd_vae"), _format_plain, choices="vaes"),
    AxisType("Clip skip", int, _set_option("CLIP_stop_at_last_layers")),
    AxisType("Denoising", float, _set_field("denoising_strength"), img2img_only=True),
    AxisType("Width", int, _set_field("width")),
    AxisType("Height", int, _set_field("height")),
    AxisType("Styles", str, _apply_styles, choices="styles"),
)


def axis_labels(is_img2img: bool) -> list[str]:
    """Labels offered in the axis dropdowns of the txt2img or img2img tab."""
    return [axis.label for axis in AXIS_TYPES if is_img2img or not axis.img2img_only]


def find_axis(label: str) -> AxisType:
    """The axis with this label (case-insensitive); raises `AxisError` listing the labels."""
    for axis in AXIS_TYPES:
        if axis.label.casefold() == str(label).strip().casefold():
            return axis
    raise AxisError(f"axis type: unknown axis {label!r}; valid values are: {', '.join(a.label for a in AXIS_TYPES)}")


def axis_by_index(index_or_label: int | str, is_img2img: bool = False) -> AxisType:
    """An axis from a dropdown index (as A1111's script args carry it) or from its label."""
    if isinstance(index_or_label, str) and not index_or_label.strip().lstrip("-").isdigit():
        return find_axis(index_or_label)
    labels = axis_labels(is_img2img)
    index = int(index_or_label)
    if not 0 <= index < len(labels):
        raise AxisError(f"axis type: index {index} is outside 0..{len(labels) - 1}")
    return find_axis(labels[index])


def resolve_seeds(values: list[int], keep_random: bool, random_seed: Callable[[], int]) -> list[int]:
    """Seed axis values with -1 replaced by a fresh random seed, unless ``keep_random`` is set."""
    if keep_random:
        return list(values)
    return [random_seed() if value == -1 else value for value in values]
