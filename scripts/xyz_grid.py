"""X/Y/Z plot: one generation per combination of up to three parameter axes, drawn as labelled grids.

Written against the A1111 Script API only, the way an extension would be. The script arguments
keep A1111's order so API clients can send the same ``script_args``:
x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values,
z_values_dropdown, draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds,
vary_seeds_x, vary_seeds_y, vary_seeds_z, margin_size, csv_mode.
"""

from __future__ import annotations

import contextlib
import copy
import random

import gradio as gr

import modules.scripts as scripts
from modules import images, processing, shared
from modules.plugins.builtin.xyz_axes import AxisChoices, AxisError, AxisType, axis_by_index, axis_labels, resolve_seeds
from modules.plugins.builtin.xyz_grid_image import combine_grids, draw_labeled_grid
from modules.processing import process_images

SEED_AXES = ("Seed", "Var. seed")


def _registry_names() -> AxisChoices:
    """Checkpoint, VAE and style names from the A1111 modules that expose them (unchecked when missing)."""
    checkpoints: list[str] = []
    vaes: list[str] = []
    styles: list[str] = []
    try:
        from modules import sd_models

        checkpoints = list(sd_models.checkpoint_tiles())
        checkpoints += [title.split(" [")[0] for title in checkpoints]
    except (ImportError, AttributeError, RuntimeError):
        pass
    try:
        from modules import sd_vae

        vaes = ["Automatic", "None", *sd_vae.vae_dict]
    except (ImportError, AttributeError, RuntimeError):
        with contextlib.suppress(AttributeError, KeyError, TypeError, RuntimeError):
            listed = shared.opts.data_labels["sd_vae"].choices
            vaes = list(listed() if callable(listed) else listed)
    with contextlib.suppress(AttributeError, RuntimeError):
        styles = list(shared.prompt_styles.styles)
    return AxisChoices.from_registries(checkpoints=checkpoints, vaes=vaes, styles=styles)


def _axis_values(axis: AxisType, text: str, dropdown: list | None, csv_mode: bool, choices: AxisChoices, no_fixed_seeds: bool) -> list:
    if axis.choices and dropdown and not csv_mode:
        text = ",".join(f'"{value}"' if "," in value else value for value in dropdown)
    values = axis.parse(text or "", choices)
    if axis.label in SEED_AXES:
        values = resolve_seeds(values, no_fixed_seeds, lambda: int(random.randrange(4294967294)))
    return values


def _cell_copy(p):
    """A copy of `p` whose lists and settings a cell may change without touching `p`."""
    cell = copy.copy(p)
    cell.styles = list(getattr(p, "styles", None) or [])
    cell.override_settings = dict(getattr(p, "override_settings", None) or {})
    return cell


def _axis_widgets_updater(is_img2img: bool):
    """A change handler: axes with a list of names get a multi-select dropdown, others a textbox."""

    def update(index, csv_mode):
        axis = axis_by_index(index or 0, is_img2img)
        names = list(getattr(_registry_names(), axis.choices)) if axis.choices else []
        use_dropdown = bool(names) and not csv_mode
        return gr.update(visible=not use_dropdown), gr.update(choices=names, value=[], visible=use_dropdown)

    return update


class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"

    def ui(self, is_img2img):
        labels = axis_labels(is_img2img)
        with gr.Row():
            x_type = gr.Dropdown(label="X type", choices=labels, value=labels[1], type="index", elem_id=self.elem_id("x_type"))
            x_values = gr.Textbox(label="X values", lines=1, elem_id=self.elem_id("x_values"))
            x_values_dropdown = gr.Dropdown(
                label="X values", multiselect=True, choices=[], visible=False, elem_id=self.elem_id("x_values_dropdown")
            )
        with gr.Row():
            y_type = gr.Dropdown(label="Y type", choices=labels, value=labels[0], type="index", elem_id=self.elem_id("y_type"))
            y_values = gr.Textbox(label="Y values", lines=1, elem_id=self.elem_id("y_values"))
            y_values_dropdown = gr.Dropdown(
                label="Y values", multiselect=True, choices=[], visible=False, elem_id=self.elem_id("y_values_dropdown")
            )
        with gr.Row():
            z_type = gr.Dropdown(label="Z type", choices=labels, value=labels[0], type="index", elem_id=self.elem_id("z_type"))
            z_values = gr.Textbox(label="Z values", lines=1, elem_id=self.elem_id("z_values"))
            z_values_dropdown = gr.Dropdown(
                label="Z values", multiselect=True, choices=[], visible=False, elem_id=self.elem_id("z_values_dropdown")
            )
        with gr.Row():
            draw_legend = gr.Checkbox(label="Draw legend", value=True, elem_id=self.elem_id("draw_legend"))
            no_fixed_seeds = gr.Checkbox(label="Keep -1 for seeds", value=False, elem_id=self.elem_id("no_fixed_seeds"))
            vary_seeds_x = gr.Checkbox(label="Vary seeds for X", value=False, elem_id=self.elem_id("vary_seeds_x"))
            vary_seeds_y = gr.Checkbox(label="Vary seeds for Y", value=False, elem_id=self.elem_id("vary_seeds_y"))
            vary_seeds_z = gr.Checkbox(label="Vary seeds for Z", value=False, elem_id=self.elem_id("vary_seeds_z"))
        with gr.Row():
            include_lone_images = gr.Checkbox(label="Include Sub Images", value=False, elem_id=self.elem_id("include_lone_images"))
            include_sub_grids = gr.Checkbox(label="Include Sub Grids", value=False, elem_id=self.elem_id("include_sub_grids"))
            csv_mode = gr.Checkbox(label="Use text inputs instead of dropdowns", value=False, elem_id=self.elem_id("csv_mode"))
            margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2, elem_id=self.elem_id("margin_size"))
        update = _axis_widgets_updater(is_img2img)
        for axis_type, values_text, values_dropdown in (
            (x_type, x_values, x_values_dropdown),
            (y_type, y_values, y_values_dropdown),
            (z_type, z_values, z_values_dropdown),
        ):
            axis_type.change(fn=update, inputs=[axis_type, csv_mode], outputs=[values_text, values_dropdown], show_progress=False)
            csv_mode.change(fn=update, inputs=[axis_type, csv_mode], outputs=[values_text, values_dropdown], show_progress=False)
        return [
            x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown,
            draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds, vary_seeds_x, vary_seeds_y, vary_seeds_z,
            margin_size, csv_mode,
        ]  # fmt: skip

    def run(
        self, p, x_type, x_values, x_values_dropdown, y_type, y_values, y_values_dropdown, z_type, z_values, z_values_dropdown,
        draw_legend=True, include_lone_images=False, include_sub_grids=False, no_fixed_seeds=False,
        vary_seeds_x=False, vary_seeds_y=False, vary_seeds_z=False, margin_size=0, csv_mode=False,
    ):  # fmt: skip
        if not no_fixed_seeds:
            processing.fix_seed(p)
        choices = _registry_names()
        is_img2img = bool(getattr(self, "is_img2img", False))
        axes = [axis_by_index(x_type, is_img2img), axis_by_index(y_type, is_img2img), axis_by_index(z_type, is_img2img)]
        raw = [(x_values, x_values_dropdown), (y_values, y_values_dropdown), (z_values, z_values_dropdown)]
        values = [
            _axis_values(axis, text, dropdown, bool(csv_mode), choices, bool(no_fixed_seeds))
            for axis, (text, dropdown) in zip(axes, raw, strict=True)
        ]
        xs, ys, zs = values
        x_axis, y_axis, z_axis = axes
        for axis, axis_values in zip(axes, values, strict=True):  # fail on bad values before any generation
            for value in axis_values:
                axis.apply(_cell_copy(p), value, axis_values)
        cell_count = len(xs) * len(ys) * len(zs)
        shared.state.job_count = cell_count * max(1, int(getattr(p, "n_iter", 1)))

        cell_images, cell_infotexts, cell_prompts, cell_seeds = [], [], [], []
        first = None
        for iz, z in enumerate(zs):
            for iy, y in enumerate(ys):
                for ix, x in enumerate(xs):
                    if shared.state.interrupted:
                        break
                    cell = _cell_copy(p)
                    x_axis.apply(cell, x, xs)
                    y_axis.apply(cell, y, ys)
                    z_axis.apply(cell, z, zs)
                    if vary_seeds_x and isinstance(cell.seed, int) and cell.seed >= 0:
                        cell.seed += ix
                    if vary_seeds_y and isinstance(cell.seed, int) and cell.seed >= 0:
                        cell.seed += iy * len(xs)
                    if vary_seeds_z and isinstance(cell.seed, int) and cell.seed >= 0:
                        cell.seed += iz * len(xs) * len(ys)
                    shared.state.job = f"{len(cell_images) + 1} out of {cell_count}"
                    processed = process_images(cell)
                    if first is None:
                        first = processed
                    index = processed.index_of_first_image if len(processed.images) > 1 else 0
                    if processed.images:
                        cell_images.append(processed.images[index])
                        cell_infotexts.append(processed.infotexts[index] if processed.infotexts else "")
                        cell_prompts.append(cell.prompt)
                        cell_seeds.append(processed.seed)
        if first is None or not cell_images:
            raise AxisError("X/Y/Z plot: no image was generated")
        if len(cell_images) < cell_count:  # interrupted: fill the rest so the grid keeps its shape
            blank = cell_images[0].copy()
            blank.paste((0, 0, 0), (0, 0, *blank.size))
            cell_images += [blank] * (cell_count - len(cell_images))

        x_labels = [x_axis.format_label(x_axis, x) for x in xs] if x_axis.label != "Nothing" else [""]
        y_labels = [y_axis.format_label(y_axis, y) for y in ys] if y_axis.label != "Nothing" else [""]
        z_labels = [z_axis.format_label(z_axis, z) for z in zs] if z_axis.label != "Nothing" else [""]
        per_grid = len(xs) * len(ys)
        sub_grids = [
            draw_labeled_grid(
                cell_images[iz * per_grid : (iz + 1) * per_grid], x_labels, y_labels, margin=int(margin_size), draw_legend=bool(draw_legend)
            )
            for iz in range(len(zs))
        ]
        main_grid = (
            sub_grids[0]
            if len(sub_grids) == 1
            else combine_grids(sub_grids, z_labels, margin=int(margin_size), draw_legend=bool(draw_legend))
        )
        grid_info = cell_infotexts[0]

        grids = [main_grid, *(sub_grids if include_sub_grids and len(sub_grids) > 1 else [])]
        grid_infotexts = [grid_info, *(cell_infotexts[iz * per_grid] for iz in range(len(grids) - 1))]
        if getattr(shared.opts, "grid_save", True) and not getattr(p, "do_not_save_grid", False) and p.outpath_grids:
            grid_format = getattr(shared.opts, "grid_format", "png")
            for grid, info in zip(grids, grid_infotexts, strict=True):
                images.save_image(
                    grid, p.outpath_grids, "xyz_grid", info=info, extension=grid_format, prompt=p.prompt, seed=cell_seeds[0], grid=True, p=p
                )

        # As in A1111: the grids first, then the cells; the infotexts (and prompts, seeds) of every
        # cell are kept even when the cell images themselves are left out.
        result = copy.copy(first)
        result.images = grids + (cell_images if include_lone_images else [])
        result.infotexts = grid_infotexts + cell_infotexts
        result.all_prompts = [p.prompt] * len(grids) + cell_prompts
        result.all_seeds = [cell_seeds[0]] * len(grids) + cell_seeds
        result.index_of_first_image = 0
        result.cell_infotexts = cell_infotexts
        return result
