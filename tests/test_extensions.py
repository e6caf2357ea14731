"""Extensions: install from a local git URL, listing, enable/disable, updates, install.py, preload flags."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from modules.app.flags import parse_flags
from modules.app.options import Options
from modules.app.paths import build_paths
from modules.plugins.extension_install import (
    ExtensionInstallError,
    check_for_updates,
    folder_name_from_url,
    install_extension,
    run_extension_installers,
    run_install_script,
    run_install_scripts,
    update_extension,
    validate_folder_name,
)
from modules.plugins.extensions import enabled_extensions, list_extensions, set_enabled
from tests.extension_repository import PRELOAD_FLAG, commit_all, git, make_extension_repository, write_files


@pytest.fixture(scope="module")
def source_repository(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("sources") / "sd-webui-sample"
    first_commit = make_extension_repository(folder)
    git(folder, "checkout", "-q", "-b", "dev")
    write_files(folder, {"dev-only.txt": "only on the dev branch\n"})
    commit_all(folder, "dev work")
    git(folder, "checkout", "-q", "main")
    return folder, first_commit


def fresh_paths(tmp_path: Path):
    flags = parse_flags(["--data-dir", str(tmp_path)])
    paths = build_paths(flags)
    paths.extensions_dir.mkdir(parents=True, exist_ok=True)
    return flags, paths


def load_options(paths) -> Options:
    options = Options()
    options.load(paths.config_file)
    return options


def test_install_from_file_url_lists_metadata_and_git_state(tmp_path, source_repository):
    source, first_commit = source_repository
    _, paths = fresh_paths(tmp_path)
    url = source.as_uri()
    target = install_extension(url, paths)
    assert target == paths.extensions_dir / "sd-webui-sample"
    assert (target / "scripts" / "sample.py").is_file()
    assert not (target / "dev-only.txt").exists()
    assert not list((paths.data_dir / "tmp").glob("extension-install-*"))

    [extension] = list_extensions(paths, load_options(paths))
    assert extension.name == "sd-webui-sample"
    assert extension.display_name == "Sample Extension"
    assert extension.requires == ["other-one", "another"]
    assert extension.is_builtin is False and extension.enabled is True
    assert extension.remote == url
    assert extension.branch == "main"
    assert extension.commit_hash == first_commit
    assert extension.git.version == first_commit[:8]
    assert [path.name for path in extension.script_files()] == ["sample.py"]


def test_install_a_branch_into_a_chosen_folder(tmp_path, source_repository):
    source, _ = source_repository
    _, paths = fresh_paths(tmp_path)
    target = install_extension(str(source), paths, branch="dev", folder_name="sample-dev")
    assert target.name == "sample-dev"
    assert (target / "dev-only.txt").read_text() == "only on the dev branch\n"
    [extension] = list_extensions(paths, {})
    assert extension.branch == "dev"
    assert extension.commit_hash == git(source, "rev-parse", "dev")


@pytest.mark.parametrize("name", ["../evil", "..", "a/b", "a\\b", "", "   ", ".hidden", "bad:name"])
def test_folder_name_validation_rejects_unsafe_names(tmp_path, source_repository, name):
    source, _ = source_repository
    _, paths = fresh_paths(tmp_path)
    with pytest.raises(ExtensionInstallError, match="folder name"):
        validate_folder_name(name, paths.extensions_dir)
    if name.strip():  # an empty folder name means "take it from the URL" when installing
        with pytest.raises(ExtensionInstallError, match="folder name"):
            install_extension(source.as_uri(), paths, folder_name=name)
    assert list(paths.extensions_dir.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_install_refuses_existing_folder_bad_url_and_leaves_nothing(tmp_path, source_repository):
    source, _ = source_repository
    _, paths = fresh_paths(tmp_path)
    install_extension(source.as_uri(), paths)
    with pytest.raises(ExtensionInstallError, match="already exists"):
        install_extension(source.as_uri(), paths)
    with pytest.raises(ExtensionInstallError, match="git clone"):
        install_extension((tmp_path / "no-such-repository").as_uri(), paths)
    with pytest.raises(ExtensionInstallError, match="URL: empty"):
        install_extension("  ", paths)
    assert sorted(child.name for child in paths.extensions_dir.iterdir()) == ["sd-webui-sample"]


def test_folder_name_from_url():
    assert folder_name_from_url("https://github.com/user/sd-webui-thing.git") == "sd-webui-thing"
    assert folder_name_from_url("https://github.com/user/sd-webui-thing/") == "sd-webui-thing"
    assert folder_name_from_url("file:///tmp/x/ext") == "ext"


def test_enable_disable_persists_in_settings(tmp_path, source_repository):
    source, _ = source_repository
    flags, paths = fresh_paths(tmp_path)
    install_extension(source.as_uri(), paths)
    install_extension(source.as_uri(), paths, folder_name="second")
    options = load_options(paths)
    extensions = list_extensions(paths, options)
    assert set_enabled(options, extensions, ["second"], "none") == ["sd-webui-sample"]

    saved = json.loads(paths.config_file.read_text())
    assert saved["disabled_extensions"] == ["sd-webui-sample"]
    assert saved.get("disable_all_extensions", "none") == "none"
    reloaded = load_options(paths)
    states = {extension.name: extension.enabled for extension in list_extensions(paths, reloaded)}
    assert states == {"sd-webui-sample": False, "second": True}
    assert [extension.name for extension in enabled_extensions(paths, reloaded)] == ["second"]

    with pytest.raises(ValueError, match="no such extension: ghost"):
        set_enabled(reloaded, extensions, ["ghost"], "none")
    with pytest.raises(ValueError, match="disable_all_extensions"):
        set_enabled(reloaded, extensions, [], "everything")
    assert json.loads(paths.config_file.read_text())["disabled_extensions"] == ["sd-webui-sample"]

    set_enabled(reloaded, extensions, ["sd-webui-sample", "second"], "extra")
    assert enabled_extensions(paths, load_options(paths)) == []
    set_enabled(reloaded, extensions, ["sd-webui-sample", "second"], "none")
    assert len(enabled_extensions(paths, load_options(paths))) == 2
    no_extra = parse_flags(["--data-dir", str(tmp_path), "--disable-extra-extensions"])
    assert enabled_extensions(paths, load_options(paths), no_extra) == []
    no_all = parse_flags(["--data-dir", str(tmp_path), "--disable-all-extensions"])
    assert enabled_extensions(paths, load_options(paths), no_all) == []


def test_check_for_updates_and_update_show_the_new_commit(tmp_path_factory, tmp_path):
    source = tmp_path_factory.mktemp("update-source") / "updatable"
    first = make_extension_repository(source)
    _, paths = fresh_paths(tmp_path)
    install_extension(source.as_uri(), paths)
    [extension] = list_extensions(paths, {})
    latest = check_for_updates(extension)
    assert latest.status == "latest" and latest.current_commit == first

    write_files(source, {"scripts/sample.py": "TITLE = 'sample v2'\n"})
    second = commit_all(source, "second version")
    behind = check_for_updates(extension)
    assert behind.status == "behind"
    assert behind.current_commit == first and behind.remote_commit == second

    assert update_extension(extension) == second
    assert extension.commit_hash == second
    [listed] = list_extensions(paths, {})
    assert listed.commit_hash == second
    assert (listed.path / "scripts" / "sample.py").read_text() == "TITLE = 'sample v2'\n"
    assert check_for_updates(listed).status == "latest"


def test_update_refuses_a_folder_that_is_not_a_git_checkout(tmp_path):
    _, paths = fresh_paths(tmp_path)
    (paths.extensions_dir / "plain").mkdir()
    [extension] = list_extensions(paths, {})
    assert extension.remote == "" and extension.commit_hash == ""
    assert check_for_updates(extension).status == "error"
    with pytest.raises(ExtensionInstallError, match="not a git checkout"):
        update_extension(extension)


def test_install_py_runs_in_the_app_python_isolated(tmp_path, source_repository):
    source, _ = source_repository
    flags, paths = fresh_paths(tmp_path)
    target = install_extension(source.as_uri(), paths)
    write_files(paths.extensions_dir / "broken", {"install.py": "import sys\nprint('broken installer')\nsys.exit(3)\n"})
    write_files(paths.extensions_dir / "slow", {"install.py": "import time\ntime.sleep(30)\n"})
    results = run_install_scripts(list_extensions(paths, {}, read_git=False), timeout_s=3)
    outcome = {result.name: (result.ok, result.returncode) for result in results}
    assert outcome == {"broken": (False, 3), "sd-webui-sample": (True, 0), "slow": (False, None)}
    assert "broken installer" in next(result.output for result in results if result.name == "broken")
    assert (target / "installed.marker").read_text() == sys.executable

    (target / "installed.marker").unlink()
    set_enabled(load_options(paths), list_extensions(paths, {}), ["sd-webui-sample"], "none")
    results = run_extension_installers(flags, timeout_s=10)
    assert [result.name for result in results] == ["sd-webui-sample"]
    assert (target / "installed.marker").is_file()

    (target / "install.py").unlink()
    assert run_install_script(list_extensions(paths, {})[1]) is None


def test_preload_adds_flags_before_parsing(tmp_path, source_repository, caplog):
    source, _ = source_repository
    _, paths = fresh_paths(tmp_path)
    install_extension(source.as_uri(), paths)
    namespace = parse_flags(["--data-dir", str(tmp_path), PRELOAD_FLAG, "on"])
    assert namespace.sample_extension_flag == "on"
    assert parse_flags(["--data-dir", str(tmp_path)]).sample_extension_flag == "unset"

    write_files(paths.extensions_dir / "broken-preload", {"preload.py": "raise RuntimeError('preload exploded')\n"})
    namespace = parse_flags(["--data-dir", str(tmp_path), PRELOAD_FLAG, "again"])
    assert namespace.sample_extension_flag == "again"
    assert "broken-preload" in caplog.text and "preload exploded" in caplog.text

    with pytest.raises(SystemExit):
        parse_flags(["--data-dir", str(tmp_path), "--disable-all-extensions", PRELOAD_FLAG, "on"])
    paths.config_file.write_text(json.dumps({"disabled_extensions": ["sd-webui-sample"]}))
    with pytest.raises(SystemExit):
        parse_flags(["--data-dir", str(tmp_path), PRELOAD_FLAG, "on"])
