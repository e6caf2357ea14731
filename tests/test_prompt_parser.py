"""Prompt syntax: emphasis, BREAK, AND, prompt editing and alternation, with A1111's documented
examples, plus hostile prompts that must stay fast and never raise."""

import time

import pytest

from modules.prompting.parser import parse_prompt_attention, split_composable
from modules.prompting.scheduling import prompt_schedule

ATTENTION_TABLE = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
    ("[less]", [("less", 1 / 1.1)]),
    ("[[less]]", [("less", 1 / 1.1 / 1.1)]),
    ("(word:1.3)", [("word", 1.3)]),
    ("(word: 0.5 )", [("word", 0.5)]),
    ("((word:1.3))", [("word", 1.3 * 1.1)]),
    ("(a:b)", [("a:b", 1.1)]),
    ("stray) and ] here", [("stray) and ] here", 1.0)]),
    ("colon: text", [("colon: text", 1.0)]),
    ("weight:1.2) alone", [("weight:1.2) alone", 1.0)]),
    (r"\\ back", [("\\ back", 1.0)]),
    ("(x:1..2)", [("x:1..2", 1.1)]),
    ("", [("", 1.0)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("aBREAK b", [("aBREAK b", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.0), ("b", 1.1)]),
]


@pytest.mark.parametrize(("prompt", "expected"), ATTENTION_TABLE)
def test_emphasis_table(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


SCHEDULE_TABLE = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(step, "a" if step % 2 else "(b:1.1)") for step in range(1, 11)]),
    ("[fe|]male", [(step, "female" if step % 2 else "male") for step in range(1, 11)]),
    ("[fe|||]male", [(step, "female" if step % 4 == 1 else "male") for step in range(1, 11)]),
    ("[cat:dog:0.5]", [(5, "cat"), (10, "dog")]),
    ("[cat:dog:1.0]", [(10, "cat")]),
    ("[cat:dog:1]", [(1, "cat"), (10, "dog")]),
    ("[cat::4] on grass", [(4, "cat on grass"), (10, " on grass")]),
    ("[cat:dog:25]", [(10, "cat")]),
    ("(a:1.2) [b] [c:d]", [(10, "(a:1.2) [b] [c:d]")]),
    ("a | b [c:d:2]", [(10, "a | b [c:d:2]")]),
    ("([a:b:2]:1.3)", [(2, "(a:1.3)"), (10, "(b:1.3)")]),
]


@pytest.mark.parametrize(("prompt", "expected"), SCHEDULE_TABLE)
def test_schedule_table(prompt, expected):
    assert prompt_schedule(prompt, 10) == expected


def test_documented_landscape_example():
    prompt = (
        "[fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
        "[: in background:0.25] [shoddy:masterful:0.5]"
    )
    schedule = prompt_schedule(prompt, 100)
    assert [step for step, _ in schedule] == [25, 50, 60, 75, 100]
    assert schedule[0][1] == "[fantasy landscape with a mountain and an oak in foreground shoddy"
    assert schedule[2][1] == "[fantasy landscape with a lake and an oak in foreground in background masterful"
    assert schedule[4][1] == "[fantasy landscape with a lake and a christmas tree in background masterful"


def test_escaped_brackets_are_not_scheduled():
    assert prompt_schedule(r"a \[b:c:2\]", 10) == [(10, r"a \[b:c:2\]")]


def test_composable_prompt_weights():
    assert split_composable("a AND b :1.2 AND c") == [("a", 1.0), (" b", 1.2), (" c", 1.0)]
    assert split_composable("cat :0.5") == [("cat", 0.5)]
    assert split_composable("ANDROID") == [("ANDROID", 1.0)]
    assert split_composable("a AND b:-0.3") == [("a", 1.0), (" b", -0.3)]


HOSTILE = [
    "word, " * 170_000,
    "(" * 10_000 + "a" + ")" * 10_000,
    "[" * 10_000 + "a" + "]" * 10_000,
    "[a|" * 100_000,
    "(" * 100_000,
    "]" * 100_000 + ":" * 100_000,
    "[a:b:5]" * 20_000,
    "\\" * 100_000,
]


@pytest.mark.parametrize("prompt", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_prompts_are_bounded_and_never_raise(prompt):
    started = time.perf_counter()
    attention = parse_prompt_attention(prompt)
    schedule = prompt_schedule(prompt, 20)
    parts = split_composable(prompt)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.5, elapsed
    assert attention and schedule and parts
    assert all(isinstance(text, str) for text, _ in attention)


def test_deep_nesting_keeps_text_and_finite_or_inf_weights_without_error():
    parsed = parse_prompt_attention("(" * 10_000 + "a" + ")" * 10_000)
    assert [text for text, _ in parsed] == ["a"]
    schedule = prompt_schedule("[a|" * 10_000, 20)
    assert schedule == [(20, "[a|" * 10_000)]
