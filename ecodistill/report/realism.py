"""Is the simulated Earth realistic? The realism table of the data chapter, computed from
``results/<profile>/data/realism.csv`` (:mod:`ecodistill.experiments.realism`) and the targets of
:data:`ecodistill.data.realism.TARGETS`, never typed.

Each row is one statistic: its real value (a literature value with its source, or the same
statistic computed on real data: FLUXNET2015 site-months, the ERA5 sample), the target it is
judged against (the cited range, or within a factor of 2 of the real value,
:func:`ecodistill.data.realism.factor_two`), the old world's value (``v1``), the new world's
(``v2``) and whether each is within the target. Statistics the targets do not list but that
have a real counterpart are judged by the same factor-of-2 rule in a second table. A target
that the new world misses is stated with what it biases (:data:`BIASES`), which the
Limitations quote. Explained in book/generated/02_data.ipynb ("Is the simulated Earth
realistic?").
"""
from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np
import pandas as pd

from ..data.realism import EXCURSION, TARGETS, Target, factor_two, target_bounds
from ..utils import repo_root
from .frames import empty_table, labelled

COLUMNS = ["statistic", "variable", "real value (n)", "target", "v1 (old)", "v2 (new)", "within target? v1 → v2",
           "source"]
#: Simulated rows of a vegetation statistic carry ``vegetation``; the real ones name LAI or GPP.
_SIMULATED_NAME = {"vegetation (LAI)": "vegetation", "vegetation (GPP)": "vegetation"}
#: How a statistic reads in the table (the others as they are written).
_STATISTIC_LABEL = {"daily lag-1 autocorrelation, one March, British Isles":
                    "daily lag-1 autocorrelation (one month, British Isles)"}
#: What a miss of the new world biases, by (statistic, variable) and direction of the miss.
BIASES = {
    ("monthly lag-1 autocorrelation of anomalies", "vegetation (LAI)", "above"):
        "simulated vegetation anomalies last longer from one month to the next than real LAI's, so "
        "persistence and every model with memory of past weather score higher here than they would on "
        "real LAI (against GPP, whose anomalies last longer, the world is within its target)",
    ("monthly variance share outside the seasonal cycle", "vegetation (LAI)", "below"):
        "less of the simulated vegetation's variance lies outside the seasonal cycle than of real LAI's, "
        "so raw R² credits the seasonal cycle more here, and the anomaly scores rest on a smaller signal "
        "than real LAI offers",
    ("monthly lag-1 autocorrelation of anomalies", "vegetation (GPP)", "above"):
        "simulated vegetation anomalies last longer than real GPP's, which favours persistence and memory",
    ("monthly variance share outside the seasonal cycle", "vegetation (GPP)", "below"):
        "less of the simulated vegetation's variance lies outside the seasonal cycle than of real GPP's",
    ("monthly variance share outside the seasonal cycle", "ssrd", "above"):
        "monthly anomalies of solar radiation carry more of its variance than at the FLUXNET sites, so the "
        "weather explains a little more of the vegetation's month-to-month changes here than it could there",
    ("monthly variance share outside the seasonal cycle", "vpd", "above"):
        "monthly anomalies of the vapour-pressure deficit are larger than at the FLUXNET sites",
}
#: Said of a miss not listed in :data:`BIASES`.
GENERIC_BIAS = "the statistic is {direction} its target, so skill that depends on it may differ on real data"


@lru_cache(maxsize=1)
def _bib_names() -> dict[str, str]:
    """``bibkey -> "Author et al. 2020"`` from references.bib (first author's family name)."""
    path = repo_root() / "references.bib"
    text = path.read_text() if path.is_file() else ""
    out = {}
    for entry in re.split(r"\n@", text):
        key = re.match(r"\s*@?\w+\{([^,]+),", entry)
        author = re.search(r"author\s*=\s*\{(.+?)\},?\s*\n", entry, re.DOTALL)
        year = re.search(r"year\s*=\s*\{?(\d{4})", entry)
        if not key or not author:
            continue
        names = [n.strip() for n in author.group(1).replace("\n", " ").split(" and ")]
        first = names[0].strip("{}").split(",")[0].strip("{} ")
        who = first if len(names) == 1 else (f"{first} & {names[1].split(',')[0].strip('{} ')}"
                                             if len(names) == 2 and names[1] != "others" else f"{first} et al.")
        out[key.group(1).strip()] = f"{who} {year.group(1)}" if year else who
    return out


def cite_names(text: str) -> str:
    """``text`` with every bib key of references.bib replaced by ``Author et al. Year`` (a table
    cell cannot hold a citation role; the chapter cites the same works in its prose)."""
    names = _bib_names()
    return re.sub(r"\b[a-z][a-z0-9_]+\d{4}[a-z0-9_]*\b|\bweatherbench_readme\b",
                  lambda m: names.get(m.group(0), m.group(0)), text)


def cited(text: str) -> str:
    """The works a target's source cites, as ``Author et al. Year`` joined by ``; `` (the
    table's short source; :func:`sources_table` keeps the full text)."""
    names = _bib_names()
    keys = [k for k in re.findall(r"\b[a-z][a-z0-9_]+\d{4}[a-z0-9_]*\b|\bweatherbench_readme\b", text) if k in names]
    return "; ".join(dict.fromkeys(names[k] for k in keys)) or text


def read_realism(profile: str) -> pd.DataFrame:
    """``results/<profile>/data/realism.csv`` with ``attrs["profile"]`` (no rows when absent)."""
    from ..experiments.realism import read_realism as read

    frame = read(profile)
    frame.attrs["profile"] = profile
    return frame


def missing_message(profile: str) -> str:
    return f"no {profile} realism statistics yet — run python -m ecodistill realism --profile {profile}"


def _value(rows: pd.DataFrame, source: str, statistic: str, variable: str) -> float:
    hit = rows[(rows["source"] == source) & (rows["statistic"] == statistic) & (rows["variable"] == variable)]
    return float(hit["value"].iloc[0]) if len(hit) else float("nan")


def _n(rows: pd.DataFrame, source: str, statistic: str, variable: str) -> int:
    hit = rows[(rows["source"] == source) & (rows["statistic"] == statistic) & (rows["variable"] == variable)]
    return int(hit["n"].iloc[0]) if len(hit) else 0


def verdict(value: float, low: float, high: float) -> str:
    """``yes``, ``above`` or ``below`` (a miss, and on which side), or ``–`` (no value or bounds)."""
    if not (np.isfinite(value) and np.isfinite(low) and np.isfinite(high)):
        return "–"
    if value > high:
        return "above"
    if value < low:
        return "below"
    return "yes"


def _fmt(value: float, days: bool = False) -> str:
    """A statistic for the table: whole days for e-folding times, else 3 decimals (10 or more: whole)."""
    if not np.isfinite(value):
        return "–"
    return f"{value:.0f}" if days or abs(value) >= 10 else f"{value:.3f}"


def _row(rows: pd.DataFrame, target: Target) -> dict:
    sim = _SIMULATED_NAME.get(target.variable, target.variable)
    real = target.real if target.real is not None else _value(rows, "real", target.statistic, target.variable)
    low, high, kind = target_bounds(target, real)
    v1, v2 = (_value(rows, w, target.statistic, sim) for w in ("v1", "v2"))
    n_real = _n(rows, "real", target.statistic, target.variable)
    days = "[d]" in target.statistic
    real_text = _fmt(real, days) if np.isfinite(real) else "–"
    if target.real is None and np.isfinite(real):
        real_text += f" ({n_real})"
    target_text = (f"{_fmt(low, days)}–{_fmt(high, days)}" + (" (× 2 of real)" if kind == "x2" else "")
                   if np.isfinite(low) else "× 2 of real (no real value)")
    return {"statistic": _STATISTIC_LABEL.get(target.statistic, target.statistic), "variable": target.variable,
            "real value (n)": real_text, "target": target_text, "v1 (old)": _fmt(v1, days), "v2 (new)": _fmt(v2, days),
            "within target? v1 → v2": f"{verdict(v1, low, high)} → {verdict(v2, low, high)}",
            "source": cited(target.source), "_full_source": cite_names(target.source), "_v1": v1, "_v2": v2, "_low": low, "_high": high,
            "_key": (target.statistic, target.variable), "_verdict_v2": verdict(v2, low, high)}


def realism_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Every target of :data:`TARGETS` judged on ``rows`` (realism.csv): the :data:`COLUMNS`
    and hidden ``_v1, _v2, _low, _high, _key, _verdict_v2`` for the sentences and claims."""
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame([_row(rows, t) for t in TARGETS])


def realism_table(profile: str, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The realism table of the data chapter (:data:`COLUMNS`), or its message when the
    profile's realism.csv is missing."""
    rows = read_realism(profile) if rows is None else rows
    frame = realism_frame(rows)
    if frame.empty:
        return empty_table(COLUMNS, missing_message(profile))
    return labelled(frame[COLUMNS], missing_message(profile))


def sources_table() -> pd.DataFrame:
    """How each target was set: the statistic, the variable and the full source text of
    :data:`TARGETS` (citations as names)."""
    return pd.DataFrame([{"statistic": _STATISTIC_LABEL.get(t.statistic, t.statistic), "variable": t.variable,
                          "how the target was set": cite_names(t.source)} for t in TARGETS])


def further_table(profile: str, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The statistics realism.csv holds beyond :data:`TARGETS`: with a real counterpart they are
    judged by the factor-of-2 rule, without one they are shown for the change v1 → v2."""
    rows = read_realism(profile) if rows is None else rows
    cols = ["statistic", "variable", "real value", "v1 (old)", "v2 (new)", "within × 2 of real? v1 → v2"]
    if rows.empty:
        return empty_table(cols, missing_message(profile))
    listed = {(t.statistic, _SIMULATED_NAME.get(t.variable, t.variable)) for t in TARGETS}
    sim = rows[rows["source"].isin(["v1", "v2"])][["statistic", "variable"]].drop_duplicates()
    out = []
    for statistic, variable in sim.itertuples(index=False):
        if (statistic, variable) in listed or statistic == EXCURSION:  # excursions: excursions_text
            continue
        real = _value(rows, "real", statistic, variable)
        v1, v2 = (_value(rows, w, statistic, variable) for w in ("v1", "v2"))
        low, high = factor_two(real) if np.isfinite(real) else (np.nan, np.nan)
        out.append({"statistic": _STATISTIC_LABEL.get(statistic, statistic), "variable": variable,
                    "real value": _fmt(real), "v1 (old)": _fmt(v1), "v2 (new)": _fmt(v2),
                    "within × 2 of real? v1 → v2": (f"{verdict(v1, low, high)} → {verdict(v2, low, high)}"
                                                    if np.isfinite(real) else "no real value")})
    return labelled(pd.DataFrame(out, columns=cols), missing_message(profile))


def misses(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`realism_frame` that the new world (v2) misses."""
    if frame.empty or "_verdict_v2" not in frame:
        return frame.iloc[0:0]
    return frame[frame["_verdict_v2"].isin(["above", "below"])]


def bias_text(row) -> str:
    """What a miss of the new world biases (:data:`BIASES`, else :data:`GENERIC_BIAS`)."""
    direction = row["_verdict_v2"]
    statistic, variable = row["_key"]
    return BIASES.get((statistic, variable, direction), GENERIC_BIAS.format(direction=f"{direction}"))


def realism_summary(profile: str, rows: pd.DataFrame | None = None) -> dict[str, str | int]:
    """Glue for the data chapter and the Limitations: ``n_targets``, ``n_within_v2``,
    ``n_within_v1`` (of the targets v1 has a value for), ``n_v1``, ``misses_text`` (each miss of
    the new world with its value, its target and what it biases; or that there is none)."""
    rows = read_realism(profile) if rows is None else rows
    frame = realism_frame(rows)
    if frame.empty:
        return {"n_targets": 0, "n_within_v2": 0, "n_within_v1": 0, "n_v1": 0, "misses_text": missing_message(profile)}
    judged_v1 = frame[frame["within target? v1 → v2"].str.split(" → ").str[0] != "–"]
    missed = misses(frame)
    parts = [f"{r['variable']}, {r['statistic']}: {_fmt(r['_v2'])} against {r['target']} — {bias_text(r)}"
             for _, r in missed.iterrows()]
    text = ("; ".join(parts) + ".") if parts else "the new world is within every target."
    text += excursions_text(rows)
    return {"n_targets": len(frame), "n_within_v2": int((frame["_verdict_v2"] == "yes").sum()),
            "n_within_v1": int(judged_v1["within target? v1 → v2"].str.startswith("yes").sum()),
            "n_v1": len(judged_v1), "misses_text": text}


def excursions_text(rows: pd.DataFrame, world: str = "v2") -> str:
    """A sentence on the rare simulated values outside the physical domain (realism.csv's
    :data:`~ecodistill.data.realism.EXCURSION` rows of ``world``), or ``""`` when there are none."""
    hit = rows[(rows["source"] == world) & (rows["statistic"] == EXCURSION)]
    if hit.empty:
        return ""
    parts = [f"{r.variable} {r.value:.1e} ({int(r.n)} values)" for r in hit.itertuples()]
    return (f" The {world} weather also leaves its physical domain, rarely: {', '.join(parts)} of all values lie "
            "outside the range the readers accept in a real ERA5 file (they are kept; a real file with such "
            "values would be refused).")


def world_hashes(rows: pd.DataFrame) -> dict[str, str]:
    """``world -> dataset hash`` of the simulated rows of realism.csv."""
    sim = rows[rows["source"].isin(["v1", "v2"])]
    return dict(zip(sim["source"], sim["dataset_hash"].astype(str)))


#: What each world version simulates, in words (ecodistill.data.world).
WORLD_TEXT = {
    "v1": ("the first world: weather systems that forget most of their state within days; a two-layer "
           "soil bucket of which models see the top 7 cm (swvl1)"),
    "v2": ("the realistic world: longer-lived, travelling weather systems, wet and dry spells, dew point; "
           "four soil layers at ERA5's depths and snow, given to models as a reanalysis estimates them"),
}


def world_table(profile: str, rows: pd.DataFrame | None = None, current: str | None = None) -> pd.DataFrame:
    """The world versions: what each simulates, its dataset hash at ``profile`` (from
    realism.csv) and whether it is the dataset this chapter shows (hash ``current``)."""
    rows = read_realism(profile) if rows is None else rows
    hashes = world_hashes(rows) if len(rows) else {}
    out = [{"world": w, "what it simulates": text, "dataset hash at this profile": hashes.get(w, "–"),
            "shown in this chapter": "yes" if current and hashes.get(w) == current else "no"}
           for w, text in WORLD_TEXT.items()]
    return labelled(pd.DataFrame(out), missing_message(profile))


def world_constants() -> pd.DataFrame:
    """Every constant of the first world's weather and land models, then the constants the second
    world adds or changes (module, constant, value); all of them enter the dataset hash."""
    from ..data import atmosphere, land, vegetation, weather

    rows = [("weather (v1)", k, v) for k, v in weather.WEATHER_PARAMS.items()]
    rows += [("land (v1)", k, v) for k, v in vegetation.LAND_PARAMS.items()]
    rows += [("atmosphere (v2)", k, v) for k, v in atmosphere.ATMOSPHERE_PARAMS.items()
             if weather.WEATHER_PARAMS.get(k) != v]
    rows += [("land (v2)", k, v) for k, v in land.LAND_V2_PARAMS.items() if vegetation.LAND_PARAMS.get(k) != v]
    return pd.DataFrame(rows, columns=["module", "constant", "value"])


def world_numbers() -> dict[str, float | str]:
    """The constants the data chapter's prose quotes (glued, never typed): ``v1_*`` and ``v2_*``."""
    from ..data import atmosphere, land, weather

    v1, v2, lv = weather.WEATHER_PARAMS, atmosphere.ATMOSPHERE_PARAMS, land.LAND_V2_PARAMS
    depths = np.concatenate([[0.0], np.cumsum(land.LAYER_DEPTHS_M)]) * 100
    return {
        "v1_p_tau": v1["p_tau"], "v2_p_tau": v2["p_tau"], "v2_steer_gain": v2["steer_gain"],
        "v2_jet": v2["steer_gain"] * v2["jet_speed"], "v1_T_noise": v1["T_noise"], "v2_T_noise": v2["T_noise"],
        "v1_q_tau": v1["q_tau"], "v2_q_tau": v2["q_tau"], "v2_wet_tau": v2["wet_tau"],
        "v2_layers": ", ".join(f"{a:.0f}–{b:.0f}" for a, b in itertools.pairwise(depths)) + " cm",
        "v2_bias_mean": lv["bias_mean"], "v2_bias_sd": lv["bias_sd"],
        "v2_error_sd": ", ".join(f"{s:g}" for s in lv["error_sd"]),
        "v2_error_days": ", ".join(f"{d:g}" for d in lv["error_days"]), "v2_snow_error": lv["snow_error"],
    }
