"""Extensions tab handlers, the "Available" index, insecure-access refusal, and JS/CSS in the served page."""

from __future__ import annotations

import json
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from modules.app.flags import parse_flags
from modules.app.options import Options
from modules.app.paths import build_paths
from modules.plugins.assets import extension_css, extension_head_html
from modules.plugins.extension_index import ExtensionIndexError, load_index, parse_index
from modules.plugins.extension_install import insecure_access_refusal, install_extension
from modules.plugins.extensions import list_extensions
from modules.ui import extensions_tab
from tests.extension_repository import CSS_MARKER, JS_MARKER, commit_all, make_extension_repository, write_files

INDEX = {
    "tags": {"script": "a script", "tab": "adds a tab"},
    "extensions": [
        {
            "name": "Alpha",
            "url": "https://example.invalid/alpha.git",
            "description": "First <b>one</b>",
            "tags": ["script"],
            "added": "2023-01-02",
        },
        {"name": "Beta", "url": "https://example.invalid/beta", "description": "Second", "tags": ["tab", "script"], "added": "2024-05-06"},
        {"name": "", "url": "https://example.invalid/nameless"},
    ],
}


@pytest.fixture(scope="module")
def source_repository(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ui-sources") / "sd-webui-sample"
    make_extension_repository(folder)
    return folder


@pytest.fixture(scope="module")
def index_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("index")
    (folder / "index.json").write_text(json.dumps(INDEX), encoding="utf-8")
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_context(tmp_path: Path, *extra_flags: str) -> SimpleNamespace:
    """The parts of an AppContext the Extensions tab handlers use."""
    flags = parse_flags(["--data-dir", str(tmp_path), *extra_flags])
    paths = build_paths(flags)
    paths.extensions_dir.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.load(paths.config_file)
    return SimpleNamespace(flags=flags, paths=paths, options=options)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_available_list_from_an_index_served_on_loopback(index_server, tmp_path, source_repository):
    index = load_index(f"{index_server}/index.json")
    assert index.tags == {"script": "a script", "tab": "adds a tab"}
    assert [(entry.name, entry.tags, entry.added) for entry in index.extensions] == [
        ("Alpha", ("script",), "2023-01-02"),
        ("Beta", ("tab", "script"), "2024-05-06"),
    ]
    assert [entry.name for entry in index.not_installed({"https://EXAMPLE.invalid/alpha"})] == ["Beta"]

    context = make_context(tmp_path)
    page = extensions_tab.available_html(context, f"{index_server}/index.json")
    assert "2 extensions in the index" in page
    assert "First &lt;b&gt;one&lt;/b&gt;" in page and "<b>one" not in page
    assert "https://example.invalid/beta" in page


def test_unreachable_or_bad_index_gives_a_clear_message(index_server, tmp_path):
    with pytest.raises(ExtensionIndexError, match="Could not load the extension index .* You may be offline"):
        load_index(f"http://127.0.0.1:{closed_port()}/index.json", timeout_s=3)
    with pytest.raises(ExtensionIndexError, match="answered 404"):
        load_index(f"{index_server}/missing.json")
    with pytest.raises(ExtensionIndexError, match="not valid JSON"):
        load_index(f"{index_server}/broken.json")
    with pytest.raises(ExtensionIndexError, match="must start with"):
        load_index("ftp://example.invalid/index.json")
    with pytest.raises(ExtensionIndexError, match='"extensions" list'):
        parse_index({"tags": {}})

    page = extensions_tab.available_html(make_context(tmp_path), f"http://127.0.0.1:{closed_port()}/index.json")
    assert page.startswith("<p class='extension-message error'>Could not load the extension index")
    assert "Traceback" not in page


def test_insecure_access_refusal_rules():
    refused = insecure_access_refusal(parse_flags(["--listen"]))
    assert refused is not None and "--enable-insecure-extension-access" in refused
    assert insecure_access_refusal(parse_flags(["--server-name", "192.168.1.5"])) is not None
    assert insecure_access_refusal(parse_flags([])) is None
    assert insecure_access_refusal(parse_flags(["--server-name", "localhost"])) is None
    assert insecure_access_refusal(parse_flags(["--listen", "--gradio-auth", "user:secret"])) is None
    assert insecure_access_refusal(parse_flags(["--listen", "--enable-insecure-extension-access"])) is None


def test_install_and_update_refused_when_listening_without_auth(tmp_path, source_repository):
    context = make_context(tmp_path, "--listen")
    message = extensions_tab.install_from_url(context, source_repository.as_uri(), "", "")
    assert "disabled because the server listens on the network" in message
    assert list(context.paths.extensions_dir.iterdir()) == []
    assert "disabled because" in extensions_tab.update_selected(context, ["sd-webui-sample"])

    allowed = make_context(tmp_path, "--listen", "--enable-insecure-extension-access")
    assert "Installed into" in extensions_tab.install_from_url(allowed, source_repository.as_uri(), "", "")
    assert [child.name for child in allowed.paths.extensions_dir.iterdir()] == ["sd-webui-sample"]


def test_tab_handlers_install_apply_check_and_update(tmp_path_factory, tmp_path):
    source = tmp_path_factory.mktemp("tab-source") / "tabbed"
    first = make_extension_repository(source)
    context = make_context(tmp_path)
    message = extensions_tab.install_from_url(context, source.as_uri(), "", "")
    assert f"(commit {first[:8]})" in message
    bad = extensions_tab.install_from_url(context, source.as_uri(), "", "../evil")
    assert "folder name" in bad and "error" in bad

    table = extensions_tab.installed_table_html(context)
    assert "Sample Extension" in table and first[:8] in table and "enabled" in table

    assert "Disabled extensions: tabbed" in extensions_tab.apply_enabled(context, [], "none")
    assert json.loads(context.paths.config_file.read_text())["disabled_extensions"] == ["tabbed"]
    assert "disabled" in extensions_tab.installed_table_html(context)
    assert "no such extension" in extensions_tab.apply_enabled(context, ["ghost"], "none")
    extensions_tab.apply_enabled(context, ["tabbed"], "none")

    write_files(source, {"README.md": "new\n"})
    second = commit_all(source, "second")
    table, behind = extensions_tab.check_updates(context)
    assert behind == ["tabbed"] and "behind" in table
    result = extensions_tab.update_selected(context, behind)
    assert f"{first[:8]} → {second[:8]}" in result and second in result
    assert second[:8] in extensions_tab.installed_table_html(context)
    assert "Nothing selected" in extensions_tab.update_selected(context, [])


def test_assets_of_enabled_extensions_only(tmp_path, source_repository):
    context = make_context(tmp_path)
    install_extension(source_repository.as_uri(), context.paths)
    write_files(context.paths.extensions_dir / "off", {"javascript/off.js": "window.offMarker = 1;\n", "style.css": ".off-marker {}\n"})
    context.options.set("disabled_extensions", ["off"])
    extensions = list_extensions(context.paths, context.options)
    head = extension_head_html(extensions)
    assert JS_MARKER in head and "offMarker" not in head
    assert 'data-extension-script="sd-webui-sample/javascript/sample.js"' in head
    assert "// <\\/script> inside a comment" in head
    css = extension_css(extensions)
    assert CSS_MARKER in css and ".off-marker" not in css


def test_served_page_carries_extension_js_and_css(tmp_path, source_repository):
    from fastapi.testclient import TestClient

    from webui import create_app

    flags = parse_flags(["--data-dir", str(tmp_path), "--skip-install"])
    install_extension(source_repository.as_uri(), build_paths(flags))
    app, _ = create_app(flags)
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        config = client.get("/config").json()
    # Gradio puts the page's head HTML and CSS into its config; the page script inserts them into <head>.
    assert f"window.{JS_MARKER} = 'loaded'" in config["head"]
    assert 'data-extension-script="sd-webui-sample/javascript/sample.js"' in config["head"]
    assert CSS_MARKER in config["css"]
    assert "/* extension: sd-webui-sample */" in config["css"]
