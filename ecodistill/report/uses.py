"""Which data a model sees and which use it answers: the input sets, the history settings and
the references of each use (the data chapter; the results chapter quotes them).

* **Input sets** (:data:`ecodistill.data.schema.INPUT_SETS`): ``anchor`` is FourCastNet's
  atmosphere only (Janetzky et al. 2024), ``era5`` adds the land state as ERA5 gives it.
* **History settings** (:data:`ecodistill.config.HISTORY`): how much of the past a model sees,
  its input channels at a profile and the state a device keeps per pixel between days.
* **Uses** (:func:`ecodistill.report.frames.use_name`): *emulation* -- no NDVI is observed, the
  references are the climatology, the linear model and LightGBM on the same inputs; *nowcast
  with latency L* -- NDVI observed at least L days before is available, the reference is
  persistence at the same latency; the simulator's *ceiling* (noise-free and Bayes NDVI) bounds
  both. :func:`reference_table` puts them side by side from the baseline runs.

Reads baseline rows given to it (and the profile config); builds no data. Explained in
book/generated/02_data.ipynb ("From data to model inputs", "How hard is the task?").
"""
from __future__ import annotations

import pandas as pd

from ..config import HISTORY, DataConfig, get_profile, to_dict, with_history
from .frames import data_variant, empty_table, labelled, select_variant, use_name, wide, with_variants

#: What each history setting gives a model, in words.
HISTORY_TEXT = {
    "today": "today's fields only (FourCastNet's n_history 0, as Janetzky et al. 2024)",
    "short": "today and trailing means over the last weeks (the first world's inputs)",
    "long": "today and trailing means up to a year",
    "stack": "today and the raw fields of the last few days (FourCastNet-style n_history stacking)",
    "sequence": "today and a raw sequence of past days, subsampled",
    "recurrent": "today and per-pixel leaky integrators of every field (a recurrent state of a few numbers)",
}
#: What each input set holds, in words.
INPUT_TEXT = {"anchor": "the atmosphere only, as FourCastNet sees it",
              "era5": "the atmosphere and the land state as ERA5 gives it (soil water in four layers, snow)",
              "v1": "the first world's inputs: the atmosphere and the top soil layer"}
#: The references of each use, in the order the tables list them: ``(use, method, label)``.
REFERENCES = (
    ("emulation", "climatology", "climatology of the training years"),
    ("emulation", "linear", "linear (ridge) on the same inputs"),
    ("emulation", "lightgbm", "LightGBM on the same inputs"),
    ("nowcast L=1", "persistence", "persistence, latency 1 day"),
    ("nowcast L=16", "persistence-16d", "persistence, latency 16 days"),
    ("nowcast L=30", "persistence-30d", "persistence, latency 30 days"),
    ("ceiling", "ceiling-noise-free", "noise-free NDVI (the simulator's truth)"),
    ("ceiling", "ceiling-bayes", "Bayes predictor (truth minus the expected cloud bias)"),
)
REFERENCE_COLUMNS = ["use", "reference", "NDVI it sees", "test R²", "test anomaly R²", "test RMSE"]


def _window(cfg: DataConfig) -> str:
    steps, stride = cfg.history_stack
    parts = []
    if cfg.history_windows:
        parts.append("means over " + ", ".join(f"{w}" for w in cfg.history_windows) + " days")
    if steps:
        parts.append(f"the last {steps} days" if stride == 1 else
                     f"{steps} past days, {stride} days apart (back {steps * stride} days)")
    if cfg.history_ema:
        parts.append("integrators with time constants " + ", ".join(f"{t:g}" for t in cfg.history_ema) + " days")
    return "; ".join(parts) or "none"


def history_table(profile: str, inputs: str | None = None) -> pd.DataFrame:
    """One row per history setting: what it gives, its past, the input channels at
    ``profile`` (with the profile's input set, or ``inputs``) and the state a device keeps per
    pixel between days (fp32; :func:`ecodistill.data.history.state_bytes_per_pixel`)."""
    from dataclasses import replace

    from ..data.history import state_bytes_per_pixel
    from ..data.prepare import input_channel_names, input_vars

    base = get_profile(profile).data
    base = replace(base, inputs=inputs) if inputs else base
    rows = []
    for name in HISTORY:
        cfg = with_history(base, name)
        rows.append({"history": name, "what the model sees": HISTORY_TEXT.get(name, name), "past": _window(cfg),
                     "input channels": len(input_channel_names(cfg)),
                     "state per pixel (bytes)": state_bytes_per_pixel(cfg, len(input_vars(cfg)))})
    return pd.DataFrame(rows)


def input_table() -> pd.DataFrame:
    """The input sets: name, what they hold, their dynamic variables (ERA5 names)."""
    from ..data.schema import INPUT_SETS

    return pd.DataFrame([{"input set": name, "what it holds": INPUT_TEXT.get(name, name),
                          "dynamic variables": ", ".join(variables)} for name, variables in INPUT_SETS.items()])


def lag_table(latencies: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Which NDVI a model may use in which use, and the reference it must beat there."""
    from ..data.baselines import LATENCIES

    latencies = latencies or (1, *LATENCIES)
    rows = [{"use": "emulation", "NDVI a model may use": "none: no NDVI is observed (past years, scenarios, "
             "gaps longer than a season)", "reference to beat": "climatology, linear, LightGBM on the same inputs"}]
    rows += [{"use": f"nowcast L={lat}", "NDVI a model may use": f"the last NDVI observed at least {lat} "
              f"day{'s' if lat > 1 else ''} before, and its age", "reference to beat": "persistence of that "
              "same observation"} for lat in latencies]
    return pd.DataFrame(rows)


def reference_rows(rows: pd.DataFrame, data: DataConfig | None = None) -> pd.DataFrame:
    """The baseline rows of ``rows`` (tidy result rows, ``attrs["profile"]`` set) at the data
    variant of ``data`` (default: the profile's own), with the :data:`~.frames.VARIANT`
    columns: methods that read the inputs (linear, LightGBM) exist once per variant."""
    profile = rows.attrs.get("profile")
    data = data or get_profile(profile).data
    base = rows[rows["kind"] == "baseline"].copy()
    base.attrs = dict(rows.attrs)
    return select_variant(with_variants(base), data_variant(to_dict(data)))


def reference_table(rows: pd.DataFrame, data: DataConfig | None = None) -> pd.DataFrame:
    """The references of every use (:data:`REFERENCES`) at the variant of ``data``: test R²,
    anomaly R² and RMSE (deterministic: one run each; ``–`` where the run does not exist)."""
    profile = rows.attrs.get("profile", "<profile>")
    missing = (f"no {profile} baselines yet — run python -m ecodistill matrix --profile {profile} "
               "(or open the data chapter at smoke)")
    if rows.empty:
        return empty_table(REFERENCE_COLUMNS, missing)
    w = wide(reference_rows(rows, data))
    out = []
    for use, method, text in REFERENCES:
        hit = w[w["method"] == method]
        if hit.empty:
            continue
        m = hit.mean(numeric_only=True)
        sees = ("none" if use == "emulation" else "the truth" if use == "ceiling"
                else f"observed ≥ {use.split('=')[1]} d before")
        out.append({"use": use, "reference": text, "NDVI it sees": sees, "test R²": m.get("r2", float("nan")),
                    "test anomaly R²": m.get("r2_anom", float("nan")), "test RMSE": m.get("rmse", float("nan"))})
    return labelled(pd.DataFrame(out, columns=REFERENCE_COLUMNS), missing)


def reference_skill(table: pd.DataFrame) -> dict[str, float]:
    """``method -> test anomaly R²`` of :func:`reference_table` (for glue and the claims)."""
    by_label = {text: method for _, method, text in REFERENCES}
    return {by_label[r]: float(v) for r, v in zip(table["reference"], table["test anomaly R²"]) if r in by_label}


__all__ = ["HISTORY_TEXT", "INPUT_TEXT", "REFERENCES", "history_table", "input_table", "lag_table",
           "reference_rows", "reference_skill", "reference_table", "use_name"]
