"""Infotext → generation fields: what the ↙ button, PNG Info's send buttons and a dropped image fill in.

`fields_from_infotext` returns A1111 parameter names (prompt, steps, sampler_name, ...) with values of
the right type; keys the text does not carry are left out, so the UI leaves those controls alone.
"""

from __future__ import annotations

from typing import Any

from modules.imaging.infotext import parse_infotext
from modules.sampling.samplers import SAMPLERS
from modules.sampling.schedules import SCHEDULES

# infotext key → (parameter name, type)
FIELD_MAP: dict[str, tuple[str, type]] = {
    "Steps": ("steps", int),
    "Sampler": ("sampler_name", str),
    "Schedule type": ("scheduler", str),
    "CFG scale": ("cfg_scale", float),
    "Seed": ("seed", int),
    "Size-1": ("width", int),
    "Size-2": ("height", int),
    "Variation seed": ("subseed", int),
    "Variation seed strength": ("subseed_strength", float),
    "Seed resize from-1": ("seed_resize_from_w", int),
    "Seed resize from-2": ("seed_resize_from_h", int),
    "Denoising strength": ("denoising_strength", float),
    "Mask blur": ("mask_blur", int),
    "Clip skip": ("CLIP_stop_at_last_layers", int),
}

LOOKS_LIKE_INFOTEXT = "Steps:"


def looks_like_infotext(text: str) -> bool:
    return LOOKS_LIKE_INFOTEXT in (text or "")


def _split_old_sampler(name: str) -> tuple[str, str | None]:
    """Old infotexts wrote the schedule into the sampler name ("DPM++ 2M Karras")."""
    if name in SAMPLERS:
        return name, None
    for schedule in SCHEDULES:
        suffix = f" {schedule}"
        if name.endswith(suffix) and name[: -len(suffix)] in SAMPLERS:
            return name[: -len(suffix)], schedule
    return name, None


def pasted_infotext(text: str) -> dict[str, Any]:
    """The infotext's key → value dict after the on_infotext_pasted(infotext, params) callbacks, which
    may add, change or remove keys (A1111 runs them before any field is filled)."""
    from modules.plugins.callbacks import registry  # noqa: PLC0415 - keeps the parser importable alone

    parsed = parse_infotext(text or "")
    registry.fire("callbacks_infotext_pasted", text or "", parsed)
    return parsed


def fields_from_infotext(text: str, parsed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parse `text` (or use the already `parsed` dict) into parameter values; unknown or malformed
    values are skipped."""
    parsed = pasted_infotext(text) if parsed is None else parsed
    fields: dict[str, Any] = {"prompt": parsed.get("Prompt", ""), "negative_prompt": parsed.get("Negative prompt", "")}
    for key, (name, kind) in FIELD_MAP.items():
        raw = parsed.get(key)
        if raw is None:
            continue
        try:
            fields[name] = kind(float(raw)) if kind is int else kind(raw)
        except (TypeError, ValueError):
            continue
    if "sampler_name" in fields:
        sampler, schedule = _split_old_sampler(fields["sampler_name"])
        fields["sampler_name"] = sampler
        if schedule and "Schedule type" not in (text or ""):
            fields["scheduler"] = schedule
        if sampler not in SAMPLERS:
            del fields["sampler_name"]
    if fields.get("scheduler") not in SCHEDULES:
        fields.pop("scheduler", None)
    if "Variation seed" not in parsed:
        fields.setdefault("subseed", -1)
        fields.setdefault("subseed_strength", 0.0)
    return fields
