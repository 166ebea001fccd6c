"""Build the thesis: execute every chapter notebook with papermill, then the Jupyter Book.

``python -m ecodistill book`` (``--profile auto``, the default) is the project's main job:

0. ``auto`` resolves to the most complete committed profile (:func:`resolve_profile`:
   ``full`` when ``results/full`` holds NDVI student runs, else ``cpu``); at ``smoke`` the
   results the chapters show are computed first when missing (:func:`ensure_results`: the
   teacher, its label-budget teachers, the whole comparison protocol);
1. every notebook that ``_toc.yml`` lists as ``generated/<name>`` is executed from
   ``notebooks/<name>.ipynb`` by papermill with ``-p profile <profile>`` into
   ``book/generated/<name>.ipynb`` (in toc order, each exactly once); code inputs are hidden
   behind a toggle (``hide-input``) and the default parameters cell is removed;
2. the execution record (seconds, status, host) goes to ``book/generated/execution.json``,
   which the appendix renders;
3. at ``cpu`` and ``full`` the executed chapters are copied to the tracked
   ``book/published/<profile>/`` (:func:`publish`): committed with their outputs, they are what
   ``pytest --nbval`` re-executes from the committed results (tests/test_published.py); a
   chapter is rewritten only when what it says changed, so rebuilding from the same results
   leaves the working tree clean;
4. ``jupyter-book build book -W -n --keep-going`` renders the site into ``_build/html``
   with execution off (the chapters are the papermill outputs).

Explained in book/intro.md ("How the book is made").
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .config import LABEL_BUDGETS, PROFILES
from .utils import atomic_write_bytes, atomic_write_json, host_info, repo_root, results_dir

ROOT = repo_root()
NOTEBOOK_DIR = ROOT / "notebooks"
GENERATED_DIR = ROOT / "book" / "generated"
PUBLISHED_DIR = ROOT / "book" / "published"
HTML_DIR = ROOT / "_build" / "html"
#: ``--profile`` choices: a profile, or ``auto`` (:func:`resolve_profile`).
BOOK_PROFILES = ("auto", *PROFILES)
#: Label budgets (years with labels) of the label-budget control, where fewer than all years.


def has_student_results(profile: str) -> bool:
    """True when ``results/<profile>/runs`` holds reported NDVI student runs (``-final-``)."""
    folder = results_dir(profile) / "runs"
    return any(folder.glob("scratch-*-final-*.csv")) and any(folder.glob("kd-*-final-*.csv"))


def resolve_profile(profile: str) -> str:
    """``auto`` -> ``full`` when its student results are committed, else ``cpu``; any other
    profile unchanged."""
    if profile != "auto":
        return profile
    return "full" if has_student_results("full") else "cpu"


def ensure_results(profile: str, what: str = "all") -> float:
    """At ``smoke``, compute what the chapters show when it is missing (resumable: finished
    runs are skipped); at ``cpu``/``full`` nothing (their chapters only read results).

    ``what``: ``teacher`` (the teacher and its from-scratch teachers), ``budgets`` (also the
    label-budget teachers) or ``all`` (also the whole comparison protocol -- selection, ladder,
    trees, final runs, controls, sweep, privileged, nowcast, memory -- the realism check, the
    pre-training probe and the cost of memory). Returns the seconds spent.
    """
    if profile != "smoke":
        return 0.0
    from .config import get_profile
    from .experiments import teacher

    start = time.perf_counter()
    record = teacher.ensure_teacher(profile)
    if what == "teacher":
        return round(time.perf_counter() - start, 2)
    years = get_profile(profile).data.train_years
    budgets = [b for b in LABEL_BUDGETS if b < years[1] - years[0] + 1]
    missing = tuple(b for b in budgets if str(b) not in record.get("label_budget_run_ids", {}))
    if missing:
        teacher.run_teacher_pipeline(profile, label_budgets=missing, stages=("budgets",))
    if what == "all":
        from .deploy.history_cost import history_cost
        from .experiments.probe import probe_path, run_probe
        from .experiments.protocol import run_matrix
        from .experiments.realism import realism_path, run_realism

        run_matrix(profile)
        if not realism_path(profile).is_file():
            run_realism(profile)
        if not probe_path(profile).is_file():
            run_probe(profile)
        if not (results_dir(profile) / "history_cost.csv").is_file():
            history_cost(profile, runs=3)
    return round(time.perf_counter() - start, 2)


def _toc_files(node) -> list[str]:
    """All ``file:`` entries of a (nested) toc structure, in order."""
    out: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(str(node["file"]))
        for key in ("root", "chapters", "parts", "sections"):
            value = node.get(key)
            if key == "root" and isinstance(value, str):
                out.append(value)
            elif isinstance(value, list):
                for child in value:
                    out.extend(_toc_files(child))
    return out


def chapter_notebooks(toc_path: Path | None = None) -> list[str]:
    """Names of the notebooks the toc renders (``generated/<name>`` entries), in toc order."""
    toc = yaml.safe_load((toc_path or ROOT / "_toc.yml").read_text())
    names = [f.split("/", 1)[1] for f in _toc_files(toc) if f.startswith("generated/")]
    missing = [n for n in names if not (NOTEBOOK_DIR / f"{n}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(f"_toc.yml lists generated/{missing[0]} but notebooks/{missing[0]}.ipynb "
                                "does not exist: add the notebook or remove the toc entry")
    # The appendix reports on the others' execution, so it always runs last.
    return sorted(names, key=lambda n: n.startswith("99_"))


def execute_notebook(name: str, profile: str, parameters: dict | None = None,
                     output_dir: Path = GENERATED_DIR) -> dict:
    """Run ``notebooks/<name>.ipynb`` with papermill; return its execution record.

    Raises:
        papermill.PapermillExecutionError: when a cell fails (the output notebook keeps
            the traceback for inspection).
    """
    import papermill as pm

    params = {"profile": profile, **(parameters or {})}
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = {"notebook": name, "profile": profile, "parameters": params, "status": "ok",
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        pm.execute_notebook(
            str(NOTEBOOK_DIR / f"{name}.ipynb"), str(output_dir / f"{name}.ipynb"),
            parameters=params, cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=False,
        )
    except Exception:
        record["status"] = "error"
        raise
    finally:
        record["seconds"] = round(time.perf_counter() - start, 2)
    prepare_for_book(output_dir / f"{name}.ipynb")
    return record


#: Cell metadata papermill and Jupyter add on every run (times, durations): dropped from the
#: chapters so that a re-execution with the same results leaves the committed files unchanged.
VOLATILE_METADATA = ("execution", "papermill")


def prepare_for_book(path: Path) -> None:
    """Make an executed notebook a chapter: remove its ``parameters`` cells (the default one
    and the ``injected-parameters`` one papermill added; the chapter's profile note and the
    appendix say which values were used), hide every other code input behind a toggle
    (``hide-input``), and drop per-run timestamps and random cell ids (a re-execution from the
    same results leaves the committed chapter unchanged)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        tags = list(cell.get("metadata", {}).get("tags", []))
        if "injected-parameters" in tags:
            cell["id"] = "injected-parameters"  # papermill draws a random id on every run
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")  # the page's profile note says which profile it shows
        elif not {"remove-cell", "remove-input", "hide-input"} & set(tags):
            tags.append("hide-input")
        cell.metadata["tags"] = tags
    for key in ("start_time", "end_time", "duration", "input_path", "output_path"):
        nb.metadata.get("papermill", {}).pop(key, None)
    nbformat.write(nb, path)


def run_notebooks(profile: str, only: list[str] | None = None) -> list[dict]:
    """Execute the toc's notebooks (or ``only`` those) and write ``execution.json``; at
    ``smoke``, :func:`ensure_results` first (recorded as ``prepare``)."""
    profile = resolve_profile(profile)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {PROFILES}")
    names = chapter_notebooks()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"--only {unknown}: not chapters of the toc; choose from {names}")
        names = [n for n in names if n in only]
    record_path = GENERATED_DIR / "execution.json"
    previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    records = {r["notebook"]: r for r in previous.get("notebooks", []) if r.get("profile") == profile}
    if profile == "smoke":
        print("[ecodistill book] smoke: computing missing results (teacher, protocol)", flush=True)
        records["prepare"] = {"notebook": "prepare", "profile": profile, "status": "ok",
                              "parameters": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "seconds": ensure_results(profile)}
    for name in names:
        print(f"[ecodistill book] executing {name} (profile={profile})", flush=True)
        try:
            records[name] = execute_notebook(name, profile)
        finally:
            atomic_write_json(record_path, {"profile": profile, "host": host_info(),
                                            "notebooks": list(records.values())})
        print(f"[ecodistill book]   {name}: {records[name]['seconds']:.1f} s", flush=True)
    return list(records.values())


def build_html(strict: bool = True, root: Path = ROOT) -> Path:
    """``jupyter-book build book -W -n --keep-going`` in ``root`` (the repository, or a copy
    made by :func:`build_published`); returns ``<root>/_build/html``.

    Raises:
        RuntimeError: when the build fails or warns (strict mode).
    """
    exe = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    cmd = [exe, "build", "book"] + (["-W", "-n", "--keep-going"] if strict else [])
    shutil.rmtree(root / "_build", ignore_errors=True)  # `jupyter-book clean` ignores a root config
    proc = subprocess.run(cmd, cwd=root, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}); see the log above")
    return root / "_build" / "html"


#: Chapters that report the build (host, versions, commit, seconds), not results: republished
#: only when their cells change, not when the build they report does.
BUILD_RECORDS = ("99_appendix",)
#: Keys of the execution record that change with every build (not with the results).
VOLATILE_RECORD_KEYS = ("host", "seconds", "started")
#: Glued values that time the build (e.g. ``data_seconds``): volatile, like the execution record.
VOLATILE_GLUE = re.compile(r"seconds$")
#: Besides the nbval sanitizers: timestamps that change with every build.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{4}|Z)?")


def sanitizers() -> list[tuple[re.Pattern, str]]:
    """The ``regex``/``replace`` pairs of ``book/published/nbval_sanitize.cfg`` (what nbval
    ignores when it re-executes a published chapter), plus build timestamps."""
    pairs, pattern = [], None
    cfg = PUBLISHED_DIR / "nbval_sanitize.cfg"
    for line in (cfg.read_text().splitlines() if cfg.is_file() else []):
        if line.startswith("regex:"):
            pattern = re.compile(line.split(":", 1)[1].strip())
        elif line.startswith("replace:") and pattern is not None:
            pairs.append((pattern, line.split(":", 1)[1].strip()))
            pattern = None
    return pairs + [(TIMESTAMP, "<time>")]


def chapter_content(path: Path, build_record: bool = False) -> list[dict]:
    """What a published chapter says, without what changes from one build to the next: cell
    types, sources and tags, and (except for build records) every output sanitized as nbval
    sanitizes it; execution counts, build timings glued for the text (:data:`VOLATILE_GLUE`)
    and volatile metadata dropped."""
    nb = json.loads(path.read_text())
    rules = sanitizers()
    out = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        entry = {"type": cell.get("cell_type"), "source": "".join(source) if isinstance(source, list) else source,
                 "tags": sorted(cell.get("metadata", {}).get("tags", []))}
        if cell.get("cell_type") == "code" and not build_record:
            entry["outputs"] = [_output_content(o, rules) for o in cell.get("outputs", [])]
        out.append(entry)
    return out


def _output_content(output: dict, rules: list[tuple[re.Pattern, str]]) -> str:
    """One output as text: texts sanitized, images by their SHA-256 (never scanned by a regex)."""

    def text(value) -> str:
        value = "".join(value) if isinstance(value, list) else str(value)
        for rx, rep in rules:
            value = rx.sub(rep, value)
        return value

    out = {k: v for k, v in output.items() if k not in ("execution_count", "data", "text")}
    glued = output.get("metadata", {}).get("scrapbook", {}).get("name", "")
    if glued and VOLATILE_GLUE.search(glued):
        return json.dumps({"glue": glued, "value": "<seconds>"})
    if "text" in output:
        out["text"] = text(output["text"])
    for mime, value in output.get("data", {}).items():
        if mime.startswith("image/") and mime != "image/svg+xml":
            raw = "".join(value) if isinstance(value, list) else str(value)
            out[mime] = hashlib.sha256(raw.encode()).hexdigest()
        else:
            out[mime] = text(value if isinstance(value, (str, list)) else json.dumps(value, sort_keys=True))
    return json.dumps(out, sort_keys=True)


def _record_content(record: dict) -> dict:
    return {"profile": record.get("profile"),
            "notebooks": [{k: v for k, v in r.items() if k not in VOLATILE_RECORD_KEYS}
                          for r in record.get("notebooks", [])]}


def publish(profile: str) -> Path:
    """Copy the executed chapters of ``profile`` (and their execution record) from
    ``book/generated`` to the tracked ``book/published/<profile>/``: committed with their
    outputs, they are the published site and what nbval re-executes. Not at ``smoke``, whose
    numbers are never results.

    A chapter is written only when what it says changed (:func:`chapter_content`: the nbval
    sanitizers and build timestamps applied; for build records such as the appendix, only
    their cells), and the execution record only when more than its timings and host did: a
    rebuild from the same results leaves the working tree clean (``make book`` then
    ``git status`` shows nothing).
    """
    if profile == "smoke":
        raise ValueError("smoke chapters are never published: build at cpu or full")
    folder = PUBLISHED_DIR / profile
    folder.mkdir(parents=True, exist_ok=True)
    names = chapter_notebooks()
    for name in names:
        src, dst = GENERATED_DIR / f"{name}.ipynb", folder / f"{name}.ipynb"
        record_only = name in BUILD_RECORDS
        if dst.is_file() and chapter_content(src, record_only) == chapter_content(dst, record_only):
            continue
        atomic_write_bytes(dst, src.read_bytes())
    for stale in folder.glob("*.ipynb"):  # chapters no longer in the toc
        if stale.stem not in names:
            stale.unlink()
    record = json.loads((GENERATED_DIR / "execution.json").read_text())
    record["notebooks"] = [r for r in record["notebooks"] if r.get("profile") == profile]
    path = folder / "execution.json"
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is None or _record_content(old) != _record_content(record):
        atomic_write_json(path, record)
    return folder


def build_published(profile: str, workdir: Path, strict: bool = True) -> Path:
    """Build the site from the committed chapters of ``book/published/<profile>/`` without
    executing anything, in a copy of the book under ``workdir`` (the working tree's
    ``book/generated`` and ``_build`` are left alone); returns its HTML folder."""
    folder = PUBLISHED_DIR / profile
    if not folder.is_dir():
        raise FileNotFoundError(f"no published {profile} chapters in {folder}: run "
                                f"`python -m ecodistill book --profile {profile}` first")
    shutil.rmtree(workdir, ignore_errors=True)
    ignore = shutil.ignore_patterns("generated", "published", "_build")
    shutil.copytree(ROOT / "book", workdir / "book", symlinks=True, ignore=ignore)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy2(ROOT / name, workdir / name)
    generated = workdir / "book" / "generated"
    shutil.copytree(folder, generated)
    return build_html(strict, root=workdir)


def build_book(profile: str = "auto", only: list[str] | None = None, html: bool = True) -> Path:
    """Execute the chapters at ``profile`` (``auto``: :func:`resolve_profile`), publish them
    at ``cpu``/``full`` (:func:`publish`, whole builds only) and build the site; returns
    ``_build/html``."""
    profile = resolve_profile(profile)
    run_notebooks(profile, only)
    if profile != "smoke" and not only:
        print(f"[ecodistill book] published: {publish(profile)}", flush=True)
    return build_html() if html else GENERATED_DIR


def missing_data_box(what: str, problem: str, how: str | None = None):
    """One clear box for a chapter whose data is absent: what is missing, why, how to get it
    (an HTML admonition, styled by the book's theme; plain text where HTML is not shown). The
    chapter then shows no figure that would be empty.

    Args:
        what: the data set (e.g. ``"CARDAMOM-FluxVal v1.0"``).
        problem: what was not found (e.g. the reader's error message, which may say how to get it).
        how: how to get it, when ``problem`` does not say.
    """
    import html

    from IPython.display import HTML

    class Box(HTML):
        def __repr__(self) -> str:  # the text/plain form (nbval compares it)
            return f"Data missing: {what}. {problem}" + (f" How to get it: {how}" if how else "")

    body = (f'<div class="admonition warning"><p class="admonition-title">Data missing: {html.escape(what)}</p>'
            f"<p>{html.escape(problem)}</p>"
            + (f"<p><b>How to get it:</b> {html.escape(how)}</p>" if how else "") + "</div>")
    return Box(body)


def _cmd_book(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = build_book(args.profile, args.only, html=not args.no_html)
    print(f"[ecodistill book] done in {time.perf_counter() - start:.0f} s "
          f"(profile {resolve_profile(args.profile)}): open {out / 'index.html'}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``book``: execute the chapters with papermill and build the Jupyter Book."""
    p = subparsers.add_parser("book", help="execute the chapter notebooks and build the book",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="auto", choices=BOOK_PROFILES,
                   help="which results the chapters render (default auto: full when its results are "
                        "committed, else cpu; smoke computes its own on the fly)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="execute only these chapters (e.g. 02_data)")
    p.add_argument("--no-html", action="store_true", help="execute the notebooks but skip the HTML build")
    p.set_defaults(func=_cmd_book)
