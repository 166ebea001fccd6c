"""Claims: every directional or comparative statement that the *authored* prose of the
abstract, the Discussion and the Conclusions makes, with a function of the result frames that
says whether it still holds.

Numbers in the prose are glued from the results, so they cannot go stale; a sentence such as
"distillation lowers the error at no student size" can. Each such sentence is registered here
with :func:`claim`: a key, the words as the prose has them (``quote``, a verbatim fragment of
the source file named in ``source``, so the registry and the prose cannot drift apart: a test
reads every source), and a check of the :class:`Results` of a profile. The book's appendix
(book/generated/99_appendix.ipynb, executed last by ``python -m ecodistill book``) runs
:func:`verify`: at ``cpu`` and ``full`` a claim that no longer holds fails the build with its
key, its words and where they stand; at ``smoke`` (toy numbers, never results) the table shows
the outcome without failing. A claim whose frames have no rows at a profile is reported as not
checkable, never as holding.

Sentences that are *computed* from the results (the chapters' findings) are right by
construction and are not registered; the sign convention they share is checked by the tests
on a frame whose sign is known (tests/test_claims.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..utils import repo_root

#: Profiles whose results the prose is written about: a failing claim fails the build there.
ENFORCED = ("cpu", "full")


class ClaimError(AssertionError):
    """Raised by :func:`verify` when a registered claim no longer holds for the results."""


@dataclass(frozen=True)
class Claim:
    """One statement of the prose: ``key``, the verbatim ``quote``, its ``source`` file
    (relative to the repository root), the frames it ``needs`` and its ``check``."""

    key: str
    quote: str
    source: str
    needs: tuple[str, ...]
    check: Callable[[Results], bool] = field(repr=False)


REGISTRY: dict[str, Claim] = {}


def claim(key: str, quote: str, source: str, needs: tuple[str, ...]):
    """Register the decorated ``check(results) -> bool`` as the claim ``key``.

    Raises:
        ValueError: when ``key`` is registered twice or ``needs`` names an unknown frame.
    """
    unknown = set(needs) - set(FRAMES)
    if unknown:
        raise ValueError(f"claim {key!r} needs unknown frames {sorted(unknown)}; known: {sorted(FRAMES)}")

    def register(check: Callable[[Results], bool]) -> Callable[[Results], bool]:
        if key in REGISTRY:
            raise ValueError(f"claim {key!r} is registered twice")
        REGISTRY[key] = Claim(key, quote, source, needs, check)
        return check

    return register


# ---- the frames a claim can read --------------------------------------------------------

def _frame(r: Results) -> pd.DataFrame:
    from .frames import read_current

    return read_current(r.profile)


def _selection(r: Results) -> dict | None:
    from .frames import read_selection

    return read_selection(r.profile)


def _table(r: Results) -> pd.DataFrame:
    from .comparison import student_table

    return student_table(r["frame"])


def _pairs(r: Results) -> pd.DataFrame:
    from .comparison import paired_comparison

    return paired_comparison(r["frame"], r["selection"], r.n_boot)


def _contrasts(r: Results) -> pd.DataFrame:
    from .comparison import contrasts

    return contrasts(r["frame"], r["selection"], r.n_boot)


def _numbers(r: Results) -> pd.DataFrame:
    from .summary import summary_numbers

    return summary_numbers(r["table"], r["pairs"])


def _teachers(r: Results) -> pd.DataFrame:
    """Test anomaly R² of every teacher of the record, by role (adapted, scratch, ...)."""
    from .frames import wide

    w = wide(r["frame"])
    if "teacher_role" not in w or "r2_anom" not in w:
        return pd.DataFrame(columns=["role", "r2_anom"])
    rows = w[(w["kind"] == "teacher") & (w["teacher_role"].astype(str) != "")]
    return rows.groupby("teacher_role", as_index=False)["r2_anom"].mean().rename(columns={"teacher_role": "role"})


def _flux(r: Results) -> pd.DataFrame:
    from ..fluxnet import flux_profile
    from ..fluxnet.report import load_results

    return load_results(r.profile, flux_profile(r.profile))


def _flux_models(r: Results) -> pd.DataFrame:
    """FLUXNET test R², anomaly R² and fidelity R² means per model, grouped as the chapter's
    table groups them (:func:`ecodistill.fluxnet.report.model_rows`), with their parameters."""
    from .. import stats
    from ..fluxnet.report import MODEL_KEYS, model_rows

    rows = model_rows(r["flux"]) if len(r["flux"]) else r["flux"]
    if rows.empty:
        return pd.DataFrame()
    parts = [stats.summarise(rows, MODEL_KEYS, m).set_index(MODEL_KEYS)["mean"].rename(m)
             for m in ("r2", "r2_anom", "fidelity_r2")]
    size = rows.groupby(MODEL_KEYS)["n_params"].max()
    return pd.concat([*parts, size], axis=1).reset_index()


def _int8(r: Results) -> pd.DataFrame:
    from ..config import get_profile
    from .timings import int8_effect, latest_run, read_timing_rows

    cfg = get_profile(r.profile)
    return int8_effect(latest_run(read_timing_rows(r.profile), f"{cfg.data.nlat}x{cfg.data.nlon}"))


#: name -> how :class:`Results` computes it from the result files of a profile.
FRAMES: dict[str, Callable[[Results], object]] = {
    "frame": _frame, "selection": _selection, "table": _table, "pairs": _pairs, "contrasts": _contrasts,
    "numbers": _numbers, "teachers": _teachers, "flux": _flux, "flux_models": _flux_models, "int8": _int8}


class Results:
    """The result frames of one profile, computed on first use (``results["pairs"]``) or given
    (``Results("cpu", pairs=...)``: a test passes frames whose answer it knows)."""

    def __init__(self, profile: str, n_boot: int = 2000, **frames) -> None:
        unknown = set(frames) - set(FRAMES)
        if unknown:
            raise KeyError(f"unknown result frames {sorted(unknown)}; known: {sorted(FRAMES)}")
        self.profile, self.n_boot, self._cache = profile, n_boot, dict(frames)

    def __getitem__(self, name: str):
        if name not in self._cache:
            self._cache[name] = FRAMES[name](self)
        return self._cache[name]

    def has(self, name: str) -> bool:
        """Whether the frame ``name`` holds anything to check (rows, or a dict)."""
        value = self[name]
        return bool(value) if isinstance(value, dict) else value is not None and len(value) > 0


def evaluate(results: Results, keys: list[str] | None = None) -> pd.DataFrame:
    """Every registered claim (or ``keys``) against ``results``: columns ``claim, quote, source,
    status`` (``holds``, ``does not hold``, or ``not checkable: no <frame> results``)."""
    rows = []
    for key in keys or list(REGISTRY):
        c = REGISTRY[key]
        empty = [n for n in c.needs if not results.has(n)]
        status = (f"not checkable: no {', '.join(empty)} results" if empty
                  else "holds" if bool(c.check(results)) else "does not hold")
        rows.append({"claim": key, "quote": c.quote, "source": c.source, "status": status})
    return pd.DataFrame(rows, columns=["claim", "quote", "source", "status"])


def verify(results: Results, keys: list[str] | None = None) -> pd.DataFrame:
    """:func:`evaluate`, raising :class:`ClaimError` naming every claim that does not hold
    when the profile is one the prose is written about (:data:`ENFORCED`).

    Raises:
        ClaimError: ``claim <key> no longer holds for results/<profile>: "<quote>" (<source>)``.
    """
    table = evaluate(results, keys)
    broken = table[table["status"] == "does not hold"]
    if len(broken) and results.profile in ENFORCED:
        lines = [f"claim {r.claim} no longer holds for results/{results.profile}: \"{r.quote}\" ({r.source})"
                 for r in broken.itertuples()]
        raise ClaimError("\n".join(lines) + "\nRewrite the sentence (and its claim in "
                         "ecodistill/report/claim_set.py) to say what the results now show.")
    return table


def quoted_in_source(c: Claim) -> bool:
    """Whether the claim's words stand in its source file (Markdown, or a notebook's cells)."""
    path = repo_root() / c.source
    if not path.is_file():
        return False
    text = path.read_text()
    if path.suffix == ".ipynb":
        import json

        text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
    return " ".join(c.quote.split()) in " ".join(text.split())


def interval_below_zero(row) -> bool:
    """A difference (arm − reference) whose 95% interval lies below zero."""
    return bool(np.isfinite(row["ci_high"]) and row["ci_high"] < 0)


def interval_above_zero(row) -> bool:
    """A difference (arm − reference) whose 95% interval lies above zero."""
    return bool(np.isfinite(row["ci_low"]) and row["ci_low"] > 0)
