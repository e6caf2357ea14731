"""A1111's `modules.sd_samplers` for extensions: the sampler list under A1111's names.

Each entry is a `SamplerData(name, constructor, aliases, options)` as A1111's; a thin facade over
the sampler registry (modules/sampling/samplers.py). Core code never imports this module.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from modules.sampling.samplers import SAMPLERS, find_sampler


class SamplerData(NamedTuple):
    name: str
    constructor: Any
    aliases: list[str]
    options: dict[str, Any]


all_samplers: list[SamplerData] = [
    SamplerData(info.name, info.function, list(info.aliases), dict(info.options)) for info in SAMPLERS.values()
]
all_samplers_map: dict[str, SamplerData] = {item.name: item for item in all_samplers}
samplers: list[SamplerData] = list(all_samplers)
samplers_for_img2img: list[SamplerData] = list(all_samplers)
samplers_map: dict[str, str] = {alias.lower(): item.name for item in all_samplers for alias in [item.name, *item.aliases]}


def find_sampler_config(name: str | None) -> SamplerData | None:
    """The sampler called `name` (or an alias); None for an unknown name, as A1111."""
    if name is None:
        return all_samplers[0]
    try:
        return all_samplers_map[find_sampler(name).name]
    except ValueError:
        return None


def visible_sampler_names() -> list[str]:
    return [item.name for item in samplers]


def get_sampler_from_infotext(values: dict[str, Any]) -> str:
    return str(values.get("Sampler") or all_samplers[0].name)


def set_samplers() -> None:
    """Unused here: the sampler list does not depend on settings."""
