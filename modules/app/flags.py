"""Command-line flags, with AUTOMATIC1111's names and defaults.

This module must stay standard-library only: launch.py imports it under the
system Python to answer ``--help`` before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_PORT = 7860
DEFAULT_API_ONLY_PORT = 7861
LOCAL_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
RUN_TESTS_FLAG = "--run-tests"
COMMANDLINE_ARGS_VARIABLE = "COMMANDLINE_ARGS"

EPILOG = """\
environment variables (AUTOMATIC1111 names):
  COMMANDLINE_ARGS  extra flags, parsed before the ones on the command line,
                    e.g. COMMANDLINE_ARGS="--listen --api"
  TORCH_COMMAND     replaces the command that installs torch (launch.py), e.g.
                    for an NVIDIA GPU:
                    TORCH_COMMAND="pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
  INDEX_URL         passed to pip as --index-url for every install (launch.py)
  VENV_DIR          virtual environment folder (default: venv in the webui
                    folder); "-" uses the Python that runs launch.py as is

run the test suite:  python3 launch.py --run-tests [pytest arguments...]
"""

# Flags that A1111 users commonly keep in their COMMANDLINE_ARGS; they are
# accepted so such setups start, but they change nothing here.
NO_EFFECT_FLAGS = {
    "--medvram-sdxl": "enable --medvram optimization just for SDXL models",
    "--upcast-sampling": "upcast sampling to float32 when running in half precision",
    "--opt-split-attention": "prefer Doggettx's cross-attention layer optimization",
    "--opt-sub-quad-attention": "prefer memory efficient sub-quadratic cross-attention",
    "--opt-channelslast": "change memory type for stable diffusion to channels last",
    "--no-download-sd-model": "don't download SD1.5 model even if no model is found",
    "--skip-version-check": "do not check versions of torch and xformers",
    "--skip-python-version-check": "do not check the version of Python",
}


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument(
        "--port",
        type=int,
        default=None,
        help="launch gradio with given server port, you need root/admin rights "
        f"for ports < 1024, defaults to {DEFAULT_PORT} "
        f"({DEFAULT_API_ONLY_PORT} with --nowebui)",
    )
    group.add_argument(
        "--listen",
        action="store_true",
        help=f"launch gradio with {ALL_INTERFACES} as server name, allowing to respond to network requests",
    )
    group.add_argument(
        "--server-name",
        type=str,
        default=None,
        help="sets hostname of server (overrides --listen)",
    )
    group.add_argument(
        "--api",
        action="store_true",
        help="use api=True to launch the API together with the webui (use --nowebui instead for only the API)",
    )
    group.add_argument(
        "--nowebui",
        action="store_true",
        help="use api=True to launch the API instead of the webui",
    )
    group.add_argument(
        "--api-auth",
        type=str,
        default=None,
        help='set authentication for API like "username:password"; or comma-delimit multiple like "u1:p1,u2:p2,u3:p3"',
    )
    group.add_argument(
        "--api-server-stop",
        action="store_true",
        help="enable server stop/restart/kill via api",
    )
    group.add_argument(
        "--api-log",
        action="store_true",
        help="use api-log=True to enable logging of all API requests",
    )
    group.add_argument(
        "--gradio-auth",
        type=str,
        default=None,
        help='set gradio authentication like "username:password"; or comma-delimit multiple like "u1:p1,u2:p2,u3:p3"',
    )
    group.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=30,
        help="set timeout_keep_alive for uvicorn",
    )
    group.add_argument(
        "--cors-allow-origins",
        type=str,
        default=None,
        help="allowed CORS origin(s) in the form of a comma-separated list (no spaces)",
    )
    group.add_argument(
        "--cors-allow-origins-regex",
        type=str,
        default=None,
        help="allowed CORS origin(s) in the form of a single regular expression",
    )
    group.add_argument(
        "--autolaunch",
        action="store_true",
        help="open the webui URL in the system's default browser upon launch",
    )
    group.add_argument(
        "--theme",
        type=str,
        default=None,
        help="launches the UI with light or dark theme",
    )


def _add_path_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("paths")
    group.add_argument(
        "--data-dir",
        type=str,
        default=str(REPO_ROOT),
        help="base path where all user data is stored (models/, outputs/, "
        "config.json, cache.json, extensions/, embeddings/); "
        "default: the webui folder",
    )
    group.add_argument(
        "--models-dir",
        type=str,
        default=None,
        help="base path where models are stored; overrides --data-dir",
    )
    group.add_argument(
        "--ckpt",
        type=str,
        default=None,
        help="path to checkpoint of stable diffusion model; if specified, this "
        "checkpoint will be added to the list of checkpoints and loaded",
    )
    group.add_argument(
        "--ckpt-dir",
        type=str,
        default=None,
        help="path to directory with stable diffusion checkpoints",
    )
    group.add_argument(
        "--vae-dir",
        type=str,
        default=None,
        help="path to directory with VAE files",
    )
    group.add_argument(
        "--vae-path",
        type=str,
        default=None,
        help="checkpoint to use as VAE; setting this argument disables all settings related to VAE",
    )
    group.add_argument(
        "--lora-dir",
        type=str,
        default=None,
        help="path to directory with Lora networks (default: models/Lora)",
    )
    group.add_argument(
        "--esrgan-models-path",
        type=str,
        default=None,
        help="path to directory with ESRGAN model file(s) (default: models/ESRGAN)",
    )
    group.add_argument(
        "--embeddings-dir",
        type=str,
        default=None,
        help="embeddings directory for textual inversion (default: embeddings)",
    )
    group.add_argument(
        "--ui-settings-file",
        type=str,
        default=None,
        help="filename to use for ui settings (default: config.json)",
    )
    group.add_argument(
        "--ui-config-file",
        type=str,
        default=None,
        help="filename to use for ui configuration (default: ui-config.json)",
    )
    group.add_argument(
        "--styles-file",
        type=str,
        default=None,
        help="filename to use for styles (default: styles.csv)",
    )


def _add_device_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("device and precision")
    group.add_argument(
        "--use-cpu",
        nargs="+",
        type=str.lower,
        default=[],
        help="use CPU as torch device for specified modules (e.g. all)",
    )
    group.add_argument(
        "--device-id",
        type=str,
        default=None,
        help="select the default CUDA device to use (export CUDA_VISIBLE_DEVICES=0,1,etc might be needed before)",
    )
    group.add_argument(
        "--no-half",
        action="store_true",
        help="do not switch the model to 16-bit floats",
    )
    group.add_argument(
        "--no-half-vae",
        action="store_true",
        help="do not switch the VAE model to 16-bit floats",
    )
    group.add_argument(
        "--precision",
        choices=["full", "half", "autocast"],
        default="autocast",
        help="evaluate at this precision",
    )
    group.add_argument(
        "--xformers",
        action="store_true",
        help="enable xformers for cross attention layers",
    )
    group.add_argument(
        "--opt-sdp-attention",
        action="store_true",
        help="prefer scaled dot product cross-attention layer optimization for automatic choice of optimization; requires PyTorch 2.*",
    )
    group.add_argument(
        "--lowvram",
        action="store_true",
        help="enable stable diffusion model optimizations for sacrificing a lot of speed for very low VRAM usage",
    )
    group.add_argument(
        "--medvram",
        action="store_true",
        help="enable stable diffusion model optimizations for sacrificing a little speed for low VRAM usage",
    )
    group.add_argument(
        "--disable-safe-unpickle",
        action="store_true",
        help="accepted for compatibility and ignored: unsafe unpickling is never done",
    )


def _add_ui_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ui")
    group.add_argument(
        "--hide-ui-dir-config",
        action="store_true",
        help="hide directory configuration from webui",
    )
    group.add_argument(
        "--freeze-settings",
        action="store_true",
        help="disable editing of all settings globally",
    )
    group.add_argument(
        "--enable-insecure-extension-access",
        action="store_true",
        help="enable extensions tab regardless of other options",
    )
    group.add_argument(
        "--disable-all-extensions",
        action="store_true",
        help="prevent all extensions from running regardless of any other settings",
    )
    group.add_argument(
        "--disable-extra-extensions",
        action="store_true",
        help="prevent all extensions except built-in from running regardless of any other settings",
    )
    group.add_argument(
        "--demo-model",
        action="store_true",
        help="build a tiny random-weight checkpoint at start so every screen works without downloading a model (its images are noise)",
    )


def _add_launcher_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("launcher (launch.py)")
    group.add_argument(
        "--skip-install",
        action="store_true",
        help="launch.py argument: skip installation of packages",
    )
    group.add_argument(
        "--skip-prepare-environment",
        action="store_true",
        help="launch.py argument: skip all environment preparation",
    )
    group.add_argument(
        "--skip-torch-cuda-test",
        action="store_true",
        help="launch.py argument: do not check if CUDA is able to work properly",
    )
    group.add_argument(
        "--reinstall-torch",
        action="store_true",
        help="launch.py argument: install the appropriate version of torch even if you have some version already installed",
    )
    group.add_argument(
        "--reinstall-xformers",
        action="store_true",
        help="launch.py argument: install the appropriate version of xformers even if you have some version already installed",
    )
    group.add_argument(
        RUN_TESTS_FLAG,
        action="store_true",
        help="launch.py argument: prepare the environment with the test "
        "requirements and run pytest in the webui folder; everything after "
        f"{RUN_TESTS_FLAG} is passed to pytest",
    )


def _add_no_effect_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("accepted for compatibility, no effect")
    for flag, description in NO_EFFECT_FLAGS.items():
        group.add_argument(flag, action="store_true", help=description)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every flag the web UI and launch.py accept."""
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="Stable Diffusion web UI (AUTOMATIC1111-compatible).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_server_flags(parser)
    _add_path_flags(parser)
    _add_device_flags(parser)
    _add_ui_flags(parser)
    _add_launcher_flags(parser)
    _add_no_effect_flags(parser)
    return parser


def split_run_tests_argv(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``argv`` at the first ``--run-tests``.

    Returns the app's own arguments (without ``--run-tests``) and the
    arguments meant for pytest, or None as the second item when there is no
    ``--run-tests``. Nothing after it is parsed as an app flag.
    """
    if RUN_TESTS_FLAG not in argv:
        return list(argv), None
    position = argv.index(RUN_TESTS_FLAG)
    return list(argv[:position]), list(argv[position + 1 :])


def commandline_args_from_environment(
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Return the flags stored in COMMANDLINE_ARGS, split like a shell would."""
    source = os.environ if environ is None else environ
    return shlex.split(source.get(COMMANDLINE_ARGS_VARIABLE, ""))


def add_extension_flags(parser: argparse.ArgumentParser, app_argv: list[str]) -> None:
    """Let enabled extensions add their flags (their preload.py) before the real parse.

    A first, tolerant parse (unknown flags and --help ignored) finds --data-dir and the
    --disable-*-extensions flags, which say where extensions live and which run.
    """
    try:
        from modules.plugins.preload import add_extension_flags as run_preloads
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("modules.plugins"):
            raise
        return  # a stripped-down copy of the launcher (no extension support present)
    early_argv = [item for item in app_argv if item not in ("-h", "--help")]
    early, _ = parser.parse_known_args(early_argv)
    run_preloads(parser, early)


def parse_flags(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse flags into a namespace.

    With ``argv`` None the process command line is used, preceded by the
    flags in the COMMANDLINE_ARGS environment variable (as A1111 does). An
    explicit ``argv`` is parsed as given. Everything after ``--run-tests``
    lands in ``namespace.pytest_args`` instead of being parsed. Flags added by
    enabled extensions (their preload.py) are accepted too.
    """
    if argv is None:
        argv = commandline_args_from_environment() + sys.argv[1:]
    app_argv, pytest_args = split_run_tests_argv(argv)
    parser = build_parser()
    add_extension_flags(parser, app_argv)
    namespace = parser.parse_args(app_argv)
    namespace.run_tests = pytest_args is not None
    namespace.pytest_args = pytest_args or []
    return namespace


def effective_port(namespace: argparse.Namespace) -> int:
    """Return the port to serve on: --port, else 7860 (7861 with --nowebui)."""
    if namespace.port is not None:
        return namespace.port
    return DEFAULT_API_ONLY_PORT if namespace.nowebui else DEFAULT_PORT


def effective_server_name(namespace: argparse.Namespace) -> str:
    """Return the address to bind: --server-name, else 0.0.0.0 with --listen."""
    if namespace.server_name:
        return namespace.server_name
    return ALL_INTERFACES if namespace.listen else LOCAL_HOST


def uses_cpu_for(namespace: argparse.Namespace, module_name: str) -> bool:
    """Return True when --use-cpu names ``module_name`` or ``all``."""
    requested = namespace.use_cpu or []
    return "all" in requested or module_name.lower() in requested


def compatibility_notices(namespace: argparse.Namespace) -> list[str]:
    """Return one line per accepted flag that does not do what A1111 does."""
    notices = []
    if namespace.disable_safe_unpickle:
        notices.append("--disable-safe-unpickle is ignored: unsafe unpickling is never done; checkpoints are always loaded in safe mode.")
    if namespace.reinstall_xformers:
        notices.append("--reinstall-xformers is ignored: launch.py does not install xformers.")
    for flag in NO_EFFECT_FLAGS:
        if getattr(namespace, flag.lstrip("-").replace("-", "_")):
            notices.append(f"{flag} is accepted for compatibility and has no effect.")
    return notices
