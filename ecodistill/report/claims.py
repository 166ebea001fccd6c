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

Where the results decide the direction of a sentence before they exist, the prose glues one of
**alternatives**: claims registered under one ``group`` (:func:`alternative`), each with its
words and its check; :func:`chosen` picks the one that holds and the chapter glues its words
(the source file holds the glue key, not the words). Exactly one alternative of a group must hold:
none (or two) fails :func:`verify` at ``cpu`` and ``full`` like a broken claim; without results
the group is not checkable and the glue says what is missing.

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
    group: str | None = None  # alternatives of one glued sentence share a group (its glue key)


REGISTRY: dict[str, Claim] = {}


def claim(key: str, quote: str, source: str, needs: tuple[str, ...], group: str | None = None):
    """Register the decorated ``check(results) -> bool`` as the claim ``key`` (one of the
    alternatives of ``group`` when given: :func:`alternative`).

    Raises:
        ValueError: when ``key`` is registered twice or ``needs`` names an unknown frame.
    """
    unknown = set(needs) - set(FRAMES)
    if unknown:
        raise ValueError(f"claim {key!r} needs unknown frames {sorted(unknown)}; known: {sorted(FRAMES)}")

    def register(check: Callable[[Results], bool]) -> Callable[[Results], bool]:
        if key in REGISTRY:
            raise ValueError(f"claim {key!r} is registered twice")
        REGISTRY[key] = Claim(key, quote, source, needs, check, group)
        return check

    return register


def alternative(group: str, key: str, quote: str, source: str, needs: tuple[str, ...]):
    """Register one alternative wording of the sentence glued as ``group`` in ``source``: the
    chapter glues the words of the alternative that holds (:func:`chosen`)."""
    return claim(key, quote, source, needs, group=group)


def group_claims(group: str) -> list[Claim]:
    """The alternatives registered under ``group``, in registration order."""
    return [c for c in REGISTRY.values() if c.group == group]


def groups() -> list[str]:
    """Every group of alternatives, in registration order."""
    return list(dict.fromkeys(c.group for c in REGISTRY.values() if c.group))


def chosen(results: Results, group: str) -> Claim | None:
    """The alternative of ``group`` that holds for ``results``; None when its frames have no
    rows (not checkable).

    Raises:
        ClaimError: at :data:`ENFORCED` profiles when no alternative, or more than one, holds.
    """
    members = group_claims(group)
    if not members:
        raise KeyError(f"no alternatives registered as {group!r}")
    if any(not results.has(n) for c in members for n in c.needs):
        return None
    holding = [c for c in members if bool(c.check(results))]
    if len(holding) == 1:
        return holding[0]
    if results.profile in ENFORCED:
        words = "; ".join(f'{c.key}: "{c.quote}"' for c in members)
        raise ClaimError(f"{'no' if not holding else 'more than one'} alternative of {group!r} holds for "
                         f"results/{results.profile} ({words}; {members[0].source}): write the sentence anew")
    return holding[0] if holding else None


def chosen_text(results: Results, group: str, missing: str = "") -> str:
    """The words of :func:`chosen` for the glue, or ``missing`` (what makes the results) when
    the group is not checkable, or names the group when (at smoke) no alternative holds."""
    c = chosen(results, group)
    if c is not None:
        return c.quote
    members = group_claims(group)
    if any(not results.has(n) for m in members for n in m.needs):
        return missing or f"(not yet measured at the {results.profile} profile)"
    return f"(no alternative of {group} holds at the {results.profile} profile)"


# ---- the frames a claim can read --------------------------------------------------------

def _frame(r: Results) -> pd.DataFrame:
    from .frames import read_current

    return read_current(r.profile, r["record"] or {})


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


def _record(r: Results) -> dict | None:
    from ..experiments.teacher import teacher_record

    return teacher_record(r.profile)


def _all(r: Results) -> pd.DataFrame:
    """Every data variant's rows of the current protocol (ladder, field devices, nowcast, memory)."""
    from .frames import read_current

    return read_current(r.profile, r["record"] or {}, variant=None)


def _own(r: Results) -> dict:
    from .frames import own_variant

    return own_variant(r.profile, r["record"])


def _ladder(r: Results) -> pd.DataFrame:
    from .ladder import ladder_table

    return ladder_table(r["all"], r["record"], r["own"])


def _verdicts(r: Results) -> pd.DataFrame:
    from .ladder import ladder_verdicts

    return ladder_verdicts(r["ladder"])


def _privileged(r: Results) -> pd.DataFrame:
    from .cases import privileged_table

    return privileged_table(r["all"], r["record"], r.n_boot)


def _nowcast(r: Results) -> pd.DataFrame:
    from .cases import nowcast_table

    return nowcast_table(r["all"], r["own"])


def _memory(r: Results) -> pd.DataFrame:
    from ..config import get_profile
    from .cases import memory_table

    return memory_table(r["all"], get_profile(r.profile).headline_student, r["own"])


def _probe(r: Results) -> pd.DataFrame:
    from .pretraining import probe_table

    return probe_table(r.profile)


def _realism(r: Results) -> pd.DataFrame:
    from .realism import read_realism, realism_frame

    return realism_frame(read_realism(r.profile))


def _old(r: Results):
    """The old world's :class:`Results` (world v1, :func:`world_results`), or None."""
    return world_results(r.profile, "v1", r.n_boot, reuse=r)


def _old_table(r: Results) -> pd.DataFrame:
    return r["old"]["table"] if r["old"] is not None else pd.DataFrame()


def _old_refs(r: Results) -> dict:
    from .ladder import references

    return references(r["old"]["all"]) if r["old"] is not None and len(r["old"]["all"]) else {}


#: name -> how :class:`Results` computes it from the result files of a profile.
FRAMES: dict[str, Callable[[Results], object]] = {
    "frame": _frame, "selection": _selection, "table": _table, "pairs": _pairs, "contrasts": _contrasts,
    "numbers": _numbers, "teachers": _teachers, "flux": _flux, "flux_models": _flux_models, "int8": _int8,
    "record": _record, "all": _all, "own": _own, "ladder": _ladder, "verdicts": _verdicts,
    "privileged": _privileged, "nowcast": _nowcast, "memory": _memory, "probe": _probe, "realism": _realism,
    "old": _old, "old_table": _old_table, "old_refs": _old_refs}


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
        if isinstance(value, (dict, Results)):
            return bool(value) if isinstance(value, dict) else True
        return value is not None and len(value) > 0


def evaluate(results: Results, keys: list[str] | None = None) -> pd.DataFrame:
    """Every registered claim (or ``keys``) against ``results``: columns ``claim, quote, source,
    status`` (``holds``, ``does not hold``, ``not checkable: no <frame> results``, or for an
    alternative that another of its group replaces, ``alternative not chosen``; when no
    alternative of a group holds, or several do, every one of them ``does not hold``)."""
    rows = []
    keys = keys or list(REGISTRY)
    holds = {}
    for key in keys:
        c = REGISTRY[key]
        empty = [n for n in c.needs if not results.has(n)]
        holds[key] = None if empty else bool(c.check(results))
        status = (f"not checkable: no {', '.join(empty)} results" if empty
                  else "holds" if holds[key] else "does not hold")
        rows.append({"claim": key, "quote": c.quote, "source": c.source, "status": status})
    for row in rows:
        c = REGISTRY[row["claim"]]
        if c.group is None or holds[row["claim"]] is None:
            continue
        members = [m.key for m in group_claims(c.group)]
        outcome = [bool(m.check(results)) if m.key not in holds else holds[m.key] for m in group_claims(c.group)]
        if sum(outcome) == 1 and not holds[row["claim"]]:
            row["status"] = "alternative not chosen"
        elif sum(outcome) > 1:
            row["status"] = f"does not hold: several alternatives of {c.group} hold ({', '.join(members)})"
    return pd.DataFrame(rows, columns=["claim", "quote", "source", "status"])


def verify(results: Results, keys: list[str] | None = None) -> pd.DataFrame:
    """:func:`evaluate`, raising :class:`ClaimError` naming every claim that does not hold
    when the profile is one the prose is written about (:data:`ENFORCED`).

    Raises:
        ClaimError: ``claim <key> no longer holds for results/<profile>: "<quote>" (<source>)``.
    """
    table = evaluate(results, keys)
    broken = table[table["status"].str.startswith("does not hold")]
    if len(broken) and results.profile in ENFORCED:
        lines = [f"claim {r.claim} no longer holds for results/{results.profile}: \"{r.quote}\" ({r.source})"
                 for r in broken.itertuples()]
        raise ClaimError("\n".join(lines) + "\nRewrite the sentence (and its claim in "
                         "ecodistill/report/claim_set.py) to say what the results now show.")
    return table


def quoted_in_source(c: Claim) -> bool:
    """Whether the claim's words stand in its source file (Markdown, or a notebook's cells); for
    an alternative, whether the source glues its group (``::<group>`` or `` `<group>` ``)."""
    path = repo_root() / c.source
    if not path.is_file():
        return False
    text = path.read_text()
    if path.suffix == ".ipynb":
        import json

        text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
    if c.group is not None:
        return f"::{c.group}:" in text or f"::{c.group}`" in text or f"`{c.group}`" in text
    return " ".join(c.quote.split()) in " ".join(text.split())


def interval_below_zero(row) -> bool:
    """A difference (arm − reference) whose 95% interval lies below zero."""
    return bool(np.isfinite(row["ci_high"]) and row["ci_high"] < 0)


def interval_above_zero(row) -> bool:
    """A difference (arm − reference) whose 95% interval lies above zero."""
    return bool(np.isfinite(row["ci_low"]) and row["ci_low"] > 0)


# ---- the results of one world -------------------------------------------------------------

def world_dir(profile: str, world: str):
    """``results/<profile>/worlds/<world>``: the teacher record and selection kept for a world
    whose protocol a newer world's has overwritten (:func:`ecodistill.report.goals.snapshot_world`)."""
    from ..utils import results_dir

    return results_dir(profile) / "worlds" / world


def world_results(profile: str, world: str, n_boot: int = 2000, reuse: Results | None = None) -> Results | None:
    """The :class:`Results` of ``world`` at ``profile``: the current ones when the current
    teacher record is that world's, else those kept by
    :func:`ecodistill.report.goals.snapshot_world`; None when neither exists. ``reuse``: the
    :class:`Results` already computed for the current record (returned instead of new ones)."""
    import json

    from ..experiments.teacher import teacher_record
    from .frames import current, own_variant, read_results, select_variant, with_variants
    from .realism import read_realism, world_hashes

    digest = world_hashes(read_realism(profile)).get(world)
    now = teacher_record(profile)
    if now and digest and now.get("dataset_hash") == digest:
        return reuse if reuse is not None else Results(profile, n_boot)
    folder = world_dir(profile, world)
    if not (folder / "teacher.json").is_file():
        return None
    record = json.loads((folder / "teacher.json").read_text())
    selection = json.loads((folder / "selection.json").read_text()) if (folder / "selection.json").is_file() else None
    every = with_variants(current(read_results(profile), record))
    own = own_variant(profile, record)
    return Results(profile, n_boot, record=record, selection=selection, all=every, own=own,
                   frame=select_variant(every, own))
