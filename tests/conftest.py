"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# --- tiny random-weight checkpoints (A1111 single-file layout), built once per session ---


def _tiny_checkpoint(factory: pytest.TempPathFactory, arch: str) -> Path:
    from modules.tiny_checkpoint import build_tiny_checkpoint

    folder = factory.mktemp(f"tiny-{arch}")
    return build_tiny_checkpoint(arch, folder / f"tiny-{arch}.safetensors", seed=0)


@pytest.fixture(scope="session")
def tiny_sd1_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD1 checkpoint (seed 0); treat it as read-only."""
    return _tiny_checkpoint(tmp_path_factory, "sd1")


@pytest.fixture(scope="session")
def tiny_sd2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD2 checkpoint (seed 0); treat it as read-only."""
    return _tiny_checkpoint(tmp_path_factory, "sd2")


@pytest.fixture(scope="session")
def tiny_sdxl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL checkpoint (seed 0); treat it as read-only."""
    return _tiny_checkpoint(tmp_path_factory, "sdxl")
