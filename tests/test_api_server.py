"""A real launched server (`--nowebui --api-auth`) on a random loopback port, driven by the `webuiapi`
client from PyPI as third-party tools drive A1111."""

import statistics
import threading
import time

import pytest
import requests
import webuiapi

from tests.server_process import ServerProcess

USER, PASSWORD = "tester", "s3cret"
SMALL = {"width": 64, "height": 64}


class AuthServer(ServerProcess):
    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if requests.get(self.base + "/sdapi/v1/sd-models", auth=(USER, PASSWORD), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = AuthServer(tmp_path_factory.mktemp("api-server"), ("--nowebui", "--api-auth", f"{USER}:{PASSWORD}"))
    try:
        process.wait_ready()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api(server):
    return webuiapi.WebUIApi(port=server.port, username=USER, password=PASSWORD, steps=2)


def _generate_in_thread(api, results, key, **kwargs):
    def run():
        try:
            results[key] = (api.txt2img(**SMALL, **kwargs), time.monotonic())
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[key] = (error, time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_txt2img_and_png_info(api):
    result = api.txt2img(prompt="a lighthouse at dusk", negative_prompt="fog", seed=7, **SMALL)
    assert result.image.size == (64, 64)
    assert result.info["all_seeds"] == [7]
    assert result.info["infotexts"][0].startswith("a lighthouse at dusk\nNegative prompt: fog\nSteps: 2, Sampler: Euler a")
    info = api.png_info(result.image)
    assert info.info == result.info["infotexts"][0]
    assert info.json["parameters"]["Seed"] == "7"


def test_get_and_set_options(api):
    options = api.get_options()
    assert options["jpeg_quality"] == 80 and options["sd_model_checkpoint"].startswith("demo-tiny-sd1")
    assert api.set_options({"jpeg_quality": 85}) is None
    assert api.get_options()["jpeg_quality"] == 85
    assert api.set_options(api.get_options()) is None
    flags = api.get_cmd_flags()
    assert flags["api_auth"] == "<hidden>" and PASSWORD not in str(flags)
    assert "Euler a" in [item["name"] for item in api.get_samplers()]


def test_progress_during_a_job_then_interrupt(api):
    results = {}
    thread = _generate_in_thread(api, results, "long", prompt="long", steps=1000, seed=3)
    deadline = time.monotonic() + 60
    progress = api.get_progress()
    while progress["state"]["sampling_step"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        progress = api.get_progress()
    assert progress["state"]["sampling_steps"] == 1000 and progress["state"]["job_count"] == 1
    assert 0 < progress["progress"] < 1
    timings = []
    for _ in range(10):
        start = time.monotonic()
        api.get_sd_models()
        api.get_progress()
        timings.append((time.monotonic() - start) / 2)
    assert statistics.median(timings) < 0.1, timings
    api.interrupt()
    thread.join(30)
    result, _ = results["long"]
    assert not isinstance(result, Exception), result
    assert result.info["interrupted"] is True
    assert api.get_progress()["state"]["job_count"] == 0


def test_two_concurrent_requests_finish_in_order(api):
    results = {}
    first = _generate_in_thread(api, results, "first", prompt="first", steps=40, seed=1)
    deadline = time.monotonic() + 30
    while api.get_progress()["state"]["job_count"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    second = _generate_in_thread(api, results, "second", prompt="second", steps=1, seed=2)
    first.join(60)
    second.join(60)
    assert results["first"][0].info["seed"] == 1 and results["second"][0].info["seed"] == 2
    assert results["first"][1] < results["second"][1]


def test_auth_is_required(server):
    anonymous = webuiapi.WebUIApi(port=server.port)
    with pytest.raises(RuntimeError) as refused:
        anonymous.txt2img(prompt="x", **SMALL)
    assert refused.value.args[0] == 401
    wrong = requests.get(server.base + "/sdapi/v1/options", auth=(USER, "nope"), timeout=10)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Basic"


@pytest.mark.parametrize(
    ("route", "payload", "status", "field"),
    [
        ("txt2img", {"prompt": "x", "width": 100}, 422, "width"),
        ("txt2img", {"prompt": "x", "steps": 0}, 422, "steps"),
        ("txt2img", {"prompt": "x", "batch_size": 1000}, 422, "batch_size"),
        ("txt2img", {"prompt": "x", "n_iter": 100000}, 422, "n_iter"),
        ("txt2img", {"prompt": "x", "cfg_scale": "NaN"}, 422, "cfg_scale"),
        ("txt2img", {"prompt": "x", "steps": "lots"}, 422, "steps"),
        ("txt2img", {"prompt": "x", "width": 16384, "height": 16384}, 422, "width"),
        ("txt2img", {"prompt": "x", "sampler_name": "Bogus"}, 422, "sampler_name"),
        ("txt2img", {"prompt": "x", "scheduler": "Bogus"}, 422, "scheduler"),
        ("txt2img", {"prompt": "x", "override_settings": {"sd_model_checkpoint": "nope"}}, 422, "sd_model_checkpoint"),
        ("txt2img", {"prompt": "x", "script_name": "Bogus"}, 422, "script_name"),
        ("png-info", {"image": "%%%"}, 422, "image"),
        ("extra-single-image", {"image": "aGVsbG8="}, 422, "image"),
        ("extra-single-image", {"image": "", "upscaler_1": "Bogus"}, 404, "upscaler_1"),
        ("options", {"not_a_setting": 3}, 422, "not_a_setting"),
        ("options", {"CLIP_stop_at_last_layers": "two"}, 422, "CLIP_stop_at_last_layers"),
    ],
)
def test_validation_errors_keep_the_server_up(api, server, route, payload, status, field):
    response = api.session.post(f"{api.baseurl}/{route}", json=payload, timeout=30)
    assert response.status_code == status, response.text
    assert field in response.json()["detail"]
    assert server.process.poll() is None
    assert api.session.get(f"{api.baseurl}/progress", timeout=10).status_code == 200
