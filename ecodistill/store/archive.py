"""Pack a run's ``results/<profile>/`` into a few checked files, and restore them.

The GPU machine returns at most 8 files of at most 16 MiB each, directly below its output
folder, so ``gpu-run`` ends with :func:`pack_results`: one ``tar.gz`` of the new result
files, split into parts of at most 15 MiB, a manifest with every part's and every file's
SHA-256, and ``gpu_run.json`` (the run's summary). On the user's machine
``python -m ecodistill unpack DIR`` (:func:`unpack`) checks every part against the manifest
and restores the files into ``results/<profile>/``, where the large ones (full-profile
teacher predictions) stay out of git (see ``.gitignore``). Both sides record the project's
commit (:func:`ecodistill.utils.git_commit`). Explained in the README ("The full profile on
a GPU").

Files written into ``out_dir`` (``P`` is the profile)::

    results-P.tar.gz.part00 ... partNN   the archive, split (members named results/P/...)
    results-P.manifest.json              parts (name, bytes, sha256), archive sha256, files
    gpu_run.json                         the summary (also inside the archive, when given)
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from ..utils import atomic_write_json, git_commit, results_dir, sha256_file

FORMAT = "ecodistill-results/1"
MiB = 2**20
SUMMARY_NAME = "gpu_run.json"
_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ArchiveError(ValueError):
    """A results archive that cannot be written or must not be restored (one-line message)."""


def archive_name(profile: str) -> str:
    """``results-<profile>.tar.gz``: the stem of the part files."""
    if not _PROFILE_RE.fullmatch(profile):
        raise ArchiveError(f"profile {profile!r} is not a plain name (letters, digits, '_', '-', '.')")
    return f"results-{profile}.tar.gz"


def manifest_name(profile: str) -> str:
    """``results-<profile>.manifest.json``."""
    return f"results-{profile}.manifest.json"


def _part_name(profile: str, i: int) -> str:
    return f"{archive_name(profile)}.part{i:02d}"


# --------------------------------------------------------------------------- packing
def _timestamp(since: float | datetime | None) -> float | None:
    if since is None or isinstance(since, (int, float)):
        return since
    return since.timestamp()


def _collect(src: Path, since: float | None, skip: set[str]) -> list[tuple[str, Path]]:
    """Regular files under ``src`` (relative POSIX path, path), sorted; temp files left out."""
    if not src.is_dir():
        return []
    found = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_symlink() or not path.is_file() or rel in skip:
            continue
        if path.name.endswith(".tmp") or "__pycache__" in path.parts:  # half-written atomic writes
            continue
        if since is not None and path.stat().st_mtime < since:
            continue
        found.append((rel, path))
    return found


class _PartWriter(io.RawIOBase):
    """A write-only stream cut into files of ``max_bytes``; raises once it needs too many."""

    def __init__(self, folder: Path, names: list[str], max_bytes: int, on_overflow):
        self.folder, self.names, self.max_bytes, self.on_overflow = folder, names, max_bytes, on_overflow
        self.parts: list[dict] = []
        self.total = hashlib.sha256()
        self.size = 0
        self._fh = None
        self._hash = None

    def writable(self) -> bool:
        return True

    def _next(self) -> None:
        self._close_part()
        if len(self.parts) >= len(self.names):
            self.on_overflow(self.size)
        name = self.names[len(self.parts)]
        self._fh, self._hash = open(self.folder / name, "wb"), hashlib.sha256()  # noqa: SIM115
        self.parts.append({"name": name, "bytes": 0, "sha256": ""})

    def _close_part(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self.parts[-1]["sha256"] = self._hash.hexdigest()
            self._fh = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            if self._fh is None or self.parts[-1]["bytes"] >= self.max_bytes:
                self._next()
            room = self.max_bytes - self.parts[-1]["bytes"]
            chunk = view[done:done + room]
            self._fh.write(chunk)
            self._hash.update(chunk)
            self.total.update(chunk)
            self.parts[-1]["bytes"] += len(chunk)
            self.size += len(chunk)
            done += len(chunk)
        return done

    def close(self) -> None:
        if self._fh is None and not self.parts:
            self._next()  # an empty stream still makes one (empty) part
        self._close_part()
        super().close()


def _too_big_message(profile: str, src: Path, files: list[tuple[str, Path]], n_parts: int,
                     max_part_bytes: int, written: int) -> str:
    raw = sum(p.stat().st_size for _, p in files)
    largest = sorted(files, key=lambda f: -f[1].stat().st_size)[:4]
    names = ", ".join(f"{rel} ({p.stat().st_size / MiB:.1f} MiB)" for rel, p in largest)
    return (f"{src} does not fit in {n_parts} parts of {max_part_bytes / MiB:.1f} MiB: "
            f"{len(files)} files, {raw / MiB:.1f} MiB, more than {written / MiB:.1f} MiB compressed; "
            f"leave out the largest ({names}): move them out of results/{profile}/, "
            "or pack only this run's files (since=the run's start)")


def pack_results(profile: str, out_dir: str | Path, since: float | datetime | None = None,
                 max_part_bytes: int = 15 * MiB, max_files: int = 8, summary: dict | None = None,
                 compresslevel: int = 6, leave_out: tuple[str, ...] = ()) -> dict:
    """Pack ``results/<profile>/`` into at most ``max_files`` files directly in ``out_dir``.

    Args:
        profile: the results profile (``results_dir(profile)``, honours ``ECODISTILL_RESULTS``).
        out_dir: where the files go (created; no sub-folders are made). Files already there
            that are not this profile's archive count against ``max_files``; stale parts of
            an earlier pack of the same profile are removed.
        since: only files modified at or after this time (``time.time()`` value or datetime):
            what this run produced. None packs everything.
        max_part_bytes: the largest part (default 15 MiB; the GPU machine returns ≤ 16 MiB).
        max_files: files allowed in ``out_dir`` in all (the GPU machine returns 8).
        summary: the run's summary; written as ``gpu_run.json`` in ``out_dir`` and in the
            archive as ``results/<profile>/gpu_run.json`` (replacing the file there), with
            ``git_commit`` added when absent.
        compresslevel: gzip level.
        leave_out: relative paths (prefixes, e.g. ``"teacher/pred_"``) not to pack.

    Returns:
        The manifest (``format, profile, archive, bytes, sha256, parts: [{name, bytes,
        sha256}], files: [{path, bytes, sha256}], git_commit, created, since``) plus
        ``written``: the paths written into ``out_dir``.

    Raises:
        ArchiveError: the files do not fit in the parts allowed (nothing is written into
            ``out_dir``; the message names the largest files to leave out).
    """
    if max_part_bytes < 1 or max_files < 1:
        raise ArchiveError(f"max_part_bytes ({max_part_bytes}) and max_files ({max_files}) must be positive")
    out_dir = Path(out_dir)
    src = results_dir(profile)
    stem = archive_name(profile)
    commit = git_commit()
    since_ts = _timestamp(since)
    if summary is not None:
        summary = {**summary}
        summary.setdefault("git_commit", commit)
    ours = re.compile(re.escape(stem) + r"\.part\d+|" + re.escape(manifest_name(profile))
                      + ("|" + re.escape(SUMMARY_NAME) if summary is not None else ""))
    others = [p for p in out_dir.iterdir() if p.is_file() and not ours.fullmatch(p.name)] if out_dir.is_dir() else []
    n_parts = max_files - 1 - (summary is not None) - len(others)
    if n_parts < 1:
        raise ArchiveError(f"{out_dir} already holds {len(others)} other files; with the manifest"
                           f"{' and ' + SUMMARY_NAME if summary is not None else ''} that leaves no room "
                           f"for a part within {max_files} files: empty it first")
    files = [(rel, p) for rel, p in _collect(src, since_ts, skip={SUMMARY_NAME} if summary is not None else set())
             if not rel.startswith(tuple(leave_out))]
    entries = [{"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for rel, p in files]
    summary_bytes = (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode() if summary else b""
    if summary is not None:
        entries.append({"path": SUMMARY_NAME, "bytes": len(summary_bytes),
                        "sha256": hashlib.sha256(summary_bytes).hexdigest()})
        entries.sort(key=lambda e: e["path"])

    def overflow(written: int):
        raise ArchiveError(_too_big_message(profile, src, files, n_parts, max_part_bytes, written))

    names = [_part_name(profile, i) for i in range(n_parts)]
    with tempfile.TemporaryDirectory(prefix="ecodistill-pack-") as tmp:
        writer = _PartWriter(Path(tmp), names, max_part_bytes, overflow)
        with gzip.GzipFile(filename="", mode="wb", fileobj=writer, compresslevel=compresslevel, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            by_path = dict(files)
            for entry in entries:
                arcname = f"results/{profile}/{entry['path']}"
                path = by_path.get(entry["path"])  # None: the summary, from memory
                info = tar.gettarinfo(str(path), arcname) if path else tarfile.TarInfo(arcname)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
                if path is None:
                    info.size, info.mtime = len(summary_bytes), int(time.time())
                    tar.addfile(info, io.BytesIO(summary_bytes))
                    continue
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        writer.close()
        manifest = {
            "format": FORMAT, "profile": profile, "archive": stem, "bytes": writer.size,
            "sha256": writer.total.hexdigest(), "parts": writer.parts, "files": entries,
            "git_commit": commit, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "since": None if since_ts is None else datetime.fromtimestamp(since_ts, timezone.utc).isoformat(),
        }
        # everything fits: now (and only now) touch out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(f"{stem}.part*"):
            stale.unlink()
        written = []
        for part in writer.parts:
            shutil.move(str(Path(tmp) / part["name"]), str(out_dir / part["name"]))
            written.append(out_dir / part["name"])
    if summary is not None:
        written.append(atomic_write_json(out_dir / SUMMARY_NAME, summary))
    written.append(atomic_write_json(out_dir / manifest_name(profile), manifest))  # last: marks a complete pack
    return {**manifest, "written": [str(p) for p in written]}


# --------------------------------------------------------------------------- unpacking
def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArchiveError(f"manifest {path} cannot be read: {err}") from None
    keys = {"format", "profile", "archive", "bytes", "sha256", "parts", "files"}
    if not isinstance(manifest, dict) or not keys <= manifest.keys() or manifest["format"] != FORMAT:
        raise ArchiveError(f"manifest {path} is not an {FORMAT} manifest (needs {sorted(keys)})")
    if manifest["archive"] != archive_name(manifest["profile"]):
        raise ArchiveError(f"manifest {path} names archive {manifest['archive']!r}, "
                           f"expected {archive_name(manifest['profile'])!r}")
    return manifest


def _check_parts(folder: Path, manifest: dict) -> list[Path]:
    """Every listed part present with its size and sha256, no extra part, whole archive hash."""
    stem = manifest["archive"]
    listed = [p["name"] for p in manifest["parts"]]
    for name in listed:
        if not re.fullmatch(re.escape(stem) + r"\.part\d+", str(name)):
            raise ArchiveError(f"manifest lists part {name!r}, which is not a part of {stem}")
    extra = sorted(p.name for p in folder.glob(f"{stem}.part*") if p.name not in listed)
    if extra:
        raise ArchiveError(f"part {extra[0]} in {folder} is not listed in the manifest (left from another pack?)")
    total, size, paths = hashlib.sha256(), 0, []
    for part in manifest["parts"]:
        path = folder / part["name"]
        if not path.is_file():
            raise ArchiveError(f"part {part['name']} is missing from {folder}")
        if path.stat().st_size != part["bytes"]:
            raise ArchiveError(f"part {part['name']} is corrupt: {path.stat().st_size} bytes, "
                               f"manifest says {part['bytes']}")
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(MiB), b""):
                h.update(block)
                total.update(block)
        if h.hexdigest() != part["sha256"]:
            raise ArchiveError(f"part {part['name']} is corrupt: sha256 {h.hexdigest()[:12]}…, "
                               f"manifest says {part['sha256'][:12]}…")
        size += part["bytes"]
        paths.append(path)
    if size != manifest["bytes"] or total.hexdigest() != manifest["sha256"]:
        raise ArchiveError(f"archive {stem} does not match its manifest (parts in the wrong order?)")
    return paths


def _safe_members(tar: tarfile.TarFile, profile: str) -> list[tarfile.TarInfo]:
    """The regular-file members, all under ``results/<profile>/``; anything else is refused."""
    root = PurePosixPath("results", profile)
    members = []
    for member in tar.getmembers():
        name = PurePosixPath(member.name)
        if (name.is_absolute() or ".." in name.parts or "\\" in member.name
                or (name != root and root not in name.parents)):
            raise ArchiveError(f"archive member {member.name!r} escapes results/{profile}/: refusing to unpack")
        if member.isdir():
            continue
        if not member.isfile():
            raise ArchiveError(f"archive member {member.name!r} is not a regular file "
                               "(link or device): refusing to unpack")
        members.append(member)
    return members


class _Concat(io.RawIOBase):
    """The parts read back to back as one stream."""

    def __init__(self, paths: list[Path]):
        self._paths, self._fh = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while True:
            if self._fh is None:
                if not self._paths:
                    return 0
                self._fh = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed in readinto/close)
            n = self._fh.readinto(buf)
            if n:
                return n
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()


def _unpack_one(folder: Path, manifest: dict, dest_root: Path) -> list[Path]:
    profile = manifest["profile"]
    parts = _check_parts(folder, manifest)
    expected = {f["path"]: f for f in manifest["files"]}
    dest = dest_root / profile
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest_root))  # same disk: moves are renames
    try:
        return _restore(parts, manifest, expected, tmp, dest)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise ArchiveError(f"archive {manifest['archive']} cannot be restored: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _restore(parts: list[Path], manifest: dict, expected: dict, tmp: Path, dest: Path) -> list[Path]:
    """Decompress into ``tmp``, check members and files, then move them into ``dest``."""
    profile = manifest["profile"]
    with _Concat(parts) as raw, gzip.GzipFile(fileobj=io.BufferedReader(raw), mode="rb") as gz:
        blob = tmp / "archive.tar"
        with open(blob, "wb") as fh:
            shutil.copyfileobj(gz, fh, MiB)
    with tarfile.open(blob, mode="r:") as tar:
        members = _safe_members(tar, profile)
        got = {PurePosixPath(m.name).relative_to("results", profile).as_posix() for m in members}
        if got != set(expected):
            missing, extra = sorted(set(expected) - got), sorted(got - set(expected))
            raise ArchiveError(f"archive {manifest['archive']} holds other files than its manifest "
                               f"(missing {missing[:3]}, extra {extra[:3]})")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp / "x", members=members, **kwargs)
    staged = tmp / "x" / "results" / profile
    for rel, entry in sorted(expected.items()):
        path = staged / rel
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise ArchiveError(f"file {rel} in archive {manifest['archive']} does not match its manifest sha256")
    restored = []
    for rel in sorted(expected):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / rel, target)
        restored.append(target)
    return restored


def unpack(folder: str | Path, dest_root: str | Path | None = None) -> list[Path]:
    """Check and restore every ``results-*.manifest.json`` archive found in ``folder``.

    Args:
        folder: the folder :func:`pack_results` wrote (e.g. what came back from the GPU).
        dest_root: the folder that plays ``results/`` (files go to ``dest_root/<profile>/``);
            default the project's (``ECODISTILL_RESULTS`` when set).

    Returns:
        The restored files, sorted. Each is moved into place from a checked temporary copy,
        so a refused archive changes nothing and no file is ever half-written.

    Raises:
        ArchiveError: a missing, extra or corrupt part, a file that does not match the
            manifest, or a member outside ``results/<profile>/`` (one-line message).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArchiveError(f"{folder} is not a folder")
    manifests = sorted(folder.glob("results-*.manifest.json"))
    if not manifests:
        raise ArchiveError(f"no results-<profile>.manifest.json in {folder}: nothing to unpack")
    checked = [_read_manifest(m) for m in manifests]
    for manifest in checked:  # check every archive before restoring any
        _check_parts(folder, manifest)
    restored = []
    for manifest in checked:
        root = Path(dest_root) if dest_root is not None else results_dir(manifest["profile"]).parent
        restored += _unpack_one(folder, manifest, root)
    return sorted(restored)


# --------------------------------------------------------------------------- CLI
def _cmd_unpack(args: argparse.Namespace) -> int:
    unpack(args.dir, args.dest)
    for manifest in sorted(Path(args.dir).glob("results-*.manifest.json")):
        meta = json.loads(manifest.read_text())
        root = Path(args.dest) if args.dest else results_dir(meta["profile"]).parent
        print(f"restored {len(meta['files'])} files into {root / meta['profile']} "
              f"({meta['bytes'] / MiB:.1f} MiB packed, commit {meta.get('git_commit', 'unknown')})")
    return 0


def _cmd_pack(args: argparse.Namespace) -> int:
    summary = json.loads(Path(args.summary).read_text()) if args.summary else None
    out = pack_results(args.profile, args.out, since=args.since, summary=summary)
    print(f"packed {len(out['files'])} files of results/{args.profile}/ into {len(out['parts'])} parts in {args.out}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``pack`` and ``unpack``."""
    p = subparsers.add_parser("unpack", help="check and restore packed results (what gpu-run returns)",
                              description=unpack.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder with results-<profile>.tar.gz.partNN and results-<profile>.manifest.json")
    p.add_argument("--dest", default=None, help="folder playing results/ (default: the project's)")
    p.set_defaults(func=_cmd_unpack)
    p = subparsers.add_parser("pack", help="pack results/<profile>/ into ≤ 8 checked files (as gpu-run does)")
    p.add_argument("--profile", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--since", type=float, default=None, help="only files modified since this Unix time")
    p.add_argument("--summary", default=None, help="a JSON file to write as gpu_run.json")
    p.set_defaults(func=_cmd_pack)
