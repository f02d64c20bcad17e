"""Output directories and files: collide replaces only what it wrote, and knows that by a marker.

Every command that writes a directory (`prepare`, `train`, `export`) or files into one
(`pareto`, `sweep --results-dir`) follows one rule:

- a directory that does not exist, or is empty, is written;
- a directory holding collide's marker `.collide-output.json` of the same kind is replaced
  atomically: the new content is staged in a sibling directory, the old one is moved aside,
  the new one renamed into place, and only then is the old one removed;
- anything else is refused with `OutputDirError`, which names the directory and says what
  to do. So is a directory that contains the working directory or an input file.

Staging directories are named `.{name}.collide-staging.{host}-{pid}.{hex}` and hold a
marker from their first moment, so a later call on the same host removes the ones whose
process is gone, and never a user's `.{name}.backup`. Pareto files are owned file by file: the
marker of a results
directory lists the files collide wrote there, so a user's README beside them is safe, and
a user's own `pareto.csv` is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from sweep.errors import UserError
from sweep.processes import pid_alive

__all__ = [
    "MARKER",
    "OutputDirError",
    "check_owned_files",
    "check_replaceable",
    "marker_kind",
    "remove_stale_staging",
    "replace_dir",
    "staging_dir",
    "write_marker",
    "write_owned_files",
]

MARKER = ".collide-output.json"
MARKER_FORMAT = "collide-output"
STAGING = "collide-staging"
ASIDE = "collide-replaced"


class OutputDirError(UserError):
    """An output path collide will not write: it holds data collide did not write."""


def write_marker(directory: Path, kind: str, files: Iterable[str] = ()) -> None:
    payload: dict = {"format": MARKER_FORMAT, "kind": kind}
    if files:
        payload["files"] = sorted(set(files))
    (Path(directory) / MARKER).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _marker(directory: Path) -> dict | None:
    try:
        payload = json.loads((Path(directory) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and payload.get("format") == MARKER_FORMAT else None


def marker_kind(directory: Path) -> str | None:
    """The kind in `directory`'s collide marker, or None when it has none."""
    payload = _marker(directory)
    return str(payload.get("kind")) if payload else None


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _refuse_enclosing(path: Path, option: str) -> None:
    """Refuse a target that is the working directory or one of its parents."""
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputDirError(f"{option} {path} is the working directory or one of its parents; "
                             "collide writes its output into a directory of its own: name a new "
                             "one")


def check_replaceable(path: Path, kind: str, *, option: str = "--out",
                      legacy: Callable[[Path], bool] | None = None,
                      inputs: Iterable[Path] = ()) -> None:
    """Raise OutputDirError unless collide may (re)write directory `path` as output `kind`.

    `legacy(path)` recognises output of `kind` written before markers existed.
    `inputs` are files the command reads: none may lie inside `path`.
    """
    path = Path(path)
    resolved = path.resolve()
    for source in inputs:
        if resolved in Path(source).resolve().parents:
            raise OutputDirError(f"{option} {path} contains the input file {source}; writing there "
                                 f"would replace it. Choose an {option} outside the input's "
                                 "directory")
    if path.is_symlink():
        raise OutputDirError(f"{option} {path} is a symbolic link; give the directory it points "
                             "to, or a new one")
    if not path.exists():
        return
    _refuse_enclosing(path, option)
    if not path.is_dir():
        raise OutputDirError(f"{option} {path} is a file, not a directory; choose another {option}")
    found = marker_kind(path)
    if found == kind or _is_empty_dir(path) or (found is None and legacy is not None
                                                and legacy(path)):
        return
    what = f"collide's {found} output, not {kind}" if found else \
        "not empty and was not written by collide"
    raise OutputDirError(f"{option} {path} is {what}; collide replaces only its own {kind} "
                         f"directories (marked by {MARKER}). Remove it yourself or choose another "
                         f"{option}")


def staging_dir(target: Path) -> Path:
    """A new, uniquely named, marked directory beside `target` to build its replacement in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staging = target.parent / f".{target.name}.{STAGING}.{_owner()}.{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    write_marker(staging, STAGING)
    return staging


def replace_dir(staging: Path, target: Path, kind: str, *, legacy: Callable[[Path], bool]
                | None = None) -> None:
    """Swap the finished `staging` in as `target` and mark it `kind`.

    `target` is checked again first (as `check_replaceable`): work may have taken hours, and
    a user may have put files into the directory that was empty when the command started.
    """
    staging, target = Path(staging), Path(target)
    check_replaceable(target, kind, legacy=legacy)
    write_marker(staging, kind)
    if target.exists():
        aside = target.parent / f".{target.name}.{ASIDE}.{_owner()}.{uuid.uuid4().hex[:8]}"
        os.replace(target, aside)
        write_marker(aside, STAGING)  # if we die now, the next call removes it as stale
        os.replace(staging, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, target)


def _host() -> str:
    """This machine, as a short token: staging names say which host's process owns them."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    return f"{_host()}-{os.getpid()}"


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove collide's own staging / replaced directories of `target` whose process is gone."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for kind in (STAGING, ASIDE):
        for stale in target.parent.glob(f".{target.name}.{kind}.*"):
            parts = stale.name.rsplit(".", 2)
            host, _, pid = (parts[-2] if len(parts) == 3 else "").partition("-")
            # another host's staging (shared storage) is not judged here
            ours = host == _host() and pid.isdigit()
            if stale.is_dir() and not stale.is_symlink() and marker_kind(
                stale) == STAGING and ours \
                    and not pid_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
                removed.append(stale)
    return removed


def check_owned_files(directory: Path, kind: str, names: Iterable[str], *,
                      option: str = "--out") -> set[str]:
    """Raise OutputDirError unless collide may write files `names` into `directory` as output
    `kind`;
    returns the files collide already owns there."""
    directory = Path(directory)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise OutputDirError(f"{option} {directory} is not a plain directory; give a directory")
    payload = _marker(directory) if directory.is_dir() else None
    if payload and payload.get("kind") != kind:
        raise OutputDirError(f"{option} {directory} is collide's {payload.get('kind')} output; "
                             f"write the {kind} files elsewhere")
    owned = set(payload.get("files", [])) if payload else set()
    clashes = sorted(name for name in names if (directory / name).exists() and name not in owned)
    if clashes:
        raise OutputDirError(f"{option} {directory} already holds {', '.join(clashes)}, which "
                             f"collide did not write there (its {MARKER} does not list them); move "
                             f"them away or choose another {option}")
    return owned


def write_owned_files(directory: Path, kind: str, writers: dict[str, Callable[[Path], object]],
                      *, option: str = "--out", retire: Iterable[str] = ()) -> dict[str, Path]:
    """Write files into `directory`, replacing only files collide wrote there before.

    `writers[name](tmp_path)` writes one file; it is renamed into place once complete. A
    file of that name that collide did not write (not listed in the marker) is refused. The
    marker claims the names before any is written, so a run cut short leaves no unmarked file; a
    writer that raises gives back the claims on the names not written.
    `retire`: names this call does not write that an earlier one may have; they are removed
    when the marker lists them (collide's own), and left alone otherwise.
    """
    directory = Path(directory)
    owned = check_owned_files(directory, kind, writers, option=option)
    directory.mkdir(parents=True, exist_ok=True)
    stale = {name for name in retire if name in owned and name not in writers}
    write_marker(directory, kind, owned | set(writers))
    written = {}
    for name, writer in writers.items():
        final = directory / name
        tmp = directory / f".{name}.{STAGING}.{os.getpid()}.{uuid.uuid4().hex[:8]}{final.suffix}"
        try:
            writer(tmp)
            os.replace(tmp, final)
        except BaseException:
            # unclaim the names this call never wrote
            write_marker(directory, kind, owned | set(written))
            raise
        finally:
            tmp.unlink(missing_ok=True)
        written[name] = final
    for name in sorted(stale):
        (directory / name).unlink(missing_ok=True)
    write_marker(directory, kind, (owned - stale) | set(writers))
    return written
