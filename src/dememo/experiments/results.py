"""Results of experiment graphs in SQLite: one ``results.sqlite`` per results directory.

Tables: ``runs`` (one row per stage key: kind, config, status, error, times,
device, versions, artifact, and the precision it trained or generated in),
``metrics`` (run, name, split, value; unique per run, name and split), ``plan``
(which stages a reproduced spec and scale needs, with the labels its views read)
and ``reproductions`` (the spec as run). A stage's row and its metrics change in
one transaction, so a process killed at any moment leaves either the old state or
the new one; a 'running' row left by a killed process is simply run again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dememo.atomic import atomic_write_text, storage_errors
from dememo.errors import ConfigError, StorageError
from dememo.experiments.stages import Stage, StageOutput
from dememo.store import versions

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("done", "failed", "running")  # a run's status (the CHECK of the runs table)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, label TEXT NOT NULL, config TEXT NOT NULL,
    inputs TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error TEXT, artifact TEXT, started REAL NOT NULL, finished REAL, seconds REAL,
    device TEXT, host TEXT, pid INTEGER, versions TEXT NOT NULL, precision TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE, name TEXT NOT NULL,
    split TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (run, name, split)
);
CREATE TABLE IF NOT EXISTS plan (
    spec TEXT NOT NULL, scale TEXT NOT NULL, key TEXT NOT NULL, labels TEXT NOT NULL,
    PRIMARY KEY (spec, scale, key)
);
CREATE TABLE IF NOT EXISTS reproductions (
    spec TEXT NOT NULL, scale TEXT NOT NULL, definition TEXT NOT NULL, backend TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, status TEXT NOT NULL, PRIMARY KEY (spec, scale)
);
"""


# what a results database must hold: its tables and their columns (from SCHEMA)
EXPECTED = {
    "meta": {"key", "value"},
    "runs": {"key", "kind", "label", "config", "inputs", "status", "error", "artifact", "started", "finished",
             "seconds", "device", "host", "pid", "versions", "precision"},
    "metrics": {"run", "name", "split", "value"},
    "plan": {"spec", "scale", "key", "labels"},
    "reproductions": {"spec", "scale", "definition", "backend", "started", "finished", "status"},
}  # fmt: skip
OPTIONAL_COLUMNS = {"runs": {"precision"}}  # added on open to databases written before it existed


@dataclass(frozen=True)
class RunRecord:
    key: str
    kind: str
    label: str
    status: str
    error: str | None
    artifact: str | None
    seconds: float | None
    device: str | None
    precision: str | None  # what the stage trained or generated in (bf16 / fp32); tables are fp32
    started: float | None = None  # when the stage started (since issue 17: when it ran, not when queued)
    finished: float | None = None


class ResultsDB:
    """The results database of one directory.

    ``create=True`` (the writers: reproduce, interplay, demo) opens it read-write and creates it
    when missing, atomically: the schema is built in a temporary file in the same folder and
    linked into place, so a full disk never leaves a half-made database behind.
    ``create=False`` (the readers: results, report, views) opens an existing one read-only
    (``mode=ro``): reading never writes to it and works in a read-only folder.
    Either way a damaged database (a table or column dropped) is refused with one line.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.read_only = not create and self.path != Path(":memory:")
        if self.path != Path(":memory:"):
            if not create and not self.path.is_file():
                raise ConfigError(f"{self.path}: no results database here (run 'dememo reproduce' first)")
            if create and (not self.path.exists() or self._half_created()):
                self._create()
        self.db = self._connect()
        self._check_version()
        if not self.read_only:
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA synchronous = FULL")

    @classmethod
    def in_directory(cls, directory: str | Path, *, create: bool = True) -> ResultsDB:
        return cls(Path(directory) / DB_NAME, create=create)

    @classmethod
    def in_memory(cls) -> ResultsDB:
        return cls(":memory:")

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.read_only:
                uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
                return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            return sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        except sqlite3.Error as error:
            raise ConfigError(f"{self.path}: cannot open the results database ({error})") from None

    def _half_created(self) -> bool:
        """True for an empty file: a database whose creation stopped before its schema was written
        (by a dememo that created it in place); it holds nothing and is made again."""
        return self.path.is_file() and self.path.stat().st_size == 0

    def _create(self) -> None:
        """Create the database atomically: schema in a temporary sibling, then linked into place
        (a concurrent creator's finished database is kept)."""
        folder = self.path.parent
        with storage_errors(self.path):
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
            os.close(fd)
            tmp = Path(name)
            try:
                db = sqlite3.connect(str(tmp), isolation_level=None)
                try:
                    db.executescript(SCHEMA)
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    db.execute("INSERT INTO meta VALUES ('created_by', ?)", (json.dumps(versions()),))
                finally:
                    db.close()
                os.chmod(tmp, 0o644)
                if self._half_created():
                    os.replace(tmp, self.path)
                else:
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, self.path)  # fails when another process created it first
            except sqlite3.OperationalError as error:
                raise StorageError(f"{self.path}: cannot create the results database ({error})") from None
            finally:
                tmp.unlink(missing_ok=True)

    def _check_version(self) -> None:
        try:
            rows = self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            tables = {row[0] for row in rows}
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"{self.path}: not a dememo results database ({error})") from None
        if not tables and self.path == Path(":memory:"):
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        if "meta" not in tables:
            raise ConfigError(f"{self.path}: not a dememo results database (it has no meta table)")
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = row[0] if row else "none"
        if found == "none" and not self.read_only and self._holds_nothing(tables):
            # a creation in place (older dememo) stopped before the version was written: finish it
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            found, tables = str(SCHEMA_VERSION), set(EXPECTED)
        if found != str(SCHEMA_VERSION):
            raise ConfigError(
                f"{self.path}: results written with schema version {found}, this dememo reads version "
                f"{SCHEMA_VERSION}; use a new results directory (or the dememo version that wrote it)"
            )
        self._check_tables(tables)
        if "precision" not in self._columns("runs") and not self.read_only:
            # results written before the column existed stay readable (read-only: selected as NULL)
            self.db.execute("ALTER TABLE runs ADD COLUMN precision TEXT")

    def _holds_nothing(self, tables: set[str]) -> bool:
        return all(self.db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0 for t in tables)

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def _check_tables(self, tables: set[str]) -> None:
        """Every table and column of the schema is there (``runs.precision`` may be missing in
        databases written before it existed); anything less is a damaged database, never
        silently re-created empty or read as 'no results'."""
        missing = [t for t in EXPECTED if t not in tables]
        if missing:
            raise ConfigError(f"{self.path}: damaged results database: table(s) {', '.join(missing)} "
                              f"missing; restore it from a copy or use a new results directory")  # fmt: skip
        for table, columns in EXPECTED.items():
            lost = sorted(columns - self._columns(table) - OPTIONAL_COLUMNS.get(table, set()))
            if lost:
                raise ConfigError(f"{self.path}: damaged results database: table {table} lacks column(s) "
                                  f"{', '.join(lost)}; restore it from a copy or use a new results "
                                  f"directory")  # fmt: skip

    @property
    def _precision(self) -> str:
        return "r.precision" if "precision" in self._columns("runs") else "NULL"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # --- reproductions and plans ---
    def begin_reproduction(
        self, spec: str, scale: str, definition: dict[str, Any], backend: str, plan: dict[str, dict]
    ) -> None:
        """Record that ``spec`` at ``scale`` needs the stages in ``plan`` (key -> labels)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO reproductions VALUES (?, ?, ?, ?, ?, NULL, 'running')",
                (spec, scale, json.dumps(definition), backend, time.time()),
            )
            db.execute("DELETE FROM plan WHERE spec = ? AND scale = ?", (spec, scale))
            db.executemany(
                "INSERT INTO plan VALUES (?, ?, ?, ?)",
                [(spec, scale, key, json.dumps(labels, sort_keys=True)) for key, labels in plan.items()],
            )

    def record_provenance(self, spec: str, scale: str, info: dict[str, Any]) -> None:
        """Where ``spec`` at ``scale`` was run from (commit, version, machine): meta 'provenance
        <spec> <scale>' (the meta table keeps older databases readable)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"provenance {spec} {scale}", json.dumps(info))
            )

    def provenance(self, spec: str, scale: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT value FROM meta WHERE key = ?", (f"provenance {spec} {scale}",)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def end_reproduction(self, spec: str, scale: str, status: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE reproductions SET finished = ?, status = ? WHERE spec = ? AND scale = ?",
                (time.time(), status, spec, scale),
            )

    def reproductions(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT spec, scale, definition, backend, started, finished, status FROM reproductions "
            "ORDER BY started"
        ).fetchall()
        names = ["spec", "scale", "definition", "backend", "started", "finished", "status"]
        return [dict(zip(names, row, strict=True)) | {"definition": json.loads(row[2])} for row in rows]

    def plan(self, spec: str, scale: str) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT key, labels FROM plan WHERE spec = ? AND scale = ?", (spec, scale))
        return {key: json.loads(labels) for key, labels in rows}

    # --- runs ---
    def done_output(self, key: str) -> StageOutput | None:
        """The stored output of a finished stage, or None when it has not finished."""
        query = "SELECT artifact FROM runs WHERE key = ? AND status = 'done'"
        row = self.db.execute(query, (key,)).fetchone()
        if row is None:
            return None
        return StageOutput(row[0], self.metrics(key))

    def start(self, stage: Stage, device: str, started: float | None = None) -> None:
        """Record ``stage`` as 'running' (called when it actually starts, not when queued)."""
        with self._transaction() as db:
            self._insert_running(db, stage, device, time.time() if started is None else started)

    @staticmethod
    def _insert_running(db: sqlite3.Connection, stage: Stage, device: str, started: float) -> None:
        db.execute("DELETE FROM runs WHERE key = ?", (stage.key,))
        db.execute(
            "INSERT INTO runs (key, kind, label, config, inputs, status, started, device, host, pid, "
            "versions) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            (stage.key, stage.kind, stage.label, json.dumps(stage.config, sort_keys=True),
             json.dumps(stage.inputs, sort_keys=True), started, device, socket.gethostname(),
             os.getpid(), json.dumps(versions())),
        )  # fmt: skip

    def _ensure_row(self, db: sqlite3.Connection, key: str, stage: Stage | None, device: str,
                    seconds: float | None) -> None:  # fmt: skip
        """A stage whose backend never reported its start (Ray) gets its row now, started
        ``seconds`` ago (its own run time) or now."""
        if stage is None or db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone():
            return
        self._insert_running(db, stage, device, time.time() - (seconds or 0.0))

    def finish(self, key: str, output: StageOutput, stage: Stage | None = None) -> None:
        with self._transaction() as db:
            self._ensure_row(db, key, stage, output.device or "", output.seconds)
            now = time.time()
            db.execute(
                "UPDATE runs SET status = 'done', error = NULL, artifact = ?, finished = ?, "
                "seconds = coalesce(?, ? - started), device = coalesce(nullif(?, ''), device), "
                "precision = nullif(?, '') WHERE key = ?",
                (output.artifact, now, output.seconds, now, output.device, output.precision, key),
            )
            db.execute("DELETE FROM metrics WHERE run = ?", (key,))
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?)",
                [(key, name, split, float(value)) for (name, split), value in output.metrics.items()],
            )

    def fail(self, key: str, error: str, stage: Stage | None = None, device: str = "") -> None:
        with self._transaction() as db:
            self._ensure_row(db, key, stage, device, None)
            now = time.time()
            db.execute(
                "UPDATE runs SET status = 'failed', error = ?, finished = ?, seconds = ? - started "
                "WHERE key = ?",
                (error, now, now, key),
            )

    def metrics(self, key: str) -> dict[tuple[str, str], float]:
        rows = self.db.execute("SELECT name, split, value FROM metrics WHERE run = ?", (key,))
        return {(name, split): value for name, split, value in rows}

    def runs(self, keys: list[str] | None = None) -> list[RunRecord]:
        rows = self.db.execute(
            "SELECT key, kind, label, status, error, artifact, seconds, device, "
            f"{self._precision}, started, finished FROM runs r ORDER BY started"
        ).fetchall()
        records = [RunRecord(*row) for row in rows]
        return records if keys is None else [r for r in records if r.key in set(keys)]

    def rows(self, spec: str | None = None, scale: str | None = None, kind: str | None = None,
             status: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """One row per (spec, scale, run, metric), filtered; runs without metrics appear once."""
        query = f"""
            SELECT p.spec, p.scale, r.kind, r.label, r.key, r.status, m.name, m.split, m.value,
                   r.seconds, r.device, {self._precision}, r.error
            FROM plan p JOIN runs r ON r.key = p.key LEFT JOIN metrics m ON m.run = r.key
            WHERE (:spec IS NULL OR p.spec = :spec) AND (:scale IS NULL OR p.scale = :scale)
              AND (:kind IS NULL OR r.kind = :kind) AND (:status IS NULL OR r.status = :status)
              AND (:metric IS NULL OR m.name = :metric)
            ORDER BY p.spec, p.scale, r.started, m.name, m.split
        """
        params = {"spec": spec, "scale": scale, "kind": kind, "status": status, "metric": metric}
        names = ["spec", "scale", "kind", "stage", "key", "status", "metric", "split", "value",
                 "seconds", "device", "precision", "error"]  # fmt: skip
        return [dict(zip(names, row, strict=True)) for row in self.db.execute(query, params)]


# Units of the CSV export (one unit per metric). Stages store accuracy as a fraction (train,
# LM stages, recovery, MIA rates, certified bounds) except the unlearn stage and the accuracy
# audit, which store percent (unlearn.scenario_data.evaluate): the export writes percent.
PERCENT_STORED = {("unlearn", "accuracy"), ("audit", "accuracy")}
FRACTION_TO_PERCENT = ("accuracy", "recovered_accuracy", "control_accuracy", "svc_rate", "svc_unseen_rate",
                       "certified_lower", "certified_upper", "clean_value", "transfer_probability",
                       "task_accuracy", "yes_share")  # fmt: skip
UNITS = {"auc": "auc (0-1)", "distance": "l2", "radius": "l2", "radius_reached": "bool (0/1)",
         "unlearn_seconds": "s", "seconds": "s", "train_seconds": "s", "test_size": "examples",
         "inserted_words": "words per text"}  # fmt: skip
# CSV column -> plan label (studies label their stages: protection, cls, part, row, role, ...)
LABELS = {"protection": "protection", "class": "cls", "forget_set": "part", "method": "method", "row": "row",
          "role": "role", "seed": "seed"}  # fmt: skip


def metric_unit(kind: str, metric: str | None, value: float | None) -> tuple[str, float | None]:
    """(unit, value in that unit) of a stored metric: fractions of accuracy-like metrics as percent."""
    if metric is None:
        return "", value
    base = metric.split("/")[0]  # 'recovered_accuracy/clean' (a reference's curve) -> its base metric
    if base in FRACTION_TO_PERCENT:
        if (kind, base) in PERCENT_STORED or value is None:
            return "percent", value
        return "percent", 100 * value
    return UNITS.get(base, ""), value


def export_rows(db: ResultsDB, **filters: Any) -> list[dict[str, Any]]:
    """``rows`` for the CSV export: one unit per metric (``unit``), the plan's labels as columns
    (study, protection, class, forget set, method, row, role, seed), eta parsed from the split,
    and one row with an empty value and a ``note`` per Theorem 1 bound that abstained."""
    plans: dict[tuple[str, str, str], dict[str, Any]] = {}
    for spec, scale, key, labels in db.db.execute("SELECT spec, scale, key, labels FROM plan"):
        plans[(spec, scale, key)] = json.loads(labels)
    studies = {r["spec"]: r["definition"].get("study", "") for r in db.reproductions()}
    out = []
    for row in db.rows(**filters):
        labels = _merged(plans.get((row["spec"], row["scale"], row["key"]), {}))
        unit, value = metric_unit(row["kind"], row["metric"], row["value"])
        split = row["split"] or ""
        record = {"spec": row["spec"], "scale": row["scale"], "study": studies.get(row["spec"], "")}
        record |= {column: labels.get(label, "") for column, label in LABELS.items()}
        if not record["method"] and labels.get("row"):  # interplay rows: 'FT_small' -> method FT
            record["method"] = str(labels["row"]).split("_")[0]
        record |= {"eta": split[4:] if split.startswith("eta=") else "", "kind": row["kind"],
                   "stage": row["stage"], "key": row["key"], "status": row["status"],
                   "metric": row["metric"] or "", "split": split, "value": value, "unit": unit, "note": "",
                   "seconds": row["seconds"], "device": row["device"], "precision": row["precision"],
                   "error": row["error"]}  # fmt: skip
        out.append(record)
    return out + _abstentions(db, out)


def _merged(labels: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """One stage's labels; a stage planned under several label sets gets 'a;b' per key."""
    if isinstance(labels, dict):
        return labels
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for item in labels for k in item):
        values = list(dict.fromkeys(str(item[key]) for item in labels if key in item))
        merged[key] = values[0] if len(values) == 1 else ";".join(values)
    return merged


def _abstentions(db: ResultsDB, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for Theorem 1 bounds that abstained: a done certify audit stores no metric for a
    side at an eta where N was too small, so every eta of its options without one is listed."""
    from dememo.audit.jobs import CertifyOptions

    extra, seen = [], set()
    for row in rows:
        if row["kind"] != "audit" or row["metric"] != "clean_value" or row["key"] in seen:
            continue
        seen.add(row["key"])
        found = db.db.execute("SELECT config FROM runs WHERE key = ?", (row["key"],)).fetchone()
        config = json.loads(found[0]) if found else {}
        if config.get("job") != "certify":
            continue
        etas = CertifyOptions.model_validate(config.get("options") or {}).etas
        stored = db.metrics(row["key"])
        for eta in etas:
            for side in ("lower", "upper"):
                if (f"certified_{side}", f"eta={eta:g}") not in stored:
                    extra.append({**row, "metric": f"certified_{side}", "split": f"eta={eta:g}",
                                  "eta": f"{eta:g}", "value": None, "unit": "percent",
                                  "note": f"abstain (N too small for the {side} bound at this eta; "
                                          "the audit's report.json names the N needed)"})  # fmt: skip
    return extra


def write_csv(rows: list[dict[str, Any]], path: Path | None = None) -> str:
    """Rows as CSV, written atomically to ``path`` when given; returns the text."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if path is not None:
        atomic_write_text(path, buffer.getvalue())
    return buffer.getvalue()
