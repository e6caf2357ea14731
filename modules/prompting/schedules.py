"""Conditioning for a whole batch over the sampling steps: prompt editing, alternation and AND.

`build_batch_conditioning` encodes every distinct scheduled text once; the CFG denoiser then asks
`BatchConditioning.at_step(step)` (0-based sampling step) for the rows to run and how to weight them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modules.models.engine import Conditioning
from modules.prompting.conditioning import EncodedPrompts, EncodeSettings, PromptEncoder
from modules.prompting.embeddings import Embedding
from modules.prompting.parser import split_composable
from modules.prompting.scheduling import prompt_schedule


@dataclass
class ScheduledConditioning:
    """One (sub-)prompt's conditionings: entry `(end_step, cond)` is used while `step <= end_step`."""

    entries: list[tuple[int, Conditioning]]

    def at(self, step: int) -> Conditioning:
        for end_step, cond in self.entries:
            if step <= end_step:
                return cond
        return self.entries[-1][1]


@dataclass
class StepConditioning:
    """The rows to run at one step: `rows` stacks every sub-prompt of every image; `weights[i]`
    lists (row, weight) for image i."""

    rows: Conditioning
    weights: list[list[tuple[int, float]]]

    @property
    def is_plain(self) -> bool:
        """One row of weight 1 per image, in image order (no AND)."""
        return all(pairs == [(index, 1.0)] for index, pairs in enumerate(self.weights))


@dataclass
class BatchConditioning:
    """Per image, its sub-prompts as (weight, schedule)."""

    images: list[list[tuple[float, ScheduledConditioning]]]
    embeddings_used: dict[str, Embedding] = field(default_factory=dict)
    _cache: dict[tuple[int, ...], StepConditioning] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_composable(self) -> bool:
        return any(len(parts) != 1 or parts[0][0] != 1.0 for parts in self.images)

    def at_step(self, step: int) -> StepConditioning:
        """The conditioning rows for sampling step `step`, built once per distinct combination."""
        chosen = [[schedule.at(step) for _, schedule in parts] for parts in self.images]
        key = tuple(id(cond) for conds in chosen for cond in conds)
        if key not in self._cache:
            rows: list[Conditioning] = []
            weights: list[list[tuple[int, float]]] = []
            for parts, conds in zip(self.images, chosen, strict=True):
                pairs = []
                for (weight, _), cond in zip(parts, conds, strict=True):
                    pairs.append((len(rows), weight))
                    rows.append(cond)
                weights.append(pairs)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = StepConditioning(Conditioning.concatenate(rows), weights)
        return self._cache[key]


def build_batch_conditioning(
    encoder: PromptEncoder,
    prompts: list[str],
    steps: int,
    settings: EncodeSettings,
    *,
    composable: bool,
    cache: dict | None = None,
) -> BatchConditioning:
    """Parse and encode `prompts` (one per image). With `composable`, `AND` splits sub-prompts
    (the positive prompt); without, the text is one prompt (the negative prompt, as in A1111).
    `cache` (any dict kept for a generation) reuses encodings across batches."""
    cache = {} if cache is None else cache
    images: list[list[tuple[float, ScheduledConditioning]]] = []
    used: dict[str, Embedding] = {}
    for prompt in prompts:
        parts = split_composable(prompt) if composable else [(prompt, 1.0)]
        scheduled_parts = []
        for text, weight in parts:
            schedule = prompt_schedule(text, steps)
            key = ("schedule", settings.key(), tuple(schedule))
            if key not in cache:
                _bound(cache)
                encoded: EncodedPrompts = encoder.encode([scheduled for _, scheduled in schedule], settings)
                entries = [(end_step, cond) for (end_step, _), cond in zip(schedule, encoded.conditionings, strict=True)]
                cache[key] = (ScheduledConditioning(entries), encoded.embeddings_used)
            scheduled, embeddings = cache[key]
            used.update(embeddings)
            scheduled_parts.append((weight, scheduled))
        images.append(scheduled_parts)
    return BatchConditioning(images, used)


MAX_CACHED_SCHEDULES = 32


def _bound(cache: dict) -> None:
    """Forget cached encodings once there are many (prompts that change every batch)."""
    keys = [key for key in cache if isinstance(key, tuple) and key[:1] == ("schedule",)]
    if len(keys) >= MAX_CACHED_SCHEDULES:
        for key in keys:
            del cache[key]
