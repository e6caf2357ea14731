"""Prompt chunks → cross-attention states, per model family, with emphasis and embeddings.

- SD1: CLIP ViT-L; clip skip N > 1 takes the N-th hidden state from the end and applies the
  final layer norm.
- SD2: OpenCLIP ViT-H without its last block (the penultimate layer, final norm applied); clip
  skip does not apply.
- SDXL: both encoders' penultimate hidden states (no final norm) side by side; the pooled
  embedding comes from the second encoder's first chunk.

Texts encoded in one call are padded to the same chunk count with empty-prompt chunks, and the
"Original" emphasis restores the mean over the whole call, as A1111 does.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.models.engine import Conditioning
from modules.prompting.chunks import DEFAULT_COMMA_BACKTRACK, PromptChunk, PromptTokenizer
from modules.prompting.embeddings import Embedding, EmbeddingDatabase

# Emphasis weights are clamped so absurd nesting cannot turn the states into inf/NaN.
MAX_ABS_WEIGHT = 1.0e4


@dataclass
class EncodeSettings:
    """How prompts are encoded: clip skip (SD1), emphasis mode, comma backtrack and the SDXL size
    conditioning (original size = target size = the image size, crop at top-left)."""

    clip_skip: int = 1
    emphasis: str = "Original"
    comma_padding_backtrack: int = DEFAULT_COMMA_BACKTRACK
    width: int = 512
    height: int = 512
    crop_top: int = 0
    crop_left: int = 0

    def key(self) -> tuple:
        return (self.clip_skip, self.emphasis, self.comma_padding_backtrack, self.width, self.height, self.crop_top, self.crop_left)


@dataclass
class EncodedPrompts:
    """One conditioning (batch of 1) per text, the largest token count, and embeddings used."""

    conditionings: list[Conditioning]
    token_count: int
    embeddings_used: dict[str, Embedding] = field(default_factory=dict)


class PromptEncoder:
    """Encodes prompt texts with a checkpoint's text encoders (no batching across calls)."""

    def __init__(self, checkpoint: Any, embeddings: EmbeddingDatabase | None = None) -> None:
        self.checkpoint = checkpoint
        self.family = checkpoint.family
        self.embeddings = embeddings

    def encoder_widths(self) -> list[int]:
        """Width of each text encoder's token embeddings (what an embedding's vectors must match)."""
        return [int(_token_embedding(encoder).weight.shape[1]) for encoder in self.checkpoint.text_encoders]

    @torch.inference_mode()
    def encode(self, texts: list[str], settings: EncodeSettings) -> EncodedPrompts:
        """Encode each text (already free of scheduling and AND syntax) to its own conditioning."""
        used: dict[str, Embedding] = {}
        per_encoder: list[torch.Tensor] = []
        pooled = None
        token_count = 0
        for index, (tokenizer, encoder) in enumerate(zip(self.checkpoint.tokenizers, self.checkpoint.text_encoders, strict=True)):
            chunker = PromptTokenizer(
                tokenizer,
                embeddings=self.embeddings,
                comma_padding_backtrack=settings.comma_padding_backtrack,
                emphasis=settings.emphasis,
            )
            lines = [chunker.chunk_line(text) for text in texts]
            token_count = max(count for _, count in lines)
            states, first_pooled = self._encode_chunks(index, encoder, chunker, [chunks for chunks, _ in lines], settings, used)
            per_encoder.append(states)
            pooled = first_pooled if first_pooled is not None else pooled
        cross = torch.cat(per_encoder, dim=-1).to(self.checkpoint.dtype)
        conditionings = []
        for row in range(len(texts)):
            if self.family == "sdxl":
                time_ids = torch.tensor(
                    [[settings.height, settings.width, settings.crop_top, settings.crop_left, settings.height, settings.width]],
                    dtype=self.checkpoint.dtype,
                    device=self.checkpoint.device,
                )
                conditionings.append(Conditioning(cross[row : row + 1], pooled[row : row + 1].to(self.checkpoint.dtype), time_ids))
            else:
                conditionings.append(Conditioning(cross[row : row + 1]))
        return EncodedPrompts(conditionings, token_count, used)

    def _encode_chunks(
        self,
        index: int,
        encoder: Any,
        chunker: PromptTokenizer,
        batch_chunks: list[list[PromptChunk]],
        settings: EncodeSettings,
        used: dict[str, Embedding],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        chunk_count = max(len(chunks) for chunks in batch_chunks)
        states = []
        pooled = None
        for chunk_index in range(chunk_count):
            batch = [chunks[chunk_index] if chunk_index < len(chunks) else chunker.empty_chunk() for chunks in batch_chunks]
            for chunk in batch:
                used.update((embedding.name, embedding) for _, embedding in chunk.fixes)
            tokens = torch.tensor([chunker.padded_tokens(chunk) for chunk in batch], device=self.checkpoint.device)
            fixes = [(row, offset, embedding.vectors[index]) for row, chunk in enumerate(batch) for offset, embedding in chunk.fixes]
            with _embedding_fixes(encoder, fixes):
                output = encoder(tokens, output_hidden_states=True)
            hidden = self._hidden_states(encoder, output, settings.clip_skip)
            weights = torch.tensor([chunk.multipliers for chunk in batch], device=hidden.device, dtype=torch.float32)
            states.append(apply_emphasis(hidden, weights, settings.emphasis))
            if chunk_index == 0 and hasattr(output, "text_embeds"):
                pooled = output.text_embeds
        return torch.cat(states, dim=1), pooled

    def _hidden_states(self, encoder: Any, output: Any, clip_skip: int) -> torch.Tensor:
        if self.family == "sdxl":
            return output.hidden_states[-2]
        if self.family == "sd1" and clip_skip > 1:
            return _final_layer_norm(encoder)(output.hidden_states[-clip_skip])
        return output.last_hidden_state


def apply_emphasis(states: torch.Tensor, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Scale each token's state by its weight. "Original" then rescales the whole batch so its mean
    is what it was before; "No norm" only scales; "None" and "Ignore" leave the states alone."""
    if mode in ("None", "Ignore") or bool((weights == 1.0).all()):
        return states
    weights = torch.nan_to_num(weights, nan=1.0).clamp(-MAX_ABS_WEIGHT, MAX_ABS_WEIGHT).to(states.dtype)
    original_mean = states.mean()
    scaled = states * weights.unsqueeze(-1)
    if mode == "No norm":
        return scaled
    restored = scaled * (original_mean / scaled.mean())
    # A scaled mean of (almost) zero would blow the restore up to inf/NaN: keep the scaled states.
    return restored if bool(torch.isfinite(restored).all()) else scaled


@contextmanager
def _embedding_fixes(encoder: Any, fixes: list[tuple[int, int, torch.Tensor]]):
    """While active, the token-embedding layer's output gets each embedding's vectors written at
    (row, 1 + offset) — the slot after the start token where its placeholder ids sit."""
    if not fixes:
        yield
        return

    def replace(_module, _inputs, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for row, offset, vectors in fixes:
            count = min(output.shape[1] - offset - 1, vectors.shape[0])
            output[row, offset + 1 : offset + 1 + count] = vectors[:count].to(output.device, output.dtype)
        return output

    handle = _token_embedding(encoder).register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _text_model(encoder: Any) -> Any:
    return getattr(encoder, "text_model", encoder)


def _token_embedding(encoder: Any) -> torch.nn.Module:
    return _text_model(encoder).embeddings.token_embedding


def _final_layer_norm(encoder: Any) -> torch.nn.Module:
    """The text encoder's final LayerNorm (transformers 5 moved it off `text_model`)."""
    return _text_model(encoder).final_layer_norm
