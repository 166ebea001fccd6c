"""The site as a reader sees it, built at the published profile: the committed chapters of
``book/published/<profile>/`` (``cpu``, or ``full`` once its results are committed) rendered
without executing anything (:func:`ecodistill.book.build_published`); before any profile is
published, the smoke build of the session (``built_book``) stands in.

Checks: no raw glue role or unrendered output object on any page, no code input visible by
default, every chapter names its profile, a Limitations section, the abstract's numbers equal
to numbers in the tables, and no horizontal scrolling of the main tables at 1,280 px (headless
Chromium, the layout measured by a script in the page).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

from ecodistill import book

pytestmark = pytest.mark.slow


def published_profile() -> str | None:
    """The profile ``make book`` publishes, when its chapters are committed."""
    for profile in ("full", "cpu"):
        if (book.PUBLISHED_DIR / profile).is_dir():
            return profile
    return None


@pytest.fixture(scope="module")
def site(request, tmp_path_factory) -> Path:
    """The HTML of the published profile, or of the session's smoke build before one exists."""
    profile = published_profile()
    if profile is None:
        return request.getfixturevalue("built_book")
    return book.build_published(profile, tmp_path_factory.mktemp("published"))


def _pages(site: Path) -> list[Path]:
    toc = yaml.safe_load((book.ROOT / "_toc.yml").read_text())
    return [site / f"{page}.html" for page in book._toc_files(toc)]


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(), "html.parser")


def _article_text(path: Path) -> str:
    article = _soup(path).find("article") or _soup(path)
    for tag in article.find_all(["script", "style"]):
        tag.decompose()
    return article.get_text(" ")


def test_no_raw_glue_or_output_objects(site: Path):
    for page in _pages(site):
        text = _article_text(page)
        for raw in ("{glue", "glue:text", "glue:md", "<IPython.core", "Markdown object", "Styler at 0x"):
            assert raw not in text, f"{page.name}: raw {raw!r} on the page"


def test_code_inputs_hidden_by_default(site: Path):
    for page in _pages(site):
        for cell in _soup(page).select("div.cell"):
            if cell.select_one("div.cell_input") is None:
                continue
            classes = set(cell.get("class", []))
            assert classes & {"tag_hide-input", "tag_remove-input"}, (
                f"{page.name}: a code input is shown by default:\n{cell.get_text()[:300]}")


def test_every_chapter_names_its_profile(site: Path):
    for page in _pages(site):
        if "/generated/" in page.as_posix():
            assert re.search(r"This page shows the\s+\S+\s+profile", _article_text(page)), page.name
    assert re.search(r"This build shows the", _article_text(site / "intro.html"))


def test_limitations_section(site: Path):
    soup = _soup(site / "conclusions.html")
    section = soup.find(id="limitations")
    assert section is not None, "conclusions.html has no Limitations section (id 'limitations')"
    items = section.find_all("li")
    text = " ".join(li.get_text(" ") for li in items)
    assert len(items) >= 6
    for topic in ("Simulated data", "Test period", "Teacher size", "One teacher seed",
                  "Training budgets", "Raspberry Pi timings"):
        assert topic in text, f"Limitations do not cover {topic!r}"


def _numbers(text: str) -> set[str]:
    """Decimal numbers of a text, unsigned ("raises by 2.01" quotes a difference of -2.01)."""
    return set(re.findall(r"\d+\.\d+", text))


def test_abstract_numbers_are_those_of_the_tables(site: Path):
    soup = _soup(site / "intro.html")
    abstract = soup.find(id="abstract")
    assert abstract is not None, "intro.html has no Abstract section"
    glued = abstract.select_one("div.ed-glued")
    assert glued is not None, "the abstract is not the glued, computed one"
    # the results chapter's tables, and the teacher chapter's (the teacher's size in the profile note)
    tables = [t for page in ("04_results", "02_teacher")
              for t in _soup(site / "generated" / f"{page}.html").select("table.ed-table")]
    in_tables = set().union(*(_numbers(t.get_text(" ")) for t in tables))
    missing = _numbers(glued.get_text(" ")) - in_tables
    assert not missing, f"numbers of the abstract found in no table of chapters 2 (teacher) or 4: {sorted(missing)}"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


MEASURE = """<script>
window.addEventListener('load', () => {
  const rows = [];
  document.querySelectorAll('table.ed-main').forEach((table) => {
    let scrolls = false;
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      const overflow = getComputedStyle(el).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
        scrolls = true;
      }
    }
    rows.push({text: table.innerText.slice(0, 60), width: table.scrollWidth, scrolls: scrolls});
  });
  const root = document.documentElement;
  document.body.setAttribute('data-ed-layout', JSON.stringify(
    {tables: rows, page_scrolls: root.scrollWidth > root.clientWidth + 1}));
});
</script>"""


def _layout(page: Path) -> dict:
    """Load ``page`` at 1,280 x 900 px in headless Chromium with :data:`MEASURE` added; return
    what it measured."""
    probe = page.with_name(f"_probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    try:
        with tempfile.TemporaryDirectory() as profile_dir:
            cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                   "--no-first-run", "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", f"--user-data-dir={profile_dir}", "--window-size=1280,900",
                   "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()]
            dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    finally:
        probe.unlink()
    found = BeautifulSoup(dom, "html.parser").body
    assert found is not None and found.get("data-ed-layout"), f"{page.name}: the layout probe did not run"
    return json.loads(found["data-ed-layout"])


def test_main_tables_do_not_scroll_at_1280px(site: Path):
    if _chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    checked = 0
    for page in _pages(site):
        if 'class="ed-table ed-main"' not in page.read_text():
            continue
        layout = _layout(page)
        assert not layout["page_scrolls"], f"{page.name} scrolls sideways at 1,280 px"
        for table in layout["tables"]:
            assert not table["scrolls"], f"{page.name}: a main table scrolls sideways: {table}"
            checked += 1
    assert checked >= 5, f"only {checked} main tables found"
