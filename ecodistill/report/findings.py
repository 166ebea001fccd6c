"""The book's findings as sentences computed from the result tables: the abstract, where
distillation helps and where not (per student size, per label budget, against its teacher-free
twin), on FLUXNET, the speed/skill trade-off, and the limitations of this build.

Nothing here reads a file: each function takes the tables of chapters 4-6
(:func:`~ecodistill.report.summary_numbers`, :func:`~ecodistill.report.contrasts`, the FLUXNET
paired tables) and returns Markdown that the chapters glue and the abstract and conclusions
paste. Rules for what is printed as a finding:

- every difference is arm − reference (distilled − scratch; :data:`SIGN_CONVENTION`), printed
  signed, and the verb agrees with the sign ("lowers the test RMSE: ΔRMSE = −2.80 …");
- an effect is "resolved" only when its 95% interval (two-way cluster bootstrap over seeds and
  biomes, :func:`~ecodistill.report.paired.paired_difference`) excludes zero; otherwise the
  sentence says the interval holds zero;
- retained skill is printed only where the teacher's anomaly skill above climatology is at
  least :data:`MIN_TEACHER_SKILL` (a ratio over a near-zero or negative denominator breaks
  down), and "gap closed" only where the gap is resolvable (chapter 4);
- at the ``smoke`` profile every text says that its numbers are a pipeline check, not findings.

Explained in book/generated/04_results.ipynb ("Findings") and book/conclusions.md.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .pretraining import pretraining_text
from .summary import fmt, fmt_diff, fmt_dr2
from .text import Markdown, markdown  # noqa: F401  (re-exported: report.findings.markdown)

#: Smallest teacher anomaly skill above climatology over which retained skill is a ratio worth printing.
MIN_TEACHER_SKILL = 0.05
SMOKE_NOTE = ("This build shows the **smoke** profile: tiny models trained for seconds on two CPU "
              "cores to check that the pipeline runs. Its numbers are not findings; every sentence "
              "below is computed the same way as at the `cpu` and `full` profiles, and only shows "
              "that the machinery works.")


def is_smoke(profile: str) -> bool:
    return profile == "smoke"


def profile_note(profile: str, teacher_params: float = float("nan")) -> str:
    """The first sentence of the abstract: which profile this build shows and what it means."""
    if is_smoke(profile):
        return SMOKE_NOTE
    scale = {"cpu": "the reduced-scale `cpu` profile (the labelled fallback when no GPU is at hand)",
             "full": "the thesis-scale `full` profile"}.get(profile, f"the `{profile}` profile")
    teacher = (f" with a teacher of {fmt('params', teacher_params)} parameters"
               if np.isfinite(teacher_params) else "")
    return f"This build shows {scale}{teacher}; every number below is read from its result files."


def effect(r) -> str:
    """What an arm does to the test RMSE, from a row with ``diff, ci_low, ci_high`` (arm −
    reference, :data:`SIGN_CONVENTION`) and, when present, ``d_r2_anom`` with its interval:
    ``lowers the test RMSE: ΔRMSE = −2.80 [−5.10, −1.10] ×10⁻³, an interval below zero; ΔR² of
    anomalies +0.021 [+0.004, +0.035]``. The verb follows the interval, the sign the number."""
    diff, low, high = float(r["diff"]), float(r["ci_low"]), float(r["ci_high"])
    text = f"ΔRMSE = {fmt_diff(diff, low, high)} ×10⁻³"
    if high < 0:
        out = f"lowers the test RMSE: {text}, an interval below zero"
    elif low > 0:
        out = f"raises the test RMSE: {text}, an interval above zero"
    else:
        out = f"makes no resolvable difference to the test RMSE: {text}, an interval that holds zero"
    if "d_r2_anom" in r and np.isfinite(r["d_r2_anom"]):
        out += f"; ΔR² of anomalies {fmt_dr2(r['d_r2_anom'], r.get('d_r2_anom_low', np.nan), r.get('d_r2_anom_high', np.nan))}"
    return out


def size_findings(numbers: pd.DataFrame) -> list[str]:
    """One sentence per student size from :func:`~ecodistill.report.summary_numbers`."""
    out = []
    for _, r in numbers[numbers["student"] != "teacher"].iterrows():
        out.append(f"`{r['student']}` ({fmt('params', r['n_params'])} parameters): distillation "
                   f"{effect(r)}; anomaly R² {fmt('r2', r['r2_anom_scratch'])} (scratch) and "
                   f"{fmt('r2', r['r2_anom_distilled'])} (distilled); Wilcoxon p = {fmt('p', r['p_value'])} "
                   f"over {int(r['n_pairs'])} seeds.")
    return out


def teacher_finding(numbers: pd.DataFrame) -> str:
    """Whether the teacher is more skilful than the tuned scratch students (is there anything to
    distil?): the teacher's test anomaly R² against the best scratch student's (seed mean)."""
    sizes = numbers[numbers["student"] != "teacher"].dropna(subset=["r2_anom_scratch"])
    teacher = numbers[numbers["student"] == "teacher"]
    if sizes.empty or teacher.empty:
        return ""
    best = sizes.loc[sizes["r2_anom_scratch"].idxmax()]
    t = float(teacher["r2_anom_distilled"].iloc[0])
    above = int((sizes["r2_anom_scratch"] >= t).sum())
    if above:
        verdict = (f"the tuned scratch students match or beat it at {above} of {len(sizes)} sizes (best: "
                   f"`{best['student']}`, {fmt('r2', best['r2_anom_scratch'])}), so at this profile the "
                   "teacher has no skill beyond theirs to pass on")
    else:
        verdict = (f"every tuned scratch student stays below it (best: `{best['student']}`, "
                   f"{fmt('r2', best['r2_anom_scratch'])}), so there is skill to distil")
    return f"The teacher's test anomaly R² is {fmt('r2', t)}; {verdict}."


def stronger_teacher_text(numbers: pd.DataFrame, scratch_teachers: dict[str, float]) -> str:
    """Whether a from-scratch teacher (``label -> test anomaly R²``, e.g. ``{"scratch": ..,
    "scratch, 2x steps": ..}``) beats both the adapted teacher and every scratch student: then a
    stronger teacher exists at this size than the one distilled. Empty otherwise."""
    known = {k: v for k, v in scratch_teachers.items() if np.isfinite(v)}
    teacher = numbers[numbers["student"] == "teacher"]
    sizes = numbers[numbers["student"] != "teacher"].dropna(subset=["r2_anom_scratch"])
    if not known or teacher.empty or sizes.empty:
        return ""
    label, best = max(known.items(), key=lambda kv: kv[1])
    adapted, students = float(teacher["r2_anom_distilled"].iloc[0]), float(sizes["r2_anom_scratch"].max())
    if best <= max(adapted, students):
        return ""
    how = "at twice the steps" if "2x" in label else "at its searched learning rate"
    return (f"A stronger teacher exists at this size: the same architecture trained from scratch {how} "
            f"reaches {fmt('r2', best)} (one seed), above the adapted teacher ({fmt('r2', adapted)}) and every "
            f"scratch student (best {fmt('r2', students)}); distilling from it has not been run.")


def spread_findings(pairs: pd.DataFrame) -> list[str]:
    """Where distillation changes the spread of test RMSE over seeds by at least a factor of 2."""
    out = []
    for _, p in pairs.iterrows():
        if np.isfinite(p["std_scratch"]) and np.isfinite(p["std_distilled"]) and p["std_distilled"] > 0:
            ratio = p["std_scratch"] / p["std_distilled"]
            if ratio >= 2 or ratio <= 0.5:
                word = "narrower" if ratio >= 2 else "wider"
                out.append(f"`{p['student']}`: the seed spread of the distilled student's test RMSE is "
                           f"{fmt('speedup', max(ratio, 1 / ratio))} {word} than the scratch student's "
                           f"({p['std_distilled'] * 1e3:.2f} vs {p['std_scratch'] * 1e3:.2f} ×10⁻³).")
    return out


def _contrast(contrasts: pd.DataFrame, name: str) -> pd.Series | None:
    rows = contrasts[contrasts["contrast"] == name] if len(contrasts) else contrasts
    return rows.iloc[0] if len(rows) else None


def control_findings(contrasts: pd.DataFrame, student: str) -> list[str]:
    """What the teacher adds beyond the distilled arm's own settings, the extra years,
    denoising, and whether the verdict holds at twice the epochs, at the headline size (from
    :func:`~ecodistill.report.contrasts`)."""
    out = []
    texts = {"distilled vs teacher-free twin": "against its teacher-free twin (the same loss, learning "
                                               "rate and steps with alpha 0 and no extra years), distillation",
             "teacher-free twin vs scratch": "the teacher-free twin against the scratch arm",
             "extra years": "adding the teacher-labelled extra years (distilled with vs without them)",
             "distilled vs noise-free scratch": "against a scratch student trained on the noise-free "
                                                "targets, distillation",
             "distilled vs scratch, twice the epochs": "with both arms trained for twice the epochs, "
                                                       "distillation",
             "scratch: twice the epochs": "twice the epochs, for the scratch arm,",
             "distilled: twice the epochs": "twice the epochs, for the distilled arm,"}
    for name, text in texts.items():
        c = _contrast(contrasts, name)
        if c is not None and bool(c.get("identical", False)):
            out.append(f"At `{student}`, the two sides of \"{name}\" are identical runs (the same loss, "
                       "learning rate and steps): this contrast adds no separate evidence.")
        elif c is not None:
            out.append(f"At `{student}`, {text} {effect(c)}; Wilcoxon p = {fmt('p', c['p_value'])} over "
                       f"{int(c['n_pairs'])} seeds.")
    return out


def budget_findings(contrasts: pd.DataFrame, all_years: int) -> list[str]:
    """Per label budget: distilled from the teacher of all labels vs scratch (a foundation
    model usually saw more labels than its student: the realistic case) and from a teacher
    adapted on the same restricted labels vs scratch (does distillation help when the teacher
    has no more labels than the student?)."""
    out = []
    rows = contrasts[contrasts["label_years"].notna()] if len(contrasts) else contrasts
    for years, group in rows.groupby("label_years"):
        parts = []
        for _, c in group.iterrows():
            who = ("from the teacher of all labels" if "all-label" in c["contrast"]
                   else "from a teacher adapted on the same labelled years")
            parts.append(f"distillation {who} {effect(c)}")
        out.append(f"With {int(years)} of {all_years} training years labelled, " + "; ".join(parts) + ".")
    return out


def retained_finding(table: pd.DataFrame, student: str, s_clim: float) -> str:
    """Retained anomaly skill of ``student`` (distilled and scratch), or why it is not printed."""
    teacher = table[table["student"] == "teacher"]
    mine = table[(table["student"] == student) & table["init"].isin(["scratch", "distilled"])]
    if teacher.empty or mine.empty:
        return ""
    skill = float(teacher["r2_anom_mean"].iloc[0]) - s_clim
    if not np.isfinite(skill) or skill < MIN_TEACHER_SKILL:
        return (f"Retained skill is not reported: the teacher's anomaly R² above climatology is "
                f"{fmt('r2', skill)}, too small a denominator for the ratio to mean anything.")
    by = mine.groupby("init")["retained_skill"].first()
    return (f"At `{student}` the distilled student keeps {fmt('r2', by.get('distilled', np.nan))} of the "
            f"teacher's anomaly skill above climatology, the scratch student "
            f"{fmt('r2', by.get('scratch', np.nan))}.")


def speed_finding(numbers: pd.DataFrame) -> str:
    """The speed/skill trade-off: the fastest student and the most skilful distilled one,
    each with its speed-up over the teacher and its anomaly R² against the teacher's."""
    students = numbers[(numbers["student"] != "teacher") & numbers["speedup"].notna()]
    teacher = numbers[numbers["student"] == "teacher"]
    if students.empty or teacher.empty:
        return ("No student has both a test skill and a latency yet, so no speed-up is stated beside a skill "
                "(the latencies of the architectures alone are in the timings chapter).")
    fast = students.loc[students["speedup"].idxmax()]
    best = students.loc[students["r2_anom_distilled"].idxmax()]
    t = teacher.iloc[0]
    text = (f"On the bench host (one thread, PyTorch fp32), the fastest distilled student, "
            f"`{fast['student']}`, runs {fmt('speedup', fast['speedup'])} faster than the teacher "
            f"at anomaly R² {fmt('r2', fast['r2_anom_distilled'])} (teacher {fmt('r2', t['r2_anom_distilled'])})")
    if best["student"] != fast["student"]:
        text += (f"; the most skilful, `{best['student']}`, runs {fmt('speedup', best['speedup'])} faster at "
                 f"{fmt('r2', best['r2_anom_distilled'])}")
    return text + ". Raspberry Pi latencies are projected (chapter 5), not measured."


def _range(values: pd.Series, fmt_spec: str = "+.3f") -> str:
    """``+0.009 to +0.010`` (true minus signs), or one value when the range is a single number."""
    low, high = (f"{v:{fmt_spec}}".replace("-", "−") for v in (values.min(), values.max()))
    return low if low == high else f"{low} to {high}"


def _sizes(n: int, of: int) -> str:
    """``at 1 of 3 sizes`` / ``at none of the 3 sizes``."""
    return f"at {n} of {of} sizes" if n else f"at none of the {of} sizes"


def fluxnet_findings(pairs: pd.DataFrame, unlabeled: pd.DataFrame, level: float = 0.05) -> list[str]:
    """Per FLUXNET target: at how many student sizes each distilled arm beats or trails
    scratch (Wilcoxon p < ``level`` over seed x fold pairs; differences distilled − scratch in
    test R², positive: distillation helps), and what the teacher's labels on the unlabelled
    months add (``kd-mse-unlabeled`` − ``kd-mse``), sign and significance."""
    out = []
    if pairs is None or pairs.empty:
        return ["No FLUXNET results for this profile yet."]
    for target, group in pairs.groupby("target"):
        parts, quiet, changes = [], [], []
        for arm, g in group.groupby("arm"):
            better = int(((g["mean_diff"] > 0) & (g["p_value"] < level)).sum())
            worse = int(((g["mean_diff"] < 0) & (g["p_value"] < level)).sum())
            changes.append(f"{arm} {_range(g['mean_diff'])}")
            if better or worse:
                parts.append(f"{arm} beats scratch {_sizes(better, len(g))} and trails it {_sizes(worse, len(g))}")
            else:
                quiet.append(arm)
        if quiet:
            n = int(group.groupby("arm").size().max())
            parts.insert(0, f"{' and '.join(quiet)} differ{'s' if len(quiet) == 1 else ''} from scratch at none of "
                            f"the {n} student sizes (Wilcoxon p < {level} on test R²)")
        parts[0] += f", with mean test-R² changes (distilled − scratch) of {' and '.join(changes)}"
        line = f"{target.upper()}: " + "; ".join(parts)
        mine = unlabeled[unlabeled["target"] == target] if len(unlabeled) else unlabeled
        if len(mine):
            sig = mine[mine["p_value"] < level]
            if sig.empty:
                line += ("; the teacher's labels on unlabelled months change test R² by "
                         f"{_range(mine['mean_diff'])}, significant at no size")
            else:
                signs = sorted({"raise" if d > 0 else "lower" for d in sig["mean_diff"]})
                line += (f"; the teacher's labels on unlabelled months significantly {' or '.join(signs)} "
                         f"test R² {_sizes(len(sig), len(mine))}, by {_range(sig['mean_diff'])}")
        out.append(line + ".")
    return out


def longer_text(contrasts: pd.DataFrame | None) -> str:
    """The verdict read again with both arms at twice the epochs (the ``distilled vs scratch,
    twice the epochs`` contrast); empty without those runs."""
    c = _contrast(contrasts, "distilled vs scratch, twice the epochs") if contrasts is not None else None
    if c is None:
        return ""
    return (f" With both arms trained for twice the epochs over {int(c['n_pairs'])} seeds, distillation "
            f"{effect(c)}.")


def bullets(lines: list[str]) -> str:
    """Markdown bullet list (``- none`` for no lines)."""
    return "\n".join(f"- {line}" for line in lines) if lines else "- none"


def abstract(profile: str, cfg, numbers: pd.DataFrame, contrasts: pd.DataFrame,
             teacher_params: float, n_seeds: int, stronger: str = "") -> str:
    """The abstract (Markdown): question, set-up, per-size verdict counts with the sizes where
    distillation helps (effect and interval), whether the teacher is worth distilling (and
    ``stronger``, :func:`stronger_teacher_text`), the teacher-free control, the verdict at twice
    the epochs, the label budget, and speed; at ``smoke``, the same preceded by
    :data:`SMOKE_NOTE`."""
    sizes = numbers[numbers["student"] != "teacher"]
    head = ("Can a small network distilled from an atmospheric model adapted to vegetation beat "
            "the same network trained from scratch? A FourCastNet-style AFNO teacher, pre-trained "
            f"to forecast {pretraining_text(cfg)} and adapted to NDVI, is distilled into small AFNO, U-Net and MLP "
            "students; each is compared seed by seed with the same architecture trained from "
            "scratch, each arm with its own tuned loss and learning rate, equal trial counts and "
            "equal optimizer steps.")
    if sizes.empty:
        body = f"No student results exist at the `{profile}` profile yet."
    else:
        counts = sizes["verdict"].value_counts()
        body = (f"Over {n_seeds} seeds, with 95% intervals from a bootstrap that resamples seeds and biomes, "
                f"distillation lowers the test RMSE (an interval of ΔRMSE = distilled − "
                f"scratch below zero) at {int(counts.get('helps', 0))} of {len(sizes)} student sizes, raises it "
                f"at {int(counts.get('hurts', 0))}, and makes no resolvable difference at "
                f"{int(counts.get('unresolved', 0))}.")
        for verdict, verb in (("helps", "It helps at"), ("hurts", "It hurts at")):
            rows = sizes[sizes["verdict"] == verdict]
            if len(rows):
                body += f" {verb} " + "; ".join(
                    f"`{r['student']}` (ΔRMSE {fmt_diff(r['diff'], r['ci_low'], r['ci_high'])} ×10⁻³, "
                    f"ΔR² of anomalies {fmt_dr2(r['d_r2_anom'], r['d_r2_anom_low'], r['d_r2_anom_high'])})"
                    for _, r in rows.iterrows()) + "."
    teacher = teacher_finding(numbers)
    if teacher:
        body += " " + teacher
    if stronger:  # stronger_teacher_text: a better teacher than the one distilled exists
        body += " " + stronger
    twin = _contrast(contrasts, "distilled vs teacher-free twin")
    if twin is not None:
        body += (" At the headline size, against a teacher-free twin with the distilled arm's own settings, "
                 f"distillation {effect(twin)}.")
    body += longer_text(contrasts)
    budget = contrasts[contrasts["label_years"].notna()] if len(contrasts) else contrasts
    if len(budget):
        fewest = budget[budget["label_years"] == budget["label_years"].min()]
        years = int(fewest["label_years"].iloc[0])
        parts = [f"{fmt_diff(c['diff'], c['ci_low'], c['ci_high'])} ×10⁻³ with "
                 f"{'a teacher of all labels' if 'all-label' in c['contrast'] else 'a teacher of the same labels'}"
                 for _, c in fewest.iterrows()]
        body += (f" With {years} labelled year{'s' if years > 1 else ''}, ΔRMSE (distilled − scratch) is "
                 + " and ".join(parts) + ".")
    body += " " + speed_finding(numbers)
    note = profile_note(profile, teacher_params)
    return "\n\n".join([note, head + " " + body])


#: Keys of :func:`ecodistill.report.headline` whose values are Markdown (glued as such).
MARKDOWN_KEYS = ("abstract", "profile_note", "findings_sizes", "findings_spread", "findings_controls",
                 "findings_budget", "finding_speed", "finding_teacher", "retained_finding", "limitations")
