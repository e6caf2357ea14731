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


# ---- the app, built once per session on the tiny SD1 checkpoint --------------------------------
@pytest.fixture(scope="session")
def app_data_dir(tmp_path_factory, tiny_sd1_path):
    """A fresh --data-dir with the tiny SD1 checkpoint in models/Stable-diffusion/."""
    import shutil

    data_dir = tmp_path_factory.mktemp("data")
    checkpoints = data_dir / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True)
    shutil.copy(tiny_sd1_path, checkpoints / "tiny-sd1.safetensors")
    return data_dir


@pytest.fixture(scope="session")
def app_flags(app_data_dir):
    from modules.app.flags import parse_flags

    return parse_flags(["--data-dir", str(app_data_dir), "--api", "--skip-install"])


@pytest.fixture(scope="session")
def app_context(app_flags):
    from modules.app.context import create_context

    return create_context(app_flags)


@pytest.fixture(scope="session")
def api_app(app_flags, app_context):
    from webui import create_app

    app, _ = create_app(app_flags, app_context)
    return app


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """A launched server (`launch.py --demo-model --api`) shared by the HTTP and browser tests."""
    from tests.server_process import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("server-data"))
    try:
        server.wait_ready()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield server.base, server.data_dir
    server.stop()


@pytest.fixture(autouse=True)
def _plugin_runtime_context(request):
    """The A1111 facades follow one process-wide app context. Tests (and module fixtures) that build
    their own must not leave the facades pointing at it: a test using `app_context` gets that one."""
    from modules.plugins import runtime

    before = runtime.get_context()
    if "app_context" in request.fixturenames:
        runtime.set_context(request.getfixturevalue("app_context"))
    yield
    runtime.set_context(before)
