"""Merge network deltas into the loaded model's weights in place, and restore them exactly.

Before a layer is first changed its weight is copied to the CPU; `restore()` copies every backup
back, so the model is bit-identical to before. Nothing is reloaded from the checkpoint. Applying the
same set of networks (same files, same weights) again is a no-op; a different set first restores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modules.networks.formats import NetworkFormatError, NetworkPatches, match_layers, module_table

log = logging.getLogger(__name__)
LOADED_FILES_KEPT = 8


@dataclass(frozen=True)
class NetworkRequest:
    """One network to merge: its file and the text-encoder and UNet multipliers."""

    name: str
    path: Path
    te_multiplier: float = 1.0
    unet_multiplier: float = 1.0
    dyn_dim: int | None = None

    def identity(self) -> tuple:
        status = self.path.stat()
        return (str(self.path), status.st_size, status.st_mtime_ns, self.te_multiplier, self.unet_multiplier, self.dyn_dim)


@dataclass
class ApplyReport:
    """What the last `apply` did: networks merged, and the ones skipped with the reason."""

    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    layers: int = 0


def load_network_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or of a .pt/.ckpt read with `weights_only=True` (never unsafe)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a refusal, reported by name
        raise NetworkFormatError(f"{path.name}: not a weights-only file ({error})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise NetworkFormatError(f"{path.name}: holds no tensor dictionary")
    return {key: value for key, value in data.items() if isinstance(value, torch.Tensor)}


class NetworkApplier:
    """Merges networks into one model's UNet and text encoders (`text_encoders[0]` is te1)."""

    def __init__(self, unet: Any, text_encoders: list[Any]) -> None:
        self.models = {"unet": unet, **{f"te{index + 1}": encoder for index, encoder in enumerate(text_encoders)}}
        self._tables: dict[str, dict[str, str]] | None = None
        self._backups: dict[tuple[str, str], torch.Tensor] = {}
        self._applied: tuple = ()
        self._skipped_indices: list[int] = []
        self._loaded: dict[tuple, NetworkPatches] = {}
        self.report = ApplyReport()

    @property
    def tables(self) -> dict[str, dict[str, str]]:
        if self._tables is None:
            self._tables = module_table(self.models["unet"], [model for key, model in self.models.items() if key != "unet"])
        return self._tables

    @property
    def active(self) -> bool:
        return bool(self._backups)

    def _patches(self, request: NetworkRequest, identity: tuple) -> NetworkPatches:
        key = identity[:3]
        if key not in self._loaded:
            patches = match_layers(load_network_file(request.path), self.tables, request.path.name)
            while len(self._loaded) >= LOADED_FILES_KEPT:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[key] = patches
        return self._loaded[key]

    @torch.no_grad()
    def apply(self, requests: list[NetworkRequest]) -> ApplyReport:
        """Make the model carry exactly `requests` (an empty list restores the original weights)."""
        identity = tuple(request.identity() for request in requests)
        if identity == self._applied:
            # the same files at the same weights: nothing to do; names may differ (alias vs file name)
            reasons = list(self.report.skipped.values())
            skipped = {requests[index].name: reason for index, reason in zip(self._skipped_indices, reasons, strict=True)}
            applied = [request.name for index, request in enumerate(requests) if index not in self._skipped_indices]
            self.report = ApplyReport(applied, skipped, self.report.layers)
            return self.report
        self.restore()
        report = ApplyReport()
        for index, (request, request_identity) in enumerate(zip(requests, identity, strict=True)):
            try:
                patches = self._patches(request, request_identity)
                changes = self._deltas(patches, request)
            except (NetworkFormatError, OSError, RuntimeError) as error:
                report.skipped[request.name] = str(error)
                self._skipped_indices.append(index)
                log.warning("network %s skipped: %s", request.name, error)
                continue
            for (part, module_name), change in changes.items():
                weight = self._weight(part, module_name)
                if (part, module_name) not in self._backups:
                    self._backups[(part, module_name)] = weight.detach().to("cpu", copy=True)
                weight.copy_((weight.float() + change).to(weight.dtype))
            report.applied.append(request.name)
            report.layers += len(changes)
        self._applied = identity
        self.report = report
        return report

    def _weight(self, part: str, module_name: str) -> torch.Tensor:
        return self.models[part].get_submodule(module_name).weight

    def _deltas(self, patches: NetworkPatches, request: NetworkRequest) -> dict[tuple[str, str], torch.Tensor]:
        """Every layer's change, computed before any weight is touched (a bad layer skips the file)."""
        changes: dict[tuple[str, str], torch.Tensor] = {}
        for (part, module_name), patch in patches.layers.items():
            multiplier = request.unet_multiplier if part == "unet" else request.te_multiplier
            if multiplier == 0:
                continue
            weight = self._weight(part, module_name)
            changes[(part, module_name)] = patch.delta(weight.detach(), multiplier, request.dyn_dim)
        return changes

    @torch.no_grad()
    def restore(self) -> None:
        """Copy every backed-up weight back (bit-exact) and forget the applied set."""
        for (part, module_name), backup in self._backups.items():
            self._weight(part, module_name).copy_(backup)
        self._backups.clear()
        self._applied = ()
        self._skipped_indices: list[int] = []
        self.report = ApplyReport()
