"""Start the app as a real process on a free loopback port, for HTTP and browser tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 120) -> tuple[int, bytes]:
    """GET (or POST `body` as JSON) and return (status, body), HTTP errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class ServerProcess:
    """`launch.py --demo-model --api` in a fresh data dir; `stop()` ends it."""

    def __init__(self, data_dir: Path, extra_flags: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        command = [
            sys.executable,
            "launch.py",
            "--skip-install",
            "--skip-torch-cuda-test",
            "--demo-model",
            "--api",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            *extra_flags,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if request(self.base + "/sdapi/v1/sd-models", timeout=5)[0] == 200:
                    return
            except OSError:
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
