"""An installed extension's JavaScript runs and its CSS applies in the real page (headless Chromium)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import pytest

from modules.app.flags import parse_flags
from modules.app.paths import build_paths
from modules.plugins.extension_install import install_extension
from tests.extension_repository import CSS_MARKER, JS_MARKER, make_extension_repository

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_with_extension(tmp_path_factory):
    import uvicorn

    from webui import create_app

    data_dir = tmp_path_factory.mktemp("browser-extension-data")
    source = tmp_path_factory.mktemp("browser-extension-source") / "sd-webui-sample"
    make_extension_repository(source)
    second = tmp_path_factory.mktemp("browser-extension-source") / "second-extension"
    make_extension_repository(second, {"metadata.ini": "[Extension]\nName = Second One\n"})
    flags = parse_flags(["--data-dir", str(data_dir), "--skip-install"])
    install_extension(source.as_uri(), build_paths(flags))
    app, _ = create_app(flags)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", second.as_uri(), build_paths(flags)
    server.should_exit = True
    thread.join(timeout=10)


def test_extension_script_runs_style_applies_and_tab_installs(served_with_extension):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `python3 launch.py --run-tests` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    base, second_url, paths = served_with_extension
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        try:
            page = browser.new_page()
            page.goto(base + "/")
            page.wait_for_selector("#tab_extensions, button:has-text('Extensions')", timeout=60_000)
            page.wait_for_function(f"window.{JS_MARKER} === 'loaded'", timeout=30_000)
            color = page.evaluate(
                """(className) => {
                    const probe = document.createElement('div');
                    probe.className = className;
                    document.body.appendChild(probe);
                    return getComputedStyle(probe).color;
                }""",
                CSS_MARKER.lstrip("."),
            )
            assert color == "rgb(1, 2, 3)"
            page.get_by_role("tab", name="Extensions").click()
            page.wait_for_selector("#extensions_installed_html table", state="visible", timeout=20_000)
            table = page.inner_text("#extensions_installed_html")
            assert "Sample Extension" in table and "enabled" in table

            page.get_by_role("tab", name="Install from URL").click()
            page.fill("#extensions_install_url textarea, #extensions_install_url input", second_url)
            page.click("#extensions_install")
            page.wait_for_function(
                "document.querySelector('#extensions_install_result').innerText.includes('Installed into')", timeout=30_000
            )
            assert (paths.extensions_dir / "second-extension" / "metadata.ini").is_file()

            page.get_by_role("tab", name="Installed").click()
            page.wait_for_function("document.querySelector('#extensions_installed_html').innerText.includes('Second One')", timeout=20_000)
            page.locator("#extensions_enabled label").filter(has_text="sd-webui-sample").locator("input").uncheck()
            page.click("#extensions_apply")
            page.wait_for_function(
                "document.querySelector('#extensions_installed_message').innerText.includes('Disabled extensions: sd-webui-sample')",
                timeout=20_000,
            )
            saved = json.loads(paths.config_file.read_text(encoding="utf-8"))
            assert saved["disabled_extensions"] == ["sd-webui-sample"]
        finally:
            browser.close()
