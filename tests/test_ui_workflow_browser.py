"""The A1111 workflow in headless Chromium (Debian's package driven by Playwright) against a launched
server with the tiny demo model: tabs, progress and interrupt, paste ↙, send to img2img, PNG Info,
settings that survive a reload, and a screenshot of every tab in tests/artifacts/ui/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "ui"
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
TABS = ["txt2img", "img2img", "extras", "pnginfo", "settings", "extensions"]


@pytest.fixture(scope="module")
def browser_page(demo_server):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `python3 launch.py --run-tests` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    base, _ = demo_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(base + "/")
        page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
        yield page
        browser.close()


def open_tab(page, name: str) -> None:
    page.click(f"button#tab_{name}-button, button[role=tab]:has-text('{_title(name)}')")


def _title(name: str) -> str:
    return {"pnginfo": "PNG Info", "extras": "Extras", "settings": "Settings", "extensions": "Extensions"}.get(name, name)


def set_number(page, selector: str, value: str) -> None:
    field = page.locator(f"{selector} input[type=number]").first
    field.fill(value)
    field.press("Enter")


def test_every_tab_opens_and_is_screenshotted(browser_page):
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expectations = {
        "txt2img": "#txt2img_generate",
        "img2img": "#img2img_generate",
        "extras": "#extras_generate",
        "pnginfo": "#pnginfo_image",
        "settings": "#settings_submit",
        "extensions": "#extensions_installed_html",
    }
    for name in TABS:
        open_tab(page, name)
        page.wait_for_selector(expectations[name], state="visible", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / f"tab-{name}.png"), full_page=True)
        assert (ARTIFACTS / f"tab-{name}.png").stat().st_size > 1000
    open_tab(page, "img2img")
    for title in ["img2img", "Sketch", "Inpaint", "Inpaint sketch", "Inpaint upload", "Batch"]:
        assert page.locator(f"#mode_img2img button[role=tab]:text-is('{title}')").count() == 1, title
    for elem in ["setting_sd_model_checkpoint", "setting_sd_vae", "setting_CLIP_stop_at_last_layers"]:
        assert page.locator(f"#quicksettings #{elem}").count() == 1, elem
    open_tab(page, "txt2img")


def generate_small(page, prompt: str, seed: str, steps: str = "2") -> str:
    open_tab(page, "txt2img")
    page.fill("#txt2img_prompt textarea", prompt)
    set_number(page, "#txt2img_steps", steps)
    set_number(page, "#txt2img_width", "64")
    set_number(page, "#txt2img_height", "64")
    set_number(page, "#txt2img_batch_count", "1")
    page.fill("#txt2img_seed input", seed)
    page.click("#txt2img_generate")
    page.wait_for_function(f"document.querySelector('#txt2img_infotext textarea').value.includes('Seed: {seed}')", timeout=120_000)
    page.wait_for_selector("#txt2img_generate", state="visible", timeout=30_000)
    return page.input_value("#txt2img_infotext textarea")


def test_generate_counts_tokens_and_reuses_seed(browser_page):
    page = browser_page
    infotext = generate_small(page, "a small red boat", "4242")
    assert infotext.startswith("a small red boat\nSteps: 2, Sampler: Euler a")
    assert "Size: 64x64" in infotext
    assert page.locator("#txt2img_gallery img").count() >= 1
    page.wait_for_function("document.querySelector('#txt2img_token_counter').innerText.trim() === '4/75'", timeout=20_000)
    page.click("#txt2img_random_seed")
    page.wait_for_function("document.querySelector('#txt2img_seed input').value === '-1'", timeout=10_000)
    page.click("#txt2img_reuse_seed")
    page.wait_for_function("document.querySelector('#txt2img_seed input').value === '4242'", timeout=10_000)


def test_paste_fills_every_field_from_infotext(browser_page):
    page = browser_page
    open_tab(page, "txt2img")
    infotext = (
        "a castle on a hill\nNegative prompt: blurry\nSteps: 7, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4.5, "
        "Seed: 1234, Size: 128x192, Variation seed: 55, Variation seed strength: 0.3"
    )
    page.fill("#txt2img_prompt textarea", infotext)
    page.click("#txt2img_paste")
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea').value === 'a castle on a hill'", timeout=20_000)
    assert page.input_value("#txt2img_neg_prompt textarea") == "blurry"
    assert page.input_value("#txt2img_steps input[type=number]") == "7"
    assert page.input_value("#txt2img_sampling input") == "DPM++ 2M"
    assert page.input_value("#txt2img_scheduler input") == "Karras"
    assert page.input_value("#txt2img_cfg_scale input[type=number]") == "4.5"
    assert page.input_value("#txt2img_seed input") == "1234"
    assert page.input_value("#txt2img_width input[type=number]") == "128"
    assert page.input_value("#txt2img_height input[type=number]") == "192"
    assert page.is_visible("#txt2img_subseed")
    assert page.input_value("#txt2img_subseed input") == "55"
    assert page.input_value("#txt2img_subseed_strength input[type=number]") == "0.3"


def test_interrupt_a_long_run_shows_progress(browser_page):
    page = browser_page
    open_tab(page, "txt2img")
    page.fill("#txt2img_prompt textarea", "a long run")
    page.fill("#txt2img_neg_prompt textarea", "")
    set_number(page, "#txt2img_steps", "150")
    set_number(page, "#txt2img_width", "64")
    set_number(page, "#txt2img_height", "64")
    set_number(page, "#txt2img_batch_count", "100")
    page.fill("#txt2img_seed input", "7")
    page.locator("#txt2img_prompt textarea").press("Control+Enter")
    page.wait_for_selector("#txt2img_interrupt", state="visible", timeout=30_000)
    assert not page.is_visible("#txt2img_generate")
    page.wait_for_function("/ETA: /.test(document.querySelector('#txt2img_progress').innerText)", timeout=60_000)
    page.wait_for_selector("#txt2img_preview img", timeout=60_000)
    page.click("#txt2img_interrupt")
    page.wait_for_selector("#txt2img_generate", state="visible", timeout=60_000)
    page.wait_for_function("document.querySelector('#html_info_txt2img').innerText.includes('Interrupted')", timeout=30_000)
    set_number(page, "#txt2img_batch_count", "1")
    set_number(page, "#txt2img_steps", "2")


def test_send_to_img2img_and_generate_there(browser_page):
    page = browser_page
    generate_small(page, "a blue tower", "99")
    page.click("#txt2img_send_to_img2img")
    page.wait_for_selector("#img2img_image img", timeout=30_000)
    page.wait_for_function("document.querySelector('#img2img_prompt textarea').value === 'a blue tower'", timeout=20_000)
    assert page.input_value("#img2img_seed input") == "99"
    page.click("#img2img_generate")
    from modules.app.context import AppContext

    if not hasattr(AppContext, "run_img2img"):
        page.wait_for_function("document.querySelector('#html_info_img2img').innerText.includes('not available')", timeout=30_000)
        return
    page.wait_for_function("document.querySelector('#img2img_infotext textarea').value.includes('Seed: 99')", timeout=120_000)
    assert page.locator("#img2img_gallery img").count() >= 1
    infotext = page.input_value("#img2img_infotext textarea")
    assert infotext.startswith("a blue tower\n") and "Denoising strength: 0.75" in infotext and "Size: 64x64" in infotext


def test_pnginfo_shows_parameters_inert_and_sends_them(browser_page, tmp_path):
    page = browser_page
    hostile = (
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> a cat\nSteps: 5, Sampler: Euler, Seed: 77, Size: 64x64'
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", hostile)
    path = tmp_path / "hostile.png"
    Image.new("RGB", (64, 64), "green").save(path, pnginfo=info)
    open_tab(page, "pnginfo")
    page.set_input_files("#pnginfo_image input[type=file]", str(path))
    page.wait_for_function("document.querySelector('#pnginfo_html_info').innerText.includes('onerror')", timeout=30_000)
    assert "<script>window.__pwned=2</script>" in page.inner_text("#pnginfo_html_info")
    assert page.locator("#pnginfo_html_info img, #pnginfo_html_info script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.click("#pnginfo_send_to_txt2img")
    page.wait_for_function("document.querySelector('#txt2img_seed input').value === '77'", timeout=20_000)
    assert page.input_value("#txt2img_steps input[type=number]") == "5"
    assert page.input_value("#txt2img_sampling input") == "Euler"
    assert page.input_value("#txt2img_prompt textarea").endswith(" a cat")


def test_setting_survives_a_reload(browser_page, demo_server):
    page = browser_page
    _, data_dir = demo_server
    open_tab(page, "settings")
    page.fill("#settings_search textarea, #settings_search input", "jpeg")
    page.wait_for_selector("#setting_samples_save", state="hidden", timeout=20_000)
    set_number(page, "#setting_jpeg_quality", "77")
    page.click("#settings_submit")
    page.wait_for_function("document.querySelector('#settings_result').innerText.includes('jpeg_quality')", timeout=20_000)
    assert json.loads((Path(data_dir) / "config.json").read_text())["jpeg_quality"] == 77
    page.reload()
    page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
    open_tab(page, "settings")
    page.wait_for_selector("#setting_jpeg_quality", state="visible", timeout=20_000)
    assert page.input_value("#setting_jpeg_quality input[type=number]") == "77"
    set_number(page, "#setting_jpeg_quality", "80")
    page.click("#settings_submit")
    page.wait_for_function("document.querySelector('#settings_result').innerText.includes('jpeg_quality')", timeout=20_000)
    open_tab(page, "txt2img")


def test_ctrl_arrow_changes_emphasis(browser_page):
    page = browser_page
    open_tab(page, "txt2img")
    box = page.locator("#txt2img_prompt textarea")
    box.fill("a red boat")
    page.evaluate("document.querySelector('#txt2img_prompt textarea').setSelectionRange(2, 5)")
    box.press("Control+ArrowUp")
    assert box.input_value() == "a (red:1.1) boat"
    box.press("Control+ArrowUp")
    assert box.input_value() == "a (red:1.2) boat"
    box.press("Control+ArrowDown")
    box.press("Control+ArrowDown")
    assert box.input_value() == "a red boat"


def test_dropping_an_image_on_the_prompt_fills_the_fields(browser_page, tmp_path):
    import base64

    page = browser_page
    open_tab(page, "txt2img")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a dropped owl\nNegative prompt: rain\nSteps: 9, Sampler: Heun, CFG scale: 3, Seed: 31337, Size: 96x80")
    path = tmp_path / "owl.png"
    Image.new("RGB", (16, 16), "blue").save(path, pnginfo=info)
    encoded = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "owl.png", { type: "image/png" }));
            const box = document.querySelector('#txt2img_prompt textarea');
            box.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        encoded,
    )
    page.wait_for_function("document.querySelector('#txt2img_seed input').value === '31337'", timeout=20_000)
    assert page.input_value("#txt2img_prompt textarea") == "a dropped owl"
    assert page.input_value("#txt2img_neg_prompt textarea") == "rain"
    assert page.input_value("#txt2img_steps input[type=number]") == "9"
    assert page.input_value("#txt2img_sampling input") == "Heun"
    assert page.input_value("#txt2img_width input[type=number]") == "96"
