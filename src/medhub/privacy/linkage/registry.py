"""The linkage unit's side of the gate deposits: link a round's inbox into master IDs, hand out
per-project pseudonyms.

    run_linkage(settings) -> LinkageRun                         `medhub linkage run`
    project_pseudonym_rows(settings, project) -> rows           `medhub linkage pseudonyms --project P`

Everything here reads and writes settings.linkage_dir only: the inbox (`intake`), the unit's
store (`unit.LinkageUnit`: membership of (source, source pseudonym) in random master IDs) and
its project keys. Master IDs never leave this module; callers get counts and project pseudonyms.
"""

from __future__ import annotations

import csv
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from medhub.config import Settings
from medhub.privacy.linkage import intake
from medhub.privacy.linkage.custodian import check_name
from medhub.privacy.linkage.unit import LinkageError, LinkageUnit


@dataclass(frozen=True)
class LinkageRun:
    round_id: str
    sources: int
    records: int
    masters: int  # distinct persons after linkage
    multi_source: int  # persons seen at two or more sources
    links: int  # accepted record pairs before clustering
    per_source: dict[str, int]


def _deposited_round(settings: Settings, round_id: str | None) -> str:
    """The round asked for, or the one deposited to last (the unit never reads the source's key store)."""
    if round_id:
        return check_name("round id", round_id)
    latest = intake.latest_round(settings.linkage_dir)
    if latest is None:
        raise LinkageError(
            f"no token deposits in {intake.inbox_path(settings.linkage_dir)}: "
            "ingest FHIR Patients through the gate first"
        )
    return latest


def _linked_round(settings: Settings, round_id: str | None) -> str:
    """The round asked for, or the one linked last."""
    if round_id:
        return check_name("round id", round_id)
    with _membership(settings) as con:
        row = con.execute("select round_id from rounds order by resolved_at desc limit 1").fetchone()
    if row is None:
        raise LinkageError("nothing has been linked yet: run `medhub linkage run` first")
    return row[0]


def run_linkage(settings: Settings, round_id: str | None = None, threshold: float = 0.5) -> LinkageRun:
    """Link every source's deposited tokens of the round and (re)assign master IDs."""
    rid = _deposited_round(settings, round_id)
    names = intake.deposited_sources(settings.linkage_dir, rid)
    if not names:
        raise LinkageError(
            f"no token deposits for round {rid!r} in {intake.inbox_path(settings.linkage_dir)}: "
            "ingest FHIR Patients through the gate first"
        )
    unit = LinkageUnit(settings.linkage_dir)
    per_source = {}
    for source in names:
        table = intake.deposited_tokens(settings.linkage_dir, rid, source)
        per_source[source] = len(table)
        try:
            unit.receive(rid, source, table)
        except LinkageError as exc:
            raise LinkageError(
                f"{exc}. The deposits of round {rid!r} from {source!r} were tokenized with another token "
                "layout (an earlier medhub version): open a new round with `medhub linkage rotate` and "
                "have the sources send their Patients again"
            ) from exc
    rep = unit.resolve(rid, threshold=threshold)
    with _membership(settings) as con:
        multi = con.execute(
            "select count(*) from (select master_id from membership where round_id=? "
            "group by master_id having count(distinct source) >= 2)",
            (rid,),
        ).fetchone()[0]
    return LinkageRun(rid, rep.sources, rep.records, rep.masters, int(multi), rep.links, per_source)


class _membership:
    """Read-only view of the unit's membership table."""

    def __init__(self, settings: Settings) -> None:
        self.path = LinkageUnit(settings.linkage_dir).db_path

    def __enter__(self) -> sqlite3.Connection:
        self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


def project_pseudonym_rows(
    settings: Settings, project: str, round_id: str | None = None
) -> list[tuple[str, str, str]]:
    """(source, source pseudonym, project pseudonym) for every record linked in the round.

    project pseudonym = HMAC-SHA256(master ID, the project's key in the unit's key store)."""
    check_name("project", project)
    rid = _linked_round(settings, round_id)
    with _membership(settings) as con:
        keys = [
            (s, r)
            for s, r in con.execute(
                "select source, record_id from membership where round_id=? order by source, record_id", (rid,)
            )
        ]
    if not keys:
        raise LinkageError(f"round {rid!r} has not been linked yet: run `medhub linkage run` first")
    pseud = LinkageUnit(settings.linkage_dir).project_pseudonyms(project, keys)
    return [(s, r, pseud[(s, r)]) for s, r in keys]


def write_pseudonyms_csv(rows: list[tuple[str, str, str]], out: Path) -> Path:
    """Write rows as CSV (source, source_pseudonym, project_pseudonym), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "source_pseudonym", "project_pseudonym"])
        w.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(out)
    return out
