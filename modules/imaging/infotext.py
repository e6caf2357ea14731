r"""Write and parse A1111 "generation parameters" text (infotext).

Layout of an infotext::

    <prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>
    Key: value, Key: value, ...

The negative prompt line is left out when the negative prompt is empty and the
parameter line is left out when there are no parameters.

Value formatting chosen here (A1111 mostly writes ``str(value)``):

* ``None`` values are dropped;
* ``bool`` is written ``True`` / ``False``;
* ``int`` is written as is; a whole ``float`` is written without ``.0``
  (``7.0`` -> ``7``, matching A1111's ``CFG scale: 7``); other floats use
  ``repr`` (shortest round-tripping form, e.g. ``6.5``, ``0.7``);
* a value whose text equals its key is written as the key alone;
* a value containing ``,``, ``:``, ``"`` or a line break, or that is empty or
  has leading/trailing whitespace, is JSON-quoted (``ensure_ascii=False``).

Parsing follows A1111: the last line is a parameter line only when it holds at
least three ``Key: value`` pairs matching
``\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)``. That pattern
is evaluated by an equivalent linear-time scanner (``re.findall`` with it is
quadratic on long lines without colons). Unlike A1111, a bare ``Key`` item on
the parameter line (a value equal to its key) is read back as ``Key: Key``.
Each prompt line is stripped, by the parser as by A1111 and by
``create_infotext`` so that round trips are exact.
"""

from __future__ import annotations

import json
import math
import re

PARAMETER_ORDER: tuple[str, ...] = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Image CFG scale",
    "Seed",
    "Face restoration",
    "Size",
    "Model hash",
    "Model",
    "FP8 weight",
    "VAE hash",
    "VAE",
    "Variation seed",
    "Variation seed strength",
    "Seed resize from",
    "Denoising strength",
    "Conditional mask weight",
    "Clip skip",
    "ENSD",
    "Token merging ratio",
    "Init image hash",
    "RNG",
    "Tiling",
)
"""Core keys in A1111's order; extra keys follow them, then ``TRAILING_KEYS``."""

TRAILING_KEYS: tuple[str, ...] = ("Version", "User")
"""Keys A1111 always writes last, after every extra parameter."""

DEFAULT_VALUES: dict[str, str] = {
    "Clip skip": "1",
    "Schedule type": "Automatic",
    "RNG": "GPU",
    "Masked content": "original",
    "Inpaint area": "Whole picture",
    "Masked area padding": "32",
    "Hires sampler": "Use same sampler",
}
"""Values ``parse_infotext`` fills in when a key is absent (A1111 behaviour)."""

NEGATIVE_PROMPT_PREFIX = "Negative prompt:"
MINIMUM_PARAMETER_PAIRS = 3

_KEY_START = re.compile(r"\w")
_KEY_REST = re.compile(r"[\w \-/]*")
_WHITESPACE = re.compile(r"\s*")
# Possessive repetition: the two alternatives are disjoint, so this accepts
# exactly what A1111's backtracking version accepts, in linear time.
_QUOTED_VALUE = re.compile(r'"(?:\\.|[^\\"])++"')
_IMAGE_SIZE = re.compile(r"^(\d+)x(\d+)$")
_NEEDS_QUOTING = re.compile(r'[,:"\n\r]')


def order_parameters(params: dict[str, object]) -> dict[str, object]:
    """Return ``params`` in A1111's key order.

    Known core keys come first in ``PARAMETER_ORDER`` order, then unknown
    (extra) keys in their insertion order, then ``Version`` and ``User``.
    """
    core = {key: params[key] for key in PARAMETER_ORDER if key in params}
    trailing = {key: params[key] for key in TRAILING_KEYS if key in params}
    extras = {key: value for key, value in params.items() if key not in core and key not in trailing}
    return {**core, **extras, **trailing}


def format_value(value: object) -> str:
    """Render one parameter value as text, before any quoting."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def quote_value(text: str) -> str:
    """JSON-quote ``text`` when it could not be read back unquoted."""
    if text == "" or text != text.strip() or _NEEDS_QUOTING.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote_value(text: str) -> str:
    """Decode a JSON-quoted value; anything else is returned unchanged."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, str) else text


def _check_key(key: str) -> None:
    if not key or _NEEDS_QUOTING.search(key) or key != key.strip():
        raise ValueError(f"invalid infotext parameter name: {key!r}")


def create_parameters_line(parameters: dict[str, object]) -> str:
    """Join parameters as ``Key: value, Key: value`` in the given order."""
    parts = []
    for key, value in parameters.items():
        if value is None:
            continue
        _check_key(key)
        text = format_value(value)
        parts.append(key if text == key else f"{key}: {quote_value(text)}")
    return ", ".join(parts)


def _normalise_text(text: str) -> str:
    """Unify line endings and strip each line, as the parser will."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.strip() for line in lines).strip()


def create_infotext(prompt: str, negative_prompt: str, parameters: dict[str, object]) -> str:
    """Build an infotext; ``parameters`` must already be in A1111 key order.

    Use ``order_parameters`` first when the order is not known. Each prompt
    line is stripped (the parser strips them anyway) so that
    ``create -> parse -> create`` reproduces the text exactly.
    """
    sections = [_normalise_text(prompt or "")]
    negative = _normalise_text(negative_prompt or "")
    if negative:
        sections.append(f"{NEGATIVE_PROMPT_PREFIX} {negative}")
    parameters_line = create_parameters_line(parameters)
    if parameters_line:
        sections.append(parameters_line)
    return "\n".join(sections).strip()


def find_parameters(line: str) -> tuple[list[tuple[str, str | None]], int]:
    """Find ``Key: value`` pairs the way A1111's regex does, in linear time.

    Returns the pairs in order, values raw (still quoted), plus ``(key,
    None)`` for a bare key (written for a value equal to its key; A1111's
    parser ignores those), and the number of real ``Key: value`` matches,
    which equals ``len(re.findall(A1111_pattern, line))``.
    """
    pairs: list[tuple[str, str | None]] = []
    matches = 0
    position = 0
    length = len(line)
    while position < length:
        start_match = _KEY_START.search(line, position)
        if start_match is None:
            break
        key_start = start_match.start()
        key_end = _KEY_REST.match(line, key_start + 1).end()
        has_colon = key_end < length and line[key_end] == ":"
        if not has_colon or key_end < key_start + 2:
            # Every later start inside this run reaches the same end and
            # fails the same way, so the scan can resume after the run.
            ends_item = key_end == length or line[key_end] == ","
            if ends_item and not line[position:key_start].strip():
                bare_key = line[key_start:key_end].rstrip()
                if len(bare_key) >= 2:
                    pairs.append((bare_key, None))
            position = key_end + 1
            continue
        value_start = _WHITESPACE.match(line, key_end + 1).end()
        quoted = _QUOTED_VALUE.match(line, value_start)
        if quoted and (quoted.end() == length or line[quoted.end()] == ","):
            value_end = quoted.end()
        else:
            comma = line.find(",", value_start)
            value_end = length if comma < 0 else comma
        pairs.append((line[key_start:key_end], line[value_start:value_end]))
        matches += 1
        position = value_end + 1
    return pairs, matches


def split_infotext(text: str) -> tuple[str, str, dict[str, str]]:
    """Split an infotext into prompt, negative prompt and raw parameters.

    The parameters are exactly those written on the last line, values
    unquoted but otherwise unchanged, with no defaults or derived keys, so
    ``create_infotext(*split_infotext(text))`` reproduces our own output.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    parameters: dict[str, str] = {}
    pairs, matches = find_parameters(lines[-1])
    if matches >= MINIMUM_PARAMETER_PAIRS:
        lines.pop()
        for key, value in pairs:
            parameters[key] = key if value is None else unquote_value(value)

    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw_line in lines:
        line = raw_line.strip()
        if line.startswith(NEGATIVE_PROMPT_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PROMPT_PREFIX) :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    prompt = "\n".join(prompt_lines).strip()
    negative_prompt = "\n".join(negative_lines).strip()
    return prompt, negative_prompt, parameters


def parse_infotext(text: str) -> dict[str, object]:
    """Parse an infotext into a flat dictionary, as A1111 does.

    Returns ``"Prompt"`` and ``"Negative prompt"`` (always present, possibly
    empty) plus every parameter as the string written (JSON-quoted values
    decoded). A ``WxH`` value, such as ``Size: 512x768``, is kept and also
    yields ``Size-1`` = ``"512"`` and ``Size-2`` = ``"768"``. Keys listed in
    ``DEFAULT_VALUES`` are filled in with their A1111 defaults when absent.
    """
    prompt, negative_prompt, parameters = split_infotext(text)
    result: dict[str, object] = {
        "Prompt": prompt,
        "Negative prompt": negative_prompt,
    }
    for key, value in parameters.items():
        result[key] = value
        size = _IMAGE_SIZE.match(value)
        if size:
            result[f"{key}-1"] = size.group(1)
            result[f"{key}-2"] = size.group(2)
    for key, value in DEFAULT_VALUES.items():
        result.setdefault(key, value)
    return result
