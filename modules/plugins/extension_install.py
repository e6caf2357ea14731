"""Installing, checking and updating extensions with gitpython, and running their install.py.

Install clones a git URL (optionally one branch) into extensions/<folder>, where the folder name is
validated first. Updates fetch the remote and fast-forward. install.py runs in its own process with
the app's Python, a timeout and the extension folder as working directory, so a failing or hanging
script is reported with its name and never stops the launch.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modules.app.paths import REPO_ROOT, Paths
from modules.plugins.extensions import Extension, read_git_state

log = logging.getLogger(__name__)

INSTALL_SCRIPT = "install.py"
DEFAULT_INSTALL_TIMEOUT_S = 600.0
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_FORBIDDEN_NAME_CHARACTERS = frozenset('/\\:*?"<>|\0')


class ExtensionInstallError(ValueError):
    """Install or update refused or failed; the message says why."""


@dataclass(frozen=True)
class UpdateCheck:
    """The result of "check for updates" for one extension."""

    name: str
    status: str  # "latest", "behind", "unknown" or "error"
    current_commit: str = ""
    remote_commit: str = ""
    message: str = ""


@dataclass(frozen=True)
class InstallScriptResult:
    """How one extension's install.py went."""

    name: str
    ok: bool
    returncode: int | None
    output: str


def insecure_access_refusal(flags: argparse.Namespace) -> str | None:
    """Why installing/updating from the UI is refused, or None when allowed.

    Refused when the server listens on the network (--listen, or a --server-name that is not a
    loopback name) without --gradio-auth, unless --enable-insecure-extension-access is given.
    """
    if getattr(flags, "enable_insecure_extension_access", False):
        return None
    server_name = getattr(flags, "server_name", None)
    exposed = bool(getattr(flags, "listen", False)) or (server_name is not None and server_name not in LOOPBACK_NAMES)
    if not exposed or getattr(flags, "gradio_auth", None):
        return None
    return (
        "Installing and updating extensions is disabled because the server listens on the network without "
        "--gradio-auth. Add --gradio-auth or start with --enable-insecure-extension-access."
    )


def folder_name_from_url(url: str) -> str:
    """The last path part of a git URL without a trailing ".git" (A1111's default folder name)."""
    stripped = url.strip().rstrip("/")
    last = stripped.replace("\\", "/").rsplit("/", 1)[-1]
    if ":" in last and "/" not in stripped:
        last = last.rsplit(":", 1)[-1]
    return last[: -len(".git")] if last.endswith(".git") else last


def validate_folder_name(name: str, extensions_dir: Path) -> Path:
    """Return extensions_dir/name, or raise `ExtensionInstallError` naming the problem.

    Refused: empty names, "." and "..", path separators or other characters that are not allowed in
    folder names, names starting with "." and folders that already exist.
    """
    cleaned = (name or "").strip()
    if not cleaned:
        raise ExtensionInstallError("folder name: empty")
    if cleaned in (".", "..") or ".." in cleaned:
        raise ExtensionInstallError(f"folder name: {name!r} may not contain '..'")
    bad = sorted({character for character in cleaned if character in _FORBIDDEN_NAME_CHARACTERS or ord(character) < 32})
    if bad:
        raise ExtensionInstallError(f"folder name: {name!r} contains characters that are not allowed: {' '.join(map(repr, bad))}")
    if cleaned.startswith("."):
        raise ExtensionInstallError(f"folder name: {name!r} may not start with '.'")
    target = extensions_dir / cleaned
    if target.resolve().parent != extensions_dir.resolve():
        raise ExtensionInstallError(f"folder name: {name!r} is outside {extensions_dir}")
    if target.exists():
        raise ExtensionInstallError(f"folder name: {target} already exists")
    return target


def install_extension(url: str, paths: Paths, branch: str = "", folder_name: str = "") -> Path:
    """Clone `url` (one `branch` if given) into extensions/<folder_name or name from the URL>.

    The clone goes to a temporary folder first and is moved into place only when it succeeded, so
    a failed install leaves nothing behind. Returns the new folder.
    """
    import git

    url = (url or "").strip()
    if not url:
        raise ExtensionInstallError("URL: empty; give the git URL of the extension")
    name = folder_name.strip() if folder_name and folder_name.strip() else folder_name_from_url(url)
    paths.extensions_dir.mkdir(parents=True, exist_ok=True)
    target = validate_folder_name(name, paths.extensions_dir)
    staging_root = paths.data_dir / "tmp"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = staging_root / f"extension-install-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    options: dict[str, object] = {}
    if branch and branch.strip():
        options["branch"] = branch.strip()
    try:
        repository = git.Repo.clone_from(url, staging, **options)
        repository.close()
        shutil.move(str(staging), str(target))
    except git.GitCommandError as error:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (error.stderr or str(error)).strip().splitlines()
        raise ExtensionInstallError(f"git clone of {url} failed: {detail[-1] if detail else error}") from None
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExtensionInstallError(f"install of {url} failed: {error}") from None
    log.info("installed extension %s from %s at %s", target.name, url, read_git_state(target).version)
    return target


def _open_repository(extension: Extension):
    import git

    if not extension.is_git:
        raise ExtensionInstallError(f"extension {extension.name}: not a git checkout, cannot be updated")
    return git.Repo(extension.path)


def check_for_updates(extension: Extension) -> UpdateCheck:
    """Fetch the remote and compare HEAD with the tracked remote branch; errors become status "error"."""
    import git

    try:
        repository = _open_repository(extension)
        current = repository.head.commit.hexsha
        if not repository.remotes:
            return UpdateCheck(extension.name, "unknown", current, message="no remote")
        remote = repository.remotes[0]
        remote.fetch()
        tracking = None if repository.head.is_detached else repository.active_branch.tracking_branch()
        if tracking is None:
            return UpdateCheck(extension.name, "unknown", current, message="no tracking branch")
        remote_commit = tracking.commit.hexsha
    except (ExtensionInstallError, git.GitError, ValueError, OSError) as error:
        extension.status = "error"
        return UpdateCheck(extension.name, "error", message=str(error).strip())
    status = "latest" if remote_commit == current or repository.is_ancestor(remote_commit, current) else "behind"
    extension.status = status
    return UpdateCheck(extension.name, status, current, remote_commit)


def update_extension(extension: Extension) -> str:
    """Fetch and fast-forward to the tracked remote branch; returns the new HEAD commit hash."""
    import git

    repository = _open_repository(extension)
    try:
        if repository.is_dirty(untracked_files=False):
            raise ExtensionInstallError(f"extension {extension.name}: has local changes; not updated")
        if repository.head.is_detached:
            raise ExtensionInstallError(f"extension {extension.name}: detached HEAD; not updated")
        tracking = repository.active_branch.tracking_branch()
        if tracking is None:
            raise ExtensionInstallError(f"extension {extension.name}: branch has no remote branch")
        repository.remotes[0].fetch()
        repository.git.merge("--ff-only", tracking.name)
    except git.GitCommandError as error:
        detail = (error.stderr or str(error)).strip().splitlines()
        raise ExtensionInstallError(f"extension {extension.name}: update failed: {detail[-1] if detail else error}") from None
    state = extension.refresh_git_state()
    extension.status = "latest"
    return state.commit_hash


def run_install_script(
    extension: Extension, python: str | None = None, timeout_s: float = DEFAULT_INSTALL_TIMEOUT_S
) -> InstallScriptResult | None:
    """Run the extension's install.py with the app's Python; None when it has none.

    The script runs in a separate process whose working directory is the extension folder, with the
    web UI folder on PYTHONPATH (A1111's `launch` helpers are imported from there) and a timeout.
    """
    script = extension.path / INSTALL_SCRIPT
    if not script.is_file():
        return None
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH", "")]))
    environment["WEBUI_EXTENSION_DIR"] = str(extension.path)
    try:
        completed = subprocess.run(  # noqa: S603 - the user's own extension, in its own process
            [python or sys.executable, str(script)],
            cwd=extension.path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = (error.stdout or "") if isinstance(error.stdout, str) else ""
        log.error("extension %s: install.py did not finish within %.0f s; stopped", extension.name, timeout_s)
        return InstallScriptResult(extension.name, False, None, output)
    except OSError as error:
        log.error("extension %s: install.py could not start: %s", extension.name, error)
        return InstallScriptResult(extension.name, False, None, str(error))
    output = (completed.stdout or "") + (completed.stderr or "")
    if completed.returncode != 0:
        log.error("extension %s: install.py failed with exit code %s:\n%s", extension.name, completed.returncode, output.strip())
    return InstallScriptResult(extension.name, completed.returncode == 0, completed.returncode, output)


def run_extension_installers(flags: argparse.Namespace, timeout_s: float = DEFAULT_INSTALL_TIMEOUT_S) -> list[InstallScriptResult]:
    """At launch: run install.py of the enabled extensions for these flags, printing one line each."""
    from modules.app.paths import build_paths
    from modules.plugins.extensions import list_extensions
    from modules.plugins.preload import read_settings_file

    paths = build_paths(flags)
    settings = read_settings_file(paths.config_file)
    results = run_install_scripts(list_extensions(paths, settings, flags, read_git=False), timeout_s=timeout_s)
    for result in results:
        outcome = "done" if result.ok else "FAILED (see the log above); the extension may not work"
        print(f"Installing requirements for extension {result.name}: {outcome}", flush=True)
    return results


def run_install_scripts(
    extensions: list[Extension], python: str | None = None, timeout_s: float = DEFAULT_INSTALL_TIMEOUT_S
) -> list[InstallScriptResult]:
    """Run install.py of every enabled extension, in order; failures are logged, never raised."""
    results = []
    for extension in extensions:
        if not extension.enabled:
            continue
        result = run_install_script(extension, python, timeout_s)
        if result is not None:
            results.append(result)
    return results
