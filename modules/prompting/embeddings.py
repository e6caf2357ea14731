"""Textual-inversion embeddings: scanned from the embeddings folder, triggered by file name.

Formats read (as A1111): `.pt`/`.bin` pickles (loaded with torch's restricted unpickler) and
`.safetensors`, holding either A1111's `string_to_param`, an `emb_params` tensor, a diffusers-style
`{token: tensor}` with one tensor, or SDXL's `clip_l` + `clip_g` pair. An embedding whose vector
width does not fit the loaded model is listed in `skipped` with the reason.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modules.models.checkpoints import sha256_of_file
from modules.models.safe_load import CheckpointError, _read_pickle, _read_safetensors

log = logging.getLogger(__name__)

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")
SHORTHASH_LENGTH = 12
SDXL_KEYS = ("clip_l", "clip_g")


@dataclass
class Embedding:
    """One embedding: `vectors[i]` is the (count, width) tensor for the model's i-th text encoder
    (one entry for SD1/SD2; `clip_l` then `clip_g` for SDXL)."""

    name: str
    vectors: list[torch.Tensor]
    path: Path
    hash: str = ""
    step: int | None = None
    checkpoint_hash: str | None = None
    checkpoint_name: str | None = None

    @property
    def vector_count(self) -> int:
        return int(self.vectors[0].shape[0])

    @property
    def shorthash(self) -> str:
        return self.hash[:SHORTHASH_LENGTH]

    def describe(self) -> dict[str, Any]:
        """A1111's `/sdapi/v1/embeddings` entry: training step, checkpoint, width and vector count."""
        return {
            "step": self.step,
            "sd_checkpoint": self.checkpoint_hash,
            "sd_checkpoint_name": self.checkpoint_name,
            "shape": sum(int(vectors.shape[1]) for vectors in self.vectors),
            "vectors": self.vector_count,
        }


@dataclass
class _RawEmbedding:
    single: torch.Tensor | None = None
    by_encoder: dict[str, torch.Tensor] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class EmbeddingError(ValueError):
    """An embedding file could not be used; the message says why."""


def read_embedding_file(path: Path) -> _RawEmbedding:
    """The vectors stored in one embedding file, in any of the supported formats."""
    try:
        data: Any = _read_safetensors(path) if path.suffix.lower() == ".safetensors" else _read_pickle(path)
    except CheckpointError as error:
        raise EmbeddingError(str(error).removeprefix(f"{path}: ")) from error
    if not isinstance(data, dict):
        raise EmbeddingError(f"not an embedding (found {type(data).__name__})")
    raw = _vectors_of(data)
    raw.details = {
        "step": data.get("step") if isinstance(data.get("step"), int) else None,
        "checkpoint_hash": data.get("sd_checkpoint") if isinstance(data.get("sd_checkpoint"), str) else None,
        "checkpoint_name": data.get("sd_checkpoint_name") if isinstance(data.get("sd_checkpoint_name"), str) else None,
    }
    return raw


def _vectors_of(data: dict[str, Any]) -> _RawEmbedding:
    if "string_to_param" in data:
        params = data["string_to_param"]
        params = getattr(params, "_parameters", params)
        if not isinstance(params, dict) or len(params) != 1:
            raise EmbeddingError("string_to_param must hold exactly one tensor")
        return _RawEmbedding(single=_as_matrix(next(iter(params.values()))))
    if all(key in data for key in SDXL_KEYS):
        return _RawEmbedding(by_encoder={key: _as_matrix(data[key]) for key in SDXL_KEYS})
    if "emb_params" in data:
        return _RawEmbedding(single=_as_matrix(data["emb_params"]))
    tensors = [value for value in data.values() if isinstance(value, torch.Tensor)]
    if len(data) == 1 and len(tensors) == 1:
        return _RawEmbedding(single=_as_matrix(tensors[0]))
    raise EmbeddingError("unrecognised embedding format (expected string_to_param, emb_params, clip_l/clip_g or one tensor)")


def _as_matrix(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise EmbeddingError(f"expected a tensor, found {type(value).__name__}")
    tensor = value.detach().to(torch.float32)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise EmbeddingError(f"expected a (vectors, width) tensor, found shape {tuple(value.shape)}")
    return tensor


def fit_to_model(raw: _RawEmbedding, widths: list[int]) -> list[torch.Tensor]:
    """Vectors per text encoder of a model whose token embeddings are `widths` wide, or raise
    EmbeddingError naming both shapes."""
    if len(widths) == 2:
        if raw.by_encoder:
            vectors = [raw.by_encoder["clip_l"], raw.by_encoder["clip_g"]]
            found = [int(vector.shape[1]) for vector in vectors]
            if found == widths and vectors[0].shape[0] == vectors[1].shape[0]:
                return vectors
            described = f"clip_l {found[0]} + clip_g {found[1]} wide"
        else:
            described = f"{int(raw.single.shape[1])} wide, one encoder"
        raise EmbeddingError(f"vectors are {described}; this model needs clip_l {widths[0]} + clip_g {widths[1]}")
    if raw.single is None:
        raise EmbeddingError(f"an SDXL embedding (clip_l/clip_g); this model needs {widths[0]}-wide vectors")
    if int(raw.single.shape[1]) != widths[0]:
        raise EmbeddingError(f"vectors are {int(raw.single.shape[1])} wide; this model needs {widths[0]}")
    return [raw.single]


class EmbeddingDatabase:
    """The embeddings usable with the loaded model, looked up by the token ids of their names.

    `load(widths, tokenize)` scans the folder (recursively, sorted) and keeps the embeddings whose
    width fits; `needs_reload(widths)` says whether the folder or the model changed since.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.loaded: dict[str, Embedding] = {}
        self.skipped: dict[str, str] = {}
        self._by_first_token: dict[int, list[tuple[tuple[int, ...], Embedding]]] = {}
        self._signature: tuple | None = None

    def _folder_signature(self, widths: list[int]) -> tuple:
        files: list[tuple[str, int, int]] = []
        for path in self._files():
            stat = path.stat()
            files.append((str(path), stat.st_size, stat.st_mtime_ns))
        return (tuple(widths), tuple(files))

    def _files(self) -> list[Path]:
        if self.directory is None or not self.directory.is_dir():
            return []
        found = []
        for root, _dirs, names in os.walk(self.directory, followlinks=True):
            for name in names:
                path = Path(root) / name
                if name.startswith(".") or path.suffix.lower() not in EMBEDDING_SUFFIXES:
                    continue
                found.append(path)
        return sorted(found, key=lambda item: str(item).lower())

    def needs_reload(self, widths: list[int]) -> bool:
        return self._signature != self._folder_signature(widths)

    def load(self, widths: list[int], tokenize) -> None:
        """Rescan the folder for a model with text encoders `widths` wide; `tokenize(text)` gives
        the token ids (no start/end tokens) that trigger an embedding named `text`."""
        self.loaded, self.skipped, self._by_first_token = {}, {}, {}
        for path in self._files():
            name = path.stem
            if name in self.loaded:
                self.skipped[name] = f"{path}: another file with the same name was loaded ({self.loaded[name].path})"
                continue
            try:
                if path.stat().st_size == 0:
                    raise EmbeddingError("empty file")
                raw = read_embedding_file(path)
                vectors = fit_to_model(raw, widths)
            except (EmbeddingError, OSError) as error:
                self.skipped[name] = f"{path.name}: {error}"
                continue
            embedding = Embedding(name, vectors, path, sha256_of_file(path), **raw.details)
            self.register(embedding, tokenize(name))
        self._signature = self._folder_signature(widths)
        if self.skipped:
            log.info("textual inversion: %d loaded, %d skipped", len(self.loaded), len(self.skipped))

    def describe(self) -> dict[str, dict[str, Any]]:
        """A1111's `/sdapi/v1/embeddings` response: `loaded` entries and `skipped` ones with the reason."""
        return {
            "loaded": {name: embedding.describe() for name, embedding in self.loaded.items()},
            "skipped": {name: {"reason": reason} for name, reason in self.skipped.items()},
        }

    def register(self, embedding: Embedding, token_ids: list[int]) -> None:
        """Make `embedding` available under the token ids of its name."""
        if not token_ids:
            self.skipped[embedding.name] = f"{embedding.path.name}: the name has no tokens"
            return
        self.loaded[embedding.name] = embedding
        candidates = self._by_first_token.setdefault(token_ids[0], [])
        candidates.append((tuple(token_ids), embedding))
        candidates.sort(key=lambda item: len(item[0]), reverse=True)

    def find_at(self, tokens: list[int], position: int) -> tuple[Embedding | None, int]:
        """The embedding whose name's tokens start at `tokens[position]` (longest match) and how
        many prompt tokens it covers, else (None, 0)."""
        for ids, embedding in self._by_first_token.get(tokens[position], ()):
            if tuple(tokens[position : position + len(ids)]) == ids:
                return embedding, len(ids)
        return None, 0
