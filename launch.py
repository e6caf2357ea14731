#!/usr/bin/env python3
"""Start the web UI: prepare a virtual environment, install, then serve.

Usage (AUTOMATIC1111-compatible):
    python3 launch.py [flags]                  start the web UI
    python3 launch.py --help                   list every flag
    python3 launch.py --run-tests [pytest...]  run the test suite

Only the standard library may be imported at top level: this file runs under
the system Python before anything is installed.

Environment variables (A1111 names): COMMANDLINE_ARGS (extra flags),
TORCH_COMMAND (replaces the torch install command, e.g. for CUDA:
``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128``),
INDEX_URL (pip --index-url), VENV_DIR (venv folder; "-" for none).

Difference from A1111: when torch finds no CUDA GPU, A1111 aborts unless
--skip-torch-cuda-test is given; here a one-line notice is printed and the
web UI runs on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Both are standard-library only, so --help works before the venv exists.
from modules.app import flags, paths  # noqa: E402

MINIMUM_PYTHON = (3, 11)
REQUIREMENTS_FILE = REPO_ROOT / "requirements.txt"
TEST_REQUIREMENTS_FILE = REPO_ROOT / "requirements-test.txt"
STAMP_FILE_NAME = ".requirements-hash"
DEFAULT_VENV_DIR = "venv"
# Set for the re-executed child so a venv Python that does not report itself
# as a venv cannot make launch.py re-execute forever.
REEXEC_MARKER = "SD_WEBUI_LAUNCHED_IN_VENV"


class LaunchError(Exception):
    """A launcher step failed; the message says what to do about it."""


# --- virtual environment ---------------------------------------------------


def _same_path(first: str | Path, second: str | Path) -> bool:
    try:
        return Path(first).resolve() == Path(second).resolve()
    except OSError:
        return False


def in_virtualenv(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when this Python already runs inside a virtual environment.

    A venv shows as sys.prefix != sys.base_prefix; an activated environment
    whose folder is this interpreter's prefix (VIRTUAL_ENV, or a conda
    CONDA_PREFIX) counts too.
    """
    if sys.prefix != sys.base_prefix:
        return True
    source = os.environ if environ is None else environ
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        value = source.get(variable)
        if value and _same_path(value, sys.prefix):
            return True
    return False


def venv_dir_from_environment(
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """Return the venv folder (VENV_DIR, default venv/), or None for "-"."""
    source = os.environ if environ is None else environ
    value = source.get("VENV_DIR") or DEFAULT_VENV_DIR
    if value == "-":
        return None
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() else REPO_ROOT / folder


def venv_python(venv_dir: Path) -> Path:
    """Return the interpreter inside ``venv_dir`` for this platform."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def ensure_venv(venv_dir: Path) -> Path:
    """Create ``venv_dir`` with pip unless it has an interpreter already."""
    python = venv_python(venv_dir)
    if python.exists():
        return python
    print(f"Creating virtual environment in {venv_dir}", flush=True)
    import venv

    try:
        venv.EnvBuilder(with_pip=True).create(str(venv_dir))
    except (OSError, subprocess.CalledProcessError) as error:
        raise LaunchError(
            f"could not create the virtual environment in {venv_dir}: {error}. "
            "On Debian/Ubuntu install the python3-venv package; or set "
            "VENV_DIR=- to install into the Python running launch.py."
        ) from error
    if not python.exists():
        raise LaunchError(f"the new virtual environment has no {python}")
    return python


def reexec_in_venv(python: Path, venv_dir: Path, argv: Sequence[str]) -> int:
    """Run launch.py again with the venv's Python and the same arguments."""
    environment = dict(os.environ)
    environment[REEXEC_MARKER] = "1"
    environment["VIRTUAL_ENV"] = str(venv_dir)
    environment["PATH"] = str(python.parent) + os.pathsep + environment.get("PATH", "")
    environment.pop("PYTHONHOME", None)
    command = [str(python), str(Path(__file__).resolve()), *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(command[0], command, environment)
    # Windows' execv does not replace the process; wait and pass the code on.
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 130


# --- requirements ------------------------------------------------------------


def requirement_files(testing: bool) -> list[Path]:
    """Return the requirement files to install, test ones when testing."""
    candidates = [REQUIREMENTS_FILE]
    if testing:
        candidates.append(TEST_REQUIREMENTS_FILE)
    return [path for path in candidates if path.is_file()]


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_requirements_stamp(venv_dir: Path) -> dict[str, str]:
    """Return {file name: sha256} recorded after the last successful install."""
    stamp = Path(venv_dir) / STAMP_FILE_NAME
    try:
        lines = stamp.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    recorded = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            recorded[name] = digest
    return recorded


def requirements_up_to_date(venv_dir: Path, files: Sequence[Path]) -> bool:
    """Return True when every file's sha256 matches the venv's stamp file."""
    recorded = read_requirements_stamp(venv_dir)
    for path in files:
        path = Path(path)
        if not path.is_file() or recorded.get(path.name) != file_sha256(path):
            return False
    return True


def write_requirements_stamp(venv_dir: Path, files: Sequence[Path]) -> None:
    """Record the files' hashes, keeping entries for other files."""
    recorded = read_requirements_stamp(venv_dir)
    for path in files:
        recorded[Path(path).name] = file_sha256(Path(path))
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(recorded.items()))
    stamp = Path(venv_dir) / STAMP_FILE_NAME
    try:
        stamp.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"Could not write {stamp} ({error}); pip will run again next start.")


def pinned_requirement(requirements_file: Path, package: str) -> str:
    """Return the requirement line for ``package`` (e.g. torch==2.13.0)."""
    wanted = package.lower()
    try:
        lines = requirements_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return package
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        name = requirement
        for separator in ("==", ">=", "<=", "~=", "!=", ">", "<", "[", ";", " "):
            name = name.split(separator, 1)[0]
        if requirement and name.strip().lower().replace("_", "-") == wanted:
            return requirement
    return package


def _pip_install(python: str, environ: Mapping[str, str]) -> list[str]:
    command = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if index_url := environ.get("INDEX_URL"):
        command += ["--index-url", index_url]
    return command


def torch_install_command(python: str, requirements_file: Path, environ: Mapping[str, str]) -> list[str]:
    """Return the command that installs torch.

    TORCH_COMMAND replaces it (A1111 name); like A1111's, it may start with
    ``pip`` and then runs as ``python -m pip``. Without it, torch is pinned as
    in requirements.txt.
    """
    custom = environ.get("TORCH_COMMAND", "").strip()
    if custom:
        tokens = shlex.split(custom)
        if tokens[0] in ("pip", "pip3"):
            return [python, "-m", "pip", *tokens[1:]]
        if tokens[0] in ("python", "python3") and tokens[1:2] == ["-m"]:
            return [python, *tokens[1:]]
        return tokens
    return [
        *_pip_install(python, environ),
        pinned_requirement(requirements_file, "torch"),
    ]


def requirements_install_command(python: str, files: Sequence[Path], environ: Mapping[str, str]) -> list[str]:
    """Return one pip command installing every requirement file together."""
    command = _pip_install(python, environ)
    for path in files:
        command += ["-r", str(path)]
    return command


def run_install(command: Sequence[str], what: str) -> None:
    """Run an install command; raise LaunchError when it fails."""
    print(f"Installing {what}: {shlex.join(command)}", flush=True)
    try:
        code = subprocess.call(list(command), cwd=REPO_ROOT)
    except OSError as error:
        raise LaunchError(f"could not run the command installing {what}: {error}") from error
    if code != 0:
        raise LaunchError(
            f"installing {what} failed (pip exit code {code}). Check the "
            "messages above (network, disk space, INDEX_URL, TORCH_COMMAND) "
            "and start again."
        )


def module_installed(name: str) -> bool:
    """Return True when ``name`` can be imported by this Python."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# --- helpers that extensions' install.py files call as `launch.<name>` (A1111 names) ------------


def is_installed(package: str) -> bool:
    """True when a distribution named ``package`` is installed or a module of that name imports."""
    from importlib import metadata

    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        return module_installed(package)


def run(
    command: str, desc: str | None = None, errdesc: str | None = None, custom_env: Mapping[str, str] | None = None, live: bool = False
) -> str:
    """Run a shell command (an extension's own install step); raise RuntimeError naming it on failure."""
    if desc:
        print(desc, flush=True)
    completed = subprocess.run(  # noqa: S602 - A1111's contract: extensions pass a shell command line
        command, shell=True, env=dict(custom_env) if custom_env is not None else None, capture_output=not live, text=True, check=False
    )
    if completed.returncode != 0:
        output = "" if live else f"\nstdout: {completed.stdout}\nstderr: {completed.stderr}"
        raise RuntimeError(f"{errdesc or 'Error running command'}.\nCommand: {command}\nError code: {completed.returncode}{output}")
    return "" if live else completed.stdout


def run_pip(command: str, desc: str | None = None, live: bool = False) -> str:
    """``python -m pip <command>`` with this Python (and INDEX_URL), as extensions' install.py expect."""
    index = f" --index-url {shlex.quote(os.environ['INDEX_URL'])}" if os.environ.get("INDEX_URL") else ""
    return run(
        f"{shlex.quote(sys.executable)} -m pip {command} --prefer-binary{index}",
        desc=f"Installing {desc}" if desc else None,
        errdesc=f"Couldn't install {desc or command}",
        live=live,
    )


def install_requirements(
    venv_dir: Path,
    files: Sequence[Path],
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    reinstall_torch: bool = False,
) -> bool:
    """Install torch, then the requirement files, when the stamp says so.

    ``files[0]`` is the runtime requirements file; its torch pin is used.
    Returns True when pip ran. torch goes first so TORCH_COMMAND (e.g. a
    CUDA build) wins over whatever the plain requirements would pull in.
    """
    if not files:
        return False
    python = python or sys.executable
    source = os.environ if environ is None else environ
    runtime_file = Path(files[0])
    files_current = requirements_up_to_date(venv_dir, files)
    torch_needed = reinstall_torch or not requirements_up_to_date(venv_dir, [runtime_file]) or not module_installed("torch")
    if files_current and not torch_needed:
        return False
    if torch_needed:
        run_install(torch_install_command(python, runtime_file, source), "torch")
    if not files_current:
        names = ", ".join(Path(path).name for path in files)
        run_install(requirements_install_command(python, files, source), names)
        write_requirements_stamp(venv_dir, files)
    return True


# --- device check ------------------------------------------------------------


def device_notice(namespace: argparse.Namespace, cuda_available: bool, mps_available: bool = False) -> str | None:
    """Return the notice to print when no GPU will be used, else None."""
    if namespace.skip_torch_cuda_test or flags.uses_cpu_for(namespace, "all"):
        return None
    if cuda_available or mps_available:
        return None
    return (
        "No CUDA GPU found (torch.cuda.is_available() is False): generation runs "
        "on the CPU and is slow. --skip-torch-cuda-test hides this notice."
    )


def check_torch_device(namespace: argparse.Namespace) -> None:
    """Print a one-line notice when torch sees no GPU; never abort."""
    if namespace.skip_torch_cuda_test or flags.uses_cpu_for(namespace, "all"):
        return
    try:
        import torch
    except (ImportError, OSError, RuntimeError) as error:
        print(f"torch could not be imported ({error}); the web UI will fail to start.")
        return
    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps and mps.is_available())
    notice = device_notice(namespace, torch.cuda.is_available(), mps_available)
    if notice:
        print(notice)


# --- the two things launch.py does ---------------------------------------


BROWSER_NAMES = ("chromium", "chromium-browser")


def ensure_test_browser() -> None:
    """Install Debian's chromium for the browser tests when it is missing and apt-get can run."""
    if any(shutil.which(name) for name in BROWSER_NAMES):
        return
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        print(
            "Chromium is not installed and cannot be installed here (needs apt-get as root): the browser tests will fail until Debian's chromium is installed."
        )
        return
    print("Installing chromium for the browser tests (apt-get)...", flush=True)
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]):
        if subprocess.call(command, env=environment, stdout=subprocess.DEVNULL) != 0:
            print(f"'{shlex.join(command)}' failed: the browser tests will fail until Debian's chromium is installed.")
            return


def run_tests(pytest_args: Sequence[str]) -> int:
    """Run pytest in the repository root; return its exit code."""
    command = [sys.executable, "-m", "pytest", *pytest_args]
    try:
        return subprocess.call(command, cwd=REPO_ROOT)
    except KeyboardInterrupt:
        return 130


def start_webui(namespace: argparse.Namespace) -> int:
    """Create the user folders and hand over to webui.main."""
    if not (REPO_ROOT / "webui.py").is_file():
        raise LaunchError(f"{REPO_ROOT / 'webui.py'} is missing")
    paths.ensure_user_dirs(paths.build_paths(namespace))
    import webui

    result = webui.main(namespace)
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, enter the venv (creating it), install, then serve or test."""
    command_line = list(sys.argv[1:] if argv is None else argv)
    namespace = flags.parse_flags(flags.commandline_args_from_environment() + command_line)
    if sys.version_info < MINIMUM_PYTHON:
        wanted = ".".join(map(str, MINIMUM_PYTHON))
        print(f"launch.py: error: Python {wanted} or newer is needed.", file=sys.stderr)
        return 1
    try:
        venv_dir = venv_dir_from_environment()
        relaunched = os.environ.pop(REEXEC_MARKER, None) is not None
        if venv_dir is not None and not in_virtualenv():
            if not relaunched:
                return reexec_in_venv(ensure_venv(venv_dir), venv_dir, command_line)
            print(f"{venv_python(venv_dir)} does not report a venv; going on as is.")
        for notice in flags.compatibility_notices(namespace):
            print(notice)
        if not namespace.skip_prepare_environment:
            if not namespace.skip_install:
                install_requirements(
                    Path(sys.prefix),
                    requirement_files(testing=namespace.run_tests),
                    reinstall_torch=namespace.reinstall_torch,
                )
            if not namespace.run_tests:
                check_torch_device(namespace)
            if not namespace.skip_install and not namespace.run_tests:
                from modules.plugins.extension_install import run_extension_installers

                run_extension_installers(namespace)
        if namespace.run_tests:
            if not namespace.skip_install:
                ensure_test_browser()
            return run_tests(namespace.pytest_args)
        return start_webui(namespace)
    except LaunchError as error:
        print(f"launch.py: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
