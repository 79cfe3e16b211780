"""The HTML analysis report as a browser shows it: headless Chromium must render every plot.

Chromium is found and run by `tests.browser`. The DOM Chromium builds must hold one decoded PNG per
metric and no element that came from the run's text; the screenshot must show the plots' line
colours, which a copy of the page without its images does not.
"""

from __future__ import annotations

import base64
import html.parser
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import pytest

from analysis.report import Outcome, to_html, write_reports
from tests.browser import CANARY_RGB, PRIMARY_RGB, WEIGHT_RGB, chromium, colour_pixels
from tests.unit.test_report import HOSTILE, make_run

pytestmark = pytest.mark.component


class _Dom(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sources: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    run = make_run(name=HOSTILE)
    document = to_html(run)
    page = tmp_path / "report.html"
    page.write_text(document, encoding="utf-8")

    dom = _Dom()
    dom.feed(chromium(tmp_path, page, "--dump-dom").stdout)
    assert "script" not in dom.tags  # the hostile name stayed text
    assert HOSTILE in "".join(dom.text)
    assert len(dom.sources) == len(run.metrics)
    for src in dom.sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    shot = tmp_path / "report.png"
    chromium(tmp_path, page, "--window-size=1100,2200", f"--screenshot={shot}")
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.std() > 0.05, "the screenshot is blank"
    # Both arms' lines are drawn, so the browser decoded and laid out the plots.
    assert colour_pixels(shot, CANARY_RGB) > 300
    assert colour_pixels(shot, PRIMARY_RGB) > 300
    # The traffic weight's step line, on every plot, and the checks' markers in the verdicts' colours.
    assert colour_pixels(shot, WEIGHT_RGB) > 300
    assert colour_pixels(shot, (0xC6, 0x28, 0x28)) > 100  # the failed check and the rollback

    # Control: the same page without its images shows none of those colours.
    bare = tmp_path / "bare.html"
    bare.write_text(document.replace('src="data:image/png', 'data-x="'), encoding="utf-8")
    bare_shot = tmp_path / "bare.png"
    chromium(tmp_path, bare, "--window-size=1100,2200", f"--screenshot={bare_shot}")
    assert colour_pixels(bare_shot, CANARY_RGB) == 0
    assert colour_pixels(bare_shot, WEIGHT_RGB) == 0


def test_reports_index_renders_in_chromium(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    write_reports(make_run(Outcome.SUCCEEDED, name="web"), folder)
    write_reports(replace(make_run(Outcome.FAILED, name=HOSTILE), decided_at=make_run().decided_at + 60), folder)
    dom = _Dom()
    dom.feed(chromium(tmp_path, folder / "index.html", "--dump-dom").stdout)
    assert "script" not in dom.tags
    text = "".join(dom.text)
    assert HOSTILE in text and "test/web" in text
    assert text.index("failed") < text.index("succeeded")  # newest first
