"""The published chapters follow from the committed result files: ``pytest --nbval``
re-executes every chapter of ``book/published/<profile>/`` (committed with its outputs by
``python -m ecodistill book``) and compares each cell's output with the committed one, after
the sanitizers of ``book/published/nbval_sanitize.cfg`` (timings, paths, addresses). A number
on the site that no longer follows from ``results/<profile>/`` fails here; the fix is to rebuild
the book (``make book``) and commit ``book/published/``.

The appendix reports the build (host, versions, commit, seconds), not results, so it is not
re-executed; the data chapter only where its profile's dataset is already in the cache
(simulating the ``cpu`` Earth takes minutes), or where ``ECODISTILL_NBVAL_DATA=1``.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ecodistill import book
from ecodistill.config import get_profile

pytestmark = pytest.mark.slow
PROFILES = [p for p in ("cpu", "full") if (book.PUBLISHED_DIR / p).is_dir()]
#: Chapters that report the build rather than results.
NOT_RESULTS = ("99_appendix",)


def _dataset_cached(profile: str) -> bool:
    from ecodistill import data

    return data.dataset_path(get_profile(profile).data).exists()


def test_a_profile_is_published_or_none_has_results():
    """Once cpu (or full) student results are committed, their chapters are published too."""
    for profile in ("cpu", "full"):
        if book.has_student_results(profile) and profile == book.resolve_profile("auto"):
            assert profile in PROFILES, (f"results/{profile} holds student runs but book/published/"
                                         f"{profile} is missing: run `make book` and commit it")


def _fluxval_present() -> bool:
    from ecodistill.fluxnet.reader import fluxval_dir

    try:
        fluxval_dir()
    except FileNotFoundError:
        return False
    return True


#: Chapters that need the real data in ../shared/data to re-execute: name -> (check, what).
NEEDS_SHARED = {"06_fluxnet": (_fluxval_present, "../shared/data/fluxval (CARDAMOM-FluxVal v1.0)")}
CHAPTERS = [(p, n) for p in PROFILES for n in book.chapter_notebooks() if n not in NOT_RESULTS]


@pytest.mark.parametrize("profile, chapter", CHAPTERS, ids=[f"{p}-{n}" for p, n in CHAPTERS])
def test_published_chapters_follow_from_the_results(profile, chapter):
    if chapter == "02_data" and not (_dataset_cached(profile) or os.environ.get("ECODISTILL_NBVAL_DATA") == "1"):
        pytest.skip(f"the {profile} dataset is not in the cache (simulating it takes minutes): set "
                    "ECODISTILL_NBVAL_DATA=1 to re-execute the data chapter anyway")
    if chapter in NEEDS_SHARED and not NEEDS_SHARED[chapter][0]():
        pytest.skip(f"{NEEDS_SHARED[chapter][1]} is absent here, and the published chapter was made with it "
                    "(CI has it and runs this check); see README 'Data'")
    path = book.PUBLISHED_DIR / profile / f"{chapter}.ipynb"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
           "--nbval-current-env", "--nbval-cell-timeout=600",
           f"--nbval-sanitize-with={book.PUBLISHED_DIR / 'nbval_sanitize.cfg'}", str(path)]
    proc = subprocess.run(cmd, cwd=book.ROOT, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, (f"published {profile} chapter {chapter} no longer follows from "
                                  f"results/{profile}: rebuild with `make book` and commit "
                                  f"book/published/{profile}\n{proc.stdout[-6000:]}")
