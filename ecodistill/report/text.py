"""Computed sentences the chapters quote: what is missing and which command makes it, where
the numbers come from (profile, hardware, seeds), percentages, and the size target.

Reads one file: ``results/<profile>/teacher/teacher.json`` (:func:`hardware_label`); every
other function formats the numbers it is given. Used by chapters 2 to 5
(book/generated/02_teacher.ipynb … 05_pi_timings.ipynb).
"""
from __future__ import annotations

import json

import pandas as pd

from ..utils import results_dir

#: The profile named in messages about a frame that does not say which profile it came from
#: (one read with :func:`ecodistill.store.runs.read_runs` instead of :func:`read_results`).
UNKNOWN_PROFILE = "<profile>"


def matrix_command(profile: str) -> str:
    """The command that makes a profile's student results."""
    return f"python -m ecodistill matrix --profile {profile}"


def no_results_message(profile: str) -> str:
    """The line a chapter shows when ``results/<profile>`` holds no student runs yet."""
    return f"no {profile} results yet — run {matrix_command(profile)}"


def teacher_command(profile: str) -> str:
    """The command that makes a profile's teacher results (at ``full``: the budgeted GPU run)."""
    if profile == "full":
        return "python -m ecodistill gpu-run --budget-s 540 on a GPU"
    return f"python -m ecodistill train-teacher --profile {profile}"


def no_teacher_message(profile: str, what: str = "results") -> str:
    """``no <profile> <what> yet — run <command>``: what a chapter shows without the teacher."""
    return f"no {profile} {what} yet — run {teacher_command(profile)}"


def no_headroom_message(profile: str) -> str:
    """What the headroom table and figure show before the headroom runs exist."""
    gpu = " on a GPU" if profile == "full" else ""
    return (f"no {profile} headroom runs yet — run python -m ecodistill matrix "
            f"--profile {profile} --stages headroom{gpu}")


def hardware_label(profile: str) -> str:
    """Where the teacher ran, from ``results/<profile>/teacher/teacher.json`` (``device``)."""
    path = results_dir(profile) / "teacher" / "teacher.json"
    if not path.is_file():
        return "hardware not recorded (no teacher record)"
    record = json.loads(path.read_text())
    host = str(record.get("host") or record.get("cpu") or "")
    host = host.replace(" (", ", ").replace(")", "")  # one level of brackets in the sentences quoting it
    return f"{record.get('device', 'unknown device')}{f': {host}' if host else ''}"


def seeds_text(seeds: list[int]) -> str:
    """``3 seeds (0, 1, 2)``, ``1 seed (0)`` or ``no seeds``."""
    if not seeds:
        return "no seeds"
    return f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(str(s) for s in seeds)})"


def provenance_text(profile: str, seeds, hardware: str | None = None) -> str:
    """``profile <p>; hardware: <where>; <n> seeds (...)`` for a chapter's numbers
    (``hardware`` defaults to :func:`hardware_label`)."""
    seeds = sorted(int(seed) for seed in seeds)
    return f"profile {profile}; hardware: {hardware or hardware_label(profile)}; {seeds_text(seeds)}"


def pct(share: float) -> str:
    """A share as a percentage: whole numbers, one decimal below 10 % (never "-0%")."""
    return f"{100 * share:.0f}%" if abs(share) >= 0.1 else f"{100 * share:.1f}%"


TARGET_COLUMNS = ["student", "family", "n_params", "params_ratio", "flops_ratio", "retained_skill",
                  "r2_ratio", "keeps_anom", "keeps_r2"]


def target_check(table: pd.DataFrame, method: str | None = None, max_params: float = 0.01,
                 max_flops: float = 0.05) -> pd.DataFrame:
    """The size target of chapter 4's abstract: distilled students with ≤1% of the teacher's
    parameters and ≤5% of its FLOPs per map, and whether they keep ≥90% of its anomaly skill
    above climatology (``keeps_anom``) and ≥97% of its raw R² (``keeps_r2``).

    Args:
        table: :func:`ecodistill.report.student_table`.
        method: keep only this (the validated) distilled setting; None keeps all.
    """
    if table.empty:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    distilled = table[(table["init"] == "distilled") & (1 / table["params_ratio"] <= max_params)
                      & (1 / table["flops_ratio"] <= max_flops)]
    distilled = distilled[distilled["method"] == method] if method else distilled
    return distilled[TARGET_COLUMNS[:-2]].assign(keeps_anom=distilled["retained_skill"] >= 0.9,
                                                 keeps_r2=distilled["r2_ratio"] >= 0.97)


#: What each profile is, for the banner at the top of every chapter.
PROFILE_MEANING = {
    "smoke": "a pipeline check at toy scale (tiny models trained for seconds on two CPU cores): "
             "its numbers are **not results**",
    "cpu": "the reduced-scale fallback (a 32 × 64 grid and a teacher of a few million parameters, "
           "trained on two CPU cores)",
    "full": "the thesis scale (a 64 × 128 grid and a teacher of about 10⁸ parameters, trained on "
            "one GPU)",
}


def profile_banner_text(profile: str) -> str:
    """The Markdown banner of a chapter: which profile's results the page shows."""
    meaning = PROFILE_MEANING.get(profile, f"the `{profile}` profile")
    return (f"```{{note}}\nThis page shows the **`{profile}`** profile: {meaning}. Every number "
            f"and figure on it is read from `results/{profile}/`.\n```")


def profile_banner(profile: str):
    """:func:`profile_banner_text` as a displayable Markdown object (rendered as MyST)."""
    from IPython.display import Markdown

    return Markdown(profile_banner_text(profile))


def commands_table(profile: str) -> pd.DataFrame:
    """Which command makes the results each chapter reads, at ``profile`` (the appendix's
    table; the chapters themselves only name what they need). Columns: ``chapter, makes,
    command``."""
    p = profile
    teacher = teacher_command(p)
    rows = [
        ("The data", "the simulated dataset of the profile (cached; also made on first use)",
         f"python -m ecodistill data build --profile {p}"),
        ("The data", "the baselines: climatology, persistence at 1, 16, 30 days, linear, the ceiling",
         f"python -m ecodistill data baselines --profile {p}"),
        ("The data", "the realism statistics of both worlds beside real data",
         f"python -m ecodistill realism --profile {p}"),
        ("The teacher", "the probe of what pre-training teaches (both variants)",
         f"python -m ecodistill probe --profile {p}"),
        ("The teacher", "the adapted, from-scratch and label-budget teachers and their predictions",
         f"{teacher} --label-budgets 1 3 10" if p != "full" else teacher),
        ("Distillation: one run", "one student run, any loss, alpha or learning rate",
         f"python -m ecodistill distill --profile {p} --loss l1 --alpha 0.75"),
        ("Distilled vs from scratch", ("the selection, the ladder, LightGBM, the final runs, the controls, the "
         "privileged-information case, the nowcast and the memory runs"),
         f"python -m ecodistill matrix --profile {p}" + (" (inside gpu-run on a GPU)" if p == "full" else "")),
        ("Raspberry Pi timings", "latency, FLOPs and bytes of every model on this host",
         f"python -m ecodistill.deploy.bench --profile {p} --threads 1,all --batches 1,8"),
        ("Raspberry Pi timings", "the 0.25° grid (720 × 1440): FourCastNet's shape and the students",
         (f"python -m ecodistill.deploy.bench --profile {p} --grid 720x1440 --runtimes torch --dtypes fp32 "
          "--threads 1 --batches 1 --prune 0 --warmup 1 --max-seconds 60 --min-runs 2 "
          "--models fourcastnet,teacher,<students>")),
        ("Raspberry Pi timings", "test skill of the int8, fp16 and pruned students",
         f"python -m ecodistill compressed-skill --profile {p}"),
        ("Raspberry Pi timings", "the cost of memory: state, FLOPs and latency of every history setting",
         f"python -m ecodistill history-cost --profile {p}"),
        ("Raspberry Pi timings", "the ARM64 check under emulation", f"bash scripts/arm64_check.sh {p}"),
        ("Raspberry Pi timings", "measurements on a Raspberry Pi (run on the Pi)",
         f"python -m ecodistill.deploy.bench --profile {p} --threads 1,all --out results/pi"),
        ("FLUXNET sites", "the real-data benchmark", f"python -m ecodistill fluxnet --profile {p}"),
        ("The book", "every chapter executed, then the site", f"python -m ecodistill book --profile {p}"),
    ]
    return pd.DataFrame(rows, columns=["chapter", "makes", "command"])


def caption_note(profile: str, seeds, hardware: str | None = None) -> str:
    """The end of a figure caption: ``Profile cpu; hardware: cpu: AMD EPYC, 2 cores; 5 seeds (0, 1, 2, 3, 4)``
    (``hardware`` defaults to :func:`hardware_label`)."""
    return f"Profile {profile}; hardware: {hardware or hardware_label(profile)}; {seeds_text(sorted(int(s) for s in seeds))}"


def full_profile_status() -> str:
    """Whether the thesis-scale ``full`` profile has been run, in one sentence for the prose."""
    folder = results_dir("full") / "runs"
    if any(folder.glob("kd-*-final-*.csv")) and any(folder.glob("scratch-*-final-*.csv")):
        return "the full profile has been run; its results are under results/full"
    if (results_dir("full") / "teacher" / "teacher.json").is_file():
        return ("the full profile's teacher has been trained, but its students have not: no full-profile "
                "comparison exists yet")
    return ("the full profile's NDVI experiment (the ~10⁸-parameter teacher on a 64 × 128 grid, which needs a "
            "GPU) has not been run: every NDVI result in this book comes from a reduced-scale profile")


def note(text: str, label: str = "Source") -> object:
    """A provenance or settings line as a wrapped paragraph (Markdown), not a printed line
    that a page at 1,280 px clips: ``*Source:* profile cpu, grid 32x64, …``."""
    body = " ".join(str(text).split()).replace("*", r"\*")
    return markdown(f"*{label}:* {body}" if label else body)


class Markdown:
    """Markdown that displays as both ``text/markdown`` (what ``{glue:md}`` pastes within a
    chapter) and ``text/html`` (what ``{glue:}`` pastes into another page, which cannot take
    Markdown); its plain text is the Markdown itself, so executed chapters stay comparable."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from markdown_it import MarkdownIt

        return f'<div class="ed-glued">{MarkdownIt("commonmark").render(self.text)}</div>'

    def __repr__(self) -> str:
        return self.text


def markdown(text: str) -> Markdown:
    """``text`` as a displayable :class:`Markdown` object (the book parses it as MyST)."""
    return Markdown(text)
