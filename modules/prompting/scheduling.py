"""Prompt editing and alternation: `[from:to:when]`, `[to:when]`, `[from::when]`, `[a|b|c]`.

`prompt_schedule(prompt, steps)` returns A1111's schedule: a list of `(end_step, text)` sorted by
`end_step`; sampling step `i` (0-based) uses the first entry with `i <= end_step`. `when` with a
decimal point is a fraction of the steps, otherwise a step number. Round brackets, plain square
brackets and stray characters stay literal text (emphasis is applied later, per scheduled text).

The parser is a single pass with an explicit stack. A prompt whose syntax A1111 could not parse
(a `|` outside an alternation, mismatched brackets inside a group, nesting deeper than
`MAX_NESTING`) is not scheduled at all: the whole prompt is used as it is for every step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_NESTING = 200

_TOKEN = re.compile(r"\\.|\\|[\[\]():|]|[^\\\[\]():|]+", re.DOTALL)
_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*")


class _Unscheduled(Exception):
    """The prompt is not valid scheduling syntax; it is used literally."""


@dataclass
class _Scheduled:
    before: list | None
    after: list
    when: str


@dataclass
class _Alternate:
    options: list[list]


@dataclass
class _Frame:
    opener: str
    parts: list[list] = field(default_factory=lambda: [[]])
    separators: list[str] = field(default_factory=list)


def prompt_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """The texts `prompt` means over `steps` sampling steps, as [(end_step, text)]."""
    try:
        tree = _parse(prompt)
    except _Unscheduled:
        return [(steps, prompt)]
    boundaries = {steps}
    if _collect_steps(tree, steps, boundaries):
        boundaries.update(range(1, steps + 1))
    return [(step, _render(tree, step, steps)) for step in sorted(boundaries)]


def _parse(prompt: str) -> list:
    stack = [_Frame("")]
    for match in _TOKEN.finditer(prompt):
        token = match.group(0)
        frame = stack[-1]
        if token in ("[", "("):
            if len(stack) > MAX_NESTING:
                raise _Unscheduled
            stack.append(_Frame(token))
        elif token in (":", "|"):
            if frame.opener == "":
                if token == "|":
                    raise _Unscheduled
                frame.parts[-1].append(token)
            else:
                frame.separators.append(token)
                frame.parts.append([])
        elif token in ("]", ")"):
            expected = "[" if token == "]" else "("
            if frame.opener != expected:
                # A stray closer: the groups still open were stray characters at the top level.
                _flatten_open_groups(stack)
                stack[0].parts[0].append(token)
            else:
                stack.pop()
                stack[-1].parts[-1].extend(_close(frame, at_top=len(stack) == 1))
        else:
            frame.parts[-1].append(token)
    _flatten_open_groups(stack)
    return stack[0].parts[0]


def _flatten_open_groups(stack: list[_Frame]) -> None:
    """Turn every unclosed group into literal text at the top level (its opener and separators
    were stray characters); a stray `|` makes the whole prompt unscheduled, as in A1111."""
    while len(stack) > 1:
        frame = stack.pop()
        if "|" in frame.separators:
            raise _Unscheduled
        stack[-1].parts[-1].extend(_literal(frame, closer=""))


def _close(frame: _Frame, *, at_top: bool) -> list:
    """The nodes a closed group becomes: a schedule, an alternation or literal text."""
    separators = frame.separators
    if frame.opener == "(":
        if "|" in separators or (len(separators) > 1 and not at_top):
            raise _Unscheduled
        return _literal(frame, closer=")")
    if separators and all(separator == "|" for separator in separators):
        return [_Alternate(frame.parts)]
    if "|" in separators:
        raise _Unscheduled
    if len(separators) in (1, 2):
        when = frame.parts[-1]
        if len(when) == 1 and isinstance(when[0], str) and _NUMBER.fullmatch(when[0]):
            before = frame.parts[0] if len(separators) == 2 else None
            after = frame.parts[1] if len(separators) == 2 else frame.parts[0]
            return [_Scheduled(before, after, _NUMBER.fullmatch(when[0]).group(1))]
    return _literal(frame, closer="]")


def _literal(frame: _Frame, closer: str) -> list:
    nodes: list = [frame.opener]
    for index, part in enumerate(frame.parts):
        if index > 0:
            nodes.append(frame.separators[index - 1])
        nodes.extend(part)
    if closer:
        nodes.append(closer)
    return nodes


def _when_step(when: str, steps: int) -> int:
    value = float(when)
    if "." in when:
        value *= steps
    return min(steps, int(value))


def _collect_steps(nodes: list, steps: int, boundaries: set[int]) -> bool:
    """Add every scheduled switch step to `boundaries`; True when an alternation needs all steps."""
    alternates = False
    pending = [nodes]
    while pending:
        for node in pending.pop():
            if isinstance(node, _Scheduled):
                step = _when_step(node.when, steps)
                if step >= 1:
                    boundaries.add(step)
                pending.append(node.after)
                if node.before is not None:
                    pending.append(node.before)
            elif isinstance(node, _Alternate):
                alternates = True
                pending.extend(node.options)
    return alternates


def _render(nodes: list, step: int, steps: int) -> str:
    pieces: list[str] = []
    _render_into(nodes, step, steps, pieces)
    return "".join(pieces)


def _render_into(nodes: list, step: int, steps: int, pieces: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            pieces.append(node)
        elif isinstance(node, _Scheduled):
            if step <= _when_step(node.when, steps):
                _render_into(node.before or [], step, steps, pieces)
            else:
                _render_into(node.after, step, steps, pieces)
        else:
            _render_into(node.options[(step - 1) % len(node.options)], step, steps, pieces)
