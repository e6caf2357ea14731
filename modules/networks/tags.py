"""Extra-network prompt tags: ``<lora:name:te[:unet[:dyn]]>``, ``<lyco:...>`` and ``<hypernet:name:weight>``.

Arguments are positional (text-encoder weight, UNet weight, dynamic dim) or named (``te=``, ``unet=``,
``dyn=``). The tags are removed from the text before it is encoded; as in A1111, only the networks of
the first prompt of a generation are applied, to the whole batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NETWORK_KINDS = ("lora", "lyco", "hypernet")
TAG_PATTERN = re.compile(r"<(\w+):([^>]+)>")
POSITIONAL_NAMES = ("te", "unet", "dyn")


class TagError(ValueError):
    """A network tag whose arguments cannot be read; the message names the tag."""


@dataclass(frozen=True)
class NetworkTag:
    """One parsed tag. `unet_multiplier` defaults to the text-encoder weight, as in A1111."""

    kind: str
    name: str
    te_multiplier: float = 1.0
    unet_multiplier: float = 1.0
    dyn_dim: int | None = None

    @property
    def is_lora(self) -> bool:
        return self.kind in ("lora", "lyco")

    def text(self) -> str:
        """The tag as it would be typed (used by the UI and for tests)."""
        parts = [self.kind, self.name, _number(self.te_multiplier)]
        if self.unet_multiplier != self.te_multiplier or self.dyn_dim is not None:
            parts.append(_number(self.unet_multiplier))
        if self.dyn_dim is not None:
            parts.append(str(self.dyn_dim))
        return "<" + ":".join(parts) + ">"


def _number(value: float) -> str:
    return f"{value:g}"


def _float(tag: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise TagError(f"{tag}: {key} weight {value!r} is not a number") from None


def parse_tag(kind: str, body: str) -> NetworkTag:
    """Read ``name:arg:arg...`` of a tag of `kind`."""
    tag = f"<{kind}:{body}>"
    name, *arguments = [item.strip() for item in body.split(":")]
    if not name:
        raise TagError(f"{tag}: the network name is empty")
    values: dict[str, str] = {}
    position = 0
    for argument in arguments:
        key, separator, value = argument.partition("=")
        if separator:
            key = key.strip()
            if key not in POSITIONAL_NAMES:
                raise TagError(f"{tag}: unknown argument {key!r} (use te=, unet= or dyn=)")
            values[key] = value.strip()
        else:
            if position >= len(POSITIONAL_NAMES):
                raise TagError(f"{tag}: too many arguments")
            values[POSITIONAL_NAMES[position]] = argument
            position += 1
    te = _float(tag, "te", values["te"]) if "te" in values else 1.0
    unet = _float(tag, "unet", values["unet"]) if "unet" in values else te
    dyn = None
    if "dyn" in values:
        try:
            dyn = int(values["dyn"])
        except ValueError:
            raise TagError(f"{tag}: dyn {values['dyn']!r} is not an integer") from None
    return NetworkTag(kind, name, te, unet, dyn)


def extract_tags(prompt: str) -> tuple[str, list[NetworkTag]]:
    """(`prompt` without its network tags, the tags in order). Tags of other kinds stay in the text."""
    found: list[NetworkTag] = []

    def take(match: re.Match) -> str:
        kind = match[1]
        if kind not in NETWORK_KINDS:
            return match[0]
        found.append(parse_tag(kind, match[2]))
        return ""

    return TAG_PATTERN.sub(take, prompt), found


def strip_prompts(prompts: list[str]) -> tuple[list[str], list[NetworkTag]]:
    """Strip tags from every prompt; returns the stripped prompts and the FIRST prompt's tags."""
    stripped: list[str] = []
    first: list[NetworkTag] = []
    for index, prompt in enumerate(prompts):
        text, tags = extract_tags(prompt)
        stripped.append(text)
        if index == 0:
            first = tags
    return stripped, first
