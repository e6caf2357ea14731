"""The checkpoint downloader against a real HTTP server on loopback: full, resumed and corrupt downloads."""

import hashlib
import http.server
import threading

import pytest

from modules.models.download import DownloadError, DownloadSpec, download

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB, more than one chunk


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = PAYLOAD
    honour_range = True
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        header = self.headers.get("Range")
        type(self).requests.append(header)
        start = 0
        if header and self.honour_range:
            start = int(header.split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    RangeHandler.requests = []
    RangeHandler.honour_range = True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/model.safetensors"
    httpd.shutdown()


def spec_for(url: str, payload: bytes = PAYLOAD) -> DownloadSpec:
    return DownloadSpec("test", url, "model.safetensors", hashlib.sha256(payload).hexdigest())


def test_full_download_reports_progress_and_verifies(server, tmp_path):
    seen = []
    path = download(spec_for(server), tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert not (tmp_path / "model.safetensors.part").exists()


def test_resume_sends_range_and_completes(server, tmp_path):
    (tmp_path / "model.safetensors.part").write_bytes(PAYLOAD[:300_000])
    path = download(spec_for(server), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert RangeHandler.requests == ["bytes=300000-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    RangeHandler.honour_range = False
    (tmp_path / "model.safetensors.part").write_bytes(b"stale" * 10)
    assert download(spec_for(server), tmp_path).read_bytes() == PAYLOAD


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(spec_for(server, b"something else"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host_is_a_clear_error(tmp_path):
    spec = DownloadSpec("test", "http://127.0.0.1:9/none.safetensors", "none.safetensors", "0" * 64)
    with pytest.raises(DownloadError, match="cannot reach"):
        download(spec, tmp_path, timeout=2)
