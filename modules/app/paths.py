"""Where user data, models and configuration live, derived from the flags.

Standard-library only, like flags.py, so launch.py can use it before the
virtual environment is ready.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Paths:
    """Every folder and file location the web UI uses, all absolute."""

    repo_root: Path
    data_dir: Path
    models_dir: Path
    checkpoint_dirs: tuple[Path, ...]
    vae_dirs: tuple[Path, ...]
    lora_dir: Path
    esrgan_dir: Path
    embeddings_dir: Path
    outputs_dir: Path
    config_file: Path
    ui_config_file: Path
    cache_file: Path
    styles_file: Path
    extensions_dir: Path
    extensions_builtin_dir: Path
    configs_dir: Path

    @property
    def default_checkpoint_dir(self) -> Path:
        """models/Stable-diffusion, where new checkpoints are placed."""
        return self.checkpoint_dirs[0]

    @property
    def default_vae_dir(self) -> Path:
        """models/VAE, where new VAE files are placed."""
        return self.vae_dirs[0]


def _absolute(value: str | Path) -> Path:
    """Expand ``~`` and make a path absolute against the working directory."""
    return Path(value).expanduser().resolve()


def _flag(namespace: argparse.Namespace, name: str) -> str | None:
    """Read an optional flag, so namespaces lacking it (tests) still work."""
    value = getattr(namespace, name, None)
    return value or None


def _unique(paths: list[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))


def build_paths(namespace: argparse.Namespace, repo_root: Path | None = None) -> Paths:
    """Compute every location from the parsed flags.

    --data-dir is the base for user data (default: the repository root),
    --models-dir overrides data_dir/models, and the per-kind flags
    (--ckpt-dir, --vae-dir, ...) add or replace single folders.
    """
    root = _absolute(repo_root) if repo_root is not None else REPO_ROOT
    data_dir = _absolute(_flag(namespace, "data_dir") or root)
    models_flag = _flag(namespace, "models_dir")
    models_dir = _absolute(models_flag) if models_flag else data_dir / "models"

    checkpoint_dirs = [models_dir / "Stable-diffusion"]
    if ckpt_dir := _flag(namespace, "ckpt_dir"):
        checkpoint_dirs.append(_absolute(ckpt_dir))
    vae_dirs = [models_dir / "VAE"]
    if vae_dir := _flag(namespace, "vae_dir"):
        vae_dirs.append(_absolute(vae_dir))

    def chosen(flag_name: str, default: Path) -> Path:
        value = _flag(namespace, flag_name)
        return _absolute(value) if value else default

    return Paths(
        repo_root=root,
        data_dir=data_dir,
        models_dir=models_dir,
        checkpoint_dirs=_unique(checkpoint_dirs),
        vae_dirs=_unique(vae_dirs),
        lora_dir=chosen("lora_dir", models_dir / "Lora"),
        esrgan_dir=chosen("esrgan_models_path", models_dir / "ESRGAN"),
        embeddings_dir=chosen("embeddings_dir", data_dir / "embeddings"),
        outputs_dir=data_dir / "outputs",
        config_file=chosen("ui_settings_file", data_dir / "config.json"),
        ui_config_file=chosen("ui_config_file", data_dir / "ui-config.json"),
        cache_file=data_dir / "cache.json",
        styles_file=chosen("styles_file", data_dir / "styles.csv"),
        extensions_dir=data_dir / "extensions",
        extensions_builtin_dir=root / "extensions-builtin",
        configs_dir=root / "configs",
    )


def ensure_user_dirs(paths: Paths) -> None:
    """Create the folders users drop files into, if missing.

    Extra folders given with --ckpt-dir / --vae-dir are only read, never
    created: a missing one usually means an unmounted drive, not a request.
    """
    folders = [
        paths.data_dir,
        paths.models_dir,
        paths.default_checkpoint_dir,
        paths.default_vae_dir,
        paths.lora_dir,
        paths.esrgan_dir,
        paths.embeddings_dir,
        paths.outputs_dir,
        paths.extensions_dir,
    ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
