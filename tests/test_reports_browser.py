"""The HTML report in a real headless browser (Debian's chromium): every chart loads and none is
blank. A screenshot is kept in the test's tmp folder."""

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, browser_api
from synthetic import meta_for, prompt_record, write_run_folder
from test_reports import SLA, gpu_sample

from reports.build import build

ARGS = CHROMIUM_ARGS
pytestmark = pytest.mark.browser

# For each <img>: loaded size, the share that is not background (near white), and the share in
# colour: axes and text are grey, so coloured pixels are the data itself.
MEASURE_IMAGES = """() => Array.from(document.images).map(img => {
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let ink = 0, coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 235 || d[i+1] < 235 || d[i+2] < 235) ink++;
    if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 40) coloured++;
  }
  return {alt: img.alt, w: img.naturalWidth, h: img.naturalHeight, ink: ink / (d.length / 4), data: coloured / (d.length / 4)};
})"""


def full_run(tmp_path):
    """Every kind of record, so every chart is drawn (GPU, ramp, faults included)."""
    records = [
        prompt_record(
            1000.0 + i,
            1001.0 + i + (i % 7) * 0.3,
            "success" if i % 25 else "oom",
            queue_ms=200,
            node_ms={"1": 5.0, "2": 300.0, "3": 20.0},
        )
        for i in range(200)
    ]
    records += [gpu_sample(1000 + s, 50 + s % 40, 8000 + 20 * s) for s in range(200)]
    records += [
        {"kind": "event", "name": "fault.start", "ts": 1080.0},
        {"kind": "event", "name": "fault.recovered", "ts": 1095.0, "recovery_s": 15.0},
    ]
    records += [
        {
            "kind": "event",
            "name": "ramp.step",
            "ts": 1000 + u,
            "users": u,
            "images_per_min": ipm,
            "p95_s": p95,
            "error_pct": 0,
            "passed": p95 < 45,
        }
        for u, ipm, p95 in ((1, 10, 5), (2, 19, 6), (4, 30, 9), (8, 31, 50))
    ]
    records.append({"kind": "event", "name": "ramp.knee", "ts": 1200, "users": 4, "unit": "books"})
    return write_run_folder(tmp_path / "run", records, meta=meta_for(sla=SLA))


def test_every_chart_renders_in_headless_chromium(tmp_path):
    sync_api = browser_api()
    run = full_run(tmp_path)
    summary = build(run)
    assert len(summary["charts"]) == 8
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto((run / "report.html").as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate(MEASURE_IMAGES)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert "SLA verdict" in page.inner_text("body")
        finally:
            browser.close()
    assert len(images) == len(summary["charts"])
    for img in images:
        assert img["w"] > 0 and img["h"] > 0, f"broken image: {img['alt']}"
        assert img["ink"] > 0.02 and img["data"] > 0.003, f"empty chart: {img}"
    assert (tmp_path / "report.png").stat().st_size > 10_000
