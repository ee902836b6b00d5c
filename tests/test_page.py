"""The web page on `wgan-tf serve`'s REST port (wgan_tf/serving/page.py), and its PNG endpoint.

A real `wgan-tf serve`, in a fresh process and configured as the serving-python image is (request
batching, metrics), serves two models: the committed colour model (saved_models/flowers/1, 64x64,
conditional on the flowers' five classes) and a tiny conditional export with the same classes
(8x8). The browser is Debian's
headless Chromium driven by Selenium through Debian's chromedriver, both named by path, so that
nothing is downloaded (.ci/run installs them; where neither can be had, the browser tests skip and
say why). The tests work the page as a person does (pick the model and the class, switch
truncation on and move its slider, type the interpolation's ends) and compare each picture the
page shows, read back from the browser's decoded image, with the images gRPC and REST's predict
give for the same inputs: pixel-equal. Every state is kept as a screenshot in a folder printed in
the test output (WGAN_TF_PAGE_SHOTS=DIR chooses it); WGAN_TF_DOC_FIGURES=1 also writes the
README's docs/figures/serving-page.png.

The PNG endpoint is tested without a browser as well, so it is tested everywhere.
"""
import base64
import io
import json
import os
import re
import signal
import statistics
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from helpers import FLOWER_CLASSES, make_conditional_run, start_wgan_tf, wait_for
from test_serving import free_port
from wgan_tf.export import export_generator
from wgan_tf.serving import Client

ROOT = Path(__file__).resolve().parents[1]
CONDITIONAL = "tiny-conditional"
PAD = 2  # the black border between and around the images of a grid (pictures.grid)
CHROMIUM = os.environ.get("WGAN_TF_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WGAN_TF_CHROMEDRIVER", "/usr/bin/chromedriver")
# Headless as root; without the networking flags Chromium keeps calling Google's services, which
# a closed network refuses.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1200,1000"]
GRID_SECONDS = 1.0  # the target: a 64-image grid of the flowers model, from a warm server
PAGE_BYTES = 50 * 1024  # the target: HTML + JS + CSS
SEEDS = {"signature_name": "from_seeds", "inputs": {"seeds": [10, 11], "labels": [0, 0]}}


def report(config, line):
    """A line in the test output, even while pytest captures it (artifacts, timings)."""
    with config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        config.pluginmanager.get_plugin("terminalreporter").write_line(line)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    make_conditional_run(root / "run")
    export_generator(root / "run", root / CONDITIONAL)
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
        for name, path in (("flowers", ROOT / "saved_models" / "flowers"),
                           (CONDITIONAL, root / CONDITIONAL))) + "}\n")
    port, rest_port = free_port(), free_port()
    server = start_wgan_tf(
        "serve", "--model-config-file", config, "--port", port, "--rest-port", rest_port,
        "--enable-batching", "--batching-parameters-file", ROOT / "serving" / "batching.config",
        "--monitoring-config-file", ROOT / "serving" / "monitoring.config")
    try:
        for name in ("flowers", CONDITIONAL):
            with Client(f"localhost:{port}", model_name=name) as client:
                client.wait_until_ready(180)
        yield types.SimpleNamespace(address=f"localhost:{port}",
                                    url=f"http://localhost:{rest_port}",
                                    conditional_base=root / CONDITIONAL)
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert server.returncode == 0, log


def client(served, name):
    return Client(served.address, model_name=name)


def post(url, body):
    """(status, Content-Type, body bytes) of a POST of ``body`` as JSON."""
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def rest_images(served, model, body):
    """The ``images`` of TF Serving's REST predict for ``body`` (columnar)."""
    status, _, answer = post(f"{served.url}/v1/models/{model}:predict", body)
    assert status == 200, answer
    return np.array(json.loads(answer)["outputs"]["images"], np.uint8)


def decode_png(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def assert_grid(picture, images, columns):
    """``picture`` is ``images`` (uint8 [N, H, W, C]) laid out ``columns`` a row, with black borders
    between and around them (the last row's empty cells black too)."""
    count, height, width, _ = images.shape
    rows = -(-count // columns)
    assert picture.shape == (rows * (height + PAD) + PAD, columns * (width + PAD) + PAD, 3)
    border = np.ones(picture.shape[:2], bool)
    for i, image in enumerate(images):
        y, x = PAD + i // columns * (height + PAD), PAD + i % columns * (width + PAD)
        np.testing.assert_array_equal(picture[y:y + height, x:x + width], image,
                                      err_msg=f"image {i} of the grid")
        border[y:y + height, x:x + width] = False
    assert not picture[border].any(), "the borders are not black"


# -- The PNG endpoint, without a browser ---------------------------------------------------------

def test_png_is_the_predict_answer_as_one_grid(served):
    body = {"signature_name": "from_seeds", "inputs": {"seeds": list(range(10, 15)),
                                                       "labels": [4] * 5}}
    status, kind, png = post(f"{served.url}/png/v1/models/flowers:predict?columns=2", body)
    assert (status, kind) == (200, "image/png")
    images = rest_images(served, "flowers", body)
    assert_grid(decode_png(png), images, columns=2)
    with client(served, "flowers") as grpc_client:
        np.testing.assert_array_equal(grpc_client.generate(5, seed=10, labels="tulip"), images)
    # By version, with labels, any signature with images; by default sqrt(N) columns, rounded up.
    body = {"signature_name": "interpolate", "inputs": {
        "seed_a": [3] * 5, "seed_b": [7] * 5, "t": [0.0, 0.25, 0.5, 0.75, 1.0], "labels": [4] * 5}}
    status, kind, png = post(f"{served.url}/png/v1/models/{CONDITIONAL}/versions/1:predict", body)
    assert (status, kind) == (200, "image/png")
    assert_grid(decode_png(png), rest_images(served, CONDITIONAL, body), columns=3)


@pytest.mark.parametrize("path, body, status, message", [
    ("flowers:predict?columns=0", SEEDS, 400,
     "columns must be one whole number of at least 1, got ['0']"),
    ("flowers:predict?columns=1&columns=2", SEEDS, 400,
     "columns must be one whole number of at least 1, got ['1', '2']"),
    ("flowers:predict?rows=2", SEEDS, 400,
     "unknown query parameter 'rows': this endpoint takes only columns (images a row)"),
    ("flowers:predict?columns=3", SEEDS, 400,
     "columns (3) must be at most the number of images (2)"),
    ("flowers:predict", {"signature_name": "from_seeds", "inputs": {"seeds": [], "labels": []}},
     400,
     "no images to lay out: the request asked for 0"),
    (f"{CONDITIONAL}:predict", {"signature_name": "classes", "inputs": {"index": [0]}}, 400,
     "output_filter names ['images'], not outputs of 'classes' (class_names)"),
    ("orchids:predict", SEEDS, 404,
     "Servable not found for request: Latest(orchids); this server has 'flowers', "
     f"'{CONDITIONAL}'"),
    ("flowers/metadata", SEEDS, 404, "no such endpoint: "),
])
def test_png_refusals_are_one_json_line(served, path, body, status, message):
    answer = post(f"{served.url}/png/v1/models/{path}", body)
    assert answer[:2] == (status, "application/json")
    assert json.loads(answer[2])["error"].startswith(message)


def test_png_refuses_what_predict_refuses_in_the_same_words(served):
    body = {"signature_name": "from_seeds", "inputs": {"seeds": [1, 2], "labels": [0, 7]}}
    png = post(f"{served.url}/png/v1/models/{CONDITIONAL}:predict", body)
    predict = post(f"{served.url}/v1/models/{CONDITIONAL}:predict", body)
    assert png == predict and predict[0] == 400
    assert "labels must be class indices in [0, 5)" in json.loads(predict[2])["error"]
    with pytest.raises(urllib.error.HTTPError) as raised:  # a GET
        urllib.request.urlopen(f"{served.url}/png/v1/models/flowers:predict", timeout=30)
    assert raised.value.code == 405 and raised.value.headers["Allow"] == "POST"


def metric(text, name, **labels):
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def test_png_requests_are_predicts_in_the_metrics_and_the_batcher(served):
    def counts():
        with urllib.request.urlopen(f"{served.url}/monitoring/prometheus/metrics") as answer:
            text = answer.read().decode()
        return (metric(text, ":tensorflow:serving:request_count_total", model_name="flowers",
                       status="OK"),
                metric(text, ":tensorflow:serving:request_latency_count", model_name="flowers",
                       API="predict", entrypoint="REST"),
                metric(text, ":tensorflow:serving:batching_session:input_batch_size_count"))
    before = counts()
    assert post(f"{served.url}/png/v1/models/flowers:predict", SEEDS)[0] == 200
    assert counts() == tuple(count + 1 for count in before)


def test_page_files_are_small_and_name_no_other_host(served, pytestconfig):
    weight = 0
    for path, kind in (("/", "text/html"), ("/page/page.js", "text/javascript"),
                       ("/page/page.css", "text/css")):
        with urllib.request.urlopen(served.url + path, timeout=30) as answer:
            assert answer.headers["Content-Type"].startswith(kind)
            text = answer.read()
        weight += len(text)
        assert not re.search(rb"https?:|[\"'(]//", text), f"{path} names another host"
    report(pytestconfig, f"test_page: page weight (HTML + JS + CSS) {weight} bytes")
    assert weight < PAGE_BYTES
    with urllib.request.urlopen(f"{served.url}/page/models", timeout=30) as answer:
        assert json.loads(answer.read()) == {"models": ["flowers", CONDITIONAL]}


def test_page_files_are_package_data(tmp_path):
    """A non-editable install (the Docker images' ``pip install /src``) has the page's files."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "setup.py", "--quiet", "build_py", "--build-lib", tmp_path],
                   cwd=ROOT, check=True, capture_output=True)
    files = ROOT / "wgan_tf" / "serving" / "page_files"
    built = tmp_path / "wgan_tf" / "serving" / "page_files"
    assert sorted(p.name for p in built.iterdir()) == sorted(p.name for p in files.iterdir())


# -- The page in Chromium ------------------------------------------------------------------------

def _no_browser():
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (f"no Chromium here ({', '.join(missing)} missing): apt-get install chromium "
                "chromium-driver (.ci/run does)")
    return None


@pytest.fixture(scope="module")
def browser(pytestconfig, tmp_path_factory):
    reason = _no_browser()
    if reason:
        report(pytestconfig, f"test_page: the browser tests are SKIPPED: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(served, browser, pytestconfig, tmp_path_factory):
    shots = Path(os.environ.get("WGAN_TF_PAGE_SHOTS") or tmp_path_factory.mktemp("page-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    report(pytestconfig, f"test_page: screenshots of the page in {shots}")
    return Page(browser, served.url, shots)


class Page:
    """The page in the browser, worked as a person works it."""

    def __init__(self, driver, url, shots):
        self.driver, self.url, self.shots = driver, url, shots

    def open(self, fragment=""):
        self.driver.get("about:blank")  # a new fragment alone would not load the page again
        self.driver.get(f"{self.url}/#{fragment}")
        self.wait(lambda: self.drawn("samples") > 0, "the page's first grid")

    def wait(self, condition, what):
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 60).until(lambda _: condition(), f"timed out waiting for {what}")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def drawn(self, section):
        """Which of the section's requests has its answer shown (0: none yet)."""
        return int(self.js("return document.getElementById(arguments[0]).dataset.drawn || 0",
                           section))

    def redraws(self, action, *sections):
        """Does ``action``, then waits until every one of ``sections`` shows what it asked."""
        before = {section: self.drawn(section) for section in sections}
        action()
        for section in sections:
            self.wait(lambda: self.drawn(section) > before[section]
                      and self.js("return document.getElementById(arguments[0])"
                                  ".getAttribute('aria-busy')", section) == "false", section)

    def element(self, css):
        return self.driver.find_element("css selector", css)

    def type(self, field, value, *sections):
        """Selects the field's text, types ``value`` over it and leaves the field."""
        from selenium.webdriver.common.keys import Keys

        element = self.element(f"#{field}")
        self.redraws(lambda: element.send_keys(Keys.CONTROL, "a", Keys.NULL, str(value), Keys.TAB),
                     *sections)

    def choose(self, field, text, *sections):
        from selenium.webdriver.support.ui import Select

        self.redraws(lambda: Select(self.element(f"#{field}")).select_by_visible_text(text),
                     *sections)

    def options(self, field):
        return [option.text for option in self.element(f"#{field}").find_elements(
            "css selector", "option")]

    def pixels(self, image):
        """The image as the browser decoded it (uint8 RGB), drawn at its own size."""
        data = self.js("""
            const img = document.getElementById(arguments[0]);
            if (img.hidden) return null;
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext("2d").drawImage(img, 0, 0);
            return canvas.toDataURL("image/png");""", image)
        assert data is not None, f"no #{image} shown; the page says: {self.errors()}"
        return decode_png(base64.b64decode(data.split(",", 1)[1]))

    def errors(self):
        """The messages shown, in page order."""
        return [e.text for e in self.driver.find_elements("css selector", ".error")
                if e.is_displayed()]

    def shot(self, name):
        """Keeps a screenshot of the page as it is; returns its path."""
        self.js("document.activeElement.blur()")  # no text cursor or selection in the picture
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def test_page_shows_what_the_api_gives(served, page):
    page.open()
    assert page.options("model") == ["flowers", CONDITIONAL]
    assert page.options("version") == ["1"]
    assert page.element("#about").text.startswith("64×64 colour images · version 1")
    assert page.element("#class-field").is_displayed()
    assert page.options("class") == [*FLOWER_CLASSES, "all"]  # the first class is shown first
    page.wait(lambda: page.drawn("walk") > 0, "the first interpolation")
    with client(served, "flowers") as flowers:
        assert_grid(page.pixels("grid"), flowers.generate(64, seed=0, labels="daisy"), columns=8)
        assert_grid(page.pixels("strip"), flowers.interpolate(0, 1, steps=8, label="daisy"),
                    columns=8)
        page.shot("01-flowers")

        page.type("seed-a", 3, "walk")
        page.type("seed-b", 7, "walk")
        assert_grid(page.pixels("strip"), flowers.interpolate(3, 7, steps=8, label="daisy"),
                    columns=8)
        shot = page.shot("02-flowers-interpolation-3-to-7")
        if os.environ.get("WGAN_TF_DOC_FIGURES"):  # the README's, in 256 colours: 40% the bytes
            Image.open(shot).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(
                ROOT / "docs" / "figures" / "serving-page.png", optimize=True)

        page.redraws(lambda: page.element("#truncate").click(), "samples")
        page.redraws(lambda: page.js("""
            const slider = document.getElementById("psi");
            slider.value = "0.5";  // where a drag of the slider ends
            slider.dispatchEvent(new Event("input"));
            slider.dispatchEvent(new Event("change"));"""), "samples")
        assert page.element("#psi-value").text == "0.50"
        assert_grid(page.pixels("grid"), flowers.generate(64, seed=0, labels="daisy",
                                                          truncation=0.5), columns=8)
        page.shot("03-flowers-truncation-0.5")
        # The download is the picture shown.
        link = page.element("#samples .download")
        assert link.get_attribute("href") == page.element("#grid").get_attribute("src")
        assert link.get_attribute("download") == "flowers-1-seeds-0-63.png"
        downloaded = page.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then((r) => r.arrayBuffer()).then((b) => done(
                btoa(Array.from(new Uint8Array(b), (x) => String.fromCharCode(x)).join(""))));
            """, link.get_attribute("href"))
        np.testing.assert_array_equal(decode_png(base64.b64decode(downloaded)),
                                      page.pixels("grid"))

    page.choose("model", CONDITIONAL, "samples", "walk")
    assert page.element("#about").text == (
        "8×8 colour images · version 1 · classes: " + ", ".join(FLOWER_CLASSES))
    assert page.options("class") == [*FLOWER_CLASSES, "all"]
    page.type("count", 8, "samples")
    page.redraws(lambda: page.element("#truncate").click(), "samples")  # truncation off again
    with client(served, CONDITIONAL) as conditional:
        assert_grid(page.pixels("grid"), conditional.generate(8, seed=0, labels="daisy"),
                    columns=3)
        page.choose("class", "tulip", "samples", "walk")
        assert_grid(page.pixels("grid"), conditional.generate(8, seed=0, labels="tulip"),
                    columns=3)
        assert_grid(page.pixels("strip"), conditional.interpolate(3, 7, 8, label="tulip"),
                    columns=8)
        page.shot("04-conditional-tulip")

        page.choose("class", "all", "samples", "walk")
        every_class = np.concatenate([conditional.generate(8, seed=0, labels=k)
                                      for k in range(len(FLOWER_CLASSES))])
        assert_grid(page.pixels("grid"), every_class, columns=8)
        np.testing.assert_array_equal(every_class, rest_images(served, CONDITIONAL, {
            "signature_name": "from_seeds",
            "inputs": {"seeds": list(range(8)) * 5, "labels": np.repeat(range(5), 8).tolist()}}))
        assert_grid(page.pixels("strip"), np.concatenate(
            [conditional.interpolate(3, 7, 8, label=k) for k in range(len(FLOWER_CLASSES))]),
            columns=8)
        page.shot("05-conditional-all-classes")

        page.type("seed", 100, "samples")
        page.redraws(lambda: page.element("#truncate").click(), "samples")
        every_class = np.concatenate([conditional.generate(8, seed=100, labels=k, truncation=0.5)
                                      for k in range(len(FLOWER_CLASSES))])
        assert_grid(page.pixels("grid"), every_class, columns=8)
        page.shot("06-conditional-all-classes-truncated")
    assert page.errors() == []


def test_unknown_class_shows_the_servers_message(served, page):
    page.open(f"model={CONDITIONAL}&count=4&class=7")
    page.wait(lambda: page.drawn("walk") > 0, "the interpolation")
    grid = {"seeds": [0, 1, 2, 3], "labels": [7] * 4}
    strip = {"seed_a": [0] * 8, "seed_b": [1] * 8, "t": [0.0] * 8, "labels": [7] * 8}
    messages = [json.loads(post(f"{served.url}/v1/models/{CONDITIONAL}:predict", {
        "signature_name": signature, "inputs": inputs})[2])["error"]
        for signature, inputs in (("from_seeds", grid), ("interpolate", strip))]
    assert "labels must be class indices in [0, 5)" in messages[0]
    assert page.errors() == [f"400: {message}" for message in messages]
    assert not page.element("#grid").is_displayed()
    assert not page.element("#samples .download").is_displayed()
    page.shot("07-unknown-class-index")

    page.open(f"model={CONDITIONAL}&class=orchid")
    assert page.errors()[0] == (f"unknown class 'orchid': model '{CONDITIONAL}' has classes "
                                + ", ".join(FLOWER_CLASSES))
    page.shot("08-unknown-class-name")

    # A request the server refuses for its size: 5 classes x 1024 seeds over --max-batch.
    page.choose("class", "all", "samples", "walk")
    page.type("count", 1024, "samples")
    assert page.errors()[0] == ("400: 5120 samples in one request; this server takes at most "
                                "1024")
    page.shot("09-over-max-batch")


def test_a_64_image_grid_appears_within_a_second(served, page, pytestconfig):
    page.open("model=flowers&count=64&seed=0")
    milliseconds = []
    for seed in range(1000, 9000, 1000):  # new seeds each time: nothing is cached
        milliseconds.append(page.driver.execute_async_script("""
            const [seed, done] = arguments;
            const section = document.getElementById("samples");
            const field = document.getElementById("seed");
            const before = Number(section.dataset.drawn);
            let start;
            new MutationObserver((_, observer) => {
              if (Number(section.dataset.drawn) > before) {
                observer.disconnect();
                requestAnimationFrame(() => done(performance.now() - start));
              }
            }).observe(section, {attributes: true, attributeFilter: ["data-drawn"]});
            field.value = seed;
            start = performance.now();
            field.dispatchEvent(new Event("change"));""", seed))
    with client(served, "flowers") as flowers:
        assert_grid(page.pixels("grid"), flowers.generate(64, seed=8000, labels="daisy"),
                    columns=8)
    median = statistics.median(milliseconds[1:]) / 1000  # the first one warms the page
    report(pytestconfig, f"test_page: a 64-image grid of the flowers model appears in "
                         f"{median:.3f} s (median; each run in ms: "
                         f"{', '.join(f'{m:.0f}' for m in milliseconds[1:])})")
    assert median < GRID_SECONDS
    resources = page.js("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert resources and all(r.startswith(served.url + "/") or r.startswith("blob:")
                             for r in resources), resources


def test_a_version_that_failed_to_load_is_shown(served, page):
    """A broken new version: the version list says it failed and why; version 1 still serves."""
    partial = served.conditional_base / ".2"
    partial.mkdir()
    (partial / "saved_model.pb").write_bytes(b"not a SavedModel")
    partial.rename(served.conditional_base / "2")  # as an export appears: whole

    def failure():
        with urllib.request.urlopen(f"{served.url}/v1/models/{CONDITIONAL}") as answer:
            versions = json.loads(answer.read())["model_version_status"]
        return next((v["status"]["error_message"] for v in versions
                     if v["version"] == "2" and v["status"]["error_message"]), None)
    wait_for(failure, timeout=60, what="version 2 to fail to load")
    page.open(f"model={CONDITIONAL}")
    assert page.options("version") == ["2 (failed)", "1"]
    assert page.errors()[0] == f"Model '{CONDITIONAL}': version 2 did not load: {failure()}."
    assert page.element("#grid").is_displayed()
    page.shot("10-failed-version")
