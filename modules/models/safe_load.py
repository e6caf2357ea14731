"""Read model weight files without ever executing code from them.

``.safetensors`` files are parsed by the safetensors library after a header
check. Pickle-based files (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) go through
``torch.load(weights_only=True)``, torch's restricted unpickler. A small list of
data-only globals that real Stable Diffusion checkpoints contain (numpy scalars
and dtypes, and PyTorch Lightning's ``ModelCheckpoint`` callback state) is
allowed, mapped to harmless stand-ins; anything else is refused. There is no
fallback to unrestricted unpickling.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch

SAFETENSORS_SUFFIXES = {".safetensors"}
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin"}
# A safetensors header larger than this is certainly garbage, not a model.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(Exception):
    """A model file that cannot be used: missing, corrupt, unsafe or of the wrong kind."""


class LightningCallbackState:
    """Inert stand-in for ``pytorch_lightning...ModelCheckpoint`` objects found in old .ckpt files.

    Unpickling only stores the pickled attribute dictionary; no Lightning code runs.
    """

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _numpy_safe_globals() -> list[tuple[Any, str]]:
    """numpy reconstruction helpers that old checkpoints use for scalars such as ``global_step``."""
    try:
        import numpy
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy is a hard dependency of torch builds we use
        return []
    entries: list[tuple[Any, str]] = []
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries.append((multiarray.scalar, f"{module_name}.scalar"))
        entries.append((multiarray._reconstruct, f"{module_name}._reconstruct"))
    entries.append((numpy.dtype, "numpy.dtype"))
    entries.append((numpy.ndarray, "numpy.ndarray"))
    for name in dir(numpy.dtypes):
        dtype_class = getattr(numpy.dtypes, name)
        if isinstance(dtype_class, type) and name.endswith("DType") and "Object" not in name:
            entries.append((dtype_class, f"numpy.dtypes.{name}"))
    return entries


def _allowed_data_globals() -> list[tuple[Any, str]]:
    lightning = [
        (LightningCallbackState, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"),
        (LightningCallbackState, "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint"),
    ]
    return lightning + _numpy_safe_globals()


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Return the parsed JSON header of a safetensors file, checking it against the file size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: file is corrupt or truncated (no safetensors header)")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length <= 1 or header_length > MAX_HEADER_BYTES or 8 + header_length > size:
                raise CheckpointError(f"{path}: file is corrupt or truncated (bad safetensors header length)")
            header = json.loads(handle.read(header_length))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read file: {error}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: file is corrupt or truncated (unreadable safetensors header)") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: file is corrupt or truncated (safetensors header is not a table)")
    data_length = size - 8 - header_length
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not offsets or len(offsets) != 2:
            raise CheckpointError(f"{path}: file is corrupt or truncated (tensor {name!r} has no offsets)")
        end = max(end, int(offsets[1]))
    if end > data_length:
        raise CheckpointError(f"{path}: file is corrupt or truncated (header describes {end} bytes of tensors, file holds {data_length})")
    return header


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` table of a safetensors file (empty when absent)."""
    metadata = read_safetensors_header(path).get("__metadata__") or {}
    return {str(key): str(value) for key, value in metadata.items()}


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    read_safetensors_header(path)
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as error:  # the library raises its own error types and OSError
        raise CheckpointError(f"{path}: file is corrupt or truncated: {error}") from error


def _load_pickle(path: Path, use_mmap: bool) -> Any:
    with torch.serialization.safe_globals(_allowed_data_globals()):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=use_mmap)


# Phrases of torch's restricted unpickler meaning "this pickle wants code or classes", as
# opposed to "these bytes are not a valid pickle at all".
REFUSAL_MARKERS = ("GLOBAL", "Unsupported global", "Trying to call reduce", "Can only build", "Can only create new object")


def _read_pickle(path: Path) -> Any:
    try:
        try:
            return _load_pickle(path, use_mmap=True)
        except RuntimeError as error:
            # Files written by torch < 1.6 are not zip archives and cannot be memory-mapped.
            if "mmap" not in str(error):
                raise
            return _load_pickle(path, use_mmap=False)
    except pickle.UnpicklingError as error:
        message = str(error)
        if any(marker in message for marker in REFUSAL_MARKERS):
            reason = _refusal_reason(message)
            raise CheckpointError(f"{path}: loading refused: the pickle needs {reason}; convert it to .safetensors") from error
        raise CheckpointError(f"{path}: file is corrupt or truncated (not a valid checkpoint: {_detail(message)})") from error
    except Exception as error:  # damaged archives and pickles surface as many exception types
        raise CheckpointError(f"{path}: file is corrupt or truncated ({type(error).__name__}: {_detail(str(error))})") from error


def _detail(message: str) -> str:
    """The most specific single line of a (possibly long, multi-line) torch error message."""
    marker = "WeightsUnpickler error:"
    if marker in message:
        message = message.split(marker, 1)[1]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "no details"


def _refusal_reason(message: str) -> str:
    """Name what torch's restricted unpickler refused."""
    named = re.search(r"GLOBAL ([\w.]+)", message)
    if named:
        return f"the global {named.group(1)} (not an allowed data type)"
    return _detail(message)


def _unwrap(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: not a state dict (found {type(loaded).__name__})")
    return {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read all tensors of a weight file into CPU memory.

    Supports ``.safetensors`` and pickle-based ``.ckpt/.pt/.pth/.bin`` files; a
    top-level ``"state_dict"`` entry is unwrapped and non-tensor entries dropped.
    Raises :class:`CheckpointError` for a missing, corrupt, truncated or unsafe file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _unwrap(_read_pickle(path), path)
    raise CheckpointError(f"{path}: unsupported file type {suffix!r} (expected .safetensors, .ckpt, .pt or .pth)")
