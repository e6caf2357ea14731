"""The model manager: knows the checkpoints on disk, holds the loaded one, switches safely.

A failed switch (corrupt, truncated, wrong architecture, unsafe pickle) leaves the previous model
loaded and raises `CheckpointError` saying why.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from modules.models.checkpoints import (
    CheckpointInfo,
    HashCache,
    find_checkpoint,
    list_checkpoints,
    list_vaes,
    vae_beside_checkpoint,
)
from modules.models.engine import DiffusionEngine
from modules.models.loader import load_checkpoint
from modules.models.safe_load import CheckpointError

log = logging.getLogger(__name__)

VAE_AUTOMATIC = "Automatic"
VAE_NONE = "None"


@dataclass(frozen=True)
class DevicePolicy:
    """Where and in which precision models run: fp16 on CUDA, fp32 on the CPU."""

    device: torch.device
    dtype: torch.dtype
    no_half_vae: bool = False

    @classmethod
    def choose(
        cls, use_cpu: list[str] | None = None, no_half: bool = False, precision: str = "autocast", no_half_vae: bool = False
    ) -> DevicePolicy:
        cpu_forced = bool(use_cpu) and ("all" in use_cpu or "sd" in use_cpu)
        if torch.cuda.is_available() and not cpu_forced:
            half = not no_half and precision != "full"
            return cls(torch.device("cuda"), torch.float16 if half else torch.float32, no_half_vae)
        return cls(torch.device("cpu"), torch.float32)

    def vae_dtype(self, family: str) -> torch.dtype:
        """fp32 for the VAE when asked (--no-half-vae) and for SDXL's VAE, whose fp16 activations overflow
        (diffusers' SDXL pipeline upcasts it the same way)."""
        if self.dtype == torch.float16 and (self.no_half_vae or family == "sdxl"):
            return torch.float32
        return self.dtype


class ModelManager:
    """Checkpoint and VAE lists plus the one loaded `DiffusionEngine`."""

    def __init__(
        self,
        checkpoint_dirs: list[Path],
        vae_dirs: list[Path],
        cache_file: Path,
        policy: DevicePolicy,
        on_loaded: Callable[[DiffusionEngine], None] | None = None,
    ) -> None:
        self.checkpoint_dirs = checkpoint_dirs
        self.vae_dirs = vae_dirs
        self.cache = HashCache(cache_file)
        self.policy = policy
        self.on_loaded = on_loaded
        self.checkpoints: list[CheckpointInfo] = []
        self.vaes: dict[str, Path] = {}
        self.engine: DiffusionEngine | None = None
        self.info: CheckpointInfo | None = None
        self.vae_name: str | None = None
        self.vae_hash: str | None = None
        self._lock = threading.RLock()
        self.refresh()

    def refresh(self) -> None:
        """Rescan the checkpoint and VAE folders."""
        with self._lock:
            self.checkpoints = list_checkpoints(self.checkpoint_dirs, self.cache)
            self.vaes = list_vaes(self.vae_dirs)

    def titles(self) -> list[str]:
        return [info.title for info in self.checkpoints]

    def vae_choices(self) -> list[str]:
        return [VAE_AUTOMATIC, VAE_NONE, *sorted(self.vaes)]

    def find(self, query: str) -> CheckpointInfo:
        found = find_checkpoint(self.checkpoints, query)
        if found is None:
            self.refresh()
            found = find_checkpoint(self.checkpoints, query)
        if found is None:
            names = ", ".join(self.titles()) or "none found"
            raise CheckpointError(f"sd_model_checkpoint: no checkpoint matches {query!r}; available: {names}")
        return found

    def resolve_vae(self, info: CheckpointInfo, vae_setting: str) -> tuple[Path | None, str | None]:
        """The VAE file for a checkpoint under the "SD VAE" setting, and its display name."""
        if vae_setting == VAE_NONE:
            return None, None
        if vae_setting in (VAE_AUTOMATIC, "", None):
            beside = vae_beside_checkpoint(info.filename)
            return (beside, beside.name) if beside else (None, None)
        if vae_setting in self.vaes:
            return self.vaes[vae_setting], vae_setting
        self.vaes = list_vaes(self.vae_dirs)
        if vae_setting in self.vaes:
            return self.vaes[vae_setting], vae_setting
        raise CheckpointError(f"sd_vae: no VAE named {vae_setting!r}; available: {', '.join(self.vae_choices())}")

    def load(self, query: str | None = None, *, vae: str = VAE_AUTOMATIC, prediction_type: str | None = None) -> DiffusionEngine:
        """Load a checkpoint (the first one when `query` is None) unless it is already loaded.

        On failure the previously loaded model stays loaded and `CheckpointError` is raised.
        """
        with self._lock:
            if query:
                info = self.find(query)
            elif self.checkpoints:
                info = self.checkpoints[0]
            else:
                raise CheckpointError("no checkpoint found: put a .safetensors file into " + ", ".join(map(str, self.checkpoint_dirs)))
            vae_path, vae_name = self.resolve_vae(info, vae)
            if self.engine is not None and self.info == info and self.vae_name == vae_name:
                return self.engine
            log.info("loading %s", info.title)
            try:
                info.calculate_sha256(self.cache)
                checkpoint = load_checkpoint(
                    info.filename,
                    device=self.policy.device,
                    dtype=self.policy.dtype,
                    prediction_type=prediction_type,
                    vae_path=vae_path,
                )
            except CheckpointError:
                raise
            except (RuntimeError, ValueError, KeyError, OSError, TypeError) as error:
                raise CheckpointError(f"could not load {info.filename.name}: {error}") from error
            vae_dtype = self.policy.vae_dtype(checkpoint.family)
            if vae_dtype != checkpoint.vae.dtype:
                checkpoint.vae.to(vae_dtype)
            previous = self.engine
            self.engine = DiffusionEngine(checkpoint)
            self.info = info
            self.vae_name = vae_name
            self.vae_hash = self.cache.sha256(f"vae/{vae_name}", vae_path)[:10] if vae_path else None
            del previous
            gc.collect()
            if self.on_loaded is not None:
                self.on_loaded(self.engine)
            return self.engine

    def require(self) -> DiffusionEngine:
        """The loaded engine, loading the first checkpoint on demand."""
        if self.engine is None:
            return self.load()
        return self.engine
