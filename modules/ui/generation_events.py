"""Behaviour of a generation panel: Generate with progress and live preview, Interrupt/Skip, seed
buttons, size swap, styles, token counters, ↙ paste, gallery selection and the result buttons.

A tab supplies `make_call(values) -> (call, task_id)`: it validates the field values (A1111 parameter
names → values) into typed params and returns a blocking call that runs the job. Errors raised there
(`ParameterError`, `OptionError`, `StyleError`, ...) are shown escaped under the gallery; nothing runs.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.ui.generation_panel import GenerationPanel
from modules.ui.paste import fields_from_infotext, looks_like_infotext
from modules.ui.progress import progress_html, run_with_progress
from modules.ui.results_panel import GenerationResult, error_html, open_folder, save_selected, zip_images
from modules.ui.styles import PromptStyle, StyleDatabase
from modules.ui.tokens import count_prompt_tokens, token_counter_text

MakeCall = Callable[[dict[str, Any]], tuple[Callable[[], Any], str | None]]
USER_ERRORS = (ValueError, LookupError, RuntimeError)


def paste_updates(panel: GenerationPanel, text: str) -> dict[Any, Any]:
    """Component → new value for every field the infotext carries."""
    parsed = fields_from_infotext(text)
    updates: dict[Any, Any] = {}
    for name, value in parsed.items():
        component = panel.fields.get(name)
        if component is not None:
            updates[component] = value
    if parsed.get("subseed_strength") and panel.seed_extras is not None:
        updates[panel.seed_extras] = True
        updates[panel.seed_extras_row] = gr.update(visible=True)
    return updates


def field_values(panel: GenerationPanel, data: dict[Any, Any]) -> dict[str, Any]:
    """The submitted values of the panel's fields, by parameter name."""
    return {name: data[component] for name, component in panel.fields.items() if component in data}


def apply_styles_to_values(values: dict[str, Any], styles: StyleDatabase) -> dict[str, Any]:
    """Merge the chosen styles into the prompts, and turn 0 seed-resize sizes into A1111's -1."""
    values = dict(values)
    names = values.pop("styles", None) or []
    values["prompt"], values["negative_prompt"] = styles.apply(values.get("prompt") or "", values.get("negative_prompt") or "", names)
    for key in ("seed_resize_from_w", "seed_resize_from_h"):
        if not values.get(key):
            values[key] = -1
    return values


def wire_generation_panel(
    panel: GenerationPanel,
    context: AppContext,
    styles: StyleDatabase,
    make_call: MakeCall,
    *,
    extra_inputs: list[Any] | None = None,
    outputs_folder: Path,
) -> None:
    """Attach every event of `panel`."""
    results = panel.results
    assert results is not None
    fields = panel.fields
    busy_outputs = [panel.generate, panel.interrupt, panel.skip, results.progress, results.preview]
    final_outputs = [results.gallery, results.infotext, results.info_html, results.result, results.selected]

    def set_busy(busy: bool) -> dict[Any, Any]:
        return {
            panel.generate: gr.update(visible=not busy),
            panel.interrupt: gr.update(visible=busy),
            panel.skip: gr.update(visible=busy),
        }

    def on_generate(data: dict[Any, Any]):
        try:
            call, task_id = make_call(data)
        except USER_ERRORS as error:
            yield {results.info_html: error_html(str(error)), results.progress: ""}
            return
        show_preview = bool(context.options.live_previews_enable) and int(context.options.show_progress_every_n_steps) > 0
        yield {**set_busy(True), results.progress: progress_html(None), results.preview: gr.update(value=None, visible=show_preview)}
        finished: Future | None = None
        for item in run_with_progress(call, context.jobs, task_id):
            if isinstance(item, Future):
                finished = item
                break
            update: dict[Any, Any] = {results.progress: item.html}
            if item.preview is not None:
                update[results.preview] = gr.update(value=item.preview, visible=True)
            yield update
        idle = {**set_busy(False), results.progress: "", results.preview: gr.update(value=None, visible=False)}
        try:
            processed = finished.result()
        except USER_ERRORS as error:
            yield {**idle, results.info_html: error_html(str(error))}
            return
        result = GenerationResult.from_processed(processed)
        comments = "".join(f"<p>{html.escape(comment)}</p>" for comment in getattr(processed, "comments", []))
        if getattr(processed, "interrupted", False):
            comments += "<p class='interrupted'>Interrupted.</p>"
        yield {
            **idle,
            results.gallery: processed.images,
            results.infotext: result.infotext(None),
            results.info_html: comments,
            results.result: result,
            results.selected: None,
        }

    inputs = set(fields.values()) | set(extra_inputs or [])
    outputs = busy_outputs + final_outputs
    panel.generate.click(on_generate, inputs=inputs, outputs=outputs, concurrency_limit=4)
    panel.interrupt.click(lambda: context.jobs.interrupt(), queue=False)
    panel.skip.click(lambda: context.jobs.skip(), queue=False)

    # seeds and size
    panel.seed_random.click(lambda: -1, outputs=[fields["seed"]], queue=False)
    panel.subseed_random.click(lambda: -1, outputs=[fields["subseed"]], queue=False)

    def reuse(result: GenerationResult, selected: int | None, subseed: bool) -> Any:
        seed = result.seed_of(selected, subseed=subseed)
        return gr.update() if seed is None else seed

    panel.seed_reuse.click(lambda r, s: reuse(r, s, False), inputs=[results.result, results.selected], outputs=[fields["seed"]])
    panel.subseed_reuse.click(lambda r, s: reuse(r, s, True), inputs=[results.result, results.selected], outputs=[fields["subseed"]])
    panel.seed_extras.change(lambda show: gr.update(visible=show), inputs=[panel.seed_extras], outputs=[panel.seed_extras_row])
    panel.swap_size.click(lambda w, h: (h, w), inputs=[fields["width"], fields["height"]], outputs=[fields["width"], fields["height"]])

    # token counters
    def counter_for(is_positive: bool):
        def count(text: str, steps: float) -> str:
            tokens = count_prompt_tokens(context, text, int(steps or 1), is_positive=is_positive)
            return f"<span>{token_counter_text(*tokens)}</span>"

        return count

    boxes = ((fields["prompt"], panel.prompt_tokens, True), (fields["negative_prompt"], panel.negative_tokens, False))
    for box, counter, is_positive in boxes:
        box.change(
            counter_for(is_positive),
            inputs=[box, fields["steps"]],
            outputs=[counter],
            trigger_mode="always_last",
            show_progress="hidden",
        )

    # paste ↙: from the prompt box when it holds an infotext, else from the last generation
    paste_targets = [component for name, component in fields.items() if name != "styles"] + [panel.seed_extras, panel.seed_extras_row]

    def on_paste(prompt: str, result: GenerationResult, selected: int | None) -> dict[Any, Any]:
        text = prompt if looks_like_infotext(prompt) else result.infotext(selected)
        return paste_updates(panel, text) if text else {}

    panel.paste.click(on_paste, inputs=[fields["prompt"], results.result, results.selected], outputs=paste_targets)

    # styles
    def on_apply_styles(prompt: str, negative: str, names: list[str]) -> tuple[Any, Any, Any, Any]:
        try:
            new_prompt, new_negative = styles.apply(prompt or "", negative or "", names or [])
        except USER_ERRORS as error:
            return gr.update(), gr.update(), gr.update(), error_html(str(error))
        return new_prompt, new_negative, [], ""

    panel.styles_apply.click(
        on_apply_styles,
        inputs=[fields["prompt"], fields["negative_prompt"], fields["styles"]],
        outputs=[fields["prompt"], fields["negative_prompt"], fields["styles"], results.info_html],
    )

    def on_save_style(name: str, prompt: str, negative: str) -> tuple[Any, str]:
        try:
            styles.save_style(PromptStyle((name or "").strip(), prompt or "", negative or ""))
        except USER_ERRORS as error:
            return gr.update(), error_html(str(error))
        return gr.update(choices=styles.names()), f"<p>Saved style {html.escape(name.strip())}.</p>"

    panel.style_save.click(
        on_save_style,
        inputs=[panel.style_name, fields["prompt"], fields["negative_prompt"]],
        outputs=[fields["styles"], results.info_html],
    )
    panel.styles_refresh.click(lambda: gr.update(choices=styles.names()), outputs=[fields["styles"]])

    # gallery and its buttons
    def on_select(result: GenerationResult, event: gr.SelectData) -> tuple[int, str]:
        index = int(event.index) if event.index is not None else None
        return index, result.infotext(index)

    results.gallery.select(on_select, inputs=[results.result], outputs=[results.selected, results.infotext])

    def on_save(result: GenerationResult, selected: int | None) -> tuple[Any, str]:
        try:
            paths = save_selected(result, selected, context.paths.data_dir / "log" / "images")
        except USER_ERRORS as error:
            return gr.update(visible=False), error_html(str(error))
        return gr.update(value=paths, visible=True), f"<p>Saved {len(paths)} image(s).</p>"

    def on_zip(result: GenerationResult) -> tuple[Any, str]:
        try:
            name = zip_images(result, Path(tempfile.gettempdir()) / "webui-zips")
        except USER_ERRORS as error:
            return gr.update(visible=False), error_html(str(error))
        return gr.update(value=name, visible=True), ""

    results.save.click(on_save, inputs=[results.result, results.selected], outputs=[results.download, results.info_html])
    results.save_zip.click(on_zip, inputs=[results.result], outputs=[results.download, results.info_html])
    results.open_folder.click(lambda: open_folder(outputs_folder), queue=False)
