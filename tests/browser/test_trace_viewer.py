"""The trace viewer in a real headless Chromium (Debian's chromium + chromium-driver).

Opens the index from disk (file://, as a reader of the results folder would), filters,
opens a trace, checks the four stages, and checks that a response carrying a script
tag is shown as text and never runs. Skipped only when Chromium or its driver is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harmtrace.moderate.clock import fixed_clock
from harmtrace.moderate.flow import moderate_records
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.trace import write_traces
from harmtrace.moderate.viewer import build_viewer, load_traces
from tests.moderation_fakes import KeywordScorer, make_judgments, make_records

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HARMTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = (
    os.environ.get("HARMTRACE_CHROMEDRIVER")
    or shutil.which("chromedriver")
    or "/usr/bin/chromedriver"
)
HOSTILE = (
    '<script>document.title="pwned";window.__pwned=1;'
    'document.body.setAttribute("data-pwned","1")</script>'
    '<img src="missing.png" onerror="window.__pwned=2">'
)

if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
    pytest.skip(
        f"headless Chromium not installed ({CHROMIUM}, {DRIVER}); "
        "apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("viewer")
    scorer = KeywordScorer()
    paths = []
    for dataset, rows in {
        "alpha": [
            ("Hi", "The weather was fine. We walked."),
            ("War?", "Then came the massacre. It ended."),
            ("Story", "He would stab the dragon. Then he went home."),
        ],
        "beta": [
            ("Inject", f"Here it is. {HOSTILE} A rude ending."),
            ("Hi", "All good here."),
        ],
    }.items():
        records = make_records(rows, dataset=dataset)
        traces = moderate_records(
            records,
            make_judgments(records, scorer),
            scorer,
            get_policy("redact_medium_block_high"),
            clock=fixed_clock(0),
        )
        path = root / f"{dataset}.jsonl"
        write_traces(traces, path)
        paths.append(path)
    build_viewer(load_traces(paths), root / "site")
    return root / "site"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def visible_rows(driver) -> list:
    return [
        r for r in driver.find_elements(By.CSS_SELECTOR, "#traces tbody tr") if r.is_displayed()
    ]


def status(driver) -> str:
    return driver.find_element(By.ID, "filter-status").text


def test_index_filters_and_search(browser, site):
    browser.get((site / "index.html").as_uri())
    assert browser.title == "Moderation traces: redact_medium_block_high"
    assert browser.find_element(By.ID, "filters").is_displayed()  # the script ran
    assert len(visible_rows(browser)) == 5
    Select(browser.find_element(By.ID, "f-dataset")).select_by_value("beta")
    assert len(visible_rows(browser)) == 2
    assert status(browser) == "Showing 2 of 5 traces."
    Select(browser.find_element(By.ID, "f-dataset")).select_by_value("")
    Select(browser.find_element(By.ID, "f-action")).select_by_value("block")
    rows = visible_rows(browser)
    assert len(rows) == 1 and "alpha" in rows[0].text
    Select(browser.find_element(By.ID, "f-action")).select_by_value("")
    Select(browser.find_element(By.ID, "f-transition")).select_by_value("escalate → preserve")
    assert len(visible_rows(browser)) >= 1
    browser.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
    WebDriverWait(browser, 5).until(lambda d: len(visible_rows(d)) == 5)
    search = browser.find_element(By.ID, "f-search")
    search.send_keys("dragon")
    assert [
        r.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text for r in visible_rows(browser)
    ] == ["alpha"]
    Select(browser.find_element(By.ID, "f-category")).select_by_value("hate")
    assert visible_rows(browser) == []
    assert status(browser) == "Showing 0 of 5 traces."


def test_filters_can_be_preset_from_the_address(browser, site):
    browser.get((site / "index.html").as_uri() + "?category=violence")
    assert (
        Select(browser.find_element(By.ID, "f-category")).first_selected_option.text == "violence"
    )
    assert len(visible_rows(browser)) == 2


def test_keyboard_reaches_the_filters_and_a_trace(browser, site):
    browser.get((site / "index.html").as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    for _ in range(12):
        if browser.switch_to.active_element.get_attribute("id") == "f-search":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "f-search"


def test_open_a_trace_and_read_its_four_stages(browser, site):
    browser.get((site / "index.html").as_uri())
    browser.find_element(By.ID, "f-search").send_keys("dragon")
    link = visible_rows(browser)[0].find_element(By.TAG_NAME, "a")
    link.click()
    WebDriverWait(browser, 10).until(lambda d: "requests/" in d.current_url)
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.stage > h2")]
    assert headings == ["1 Raw output", "2 Safety analysis", "3 Intervention", "4 Final output"]
    mark = browser.find_element(By.CSS_SELECTOR, "mark.flag")
    assert mark.text == "He would stab the dragon."
    assert "violence" in browser.find_element(By.CSS_SELECTOR, ".badge").text
    assert browser.find_element(By.CSS_SELECTOR, "pre.diff .add").text == "+[sentence removed]"
    final = browser.find_element(By.CSS_SELECTOR, "[data-testid=final-output]").text
    assert final == "[sentence removed] Then he went home."


def test_a_script_in_a_response_is_shown_and_never_runs(browser, site):
    browser.get((site / "index.html").as_uri())
    browser.find_element(By.ID, "f-search").send_keys("inject")
    browser.find_element(By.ID, "f-search").clear()
    Select(browser.find_element(By.ID, "f-dataset")).select_by_value("beta")
    visible_rows(browser)[0].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 10).until(lambda d: "requests/" in d.current_url)
    raw = browser.find_element(By.CSS_SELECTOR, "[data-testid=raw-response]").text
    assert "<script>document.title=" in raw
    assert '<img src="missing.png"' in raw
    assert "pwned" not in browser.title
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    # the index shows the same text as text, and nothing ran there either
    browser.get((site / "index.html").as_uri())
    assert "<script>" in browser.find_element(By.ID, "traces").text
    assert browser.execute_script("return window.__pwned === undefined")
