"""Token counts for the prompt boxes ("12/75"): chunks of 75 tokens, as A1111 shows them."""

from __future__ import annotations

import logging
import math

from modules.app.context import AppContext

log = logging.getLogger(__name__)

CHUNK_LENGTH = 75


def chunk_limit(count: int) -> int:
    """75, or the next whole number of 75-token chunks past it."""
    return max(1, math.ceil(count / CHUNK_LENGTH)) * CHUNK_LENGTH


def count_prompt_tokens(
    context: AppContext, text: str, steps: int = 1, *, styles: list[str] | None = None, is_positive: bool = True
) -> tuple[int, int]:
    """(tokens, chunk limit) of `text`: the prompt parser's count (emphasis, AND, schedules and
    embeddings understood) when available, else the plain CLIP tokenizer's count.

    The on_before_token_counter(params) callbacks run first and may change `params.prompt` and
    `params.steps`; the changed values are counted."""
    from modules.plugins.callbacks import before_token_counter  # noqa: PLC0415 - the UI's only use of it

    params = before_token_counter(text or "", int(steps or 1), styles, is_positive)
    text, steps = str(params.prompt or ""), params.steps
    engine = getattr(context.models, "engine", None)
    if engine is None or not text:
        return 0, CHUNK_LENGTH
    try:
        from modules.prompting import count_tokens  # noqa: PLC0415 - the prompt parser is optional
    except ImportError:
        count_tokens = None
    if count_tokens is not None:
        try:
            count, limit = count_tokens(text, engine, steps=max(1, int(steps or 1)))
            return int(count), int(limit)
        except Exception:  # noqa: BLE001 - fall back to the plain tokenizer count
            log.debug("count_tokens failed; using the tokenizer count", exc_info=True)
    tokenizer = engine.checkpoint.tokenizers[0]
    count = len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])
    return count, chunk_limit(count)


def token_counter_text(count: int, limit: int | None = None) -> str:
    """Text like 12/75; past 75 the limit grows by whole chunks (80/150)."""
    return f"{count}/{limit if limit is not None else chunk_limit(count)}"
