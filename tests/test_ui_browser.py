"""The UI in headless Chromium (Debian's package, driven by Playwright): type a prompt, generate, read
the image and its infotext."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page(demo_server):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `python3 launch.py --run-tests` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    base, _ = demo_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(base + "/")
        page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
        yield page
        browser.close()


def test_generate_shows_image_and_infotext(page):
    page.fill("#txt2img_prompt textarea", "a red lighthouse")
    page.fill("#txt2img_neg_prompt textarea", "fog")
    for name, value in [("steps", "2"), ("width", "64"), ("height", "64")]:
        field = page.locator(f"#txt2img_{name} input[type=number]")
        field.fill(value)
        field.press("Enter")
    page.fill("#txt2img_seed input", "321")
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_gallery img", timeout=120_000)
    page.wait_for_function("document.querySelector('#txt2img_infotext textarea').value.includes('Seed: 321')", timeout=60_000)
    infotext = page.input_value("#txt2img_infotext textarea")
    assert infotext.startswith("a red lighthouse\nNegative prompt: fog\nSteps: 2, Sampler: Euler a")
    assert "Size: 64x64" in infotext
    assert "noise from a tiny random-weight checkpoint" in page.inner_text("body")


def test_checkpoint_dropdown_shows_the_demo_model(page):
    value = page.input_value("#setting_sd_model_checkpoint input")
    assert value.startswith("demo-tiny-sd1.safetensors [")
