"""Build and serve the app: options → model manager → job queue → FastAPI (API) + Gradio UI.

`launch.py` prepares the environment and calls `main`; `create_app` is what tests use.
"""

from __future__ import annotations

import argparse
import logging
import os

from fastapi import FastAPI

from modules.app.context import AppContext, create_context
from modules.app.flags import effective_port, parse_flags

log = logging.getLogger("webui")


def _auth_pairs(value: str | None) -> list[tuple[str, str]] | None:
    """`--gradio-auth user:pass,user2:pass2` → [(user, pass), ...]."""
    if not value:
        return None
    pairs = []
    for item in value.replace("\n", ",").split(","):
        if ":" in item:
            user, password = item.strip().split(":", 1)
            pairs.append((user, password))
    return pairs or None


def create_app(flags: argparse.Namespace, context: AppContext | None = None) -> tuple[FastAPI, AppContext]:
    """The FastAPI app with the API routes (with `--api` or `--nowebui`) and the Gradio UI mounted at `/`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    context = context or create_context(flags)
    from modules.plugins.callbacks import registry

    app = FastAPI(title="Stable Diffusion web UI", docs_url="/docs", redoc_url=None)
    _add_cors(app, flags)
    blocks = None
    if flags.api or flags.nowebui:
        from modules.api.routes import install_api

        install_api(app, context)
    if not flags.nowebui:
        import gradio as gr

        from modules.plugins.assets import extension_css, extension_head_html
        from modules.plugins.extensions import enabled_extensions
        from modules.ui.assets import page_head, stylesheet
        from modules.ui.blocks import build_ui

        page_extensions = enabled_extensions(context.paths, context.options, flags)
        registry.fire("callbacks_before_ui")
        registry.fire("callbacks_ui_settings")
        blocks = build_ui(context)
        blocks.queue(default_concurrency_limit=4)
        app = gr.mount_gradio_app(
            app,
            blocks,
            path="/",
            auth=_auth_pairs(flags.gradio_auth),
            allowed_paths=[str(context.paths.outputs_dir), str(context.paths.data_dir / "log" / "images")],
            footer_links=["api"],
            css=stylesheet() + "\n" + extension_css(page_extensions),
            head=page_head() + "\n" + extension_head_html(page_extensions),
        )
    registry.fire("callbacks_app_started", blocks, app)
    return app, context


def _add_cors(app: FastAPI, flags: argparse.Namespace) -> None:
    """CORS only for the origins named by --cors-allow-origins / --cors-allow-origins-regex (none by default)."""
    origins = [origin for origin in (flags.cors_allow_origins or "").split(",") if origin]
    regex = flags.cors_allow_origins_regex or None
    if not origins and not regex:
        return
    from fastapi.middleware.cors import CORSMiddleware

    if "*" in origins:
        log.warning("--cors-allow-origins '*' lets every web page call this server")
    app.add_middleware(
        CORSMiddleware, allow_origins=origins, allow_origin_regex=regex, allow_methods=["*"], allow_headers=["*"], allow_credentials=True
    )


def listen_warning(flags: argparse.Namespace) -> str | None:
    """A loud warning when the server listens on the network with no password at all."""
    exposed = flags.listen or (flags.server_name not in (None, "127.0.0.1", "localhost", "::1"))
    if not exposed or flags.api_auth or flags.gradio_auth:
        return None
    line = "!" * 78
    return (
        f"{line}\nWARNING: listening on the network without --api-auth or --gradio-auth: anyone who can reach "
        f"this machine can generate images, change settings and read your outputs.\n{line}"
    )


def main(flags: argparse.Namespace | None = None) -> None:
    """Start the server and serve until interrupted."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    flags = flags or parse_flags(None)
    app, context = create_app(flags)
    host = flags.server_name or ("0.0.0.0" if flags.listen else "127.0.0.1")
    port = effective_port(flags)
    warning = listen_warning(flags)
    if warning:
        print(warning, flush=True)
    print(f"Running on local URL:  http://{host}:{port}", flush=True)
    if not context.models.checkpoints:
        print(f"No checkpoint found: put a .safetensors file into {context.paths.checkpoint_dirs[0]}", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=flags.timeout_keep_alive)
    finally:
        from modules.plugins.callbacks import registry

        registry.fire("callbacks_script_unloaded")


if __name__ == "__main__":
    main()
