"""A real launched server: `launch.py --demo-model --api` on a loopback port, spoken to over HTTP."""

import base64
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 120) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("server-data")
    port = free_port()
    command = [
        sys.executable,
        "launch.py",
        "--skip-install",
        "--skip-torch-cuda-test",
        "--demo-model",
        "--api",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{log_path.read_text()}")
        try:
            if request(base + "/sdapi/v1/sd-models", timeout=5)[0] == 200:
                break
        except OSError:
            time.sleep(1)
    else:
        process.kill()
        pytest.fail(f"server did not start:\n{log_path.read_text()}")
    yield base, data_dir
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_ui_page_is_served(server):
    base, _ = server
    status, body = request(base + "/")
    assert status == 200
    assert b"gradio" in body.lower()


def test_generate_over_http_saves_the_image(server):
    base, data_dir = server
    status, body = request(
        base + "/sdapi/v1/txt2img", {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 9, "save_images": True}
    )
    assert status == 200, body
    result = json.loads(body)
    image = Image.open(io.BytesIO(base64.b64decode(result["images"][0])))
    assert image.size == (64, 64)
    assert "Demo model" in json.loads(result["info"])["comments"]
    saved = list((data_dir / "outputs" / "txt2img-images").glob("*/*.png"))
    assert len(saved) == 1 and saved[0].name.startswith("00000-9-a lighthouse")


def test_bad_request_keeps_the_server_serving(server):
    base, _ = server
    status, body = request(base + "/sdapi/v1/txt2img", {"prompt": "x", "steps": "many"})
    assert status == 422 and b"steps" in body
    status, _ = request(base + "/sdapi/v1/sd-models")
    assert status == 200
