"""The queue behind the API, through FastAPI's TestClient: progress while a job runs, interrupt, skip,
arrival order, errors that never leave the queue busy, and `--api-auth`."""

import argparse
import base64
import dataclasses
import io
import json
import threading
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

SMALL = {"prompt": "x", "width": 64, "height": 64, "seed": 11}


@pytest.fixture(scope="module")
def client(app_context, api_app):
    with TestClient(api_app) as test_client:
        yield test_client


def _post_in_thread(client, body, results, key):
    def run():
        response = client.post("/sdapi/v1/txt2img", json=body)
        results[key] = (response, time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_progress_preview_and_interrupt_within_one_step(client, app_context):
    results = {}
    thread = _post_in_thread(client, {**SMALL, "steps": 1000, "force_task_id": "task(progress-test)"}, results, "run")
    state = _wait_for(lambda: (body := client.get("/sdapi/v1/progress").json())["state"]["sampling_step"] >= 3 and body)
    assert state["state"]["job_count"] == 1 and state["state"]["sampling_steps"] == 1000
    assert 0 < state["progress"] < 1 and state["eta_relative"] > 0
    preview = Image.open(io.BytesIO(base64.b64decode(state["current_image"])))
    assert preview.size == (8, 8)
    by_id = client.post("/internal/progress", json={"id_task": "task(progress-test)", "id_live_preview": -1}).json()
    assert by_id["active"] is True and by_id["progress"] > 0
    started = time.monotonic()
    for _ in range(5):
        timer = time.monotonic()
        assert client.get("/sdapi/v1/sd-models").status_code == 200
        assert time.monotonic() - timer < 1.0
    job = app_context.jobs.find("task(progress-test)")
    step_at_interrupt = job.sampling_step
    assert client.post("/sdapi/v1/interrupt").json() == {}
    thread.join(30)
    response, finished = results["run"]
    assert finished - started < 10
    assert response.status_code == 200
    info = json.loads(response.json()["info"])
    assert info["interrupted"] is True
    assert job.sampling_step <= step_at_interrupt + 2, "sampling must stop within one step"
    idle = client.get("/sdapi/v1/progress").json()
    assert idle["state"]["job_count"] == 0 and idle["progress"] == 0
    done = client.post("/internal/progress", json={"id_task": "task(progress-test)"}).json()
    assert done["completed"] is True and done["active"] is False


def test_interrupt_while_idle_does_not_touch_the_next_job(client):
    assert client.post("/sdapi/v1/interrupt").status_code == 200
    assert client.post("/sdapi/v1/skip").status_code == 200
    body = client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 2}).json()
    info = json.loads(body["info"])
    assert info["interrupted"] is False and len(body["images"]) == 1


def test_skip_moves_on_to_the_next_batch(client, app_context):
    results = {}
    thread = _post_in_thread(client, {**SMALL, "steps": 400, "n_iter": 2, "force_task_id": "task(skip-test)"}, results, "run")
    _wait_for(lambda: (job := app_context.jobs.find("task(skip-test)")) and job.job_no == 0 and job.sampling_step >= 2)
    client.post("/sdapi/v1/skip")
    _wait_for(lambda: app_context.jobs.find("task(skip-test)").job_no == 1)
    client.post("/sdapi/v1/interrupt")
    thread.join(60)
    response, _ = results["run"]
    info = json.loads(response.json()["info"])
    assert info["interrupted"] is True
    assert app_context.jobs.find("task(skip-test)").job_no == 1, "the second batch ran after the skip"


def test_concurrent_requests_finish_in_arrival_order(client):
    results = {}
    first = _post_in_thread(client, {**SMALL, "steps": 40, "seed": 1}, results, "first")
    _wait_for(lambda: client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 1)
    second = _post_in_thread(client, {**SMALL, "steps": 1, "seed": 2}, results, "second")
    first.join(60)
    second.join(60)
    assert results["first"][1] < results["second"][1]
    assert json.loads(results["first"][0].json()["info"])["seed"] == 1
    assert json.loads(results["second"][0].json()["info"])["seed"] == 2


def test_a_failing_job_never_leaves_the_queue_busy(client, app_context):
    folder = app_context.paths.checkpoint_dirs[0]
    broken = folder / "broken.safetensors"
    broken.write_bytes(b"\x00" * 2048)
    try:
        client.post("/sdapi/v1/refresh-checkpoints")
        failed = client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 1, "override_settings": {"sd_model_checkpoint": "broken"}})
        assert failed.status_code == 500 and "broken" in failed.json()["detail"]
        assert client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0
        assert app_context.jobs.current is None
        assert client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 1}).status_code == 200
    finally:
        broken.unlink()
        client.post("/sdapi/v1/refresh-checkpoints")


@pytest.fixture(scope="module")
def auth_client(app_context):
    from modules.api.routes import install_api

    flags = argparse.Namespace(**{**vars(app_context.flags), "api_auth": "alice:wonder,bob:builder"})
    context = dataclasses.replace(app_context, flags=flags)
    app = FastAPI()
    install_api(app, context)

    @app.get("/extension/hello")
    def hello() -> dict:
        return {"hello": "world"}

    with TestClient(app) as test_client:
        yield test_client


def test_api_auth_protects_every_api_route(auth_client):
    refused = auth_client.get("/sdapi/v1/options")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Basic"
    assert auth_client.get("/sdapi/v1/options", auth=("alice", "wrong")).status_code == 401
    assert auth_client.get("/sdapi/v1/options", auth=("bob", "wonder")).status_code == 401
    assert auth_client.get("/sdapi/v1/options", auth=("alice", "wonder")).status_code == 200
    assert auth_client.get("/sdapi/v1/progress", auth=("bob", "builder")).status_code == 200
    assert auth_client.get("/extension/hello").status_code == 401
    assert auth_client.get("/extension/hello", auth=("bob", "builder")).json() == {"hello": "world"}
    assert auth_client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 1}).status_code == 401
    assert auth_client.get("/openapi.json").status_code == 200


def test_listen_without_auth_warns(app_flags):
    from webui import listen_warning

    exposed = argparse.Namespace(**{**vars(app_flags), "listen": True, "api_auth": None, "gradio_auth": None})
    assert "WARNING" in listen_warning(exposed)
    protected = argparse.Namespace(**{**vars(exposed), "api_auth": "a:b"})
    assert listen_warning(protected) is None
    assert listen_warning(app_flags) is None


def test_server_control_routes_exist_only_with_their_flag(app_context):
    from modules.api.routes import install_api

    def paths(stop_flag: bool) -> set[str]:
        flags = argparse.Namespace(**{**vars(app_context.flags), "api_server_stop": stop_flag})
        app = FastAPI()
        install_api(app, dataclasses.replace(app_context, flags=flags))
        return set(app.openapi()["paths"])

    control = {"/sdapi/v1/server-stop", "/sdapi/v1/server-restart", "/sdapi/v1/server-kill"}
    assert control <= paths(True)
    assert not control & paths(False)
