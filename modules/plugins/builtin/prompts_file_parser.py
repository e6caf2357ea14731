"""Lines of "Prompts from file or textbox": a plain prompt, or ``--name value`` options.

A line such as ``--prompt "a red car" --steps 12 --seed 5 --negative_prompt blurry, low quality``
is split like a shell command line. ``--prompt`` and ``--negative_prompt`` take every word up to
the next ``--option``; the other options take one value of their type. Unknown options and values
of the wrong type raise `PromptsFileError` naming the line and the option.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any


class PromptsFileError(ValueError):
    """A line that cannot be parsed; the message names the line number and the option."""


def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    return int(value)


def _decimal(value: str) -> float:
    return float(value)


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(value)


def _styles(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


MULTI_WORD_OPTIONS = ("prompt", "negative_prompt")

OPTION_TYPES: dict[str, tuple[Callable[[str], Any], str]] = {
    "sd_model": (_text, "a checkpoint name"),
    "outpath_samples": (_text, "a folder"),
    "outpath_grids": (_text, "a folder"),
    "prompt_for_display": (_text, "text"),
    "prompt": (_text, "text"),
    "negative_prompt": (_text, "text"),
    "styles": (_styles, "style names separated by commas"),
    "seed": (_integer, "a whole number"),
    "subseed_strength": (_decimal, "a number"),
    "subseed": (_integer, "a whole number"),
    "seed_resize_from_h": (_integer, "a whole number"),
    "seed_resize_from_w": (_integer, "a whole number"),
    "sampler_index": (_integer, "a whole number"),
    "sampler_name": (_text, "a sampler name"),
    "scheduler": (_text, "a schedule name"),
    "batch_size": (_integer, "a whole number"),
    "n_iter": (_integer, "a whole number"),
    "steps": (_integer, "a whole number"),
    "cfg_scale": (_decimal, "a number"),
    "width": (_integer, "a whole number"),
    "height": (_integer, "a whole number"),
    "restore_faces": (_boolean, "true or false"),
    "tiling": (_boolean, "true or false"),
    "do_not_save_samples": (_boolean, "true or false"),
    "do_not_save_grid": (_boolean, "true or false"),
    "denoising_strength": (_decimal, "a number"),
}


def parse_line(line: str, line_number: int = 1) -> dict[str, Any]:
    """The job arguments of one line (``{"prompt": line}`` for a line without options)."""
    stripped = line.strip()
    if not stripped.startswith("--"):
        return {"prompt": stripped}
    try:
        words = shlex.split(stripped)
    except ValueError as error:
        raise PromptsFileError(f"line {line_number}: {error}") from None
    result: dict[str, Any] = {}
    position = 0
    while position < len(words):
        word = words[position]
        if not word.startswith("--"):
            raise PromptsFileError(f"line {line_number}: expected an option starting with --, got {word!r}")
        name = word[2:]
        if name not in OPTION_TYPES:
            raise PromptsFileError(
                f"line {line_number}: unknown option --{name}; valid options are: {', '.join('--' + key for key in OPTION_TYPES)}"
            )
        position += 1
        if position >= len(words) or (words[position].startswith("--") and name not in MULTI_WORD_OPTIONS):
            raise PromptsFileError(f"line {line_number}: --{name} needs a value")
        if name in MULTI_WORD_OPTIONS:
            collected: list[str] = []
            while position < len(words) and not words[position].startswith("--"):
                collected.append(words[position])
                position += 1
            result[name] = " ".join(collected)
            continue
        convert, expected = OPTION_TYPES[name]
        try:
            result[name] = convert(words[position])
        except ValueError:
            raise PromptsFileError(f"line {line_number}: --{name} expects {expected}, got {words[position]!r}") from None
        position += 1
    return result


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Job arguments for every non-blank line of ``text``, in order."""
    jobs: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            jobs.append(parse_line(line, number))
    return jobs


def apply_job(p: Any, arguments: dict[str, Any], *, prompt_position: str = "start") -> None:
    """Set a line's arguments on ``p``.

    A line's prompt goes before (``"start"``) or after (``"end"``) the prompt already on ``p``;
    ``--sampler_index`` picks a sampler by its place in the sampler list and ``--sd_model`` a
    checkpoint through ``p.override_settings``.
    """
    if prompt_position not in ("start", "end"):
        raise PromptsFileError(f"prompt position: expected 'start' or 'end', got {prompt_position!r}")
    for name, value in arguments.items():
        if name == "prompt" and getattr(p, "prompt", ""):
            base = p.prompt.strip()
            value = f"{value} {base}" if prompt_position == "start" else f"{base} {value}"
        if name == "sampler_index":
            from modules.sampling.samplers import SAMPLERS

            names = list(SAMPLERS)
            if not 0 <= value < len(names):
                raise PromptsFileError(f"--sampler_index: {value} is outside 0..{len(names) - 1}")
            name, value = "sampler_name", names[value]
        if name == "sd_model":
            settings = getattr(p, "override_settings", None)
            if settings is None:
                settings = {}
                p.override_settings = settings
            settings["sd_model_checkpoint"] = value
            continue
        setattr(p, name, value)
