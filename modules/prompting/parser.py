"""Emphasis and composable-prompt syntax, with A1111's semantics.

- `parse_prompt_attention`: `(text)` ×1.1, `[text]` ÷1.1, `(text:1.3)`, escapes `\\(` `\\)` `\\[` `\\]`,
  `BREAK` → [(text, weight)] with `BREAK_MARKER` entries where a new chunk starts.
- `split_composable`: `a AND b :1.2 AND c` → [(sub-prompt, weight)].

Both run in linear time in the prompt length (no recursion), so hostile prompts stay cheap.
"""

from __future__ import annotations

import math
import re

import numpy as np

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK_TEXT = "BREAK"
BREAK_WEIGHT = -1.0

_ATTENTION_TOKEN = re.compile(
    r"""
    \\\( | \\\) | \\\[ | \\\] | \\\\ | \\       # escapes (a lone backslash is kept as text)
    | \( | \[                                  # openers
    | :\s*([+-]?[.\d]+)\s*\)                   # explicit weight closing a round bracket
    | \) | \]                                  # closers
    | [^\\()\[\]:]+                            # plain text
    | :                                        # a colon that is not part of a weight
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_AND = re.compile(r"\bAND\b")
_SUBPROMPT_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")

# Above this many element-multiplications the exact per-bracket pass switches to a log-space sum.
_EXACT_WORK_LIMIT = 4_000_000


def is_break(entry: tuple[str, float]) -> bool:
    """Whether a parsed entry is the `BREAK` marker (a forced chunk boundary)."""
    return entry[0] == BREAK_TEXT and entry[1] == BREAK_WEIGHT


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split `text` into (fragment, weight) pairs as A1111 does.

    Unbalanced openers apply their multiplier to everything after them; stray closers and colons are
    literal text. Consecutive fragments with equal weights are merged. `BREAK` (a whole word) becomes
    the entry `("BREAK", -1.0)`. An empty prompt gives `[("", 1.0)]`.
    """
    fragments: list[str] = []
    weights: list[float] = []
    # Each entry: (first affected fragment, one past the last, factor), in the order applied.
    events: list[tuple[int, int, float]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    for match in _ATTENTION_TOKEN.finditer(text):
        token = match.group(0)
        explicit = match.group(1)
        if token.startswith("\\"):
            fragments.append(token[1:] if len(token) > 1 else token)
            weights.append(1.0)
        elif token == "(":
            round_open.append(len(fragments))
        elif token == "[":
            square_open.append(len(fragments))
        elif explicit is not None and round_open:
            if _is_float(explicit):
                events.append((round_open.pop(), len(fragments), float(explicit)))
            else:  # "(x:1..2)": the weight is text and the bracket closes with the usual 1.1
                fragments.append(token[:-1])
                weights.append(1.0)
                events.append((round_open.pop(), len(fragments), ROUND_MULTIPLIER))
        elif token == ")" and round_open:
            events.append((round_open.pop(), len(fragments), ROUND_MULTIPLIER))
        elif token == "]" and square_open:
            events.append((square_open.pop(), len(fragments), SQUARE_MULTIPLIER))
        else:
            for index, part in enumerate(_BREAK.split(token)):
                if index > 0:
                    fragments.append(BREAK_TEXT)
                    weights.append(BREAK_WEIGHT)
                fragments.append(part)
                weights.append(1.0)

    end = len(fragments)
    events.extend((start, end, ROUND_MULTIPLIER) for start in round_open)
    events.extend((start, end, SQUARE_MULTIPLIER) for start in square_open)
    final = _apply_multipliers(np.asarray(weights, dtype=np.float64), events)
    if not fragments:
        return [("", 1.0)]
    return _merge_equal_weights(fragments, final)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _apply_multipliers(weights: np.ndarray, events: list[tuple[int, int, float]]) -> list[float]:
    """Multiply each fragment by the factors of the brackets around it.

    Normal prompts get the factors one at a time in bracket-closing order, so the floats equal
    A1111's exactly (equal weights merge the same way). A pathological prompt whose brackets would
    cost more than `_EXACT_WORK_LIMIT` multiplications uses one log-space prefix sum instead.
    """
    breaks = weights == BREAK_WEIGHT
    work = sum(stop - start for start, stop, _ in events)
    if work <= _EXACT_WORK_LIMIT:
        with np.errstate(over="ignore", invalid="ignore"):
            for start, stop, factor in events:
                weights[start:stop] *= factor
    else:
        delta = np.zeros(len(weights) + 1, dtype=np.float64)
        for start, stop, factor in events:
            log_factor = math.log(abs(factor)) if factor != 0 else -math.inf
            delta[start] += log_factor
            delta[stop] -= log_factor
        with np.errstate(over="ignore", invalid="ignore"):
            weights = np.exp(np.cumsum(delta)[:-1])
    weights[breaks] = BREAK_WEIGHT
    return weights.tolist()


def _merge_equal_weights(fragments: list[str], weights: list[float]) -> list[tuple[str, float]]:
    groups: list[tuple[list[str], float]] = []
    for fragment, weight in zip(fragments, weights, strict=True):
        if groups and groups[-1][1] == weight and weight != BREAK_WEIGHT:
            groups[-1][0].append(fragment)
        else:
            groups.append(([fragment], weight))
    return [("".join(pieces), weight) for pieces, weight in groups]


def split_composable(prompt: str) -> list[tuple[str, float]]:
    """Split a prompt at whole-word `AND` into (sub-prompt, weight); `text :1.2` at the end of a
    sub-prompt sets its weight (default 1.0), as in A1111's composable diffusion."""
    result: list[tuple[str, float]] = []
    for part in _AND.split(prompt):
        match = _SUBPROMPT_WEIGHT.search(part)
        if match is None:  # pragma: no cover - the pattern matches every string
            result.append((part, 1.0))
            continue
        text, weight = match.group(1), match.group(2)
        result.append((text, float(weight) if weight is not None else 1.0))
    return result
