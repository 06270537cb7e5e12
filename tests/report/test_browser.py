"""The report page in a real browser (Debian's chromium, headless, driven by chromedriver)."""
import shutil

import pytest

from badminima.cli import main

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TINY = ["--train-size", "300", "--width", "32", "--epochs", "4", "--pretrain-epochs", "3", "-R", "1", "--seeds", "0", "--workers", "1",
        "--quiet"]


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_report_page_loads_and_shows_every_figure(tmp_path, capsys):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = tmp_path / "out"
    for name in ("bad-minima", "curves", "distances", "norms", "fgsm", "replication", "heuristics"):
        assert main(["run", name, *TINY, "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    page = out / "report" / "index.html"
    assert capsys.readouterr().out.strip().endswith(str(page))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(1280, 900)
        driver.get(page.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight,"
            " i.getBoundingClientRect().width, i.getBoundingClientRect().height])")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        tables = driver.execute_script("return document.querySelectorAll('table').length")
    finally:
        driver.quit()
    assert errors == []
    expected = {"bad-minima-test-acc", "curves-train", "curves-test", "norms", "fgsm", "replication"}
    assert {alt for alt, *_ in images} == expected
    for alt, complete, nw, nh, w, h in images:
        assert complete and nw > 0 and nh > 0 and w > 0 and h > 0, alt
    assert tables >= 7
