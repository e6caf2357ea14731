"""Long prompts as 75-token chunks, as A1111 builds them, and the token counter.

A chunk is `[start] + 75 tokens + [end]`, padded with the end token (the padding after the first
end token becomes the tokenizer's pad token when encoded). A chunk that fills up while a comma was
seen within the last `comma_padding_backtrack` tokens is cut after that comma and the rest moves to
the next chunk. `BREAK` closes the current chunk. Textual-inversion embeddings take one token slot
per vector and never straddle two chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modules.prompting.embeddings import Embedding, EmbeddingDatabase
from modules.prompting.parser import is_break, parse_prompt_attention, split_composable
from modules.prompting.scheduling import prompt_schedule

CHUNK_LENGTH = 75
EMPHASIS_MODES = ("None", "Ignore", "Original", "No norm")
DEFAULT_COMMA_BACKTRACK = 20


@dataclass
class PromptChunk:
    """77 token ids with one weight each; `fixes` are (slot after the start token, embedding)."""

    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)
    fixes: list[tuple[int, Embedding]] = field(default_factory=list)


def _token_id(tokenizer: Any, token: str) -> int | None:
    """The id of one vocabulary entry, or None when it is missing (without building the whole vocab
    dict, which costs tens of milliseconds per prompt)."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(token_id)


class PromptTokenizer:
    """Turns one prompt line into chunks for one text encoder's tokenizer."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        embeddings: EmbeddingDatabase | None = None,
        comma_padding_backtrack: int = DEFAULT_COMMA_BACKTRACK,
        emphasis: str = "Original",
    ) -> None:
        if emphasis not in EMPHASIS_MODES:
            raise ValueError(f"emphasis: unknown mode {emphasis!r} (expected one of {', '.join(EMPHASIS_MODES)})")
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.comma_padding_backtrack = int(comma_padding_backtrack)
        self.emphasis = emphasis
        self.id_start = int(tokenizer.bos_token_id)
        self.id_end = int(tokenizer.eos_token_id)
        self.id_pad = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else self.id_end
        self.comma_token = _token_id(tokenizer, ",</w>")

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """BPE ids of each text, without start/end tokens and without truncation."""
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]

    def empty_chunk(self) -> PromptChunk:
        """The chunk of an empty prompt (start, end, padding), all weights 1."""
        tokens = [self.id_start] + [self.id_end] * (CHUNK_LENGTH + 1)
        return PromptChunk(tokens, [1.0] * (CHUNK_LENGTH + 2))

    def padded_tokens(self, chunk: PromptChunk) -> list[int]:
        """The chunk's ids with everything after the first end token set to the pad token."""
        tokens = list(chunk.tokens)
        if self.id_pad != self.id_end:
            first_end = tokens.index(self.id_end)
            tokens[first_end + 1 :] = [self.id_pad] * (len(tokens) - first_end - 1)
        return tokens

    def parse(self, line: str) -> list[tuple[str, float]]:
        """(text, weight) pieces of a line under the emphasis mode."""
        if self.emphasis == "None":
            return [(line, 1.0)]
        parsed = parse_prompt_attention(line)
        if self.emphasis == "Ignore":
            return [(text, weight if is_break((text, weight)) else 1.0) for text, weight in parsed]
        return parsed

    def chunk_line(self, line: str) -> tuple[list[PromptChunk], int]:
        """The chunks of `line` and its token count (75 for each full chunk plus the last one's tokens)."""
        parsed = self.parse(line)
        pieces = [text for text, weight in parsed if not is_break((text, weight))]
        piece_ids = iter(self.token_ids(pieces))
        builder = _ChunkBuilder(self)
        for text, weight in parsed:
            if is_break((text, weight)):
                builder.close()
                continue
            builder.add(next(piece_ids), weight)
        return builder.finish()


class _ChunkBuilder:
    def __init__(self, owner: PromptTokenizer) -> None:
        self.owner = owner
        self.chunks: list[PromptChunk] = []
        self.chunk = PromptChunk()
        self.token_count = 0
        self.last_comma = -1

    def close(self, is_last: bool = False) -> None:
        chunk = self.chunk
        self.token_count += len(chunk.tokens) if is_last else CHUNK_LENGTH
        missing = CHUNK_LENGTH - len(chunk.tokens)
        if missing > 0:
            chunk.tokens += [self.owner.id_end] * missing
            chunk.multipliers += [1.0] * missing
        chunk.tokens = [self.owner.id_start, *chunk.tokens, self.owner.id_end]
        chunk.multipliers = [1.0, *chunk.multipliers, 1.0]
        self.chunks.append(chunk)
        self.chunk = PromptChunk()
        self.last_comma = -1

    def add(self, tokens: list[int], weight: float) -> None:
        owner = self.owner
        backtrack = owner.comma_padding_backtrack
        position = 0
        while position < len(tokens):
            token = tokens[position]
            chunk = self.chunk
            if token == owner.comma_token:
                self.last_comma = len(chunk.tokens)
            elif (
                backtrack != 0
                and len(chunk.tokens) == CHUNK_LENGTH
                and self.last_comma != -1
                and len(chunk.tokens) - self.last_comma <= backtrack
            ):
                cut = self.last_comma + 1
                moved_tokens, moved_weights = chunk.tokens[cut:], chunk.multipliers[cut:]
                del chunk.tokens[cut:], chunk.multipliers[cut:]
                self.close()
                self.chunk.tokens, self.chunk.multipliers = moved_tokens, moved_weights
            if len(self.chunk.tokens) == CHUNK_LENGTH:
                self.close()
            embedding, covered = (None, 0) if owner.embeddings is None else owner.embeddings.find_at(tokens, position)
            if embedding is None:
                self.chunk.tokens.append(token)
                self.chunk.multipliers.append(weight)
                position += 1
                continue
            count = embedding.vector_count
            if len(self.chunk.tokens) + count > CHUNK_LENGTH:
                self.close()
            self.chunk.fixes.append((len(self.chunk.tokens), embedding))
            self.chunk.tokens += [0] * count
            self.chunk.multipliers += [weight] * count
            position += covered

    def finish(self) -> tuple[list[PromptChunk], int]:
        if self.chunk.tokens or not self.chunks:
            self.close(is_last=True)
        return self.chunks, self.token_count


def token_limit(count: int) -> int:
    """The chunk capacity a count needs: 75, 150, ... (A1111's "12/75", "80/150")."""
    return math.ceil(max(count, 1) / CHUNK_LENGTH) * CHUNK_LENGTH


def count_tokens(
    text: str,
    engine_or_tokenizer: Any,
    *,
    steps: int = 1,
    embeddings: EmbeddingDatabase | None = None,
    comma_padding_backtrack: int = DEFAULT_COMMA_BACKTRACK,
    emphasis: str = "Original",
) -> tuple[int, int]:
    """(token count, chunk limit) of a prompt, as A1111's counter shows it: the largest count among
    its AND sub-prompts and scheduled variants over `steps` steps.

    `engine_or_tokenizer` is a `DiffusionEngine` (its first tokenizer and embeddings are used) or a
    tokenizer."""
    tokenizer = engine_or_tokenizer
    if hasattr(engine_or_tokenizer, "checkpoint"):
        tokenizer = engine_or_tokenizer.checkpoint.tokenizers[0]
        embeddings = embeddings or getattr(engine_or_tokenizer, "embeddings", None)
    chunker = PromptTokenizer(tokenizer, embeddings=embeddings, comma_padding_backtrack=comma_padding_backtrack, emphasis=emphasis)
    texts = {scheduled for part, _ in split_composable(text) for _, scheduled in prompt_schedule(part, max(1, steps))}
    count = max(chunker.chunk_line(line)[1] for line in texts)
    return count, token_limit(count)
