"""A1111 output file naming: ``[tag]`` patterns, sanitising and numbering.

Naming follows A1111:

* images go to ``<outdir>/<directory pattern>``, ``[date]`` (``YYYY-MM-DD``)
  by default (see ``output_directory``);
* a file is named ``NNNNN-<pattern>.<ext>`` where ``NNNNN`` is one more than
  the highest sequence number already in the directory (``0`` when none),
  zero-padded to 5 digits (or ``<basename>-NNNN-...`` with a basename);
* the default pattern is ``[seed]-[prompt_spaces]``;
* tag values are sanitised like A1111's ``sanitize_filename_part``: characters
  invalid in file names (``#<>:"/\\|?*`` and control characters) become
  ``_``, leading spaces and trailing spaces/dots are stripped and the value
  is cut to 128 characters; ``[prompt]`` also turns spaces into ``_`` while
  ``[prompt_spaces]`` keeps them.

Beyond A1111, the assembled name is sanitised as a whole (so literal text in a
pattern cannot add separators either), leading dots are removed, Windows
device names get a ``_`` suffix, an empty name becomes ``image``, and the name
with its extension is kept within 255 UTF-8 bytes.

Unknown tags are left in the name literally, as A1111 does. A tag whose value
is missing from the context gives an empty string. ``[batch_number]``,
``[generation_number]``, ``[denoising]`` and ``[none]`` may give "nothing",
which also drops the literal text just before the tag (A1111 behaviour).
"""

from __future__ import annotations

import contextlib
import datetime as datetime_module
import hashlib
import os
import re
import string
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILENAME_PATTERN = "[seed]-[prompt_spaces]"
DEFAULT_DIRECTORY_PATTERN = "[date]"
DEFAULT_DATETIME_FORMAT = "%Y%m%d%H%M%S"
DEFAULT_MAX_PROMPT_WORDS = 8
MAX_FILENAME_PART_LENGTH = 128
MAX_NAME_BYTES = 255
FALLBACK_NAME = "image"

_INVALID_CHARACTERS = '#<>:"/\\|?*'
_INVALID_TRANSLATION = {ord(character): "_" for character in _INVALID_CHARACTERS}
_INVALID_TRANSLATION.update({code: "_" for code in range(32)})
_INVALID_TRANSLATION[127] = "_"
_TAG = re.compile(r"\[([^\[\]]+)\]")
_TAG_NAME_AND_ARGUMENTS = re.compile(r"([^<>]*)((?:<[^<>]*>)*)")
_TAG_ARGUMENT = re.compile(r"<([^<>]*)>")
_NON_LETTERS = re.compile("[\\s" + re.escape(string.punctuation) + "]+")
_SEQUENCE_DIGITS = re.compile(r"[0-9]+")
_WINDOWS_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{index}" for index in range(1, 10)] + [f"LPT{index}" for index in range(1, 10)]
)


class _Nothing:
    """Tag result meaning "write nothing and drop the text before the tag"."""


NOTHING = _Nothing()
TagResult = str | _Nothing


@dataclass(frozen=True)
class FilenameContext:
    """Values the filename tags draw from.

    ``batch_index`` and ``iteration`` are 0-based (``[batch_number]`` is
    ``batch_index + 1``). ``all_seeds`` feeds ``[seed_first]``/``[seed_last]``
    and defaults to ``seed``. ``now`` fixes the clock for ``[date]`` and
    ``[datetime]`` (default: the current local time).
    """

    prompt: str = ""
    negative_prompt: str = ""
    prompt_no_styles: str | None = None
    styles: Sequence[str] = ()
    seed: int | None = None
    all_seeds: Sequence[int] = ()
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    sampler_name: str | None = None
    scheduler: str | None = None
    model_name: str | None = None
    model_hash: str | None = None
    clip_skip: int | None = None
    denoising_strength: float | None = None
    batch_index: int = 0
    batch_size: int = 1
    iteration: int = 0
    n_iter: int = 1
    job_timestamp: str | None = None
    user: str | None = None
    now: datetime_module.datetime | None = None
    max_prompt_words: int = DEFAULT_MAX_PROMPT_WORDS


def sanitize_filename_part(
    text: str | None,
    replace_spaces: bool = True,
    max_length: int = MAX_FILENAME_PART_LENGTH,
) -> str:
    """Make ``text`` safe inside a file name (A1111 rules, see module doc)."""
    if not text:
        return ""
    if replace_spaces:
        text = text.replace(" ", "_")
    text = text.translate(_INVALID_TRANSLATION)
    return text.lstrip(" ")[:max_length].rstrip(" .")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _hash(text: str, arguments: Sequence[str]) -> str:
    length = 8
    if arguments and arguments[0].isdigit():
        length = int(arguments[0])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _now(context: FilenameContext) -> datetime_module.datetime:
    return context.now or datetime_module.datetime.now()


def _datetime(context: FilenameContext, arguments: Sequence[str]) -> str:
    moment = _now(context)
    if len(arguments) > 1 and arguments[1]:
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            moment = moment.astimezone(zoneinfo.ZoneInfo(arguments[1]))
    time_format = arguments[0] if arguments and arguments[0] else None
    try:
        formatted = moment.strftime(time_format or DEFAULT_DATETIME_FORMAT)
    except ValueError:
        formatted = moment.strftime(DEFAULT_DATETIME_FORMAT)
    return sanitize_filename_part(formatted, replace_spaces=False)


def _prompt_words(context: FilenameContext) -> str:
    words = [word for word in _NON_LETTERS.split(context.prompt or "") if word]
    chosen = words[: max(context.max_prompt_words, 1)] or ["empty"]
    return sanitize_filename_part(" ".join(chosen), replace_spaces=False)


def _styles(context: FilenameContext) -> str:
    names = [name for name in context.styles if name != "None"]
    return sanitize_filename_part(", ".join(names) or "None", replace_spaces=False)


def _has_prompt(context: FilenameContext, arguments: Sequence[str]) -> str:
    """``[hasprompt<word|fallback>...]``: each word found in the prompt."""
    prompt = (context.prompt or "").lower()
    result = ""
    for argument in arguments:
        expected, _, fallback = argument.partition("|")
        expected = expected.lower()
        result += expected if expected in prompt else fallback
    return sanitize_filename_part(result)


def _batch_number(context: FilenameContext) -> TagResult:
    if context.batch_size == 1:
        return NOTHING
    return str(context.batch_index + 1)


def _generation_number(context: FilenameContext) -> TagResult:
    if context.n_iter == 1 and context.batch_size == 1:
        return NOTHING
    number = context.iteration * context.batch_size + context.batch_index + 1
    return str(number)


def _seed_at(context: FilenameContext, index: int) -> str:
    seeds = list(context.all_seeds)
    return _text(seeds[index] if seeds else context.seed)


_Tag = Callable[[FilenameContext, Sequence[str]], TagResult]

TAGS: dict[str, _Tag] = {
    "seed": lambda context, arguments: _text(context.seed),
    "seed_first": lambda context, arguments: _seed_at(context, 0),
    "seed_last": lambda context, arguments: _seed_at(context, -1),
    "steps": lambda context, arguments: _text(context.steps),
    "cfg": lambda context, arguments: _text(context.cfg_scale),
    "width": lambda context, arguments: _text(context.width),
    "height": lambda context, arguments: _text(context.height),
    "styles": lambda context, arguments: _styles(context),
    "sampler": lambda context, arguments: sanitize_filename_part(context.sampler_name, False),
    "scheduler": lambda context, arguments: sanitize_filename_part(context.scheduler),
    "model_hash": lambda context, arguments: sanitize_filename_part(context.model_hash),
    "model_name": lambda context, arguments: sanitize_filename_part(context.model_name, False),
    "date": lambda context, arguments: _now(context).strftime("%Y-%m-%d"),
    "datetime": _datetime,
    "job_timestamp": lambda context, arguments: sanitize_filename_part(
        context.job_timestamp or _now(context).strftime(DEFAULT_DATETIME_FORMAT)
    ),
    "prompt": lambda context, arguments: sanitize_filename_part(context.prompt),
    "prompt_no_styles": lambda context, arguments: sanitize_filename_part(
        context.prompt if context.prompt_no_styles is None else context.prompt_no_styles,
        False,
    ),
    "prompt_spaces": lambda context, arguments: sanitize_filename_part(context.prompt, False),
    "prompt_words": lambda context, arguments: _prompt_words(context),
    "prompt_hash": lambda context, arguments: _hash(context.prompt or "", arguments),
    "negative_prompt": lambda context, arguments: sanitize_filename_part(context.negative_prompt),
    "negative_prompt_hash": lambda context, arguments: _hash(context.negative_prompt or "", arguments),
    "full_prompt_hash": lambda context, arguments: _hash(f"{context.prompt or ''} {context.negative_prompt or ''}", arguments),
    "hasprompt": _has_prompt,
    "clip_skip": lambda context, arguments: _text(context.clip_skip),
    "denoising": lambda context, arguments: _text(context.denoising_strength) if context.denoising_strength else NOTHING,
    "batch_number": lambda context, arguments: _batch_number(context),
    "batch_size": lambda context, arguments: _text(context.batch_size),
    "generation_number": lambda context, arguments: _generation_number(context),
    "user": lambda context, arguments: sanitize_filename_part(context.user, False),
    "none": lambda context, arguments: NOTHING,
}
"""Supported tags, by lower-case name."""


def apply_pattern(pattern: str, context: FilenameContext) -> str:
    """Replace each ``[tag]`` / ``[tag<arg>...]`` of ``pattern``.

    Literal text is copied unchanged; call ``sanitize_name`` on the result.
    """
    pieces: list[str] = []
    position = 0
    for match in _TAG.finditer(pattern):
        literal = pattern[position : match.start()]
        position = match.end()
        parts = _TAG_NAME_AND_ARGUMENTS.fullmatch(match.group(1))
        tag = TAGS.get(parts.group(1).lower()) if parts else None
        if tag is None:
            pieces.append(literal + match.group(0))
            continue
        value = tag(context, _TAG_ARGUMENT.findall(parts.group(2)))
        if not isinstance(value, _Nothing):
            pieces.append(literal + value)
    pieces.append(pattern[position:])
    return "".join(pieces)


def _truncate_bytes(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def sanitize_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Make ``name`` a single safe path component of at most ``max_bytes``.

    No separators, no control characters, no leading dots or spaces, no
    trailing dots or spaces, never ``.``/``..`` and never empty.
    """
    name = name.translate(_INVALID_TRANSLATION).strip(" .")
    name = _truncate_bytes(name, max_bytes).rstrip(" .")
    if name.split(".")[0].upper() in _WINDOWS_DEVICE_NAMES:
        name = _truncate_bytes(name, max_bytes - 1) + "_"
    return name or FALLBACK_NAME


def next_sequence_number(directory: Path, basename: str = "") -> int:
    """One more than the highest sequence number among files in ``directory``.

    A file counts when its name (after ``<basename>-``, if a basename is
    given) minus the extension starts with ASCII digits followed by ``-`` or
    the end, e.g. ``00012-1234-cat.png`` or ``00012.png``. Returns 0 for an
    empty or missing directory.
    """
    prefix = f"{basename}-" if basename else ""
    highest = -1
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for name in names:
        if not name.startswith(prefix):
            continue
        stem = os.path.splitext(name[len(prefix) :])[0]
        first_field = stem.split("-", 1)[0]
        if _SEQUENCE_DIGITS.fullmatch(first_field):
            highest = max(highest, int(first_field))
    return highest + 1


def format_sequence_number(number: int, basename: str = "") -> str:
    """``00012`` without a basename, ``grid-0012`` with one (A1111 widths)."""
    return f"{basename}-{number:04}" if basename else f"{number:05}"


def build_filename(
    context: FilenameContext,
    pattern: str,
    extension: str,
    number: int | None = None,
    basename: str = "",
) -> str:
    """Return ``[<number>-]<pattern applied>.<extension>``, sanitised.

    An empty ``pattern`` means ``DEFAULT_FILENAME_PATTERN``. ``number`` is
    the sequence number, or ``None`` to leave it out. The stem is cut so that
    the name stays within 255 bytes with any extension of up to 4 characters
    (so a ``.txt`` beside it fits too).
    """
    decoration = apply_pattern(pattern or DEFAULT_FILENAME_PATTERN, context)
    if number is not None:
        prefix = format_sequence_number(number, sanitize_filename_part(basename))
        stem = f"{prefix}-{decoration}" if decoration else prefix
    else:
        stem = decoration
    suffix = "." + sanitize_name(extension.lstrip("."))
    stem = sanitize_name(stem, MAX_NAME_BYTES - max(5, len(suffix.encode())))
    return stem + suffix


def output_directory(
    root: Path,
    context: FilenameContext,
    pattern: str = DEFAULT_DIRECTORY_PATTERN,
) -> Path:
    """``root`` joined with the applied directory pattern (``[date]`` default).

    ``/`` or ``\\`` in the pattern's literal text make subdirectories; every
    component is sanitised and ``.``/``..``/empty ones are dropped, so the
    result always lies inside ``root``.
    """
    applied = apply_pattern(pattern, context)
    directory = Path(root)
    for component in re.split(r"[/\\]", applied):
        cleaned = component.translate(_INVALID_TRANSLATION).strip(" .")
        if cleaned:
            directory = directory / sanitize_name(cleaned)
    return directory
