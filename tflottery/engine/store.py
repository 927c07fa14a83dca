"""Run directories, and the only code that writes them: one per run identity, replicates, levels and branches beneath.

    runs/<model>-<dataset>-<hash of the identity>/
        spec.json          the identity (what defines the tickets' trajectory) and the layout version
        config.json        the full configuration of the latest call (plan and speed knobs included)
        model.json  data.json  plan.json  numerics.json (XLA or the graph's kernels, fixed at the first training)
        replicates.csv     one row per replicate, level and branch
        results.csv  summary.json  report.md   the verdict: means and 95% intervals over replicates
        replicate_<r>/
            captures/step_<k>.npz            the dense run's weights at kept steps (rewind points)
            rewind.json                      rewind=auto: the probe's choice
            level_<L>/<branch>/              ticket, reinit, random_prune, transfer-<hash>, copy-<hash>, ...
                masks.npz  start.npz  final.npz  history.csv  metrics.json  [branch.json model.json data.json]
                manifest.json                the unit's commit: each file above with its size and sha256
            level_<L>/<analysis>/<key>.json  analyses of a level (instability curves)

A branch of a level is finished when its `manifest.json` exists: it is written last, and every
file is written atomically, so a run killed at any moment resumes at the first unfinished
branch and never reads a half-written file; a finished unit is read only once its files are
the ones its manifest lists (`check_unit`), and one that is not is retrained (`damaged`).

Locks: processes that train units (`find`, `tflottery worker`) hold the run shared, and each
unit they train exclusively (`claim`: `.units/<unit>.lock`, dropped by the kernel when its
holder dies, kill -9 included), so any number of them share one run and no unit trains twice;
a command that rewrites what units read (instability's replay, intake) holds the run alone
(`lock()`). The work queue beside the unit locks (`.units/transfers/`) holds the transfers
requested of the run, so that every process training it trains their units too. Files every process writes alike (config, plan) are rewritten whole;
the ones fixed at the start (spec.json, numerics.json) are created once (`create_once`).

A run folder may be shared (workers on one file system): every file is written and read
relative to directory handles opened without following links from the folder that holds the
run (`tflottery.core.files.folder`), a link planted anywhere in the tree is refused in one
line, and a record counts only where its own metrics say it belongs (replicate, level, branch).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tflottery.core.errors import ConfigError, DamagedError, RunError, StorageError
from tflottery.core.files import (DirectoryLock, atomic_write, clean_leftovers, create_once, csv_bytes, json_bytes,
                                  read_bytes, read_json, read_npz, remove_file, subfolders, write_csv, write_json,
                                  write_npz, write_npzs)
from tflottery.core.names import TICKET, printable, safe_component
from tflottery.pruning.masks import of_all

LAYOUT = 3  # 3: every unit commits with a manifest (0.4); 2: 0.3's units, finished when metrics.json exists
READABLE = (2, 3)
MANIFEST = "manifest.json"  # a unit's commit record: its files and their sha256, written last
UNITS = ".units"  # the units' lock files
VERIFIED = "verified"  # in .units/: a stamp per unit some process checked whole, so that others need not read it
COMMITS = "commits"  # in .units/: rewritten by every unit's commit, so that idle workers watch one file
SUMMARY_KEYS = ("level", "branch", "remaining", "early_stop_step", "early_stop_test_accuracy",
                "final_test_accuracy", "final_test_loss", "wall_time_s", "mask_at_init_accuracy",
                "signed_constant_accuracy")


@dataclass
class LevelRecord:
    masks: dict
    start: dict
    final: dict
    metrics: dict


def _numbered(folder: Path, prefix: str, anchor: Path) -> list[int]:
    n = len(prefix)
    return sorted(int(name[n:]) for name in subfolders(folder, prefix, anchor) if name[n:].isdigit())


def manifest(replicate: int, level: int, branch: str, files: dict) -> dict:
    """A unit's commit record: which unit, and every file it wrote with its size and sha256."""
    return {"unit": {"replicate": replicate, "level": level, "branch": branch}, "tflottery": _version(),
            "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                      for name, data in sorted(files.items())}}


_VERIFIED: set = set()  # units this process checked whole, by their files' (path, inode, mtime, size): hashed once


def _version() -> str:
    from tflottery import __version__

    return __version__


def _verified_key(folder: Path, names: list):
    """What a unit's files are now, as the file system says without reading them (None if one is gone)."""
    key = [str(folder)]
    for name in names:
        try:
            st = os.stat(folder / name, follow_symlinks=False)
        except OSError:
            return None
        key += [name, st.st_ino, st.st_mtime_ns, st.st_size]
    return tuple(key)


class ReplicateStore:
    """One replicate of a run: its captures, its rewind choice, its levels and their analyses."""

    def __init__(self, path: Path, index: int, anchor: Optional[Path] = None, legacy: bool = False):
        self.path, self.index = Path(path), index
        self.anchor = Path(anchor) if anchor is not None else self.path.parent.parent
        self.legacy = legacy  # a layout-2 run: units without a manifest are finished when metrics.json exists

    def level_dir(self, level: int, branch: str = TICKET) -> Path:
        return self.path / f"level_{int(level)}" / safe_component(branch, "branch")

    def is_done(self, level: int, branch: str = TICKET) -> bool:
        """Committed: its manifest is written (checked against its files by `check_unit` before it is read)."""
        d = self.level_dir(level, branch)
        return (d / MANIFEST).exists() or (self.legacy and (d / "metrics.json").exists())

    def save_level(self, level: int, branch: str, record: LevelRecord, meta: Optional[dict] = None,
                   model_json: Optional[str] = None, data_info: Optional[dict] = None, fence=None) -> None:
        """Write one finished branch of one level; its manifest last, the commit that marks it finished. `fence`
        (the holder's lease check) is called before the first write and again before the commit."""
        d, a = self.level_dir(level, branch), self.anchor
        fence = fence or (lambda: None)
        fence()
        files = {}
        for name, value in (("branch.json", meta), ("data.json", data_info),
                            ("model.json", None if model_json is None else json.loads(model_json))):
            if value is not None:
                files[name] = json_bytes(value)
                atomic_write(d / name, files[name], a)
        written = write_npzs({d / "masks.npz": record.masks, d / "start.npz": record.start,
                              d / "final.npz": record.final}, a)
        files.update({path.name: data for path, data in written.items()})
        files["history.csv"] = csv_bytes(record.metrics["history"])
        atomic_write(d / "history.csv", files["history.csv"], a)
        files["metrics.json"] = json_bytes(record.metrics)
        atomic_write(d / "metrics.json", files["metrics.json"], a)
        fence()
        write_json(d / MANIFEST, manifest(self.index, level, branch, files), a)
        stamp = self._stamp(level, branch, [MANIFEST, *sorted(files)])
        if stamp is not None:  # this process wrote these bytes: no one need read them to trust them
            atomic_write(self.stamp_path(level, branch), stamp.encode(), a)
        atomic_write(self.path.parent / UNITS / COMMITS, f"r{self.index}-level_{level}-{branch}\n".encode(), a)

    def check_unit(self, level: int, branch: str = TICKET) -> None:
        """A DamagedError naming the file, unless every file the unit's manifest lists is there with its bytes."""
        problem = self.damage(level, branch)
        if problem:
            raise DamagedError(f"{problem}: replicate {self.index}, level {level}, {branch} is damaged; `tflottery "
                               "find` (or a worker) retrains it, `tflottery verify RUN` lists every damaged unit.")

    def stamp_path(self, level: int, branch: str) -> Path:
        return self.path.parent / UNITS / VERIFIED / f"r{self.index}-level_{int(level)}-{safe_component(branch, 'branch')}"

    def _stamp(self, level: int, branch: str, names: list) -> Optional[str]:
        """What the file system says of a unit's files without reading them (inode, change time, size of each): a
        file rewritten, cut, copied or touched gets another change time (None if one is gone)."""
        d, parts = self.level_dir(level, branch), []
        for name in names:
            try:
                st = os.stat(d / name, follow_symlinks=False)
            except OSError:
                return None
            parts.append([name, st.st_ino, st.st_ctime_ns, st.st_size])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def _stamped(self, level: int, branch: str) -> Optional[str]:
        try:
            return read_bytes(self.stamp_path(level, branch), self.anchor, limit=256).decode(errors="replace")
        except (OSError, StorageError):
            return None

    def damage(self, level: int, branch: str = TICKET, full: bool = False, remember: bool = False) -> Optional[str]:
        """What is wrong with a committed unit's files (the first fault, naming the file), or None. Each file is
        hashed unless a process verified the unit (its stamp in `.units/verified/`) and no file changed since;
        `full`: hash every file regardless (`tflottery verify`); `remember`: stamp the unit once it checks out
        (only a process that writes the run)."""
        d = self.level_dir(level, branch)
        if not (d / MANIFEST).exists():
            return None  # a layout-2 unit: nothing to check it against
        try:
            record = read_json(d / MANIFEST, self.anchor)
            unit, files = record["unit"], record["files"]
        except (DamagedError, StorageError, KeyError, TypeError) as error:
            return f"{d / MANIFEST} is not a unit's manifest ({error})"
        if unit != {"replicate": self.index, "level": level, "branch": branch}:
            return f"{d / MANIFEST} is the manifest of {unit}, not of this folder"
        if not isinstance(files, dict) or "metrics.json" not in files:
            return f"{d / MANIFEST} lists no metrics.json"
        for name, entry in files.items():
            try:
                safe_component(name, "file")
            except ConfigError:
                return f"{d / MANIFEST} lists {printable(name)}, not a file of this folder"
            if not isinstance(entry, dict):
                return f"{d / MANIFEST} lists {name!r} without its size and sha256"
        key = _verified_key(d, [MANIFEST, *files])
        if not full and key is not None and key in _VERIFIED:
            return None
        stamp = self._stamp(level, branch, [MANIFEST, *sorted(files)])
        if not full and stamp is not None and self._stamped(level, branch) == stamp:
            return None
        for name, entry in sorted(files.items()):
            try:
                data = read_bytes(d / name, self.anchor)
            except FileNotFoundError:
                return f"{d / name} is missing"
            except OSError as error:
                return f"{d / name} cannot be read ({error})"
            if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                return (f"{d / name} is not the file its unit wrote ({len(data)} bytes, "
                        f"{entry.get('bytes')} recorded; sha256 differs)")
        if key is not None:
            _VERIFIED.add(key)
        if remember and stamp is not None:
            atomic_write(self.stamp_path(level, branch), stamp.encode(), self.anchor)
        return None

    def uncommit(self, level: int, branch: str) -> None:
        """Take a damaged unit back to unfinished (its manifest and metrics removed), so that it trains again."""
        d = self.level_dir(level, branch)
        remove_file(d / MANIFEST, self.anchor)
        remove_file(d / "metrics.json", self.anchor)
        if self.stamp_path(level, branch).exists():
            remove_file(self.stamp_path(level, branch), self.anchor)

    def load_level(self, level: int, branch: str = TICKET) -> LevelRecord:
        if not self.is_done(level, branch):
            raise RunError(f"Level {level} ({branch}) of {self.path} is not finished; finished levels: "
                           f"{self.levels(branch)}.")
        self.check_unit(level, branch)
        d, a = self.level_dir(level, branch), self.anchor
        return LevelRecord(read_npz(d / "masks.npz", a), read_npz(d / "start.npz", a), read_npz(d / "final.npz", a),
                           self.metrics(level, branch))

    def metrics(self, level: int, branch: str = TICKET) -> Optional[dict]:
        """A finished branch's metrics, checked against its manifest and to be the record of this replicate, level
        and branch."""
        if not self.is_done(level, branch):
            return None
        self.check_unit(level, branch)
        path = self.level_dir(level, branch) / "metrics.json"
        metrics = read_json(path, self.anchor)
        found = (metrics.get("replicate"), metrics.get("level"), metrics.get("branch")) if isinstance(metrics, dict) \
            else None
        if found != (self.index, level, branch):
            raise RunError(f"{path} is not the record of replicate {self.index}, level {level}, branch {branch} "
                           f"(it says {found}): the run folder was altered; move that folder aside and run again.")
        return metrics

    def branch_architecture(self, level: int, branch: str) -> Optional[str]:
        """A branch's own architecture (another output layer: transfer), or None for the run's."""
        from tflottery.core.files import read_bytes

        path = self.level_dir(level, branch) / "model.json"
        return read_bytes(path, self.anchor).decode() if path.exists() else None

    def branch_data(self, level: int, branch: str) -> Optional[dict]:
        """A branch's own data description (transfer), or None for the run's."""
        path = self.level_dir(level, branch) / "data.json"
        return read_json(path, self.anchor) if path.exists() else None

    def branch_meta(self, level: int, branch: str) -> dict:
        path = self.level_dir(level, branch) / "branch.json"
        return read_json(path, self.anchor) if path.exists() else {}

    def levels(self, branch: str = TICKET) -> list[int]:
        return [level for level in _numbered(self.path, "level_", self.anchor) if self.is_done(level, branch)]

    def level_numbers(self) -> list[int]:
        """Every level folder of this replicate, finished or not."""
        return _numbered(self.path, "level_", self.anchor)

    def branches_begun(self, level: int) -> list[str]:
        """Every folder of a level, finished or not (the clean-up after a dead writer walks them)."""
        return subfolders(self.path / f"level_{int(level)}", "", self.anchor)

    def branches(self, level: int) -> list[str]:
        """Finished branches of one level, the ticket first."""
        folder = self.path / f"level_{level}"
        names = subfolders(folder, "", self.anchor)
        done = [n for n in names if (folder / n / MANIFEST).exists()
                or (self.legacy and (folder / n / "metrics.json").exists())]
        return ([TICKET] if TICKET in done else []) + [n for n in done if n != TICKET]

    def summary(self) -> list[dict]:
        """One row per finished level and branch: the table every plot, report and objective reads."""
        rows = []
        for level in _numbered(self.path, "level_", self.anchor):
            for branch in self.branches(level):
                m = self.metrics(level, branch)
                rows.append({"replicate": self.index, **{k: m.get(k) for k in SUMMARY_KEYS}, "branch": branch})
        return rows

    # ------------------------------------------------------------------ captures and the rewind choice
    def capture_path(self, step: int) -> Path:
        return self.path / "captures" / f"step_{int(step)}.npz"

    def save_capture(self, step: int, weights: dict) -> None:
        write_npz(self.capture_path(step), weights, self.anchor)

    def load_capture(self, step: int) -> dict:
        return read_npz(self.capture_path(step), self.anchor)

    def captured_steps(self) -> list[int]:
        names = subfolders(self.path / "captures", "step_", self.anchor)
        return sorted(int(n[5:-4]) for n in names if n.endswith(".npz") and n[5:-4].isdigit())

    def rewind_choice(self) -> Optional[dict]:
        """rewind=auto: what this replicate's probe chose, or None before it has."""
        path = self.path / "rewind.json"
        return read_json(path, self.anchor) if path.exists() else None

    def save_rewind_choice(self, choice: dict) -> None:
        write_json(self.path / "rewind.json", choice, self.anchor)

    # ------------------------------------------------------------------ analyses of a level
    def analysis_path(self, level: int, kind: str, key: str) -> Path:
        return self.path / f"level_{int(level)}" / safe_component(kind, "analysis") / f"{safe_component(key, 'key')}.json"

    def save_analysis(self, level: int, kind: str, key: str, record: dict) -> Path:
        return write_json(self.analysis_path(level, kind, key), record, self.anchor)

    def load_analysis(self, level: int, kind: str, key: str) -> Optional[dict]:
        path = self.analysis_path(level, kind, key)
        return read_json(path, self.anchor) if path.exists() else None

    def analyses(self, kind: str) -> list[tuple[int, dict]]:
        """(level, record) of every stored analysis of this kind, by level then key."""
        out = []
        for level in _numbered(self.path, "level_", self.anchor):
            folder = self.path / f"level_{level}" / safe_component(kind, "analysis")
            for name in subfolders(folder, "", self.anchor):
                if name.endswith(".json"):
                    out.append((level, {**read_json(folder / name, self.anchor), "file": str(folder / name)}))
        return out


class RunStore:
    """A run directory: identity and shared files at the top, replicates beneath."""

    def __init__(self, path: "str | Path"):
        self.path = Path(path)
        self.anchor = self.path.parent  # the folder that holds the run: the user's own, trusted
        self._lock: Optional[DirectoryLock] = None
        self._worker: Optional[DirectoryLock] = None
        self._layout: Optional[int] = None

    @classmethod
    def open(cls, path: "str | Path") -> "RunStore":
        """An existing run directory, checked: a run of this layout, not an older one."""
        if not isinstance(path, (str, Path)) or not str(path):
            raise RunError(f"run={path!r} is not a path: pass a run directory, e.g. runs/lenet_300_100-mnist-<hash>.")
        store = cls(path)
        store.check_layout()
        if not (store.path / "spec.json").exists():
            raise RunError(f"{store.path} is not a run directory (no spec.json): pass a folder that "
                           "`tflottery find` made, e.g. runs/lenet_300_100-mnist-<hash>.")
        return store

    def check_layout(self) -> None:
        if self.path.is_symlink():
            raise RunError(f"{self.path} is a symbolic link: a run folder is tflottery's own; refused, never followed. "
                           "Remove the link, or pass the folder it points to.")
        spec = self.path / "spec.json"
        if spec.exists():
            found = read_json(spec, self.anchor)
            layout = found.get("layout") if isinstance(found, dict) else None
            if layout not in READABLE:
                written = f" (written by tflottery {found['tflottery']})" if isinstance(found, dict) \
                    and isinstance(found.get("tflottery"), str) else ""
                raise RunError(f"{self.path} has run layout {layout!r}{written}; this tflottery "
                               f"{_version()} reads layouts {', '.join(map(str, READABLE))}. Use the tflottery version "
                               "that wrote it, or run the experiment again.")
            self._layout = layout
        elif (self.path / "level_0").is_dir() or (self.path / "config.json").exists():
            raise RunError(f"{self.path} was written by tflottery 0.1 (levels at the top, one directory per "
                           "replicate); this version keeps replicates, levels and branches beneath one run and "
                           f"cannot extend it. Move it aside (mv {self.path} {self.path}.v0.1) and run the same "
                           "command again: it makes the new layout, with the new run name.")

    @property
    def name(self) -> str:
        return self.path.name

    def spec(self) -> dict:
        return read_json(self.path / "spec.json", self.anchor)

    def config(self) -> dict:
        return read_json(self.path / "config.json", self.anchor)

    def run_config(self):
        """The RunConfig the run records (0.2's spellings upgraded)."""
        from tflottery.config import RunConfig
        from tflottery.pruning.resolve import upgrade

        stored = self.config()
        try:
            if not isinstance(stored, dict):
                raise ConfigError(f"it holds {type(stored).__name__}, not the run's configuration")
            return RunConfig.from_dict({**stored, "pruning": upgrade(stored.get("pruning", {}))})
        except ConfigError as error:
            raise DamagedError(f"{self.path / 'config.json'} is not a configuration this run can use ({error}): the file "
                               "was altered; `tflottery find` with the run's flags writes it again.") from None

    def data_info(self) -> dict:
        return read_json(self.path / "data.json", self.anchor)

    def plan(self) -> dict:
        """plan.json: the levels and their remaining fractions (checked to be a plan: a DamagedError otherwise)."""
        plan = read_json(self.path / "plan.json", self.anchor)
        levels = plan.get("levels") if isinstance(plan, dict) else None
        if not isinstance(levels, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in levels) \
                or not isinstance(plan.get("remaining"), (list, dict)):
            raise DamagedError(f"{self.path / 'plan.json'} is not a run's plan (levels and remaining): the file was "
                               "altered; `tflottery find` with the run's flags writes it again.")
        return plan

    def architecture(self) -> str:
        from tflottery.core.files import read_bytes

        return read_bytes(self.path / "model.json", self.anchor).decode()

    def replicate(self, index: int) -> ReplicateStore:
        return ReplicateStore(self.path / f"replicate_{int(index)}", int(index), self.anchor, self.legacy)

    @property
    def legacy(self) -> bool:
        """A run of layout 2 (tflottery 0.3): its units carry no manifest."""
        if self._layout is None and (self.path / "spec.json").exists():
            self.check_layout()
        return self._layout == 2

    def damaged(self, full: bool = False, remember: bool = False) -> list[tuple]:
        """(replicate, level, branch, what is wrong) of every committed unit whose files are not what it wrote
        (`full`, `remember`: as `ReplicateStore.damage`)."""
        out = []
        for r in self.replicates():
            store = self.replicate(r)
            for level in store.level_numbers():
                for branch in store.branches(level):
                    problem = store.damage(level, branch, full, remember)
                    if problem:
                        out.append((r, level, branch, problem))
        return out

    def replicates(self) -> list[int]:
        return _numbered(self.path, "replicate_", self.anchor)

    def summary(self) -> list[dict]:
        """Every replicate's rows, each with `remaining_of_all`: its remaining weights as a fraction of every trainable
        weight (None for a run whose plan.json predates the count of weights outside the targets, and for a
        transfer, whose output layer is another task's)."""
        rows = [row for r in self.replicates() for row in self.replicate(r).summary()]
        by_branch = {branch: self.weight_counts(branch) for branch in {row["branch"] for row in rows}}
        for row in rows:
            counts = by_branch[row["branch"]]
            row["remaining_of_all"] = (None if counts is None or row.get("remaining") is None
                                       else of_all(row["remaining"], *counts))
        return rows

    def weight_counts(self, branch: str = TICKET) -> "Optional[tuple[int, int]]":
        """(prunable, dense) weights of the run's plan: those in the pruned variables, the trainable ones outside
        them; None where plan.json does not record them, and for a transfer branch (its head is another task's)."""
        if branch.split("-")[0] == "transfer":
            return None
        try:
            plan = self.plan()
        except (StorageError, OSError):
            return None
        dense = plan.get("dense_weights")
        if not isinstance(dense, int) or isinstance(dense, bool) or dense < 0 or not plan["rows"]:
            return None
        first = plan["rows"][0]
        return (sum(v for v in first.values() if isinstance(v, int)) if isinstance(first, dict) else 0), dense

    # ------------------------------------------------------------------ writing
    def lock(self, shared: bool = False) -> "RunStore":
        """Hold the run for this process, alone or `shared` with other workers (see the module's doc; a shared
        holder counts among the active workers), and clear what killed writers of this machine left."""
        self.check_layout()
        self._lock = DirectoryLock(self.path, "run", self.anchor).acquire(shared=shared)
        self._worker = self.join() if shared else None
        self.clean()
        return self

    def clean(self) -> None:
        """Remove temporary files that dead writers of this machine left anywhere in the run."""
        for folder, _, _ in os.walk(self.path):
            clean_leftovers(folder)

    def holder(self) -> Optional[str]:
        """A process writing this run now, or None (reads only)."""
        return DirectoryLock(self.path, "run", self.anchor).holder()

    def unit_lock(self, name: str) -> DirectoryLock:
        """The lock of one unit (`r0-level_3-ticket`, `r0-probe`) under `.units/`."""
        return DirectoryLock(self.path / UNITS, f"unit {name} of run {self.name}", self.anchor,
                             f"{safe_component(name, 'unit')}.lock")

    def claim(self, name: str) -> Optional[DirectoryLock]:
        """The unit's lock if this process could take it now, else None (another process trains it)."""
        lock = self.unit_lock(name)
        return lock if lock.claim() else None

    def queue_transfer(self, request: dict) -> Path:
        """Record a transfer's units (replicate -> levels, Transfer branch parameters) in the run's work queue
        (`.units/transfers/<digest>.json`, beside the unit locks: bookkeeping, not results), so that every
        process training the run (`tflottery worker`) trains them too. Written once; the same request again is
        the same file."""
        import hashlib

        data = json_bytes(request)
        path = self.path / UNITS / "transfers" / f"{hashlib.sha256(data).hexdigest()[:16]}.json"
        create_once(path, data, self.anchor)
        return path

    def queued_transfers(self) -> list[tuple[Path, dict]]:
        """(file, request) of every transfer recorded in the work queue, in file order (untrusted: the engine
        checks each request before it trains anything)."""
        folder = self.path / UNITS / "transfers"
        out = []
        for name in sorted(subfolders(folder, "", self.anchor)):
            if name.endswith(".json"):
                try:
                    out.append((folder / name, read_json(folder / name, self.anchor)))
                except ValueError:
                    raise RunError(f"{folder / name} is not a transfer request (not JSON): delete it and request the "
                                   "transfer again with `tflottery transfer`.") from None
        return out

    # ------------------------------------------------------------------ failed units, active workers
    def failure(self, name: str) -> Optional[dict]:
        """A unit's failure record (`.units/<unit>.failed`: tries, errors, failed), or None if it never failed."""
        path = self.path / UNITS / f"{safe_component(name, 'unit')}.failed"
        if not path.exists():
            return None
        try:
            record = read_json(path, self.anchor)
        except DamagedError:
            return {"tries": 1, "errors": [f"{path} is damaged"], "failed": False}
        return record if isinstance(record, dict) else None

    def record_failure(self, name: str, error: str, tries: int) -> dict:
        """Count one failed try of unit `name` (held by the caller); marked failed once it failed `tries` times."""
        record = self.failure(name) or {"tries": 0, "errors": []}
        count = int(record.get("tries", 0)) + 1
        errors = [*record.get("errors", [])[-4:], error[:2000]]
        record = {"unit": name, "tries": count, "errors": errors, "failed": count >= tries}
        write_json(self.path / UNITS / f"{safe_component(name, 'unit')}.failed", record, self.anchor)
        return record

    def failed(self) -> dict:
        """{unit name: its record} of every unit marked failed."""
        names = [n[:-7] for n in subfolders(self.path / UNITS, "", self.anchor) if n.endswith(".failed")]
        records = {name: self.failure(name) for name in names}
        return {name: r for name, r in sorted(records.items()) if r and r.get("failed")}

    def clear_failures(self) -> list[str]:
        """Forget every unit's failures (`--retry_failed`); the units cleared."""
        names = [n for n in subfolders(self.path / UNITS, "", self.anchor) if n.endswith(".failed")]
        for name in names:
            remove_file(self.path / UNITS / name, self.anchor)
        return [n[:-7] for n in names]

    def join(self) -> DirectoryLock:
        """Count this process among the run's active workers (`.units/workers/`) while it trains the run."""
        import secrets

        lock = DirectoryLock(self.path / UNITS / "workers", f"worker of run {self.name}", self.anchor,
                             f"{os.getpid()}-{secrets.token_hex(4)}.lock")
        lock.claim()
        return lock

    def active_workers(self) -> int:
        """How many processes train the run now (at least 1: the caller); the files of dead ones removed."""
        folder = self.path / UNITS / "workers"
        alive = 0
        for name in subfolders(folder, "", self.anchor):
            if not name.endswith(".lock"):
                continue
            lock = DirectoryLock(folder, "worker", self.anchor, name)
            if lock.holder() is not None:
                alive += 1
            elif lock.claim():
                remove_file(folder / name, self.anchor)
                lock.release()
        return max(1, alive)

    def commit_stamp(self) -> Optional[tuple]:
        """What the run's last commit left (inode and time of `.units/commits`): it changes with every commit."""
        try:
            st = os.stat(self.path / UNITS / COMMITS, follow_symlinks=False)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def running(self) -> dict:
        """{unit name: its holder's line} of every unit a live process trains now (reads only)."""
        names = [n[:-5] for n in subfolders(self.path / UNITS, "", self.anchor) if n.endswith(".lock")]
        holders = {name: self.unit_lock(name).holder() for name in names}
        return {name: line for name, line in holders.items() if line}

    def unlock(self) -> None:
        if self._worker is not None:
            remove_file(self._worker.path, self.anchor)
            self._worker.release()
            self._worker = None
        if self._lock:
            self._lock.release()
            self._lock = None

    def kernels(self, asked, default: bool) -> bool:
        """Whether this run trains under XLA (`--jit_compile`; `default` resolves auto): fixed at the run's first
        training and kept in numerics.json, so that every unit of it, resumed or extended under any
        grouping, computes with the same kernels. A run trained before the record used XLA unless told otherwise."""
        path = self.path / "numerics.json"
        if path.exists():
            xla = read_json(path, self.anchor).get("xla")
            if not isinstance(xla, bool):
                raise RunError(f"{path} is damaged: 'xla' must be true or false. Restore it from the run's copy.")
        else:  # a run trained before the record (0.2 knew XLA, or what --jit_compile said) follows the flag
            xla = (True if self.replicates() else default) if asked == "auto" else bool(asked)
            if create_once(path, json_bytes({"xla": xla}), self.anchor):
                return xla
            return self.kernels(asked, default)  # another worker fixed it first: its choice holds
        if asked != "auto" and bool(asked) != xla:
            raise ConfigError(f"--jit_compile={str(asked).lower()}: {self.path} trains with "
                              f"{'XLA' if xla else 'the graph and fused kernels'} (numerics.json), and its units "
                              "must all compute alike to stay reproducible. Drop --jit_compile, or start the run "
                              "in another --runs_dir.")
        return xla

    def write_spec(self, identity: dict) -> None:
        """Create the run's identity file, or check that an existing one is the same run."""
        path = self.path / "spec.json"
        spec = {"layout": LAYOUT, "name": self.name, "identity": identity, "tflottery": _version()}
        if not path.exists() and create_once(path, json_bytes(spec), self.anchor):
            return
        found = read_json(path, self.anchor).get("identity")
        if found != json.loads(json.dumps(identity)):
            raise RunError(f"{self.path} holds another run (its spec.json differs from this configuration "
                           "although the names match): pass another --runs_dir.")

    def describe(self, config: dict, data_info: dict, plan: dict, model_json: str) -> None:
        """The files that say what the run is: config, data, plan (rewritten by each call) and the architecture."""
        write_json(self.path / "config.json", config, self.anchor)
        write_json(self.path / "data.json", data_info, self.anchor)
        write_json(self.path / "plan.json", plan, self.anchor)
        if not (self.path / "model.json").exists():
            write_json(self.path / "model.json", json.loads(model_json), self.anchor)

    def save_arrays(self, data) -> Optional[Path]:
        """The run's copy of a user's own arrays (`tflottery.data.arrays`), written once: the path, or None for data
        loaded by name."""
        from tflottery.data import ARRAYS
        from tflottery.data.arrays import FOLDER, stored_bytes, stored_name

        source = data.info.get("source", "")
        if not source.startswith(ARRAYS):
            return None
        path = self.path / FOLDER / stored_name(source[len(ARRAYS):])
        if not path.exists():
            create_once(path, stored_bytes(data), self.anchor)
        return path

    def write_results(self) -> Path:
        """replicates.csv: one row per replicate, level and branch (wall times included)."""
        return write_csv(self.path / "replicates.csv", self.summary(), self.anchor)

    def write_verdict(self, table: list[dict], summary: dict, report: str) -> list[Path]:
        """results.csv (per level and branch over replicates), summary.json and report.md: the verdict."""
        return [write_csv(self.path / "results.csv", table, self.anchor),
                write_json(self.path / "summary.json", summary, self.anchor),
                atomic_write(self.path / "report.md", report.encode(), self.anchor)]
