"""A1111 hypernetworks: small residual MLPs applied to the keys' and values' context of attention layers.

A hypernetwork ``.pt`` (read with ``torch.load(weights_only=True)``) maps a context width (768, 320, ...)
to two state dicts, for the key and the value side. Each is a sequence ``linear.N.weight``/``bias`` of
linear layers (2-D weights), optionally each followed by an activation (``activation_func``, none after
the last unless ``activate_output``) and a layer norm (1-D weights, ``is_layer_norm``). Applied as
``context + mlp(context) * strength`` to the input of every attention layer's ``to_k``/``to_v`` whose
input width has an entry, through removable forward pre-hooks: the model's weights never change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as functional

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": functional.relu,
    "leakyrelu": functional.leaky_relu,
    "elu": functional.elu,
    "swish": functional.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softsign": functional.softsign,
    "mish": functional.mish,
    "gelu": functional.gelu,
}


class HypernetworkError(ValueError):
    """A hypernetwork file that cannot be used; the message names the file and the reason."""


@dataclass
class ContextMLP:
    """One side (key or value) of one width: layers in file order."""

    layers: list[tuple[str, torch.Tensor, torch.Tensor]]
    activation: Callable[[torch.Tensor], torch.Tensor]
    activate_output: bool

    def __call__(self, context: torch.Tensor) -> torch.Tensor:
        linear_count = sum(1 for kind, _, _ in self.layers if kind == "linear")
        seen = 0
        value = context
        for kind, weight, bias in self.layers:
            weight, bias = weight.to(context), bias.to(context)
            if kind == "linear":
                seen += 1
                value = functional.linear(value, weight, bias)
                if seen < linear_count or self.activate_output:
                    value = self.activation(value)
            else:
                value = functional.layer_norm(value, weight.shape, weight, bias)
        return value


@dataclass
class Hypernetwork:
    name: str
    path: Path
    sides: dict[int, tuple[ContextMLP, ContextMLP]]
    shorthash: str = ""


def _mlp(state: dict[str, torch.Tensor], activation: Callable, activate_output: bool, label: str) -> ContextMLP:
    indices = sorted({int(key.split(".")[1]) for key in state if key.startswith("linear.")})
    layers = []
    for index in indices:
        weight, bias = state.get(f"linear.{index}.weight"), state.get(f"linear.{index}.bias")
        if weight is None or bias is None:
            raise HypernetworkError(f"{label}: layer {index} lacks a weight or bias")
        layers.append(("linear" if weight.dim() == 2 else "norm", weight.float(), bias.float()))
    if not layers:
        raise HypernetworkError(f"{label}: no linear layers")
    return ContextMLP(layers, activation, activate_output)


def load_hypernetwork(path: Path) -> Hypernetwork:
    """Read a hypernetwork file (weights only) into per-width key/value MLPs."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a refusal, reported by name
        raise HypernetworkError(f"{path.name}: not a weights-only hypernetwork file ({error})") from None
    if not isinstance(data, dict):
        raise HypernetworkError(f"{path.name}: not a hypernetwork dictionary")
    activation_name = str(data.get("activation_func") or "linear").lower()
    if activation_name not in ACTIVATIONS:
        raise HypernetworkError(f"{path.name}: unknown activation_func {activation_name!r}")
    activation = ACTIVATIONS[activation_name]
    activate_output = bool(data.get("activate_output", False))
    sides = {}
    for width, pair in data.items():
        if isinstance(width, int) and isinstance(pair, (list, tuple)) and len(pair) == 2:
            label = f"{path.name} width {width}"
            sides[width] = (
                _mlp(pair[0], activation, activate_output, label + " key"),
                _mlp(pair[1], activation, activate_output, label + " value"),
            )
    if not sides:
        raise HypernetworkError(f"{path.name}: no context widths with key/value layers")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Hypernetwork(str(data.get("name") or path.stem), path, sides, digest[:10])


@dataclass
class HypernetworkActivation:
    infotext: dict[str, Any] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


class HypernetworkSet:
    """Hypernetwork files of a folder, and the hooks of the ones active on each UNet."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._handles: list[Any] = []
        self._active: tuple = ()
        self._last = HypernetworkActivation()

    def find(self, name: str) -> Path | None:
        if self.folder is None or not self.folder.is_dir():
            return None
        return next((path for path in sorted(self.folder.rglob("*.pt")) if path.stem == name), None)

    def remove(self) -> None:
        """Remove every hook (the model is then exactly as before: no weight was changed)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._active = ()

    def activate(self, engine: Any, tags: list) -> HypernetworkActivation:
        """Called at the prompt stage with the first prompt's ``hypernet`` tags."""
        unet = engine.checkpoint.unet
        found = [(tag, self.find(tag.name)) for tag in tags]
        identity = (id(unet), *((str(path), path.stat().st_mtime_ns, tag.te_multiplier) for tag, path in found if path))
        if identity == self._active and found:
            return self._last
        self.remove()
        result = HypernetworkActivation()
        missing = [tag.name for tag, path in found if path is None]
        if missing:
            result.comments.append("Hypernetworks not found: " + ", ".join(missing))
        used = []
        for tag, path in found:
            if path is None:
                continue
            try:
                network = load_hypernetwork(path)
            except HypernetworkError as error:
                result.comments.append(str(error))
                continue
            self._handles.extend(attach(unet, network, tag.te_multiplier))
            used.append((network, tag.te_multiplier))
        if used:
            network, strength = used[0]
            result.infotext["Hypernet"] = network.name
            result.infotext["Hypernet hash"] = network.shorthash
            if strength != 1:
                result.infotext["Hypernet strength"] = strength
        self._active = identity if used else ()
        self._last = result
        return result


def attach(unet: Any, network: Hypernetwork, strength: float) -> list[Any]:
    """Register pre-hooks on every attention ``to_k``/``to_v`` whose input width the network covers;
    returns the removable handles."""
    handles = []
    for name, module in unet.named_modules():
        if not (name.endswith(".to_k") or name.endswith(".to_v")) or not isinstance(module, torch.nn.Linear):
            continue
        sides = network.sides.get(module.in_features)
        if sides is None:
            continue
        mlp = sides[0] if name.endswith(".to_k") else sides[1]

        def hook(_module, inputs, mlp=mlp):
            context = inputs[0]
            return (context + mlp(context) * strength, *inputs[1:])

        handles.append(module.register_forward_pre_hook(hook))
    return handles
