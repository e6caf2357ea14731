"""Tests for launch.py, modules/app/flags.py and modules/app/paths.py."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import launch  # noqa: E402
from modules.app import flags, paths  # noqa: E402

# Every flag the brief names; written out so a flag dropped from the parser
# makes the test fail.
REQUIRED_FLAGS = [
    "--port",
    "--listen",
    "--server-name",
    "--api",
    "--nowebui",
    "--ckpt",
    "--ckpt-dir",
    "--vae-dir",
    "--vae-path",
    "--lora-dir",
    "--embeddings-dir",
    "--data-dir",
    "--models-dir",
    "--use-cpu",
    "--no-half",
    "--no-half-vae",
    "--precision",
    "--skip-install",
    "--skip-torch-cuda-test",
    "--skip-prepare-environment",
    "--reinstall-torch",
    "--reinstall-xformers",
    "--xformers",
    "--opt-sdp-attention",
    "--disable-safe-unpickle",
    "--ui-settings-file",
    "--ui-config-file",
    "--gradio-auth",
    "--api-auth",
    "--api-log",
    "--enable-insecure-extension-access",
    "--theme",
    "--autolaunch",
    "--demo-model",
    "--run-tests",
    "--device-id",
    "--lowvram",
    "--medvram",
    "--hide-ui-dir-config",
    "--freeze-settings",
    "--timeout-keep-alive",
    "--cors-allow-origins",
    "--cors-allow-origins-regex",
]


def _environment_without_flags() -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("COMMANDLINE_ARGS", None)
    return environment


# --- --help ----------------------------------------------------------------


def test_help_lists_every_flag_and_exits_zero():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "launch.py"), "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment_without_flags(),
    )
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.replace(",", " ").replace("[", " ").split())
    missing = [flag for flag in REQUIRED_FLAGS if flag not in listed]
    assert missing == []
    assert "TORCH_COMMAND" in result.stdout
    assert "download.pytorch.org/whl/cu" in result.stdout


def test_help_under_base_python_creates_no_venv(tmp_path):
    """--help must work with the bare system Python before any venv exists."""
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    if not Path(base_python).exists():
        pytest.skip("base interpreter not found")
    for relative in [
        "launch.py",
        "modules/__init__.py",
        "modules/app/__init__.py",
        "modules/app/flags.py",
        "modules/app/paths.py",
    ]:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, target)
    result = subprocess.run(
        [base_python, "-I", str(tmp_path / "launch.py"), "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_environment_without_flags(),
    )
    assert result.returncode == 0, result.stderr
    assert "--demo-model" in result.stdout
    assert not (tmp_path / "venv").exists()


# --- flag parsing ------------------------------------------------------------


def test_defaults():
    namespace = flags.parse_flags([])
    assert flags.effective_port(namespace) == 7860
    assert flags.effective_server_name(namespace) == "127.0.0.1"
    assert namespace.precision == "autocast"
    assert namespace.timeout_keep_alive == 30
    assert namespace.use_cpu == []
    assert namespace.ckpt is None
    assert Path(namespace.data_dir) == REPO_ROOT
    assert namespace.run_tests is False
    assert namespace.pytest_args == []


def test_ports_and_listen():
    assert flags.effective_port(flags.parse_flags(["--nowebui"])) == 7861
    assert flags.effective_port(flags.parse_flags(["--port", "9001"])) == 9001
    assert flags.effective_port(flags.parse_flags(["--nowebui", "--port", "80"])) == 80
    listening = flags.parse_flags(["--listen"])
    assert flags.effective_server_name(listening) == "0.0.0.0"
    named = flags.parse_flags(["--listen", "--server-name", "example.lan"])
    assert flags.effective_server_name(named) == "example.lan"


def test_values_and_choices():
    namespace = flags.parse_flags(["--use-cpu", "All", "--precision", "full", "--timeout-keep-alive", "5"])
    assert namespace.use_cpu == ["all"]
    assert flags.uses_cpu_for(namespace, "sd")
    assert not flags.uses_cpu_for(flags.parse_flags(["--use-cpu", "vae"]), "sd")
    assert namespace.precision == "full"
    assert namespace.timeout_keep_alive == 5
    with pytest.raises(SystemExit):
        flags.parse_flags(["--precision", "double"])
    with pytest.raises(SystemExit):
        flags.parse_flags(["--no-such-flag"])


def test_commandline_args_environment_variable(monkeypatch):
    monkeypatch.setenv("COMMANDLINE_ARGS", '--listen --port 7000 --theme "dark"')
    monkeypatch.setattr(sys, "argv", ["launch.py", "--api", "--port", "7100"])
    namespace = flags.parse_flags(None)
    assert namespace.listen and namespace.api
    assert namespace.theme == "dark"
    # The real command line comes after COMMANDLINE_ARGS, so it wins.
    assert namespace.port == 7100


def test_explicit_argv_ignores_environment(monkeypatch):
    monkeypatch.setenv("COMMANDLINE_ARGS", "--listen")
    assert flags.parse_flags([]).listen is False


def test_split_run_tests_argv():
    assert flags.split_run_tests_argv(["--listen"]) == (["--listen"], None)
    assert flags.split_run_tests_argv(["--listen", "--run-tests", "-k", "infotext", "-x"]) == (["--listen"], ["-k", "infotext", "-x"])
    assert flags.split_run_tests_argv(["--run-tests"]) == ([], [])
    # Only the first --run-tests splits; the rest belongs to pytest.
    assert flags.split_run_tests_argv(["--run-tests", "--run-tests"]) == (
        [],
        ["--run-tests"],
    )


def test_pytest_arguments_are_not_parsed_as_app_flags():
    namespace = flags.parse_flags(["--api", "--run-tests", "-q", "--port", "-x"])
    assert namespace.api
    assert namespace.run_tests is True
    assert namespace.pytest_args == ["-q", "--port", "-x"]
    assert namespace.port is None


def test_compatibility_notices():
    assert flags.compatibility_notices(flags.parse_flags([])) == []
    notices = flags.compatibility_notices(flags.parse_flags(["--disable-safe-unpickle", "--medvram-sdxl"]))
    assert any("unpickl" in line and "never" in line for line in notices)
    assert any("--medvram-sdxl" in line for line in notices)


# --- paths ---------------------------------------------------------------------


def test_paths_from_data_dir(tmp_path):
    data = tmp_path / "data"
    built = paths.build_paths(flags.parse_flags(["--data-dir", str(data)]))
    assert built.repo_root == REPO_ROOT
    assert built.data_dir == data
    assert built.models_dir == data / "models"
    assert built.checkpoint_dirs == (data / "models" / "Stable-diffusion",)
    assert built.vae_dirs == (data / "models" / "VAE",)
    assert built.lora_dir == data / "models" / "Lora"
    assert built.esrgan_dir == data / "models" / "ESRGAN"
    assert built.embeddings_dir == data / "embeddings"
    assert built.outputs_dir == data / "outputs"
    assert built.config_file == data / "config.json"
    assert built.ui_config_file == data / "ui-config.json"
    assert built.cache_file == data / "cache.json"
    assert built.styles_file == data / "styles.csv"
    assert built.extensions_dir == data / "extensions"
    assert built.extensions_builtin_dir == REPO_ROOT / "extensions-builtin"
    assert built.configs_dir == REPO_ROOT / "configs"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.data_dir = tmp_path


def test_paths_overrides(tmp_path):
    namespace = flags.parse_flags(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "--models-dir",
            str(tmp_path / "models"),
            "--ckpt-dir",
            str(tmp_path / "more-checkpoints"),
            "--vae-dir",
            str(tmp_path / "more-vae"),
            "--ui-settings-file",
            str(tmp_path / "settings.json"),
            "--lora-dir",
            str(tmp_path / "loras"),
        ]
    )
    built = paths.build_paths(namespace)
    assert built.models_dir == tmp_path / "models"
    assert built.checkpoint_dirs == (
        tmp_path / "models" / "Stable-diffusion",
        tmp_path / "more-checkpoints",
    )
    assert built.vae_dirs == (tmp_path / "models" / "VAE", tmp_path / "more-vae")
    assert built.config_file == tmp_path / "settings.json"
    assert built.lora_dir == tmp_path / "loras"
    assert built.cache_file == tmp_path / "data" / "cache.json"


def test_ensure_user_dirs(tmp_path):
    namespace = flags.parse_flags(["--data-dir", str(tmp_path), "--ckpt-dir", str(tmp_path / "elsewhere")])
    built = paths.build_paths(namespace)
    paths.ensure_user_dirs(built)
    for folder in [
        tmp_path / "models" / "Stable-diffusion",
        tmp_path / "models" / "VAE",
        tmp_path / "models" / "Lora",
        tmp_path / "models" / "ESRGAN",
        tmp_path / "embeddings",
        tmp_path / "outputs",
        tmp_path / "extensions",
    ]:
        assert folder.is_dir(), folder
    assert not (tmp_path / "elsewhere").exists()


# --- requirements stamp --------------------------------------------------------


def test_requirements_stamp(tmp_path):
    venv_dir = tmp_path / "venv"
    venv_dir.mkdir()
    runtime = tmp_path / "requirements.txt"
    testing = tmp_path / "requirements-test.txt"
    runtime.write_text("torch==2.13.0\nnumpy==2.4.6\n")
    testing.write_text("pytest==9.2.0\n")

    assert not launch.requirements_up_to_date(venv_dir, [runtime])
    launch.write_requirements_stamp(venv_dir, [runtime])
    assert launch.requirements_up_to_date(venv_dir, [runtime])
    # The test file was never installed, so the pair is not up to date.
    assert not launch.requirements_up_to_date(venv_dir, [runtime, testing])
    launch.write_requirements_stamp(venv_dir, [runtime, testing])
    assert launch.requirements_up_to_date(venv_dir, [runtime, testing])
    assert launch.requirements_up_to_date(venv_dir, [runtime])

    runtime.write_text("torch==2.13.0\nnumpy==2.4.7\n")
    assert not launch.requirements_up_to_date(venv_dir, [runtime])
    assert launch.requirements_up_to_date(venv_dir, [testing])
    assert not launch.requirements_up_to_date(venv_dir, [tmp_path / "missing.txt"])


def test_install_skips_pip_when_stamp_matches(tmp_path):
    """A nonexistent interpreter makes any pip call fail, so no error means no pip."""
    venv_dir = tmp_path / "venv"
    venv_dir.mkdir()
    runtime = tmp_path / "requirements.txt"
    runtime.write_text("torch==2.13.0\n")
    no_python = str(tmp_path / "no-such-python")

    with pytest.raises(launch.LaunchError):
        launch.install_requirements(venv_dir, [runtime], python=no_python, environ={})
    assert not launch.requirements_up_to_date(venv_dir, [runtime])

    launch.write_requirements_stamp(venv_dir, [runtime])
    ran = launch.install_requirements(venv_dir, [runtime], python=no_python, environ={})
    assert ran is False
    with pytest.raises(launch.LaunchError):
        launch.install_requirements(venv_dir, [runtime], python=no_python, environ={}, reinstall_torch=True)


def test_failed_install_raises_a_clear_error():
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(launch.LaunchError, match="exit code 3"):
        launch.run_install(failing, "torch")
    launch.run_install([sys.executable, "-c", "pass"], "nothing")


# --- install commands -------------------------------------------------------------


def test_torch_command_is_pinned_from_requirements(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nnumpy==2.4.6\ntorch==2.13.0  # pinned\n")
    command = launch.torch_install_command("py", requirements, {})
    assert command[:4] == ["py", "-m", "pip", "install"]
    assert command[-1] == "torch==2.13.0"
    assert "--index-url" not in command

    with_index = launch.torch_install_command("py", requirements, {"INDEX_URL": "https://mirror.example/simple"})
    position = with_index.index("--index-url")
    assert with_index[position + 1] == "https://mirror.example/simple"


def test_torch_command_environment_override(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch==2.13.0\n")
    custom = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
    command = launch.torch_install_command("py", requirements, {"TORCH_COMMAND": custom})
    assert command == [
        "py",
        "-m",
        "pip",
        "install",
        "torch==2.13.0",
        "--index-url",
        "https://download.pytorch.org/whl/cu128",
    ]


def test_requirements_command_lists_every_file(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    command = launch.requirements_install_command("py", [first, second], {})
    assert "-q" in command
    assert command[-4:] == ["-r", str(first), "-r", str(second)]


def test_requirement_files_add_test_file_when_testing():
    assert launch.requirement_files(testing=False) == [launch.REQUIREMENTS_FILE]
    assert launch.requirement_files(testing=True) == [
        launch.REQUIREMENTS_FILE,
        launch.TEST_REQUIREMENTS_FILE,
    ]


# --- environment and device --------------------------------------------------


def test_in_virtualenv_matches_the_test_interpreter():
    assert launch.in_virtualenv({}) == (sys.prefix != sys.base_prefix)
    assert launch.in_virtualenv({"VIRTUAL_ENV": sys.prefix})
    assert launch.in_virtualenv({"CONDA_PREFIX": sys.prefix})


def test_venv_dir_from_environment():
    assert launch.venv_dir_from_environment({}) == REPO_ROOT / "venv"
    assert launch.venv_dir_from_environment({"VENV_DIR": "-"}) is None
    assert launch.venv_dir_from_environment({"VENV_DIR": "env2"}) == REPO_ROOT / "env2"


def test_device_notice():
    plain = flags.parse_flags([])
    notice = launch.device_notice(plain, cuda_available=False)
    assert notice is not None and "CPU" in notice and "\n" not in notice
    assert launch.device_notice(plain, cuda_available=True) is None
    assert launch.device_notice(plain, cuda_available=False, mps_available=True) is None
    skip = flags.parse_flags(["--skip-torch-cuda-test"])
    assert launch.device_notice(skip, cuda_available=False) is None
    cpu = flags.parse_flags(["--use-cpu", "all"])
    assert launch.device_notice(cpu, cuda_available=False) is None


# --- main ----------------------------------------------------------------------


def test_main_run_tests_passes_arguments_and_exit_code(monkeypatch, capfd):
    monkeypatch.delenv("COMMANDLINE_ARGS", raising=False)
    if not launch.in_virtualenv():
        pytest.skip("main() would re-execute itself in venv/")
    assert launch.main(["--skip-prepare-environment", "--run-tests", "--version"]) == 0
    captured = capfd.readouterr()
    assert "pytest" in captured.out + captured.err
    # pytest answers an unknown option with its usage-error code 4.
    code = launch.main(["--skip-install", "--run-tests", "--no-such-pytest-option"])
    assert code == 4


# --- repository files ------------------------------------------------------------


def test_ci_script_runs_the_readme_command():
    script = REPO_ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "set -euo pipefail" in text
    assert "python3 launch.py --run-tests" in text


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_gitignore_keeps_placeholders_and_hides_user_data():
    placeholders = [
        "models/Stable-diffusion/Put Stable Diffusion checkpoints here.txt",
        "models/VAE/Put VAE here.txt",
        "models/Lora/Put Lora here.txt",
        "models/ESRGAN/Put ESRGAN models here.txt",
        "embeddings/Place Textual Inversion embeddings here.txt",
        "extensions/put extensions here.txt",
        "outputs/.gitkeep",
    ]
    for placeholder in placeholders:
        assert (REPO_ROOT / placeholder).read_text().strip(), placeholder
    user_data = [
        "models/Stable-diffusion/model.safetensors",
        "models/VAE-approx/model.pt",
        "outputs/txt2img-images/00000.png",
        "embeddings/style.pt",
        "extensions/some-extension/install.py",
        "config.json",
        "ui-config.json",
        "cache.json",
        "styles.csv",
        "params.txt",
        "venv/bin/python",
        "modules/__pycache__/x.cpython-311.pyc",
    ]

    def ignored(relative: str) -> bool:
        result = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", relative],
            check=False,
            cwd=REPO_ROOT,
        )
        assert result.returncode in (0, 1), relative
        return result.returncode == 0

    assert [path for path in placeholders if ignored(path)] == []
    assert [path for path in user_data if not ignored(path)] == []
    assert not ignored("configs/models/sd1.json")
