"""/sdapi/v1/embeddings lists textual inversions that fit the loaded model and says why others are skipped."""

import torch
from fastapi.testclient import TestClient


def test_embeddings_listed_and_mismatched_skipped(app_context, api_app):
    folder = app_context.paths.embeddings_dir
    folder.mkdir(parents=True, exist_ok=True)
    width = app_context.models.require().checkpoint.text_encoders[0].config.hidden_size
    torch.save({"string_to_param": {"*": torch.randn(2, width)}, "name": "fits", "step": 100}, folder / "fits.pt")
    torch.save({"string_to_param": {"*": torch.randn(2, width + 7)}, "name": "wide"}, folder / "wide.pt")
    try:
        with TestClient(api_app) as client:
            assert client.post("/sdapi/v1/refresh-embeddings").status_code == 200
            body = client.get("/sdapi/v1/embeddings").json()
        assert "fits" in body["loaded"]
        assert body["loaded"]["fits"]["vectors"] == 2
        assert "wide" in body["skipped"]
    finally:
        (folder / "fits.pt").unlink()
        (folder / "wide.pt").unlink()
        app_context.refresh_embeddings()
