"""The run's JSON record: metadata (device, clocks, versions, git commit, date, options), every row, the
FlashInfer probes and the summaries. Pure Python; NaN and infinities are written as null so that the
file is strict JSON.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
from typing import Any, Dict, Optional

SCHEMA = 1
TOOL = "blockgemm.bench"


def to_jsonable(value: Any) -> Any:
    """A copy of `value` that json.dumps(allow_nan=False) accepts: non-finite floats become None, tuples
    lists, dict keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        return to_jsonable(value.item())
    return str(value)


def dumps(record: Dict) -> str:
    return json.dumps(to_jsonable(record), indent=1, sort_keys=False, allow_nan=False) + "\n"


def write_json(path: str, record: Dict) -> None:
    """Writes atomically (a partial file never replaces a complete one: the run rewrites it after every
    case, so a run cut short still leaves what it measured)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(dumps(record))
    os.replace(tmp, path)


def load_json(path: str) -> Dict:
    with open(path) as handle:
        record = json.load(handle)
    if record.get("tool") != TOOL:
        raise ValueError(f"{path}: not a {TOOL} record (tool={record.get('tool')!r})")
    if record.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {record.get('schema')!r}, this reader knows {SCHEMA}")
    return record


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_info(start: Optional[str] = None) -> Dict[str, Any]:
    """The commit of the blockgemm tree the run measures: git at `start` (the working directory by
    default), else the BLOCKGEMM_GIT_COMMIT environment variable, else unknown. `tree` is the git tree
    hash of the tracked files as they are (a dirty tree's included): a copy of a working tree whose git
    metadata is older than its files (the device machine's) still names the commit whose tree it is
    (`git log --format='%H %T'`)."""
    start = start or os.getcwd()
    info: Dict[str, Any] = {"commit": None, "dirty": None, "source": None, "tree": None}
    try:
        commit = subprocess.run(["git", "-C", start, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            info["commit"] = commit.stdout.strip()
            info["source"] = "git"
            status = subprocess.run(
                ["git", "-C", start, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if status.returncode == 0:
                info["dirty"] = bool(status.stdout.strip())
            info["tree"] = _working_tree_hash(start, info["commit"], bool(info["dirty"]))
    except (OSError, subprocess.SubprocessError):
        pass
    if info["commit"] is None and os.environ.get("BLOCKGEMM_GIT_COMMIT"):
        info["commit"] = os.environ["BLOCKGEMM_GIT_COMMIT"]
        info["source"] = "BLOCKGEMM_GIT_COMMIT"
    return info


def _working_tree_hash(start: str, commit: str, dirty: bool) -> Optional[str]:
    # `git stash create` writes a commit of the working tree's tracked files without touching the tree,
    # the index or the stash list (it prints nothing for a clean tree).
    try:
        ref = commit
        if dirty:
            stash = subprocess.run(["git", "-C", start, "stash", "create"], capture_output=True, text=True, timeout=30)
            if stash.returncode != 0 or not stash.stdout.strip():
                return None
            ref = stash.stdout.strip()
        tree = subprocess.run(
            ["git", "-C", start, "rev-parse", ref + "^{tree}"], capture_output=True, text=True, timeout=10
        )
        return tree.stdout.strip() if tree.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def new_record(options: Dict, argv: Optional[list] = None) -> Dict:
    return {
        "tool": TOOL,
        "schema": SCHEMA,
        "date_utc": utc_now(),
        "argv": list(argv or []),
        "options": options,
        "git": git_info(),
        "device": {},
        "versions": {},
        "peers_manifest": None,
        "families": {},
        "rows": [],
        "probes": [],
        "summaries": [],
        "estimate": {},
        "elapsed_s": None,
        "complete": False,
    }
