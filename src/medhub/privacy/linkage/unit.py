"""The linkage unit: links token tables from sources into random master person IDs.

It only ever sees token tables (see `tokens`). `link_tables` links two of them: blocking
on high-entropy tokens, exact agreement on the RRN token first, then Fellegi-Sunter
(m and u by EM, no labels) over decoded field agreement, then a one-to-one assignment
(best match first). `LinkageUnit` keeps its own store under settings.linkage_dir
(`unit/linkage.sqlite3`): which (source, record id) belongs to which master ID. Master
IDs are random and never leave the unit; the hub gets `project_pseudonyms`, an HMAC of
the master ID under a per-project key, so that two projects' extracts cannot be joined.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medhub.privacy.linkage import custodian
from medhub.privacy.linkage.fellegi_sunter import (
    AgreementCounts,
    FSModel,
    agreement_patterns,
    comparison_levels,
    estimate_u,
    fit_em,
)
from medhub.privacy.linkage.tokens import (
    DEL_WITH_OTHER_NAME,
    GIVEN_POSTCODE,
    HOUSE_POSTCODE,
    NAME_DOB,
    NAME_DOB_NEXT,
    NAME_STREET,
    NAMES_HOUSE,
    NAMES_POSTCODE,
    RRN_DEL_COLUMNS,
    STREET_POSTCODE,
    TOKEN_NAMES,
    del_columns,
)

BLOCKING_TOKENS = (
    "rrn",
    "rrn_no_a",
    "rrn_no_b",
    "rrn_no_c",
    "rrn_dob_b",
    "rrn_dob_c",
    "phone",
    "dob_swap",
    "address",
    HOUSE_POSTCODE,
    GIVEN_POSTCODE,
    NAMES_HOUSE,
    NAMES_POSTCODE,
    NAME_STREET,
    STREET_POSTCODE,
)
CROSS_BLOCKING = ((NAME_DOB, NAME_DOB_NEXT), (NAME_DOB_NEXT, NAME_DOB))
# groups of slot columns (shuffled, padded): two records meet when any slot of one equals any of the other
SLOT_BLOCKING = (
    *(tuple(del_columns(n, a)) for n, (a, _) in DEL_WITH_OTHER_NAME.items()),
    RRN_DEL_COLUMNS,
)
MAX_BLOCK_PAIRS = 5_000  # a token value shared by more pairs than this is not used to block
# Tokens that name a whole street or more: they block only where few pairs share them (a short street,
# a small place), where they are anchors enough; a busy street would bring pairs by the million.
BLOCK_CAPS = {STREET_POSTCODE: 25}


class LinkageError(ValueError):
    """Token tables that cannot be linked (wrong columns, mixed rounds, ...)."""


def check_tokens(tokens: pd.DataFrame, what: str = "token table") -> None:
    missing = [c for c in ("record_id", *TOKEN_NAMES) if c not in tokens.columns]
    if missing:
        raise LinkageError(f"{what} lacks column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}")
    extra = [c for c in tokens.columns if c not in ("record_id", *TOKEN_NAMES)]
    if extra:
        raise LinkageError(f"{what} has unexpected column(s) {extra[:5]}: a token table holds tokens only")
    if tokens["record_id"].duplicated().any():
        dup = tokens.loc[tokens["record_id"].duplicated(), "record_id"].iloc[0]
        raise LinkageError(f"{what} repeats record id {dup!r}")


def candidate_pairs(
    left: pd.DataFrame,
    right: pd.DataFrame,
    block_on: Iterable[str | tuple[str, ...]] = BLOCKING_TOKENS + CROSS_BLOCKING + SLOT_BLOCKING,
    max_block_pairs: int = MAX_BLOCK_PAIRS,
) -> tuple[np.ndarray, np.ndarray]:
    """Row-index pairs that share at least one blocking token (huge blocks skipped; see BLOCK_CAPS).

    A blocking entry is a token name, a (left token, right token) pair compared crosswise, or a
    group of more than two slot columns (any slot of the left record equal to any of the right).
    """
    n_right = len(right)
    codes = []
    for entry in block_on:
        if isinstance(entry, str) or len(entry) == 2:
            lname, rname = (entry, entry) if isinstance(entry, str) else entry
            lk, rk = left[lname].to_numpy(), right[rname].to_numpy()
            l_rows, r_rows = np.arange(len(lk)), np.arange(len(rk))
        else:  # slot group: one (row, value) per slot
            lk, rk = left[list(entry)].to_numpy().ravel(), right[list(entry)].to_numpy().ravel()
            l_rows = np.repeat(np.arange(len(left)), len(entry))
            r_rows = np.repeat(np.arange(len(right)), len(entry))
        lf = pd.DataFrame({"k": lk, "li": l_rows})[lk != 0]
        rf = pd.DataFrame({"k": rk, "ri": r_rows})[rk != 0]
        lc = lf["k"].value_counts(sort=False)
        rc = rf["k"].value_counts(sort=False)
        sizes = lc.mul(rc, fill_value=0)
        cap = min(BLOCK_CAPS.get(entry, max_block_pairs), max_block_pairs) if isinstance(entry, str) else None
        cap = max_block_pairs if cap is None else cap
        big = sizes.index[sizes > cap]
        if len(big):
            lf = lf[~lf["k"].isin(big)]
            rf = rf[~rf["k"].isin(big)]
        j = lf.merge(rf, on="k", how="inner")
        codes.append(j["li"].to_numpy(np.int64) * n_right + j["ri"].to_numpy(np.int64))
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    allc = np.concatenate(codes)
    allc.sort()
    if len(allc):
        allc = allc[np.concatenate(([True], allc[1:] != allc[:-1]))]
    return allc // n_right, allc % n_right


def one_to_one(li: np.ndarray, ri: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Greedy best-match-first assignment: indices of the pairs kept, each record used at most once."""
    order = np.argsort(-score, kind="stable")
    used_l: set[int] = set()
    used_r: set[int] = set()
    keep = []
    for k in order.tolist():
        a, b = int(li[k]), int(ri[k])
        if a in used_l or b in used_r:
            continue
        used_l.add(a)
        used_r.add(b)
        keep.append(k)
    return np.asarray(keep, dtype=np.int64)


@dataclass
class LinkResult:
    """Accepted pairs (row indices, probability, log2 weight, stage) and the trained model."""

    pairs: pd.DataFrame  # left_row, right_row, left_id, right_id, probability, weight, stage
    model: FSModel | None
    n_candidates: int


def _positional(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the index 0..n-1 (row positions), copied only if it has another index."""
    ix = df.index
    if isinstance(ix, pd.RangeIndex) and ix.start == 0 and ix.step == 1:
        return df
    return df.reset_index(drop=True)


def link_tables(
    left: pd.DataFrame, right: pd.DataFrame, *, threshold: float = 0.5, one_to_one_links: bool = True
) -> LinkResult:
    """Link two token tables. Returns the accepted pairs, best first."""
    check_tokens(left, "left token table")
    check_tokens(right, "right token table")
    left, right = _positional(left), _positional(right)
    li, ri = candidate_pairs(left, right)
    empty = pd.DataFrame(
        {
            "left_row": [],
            "right_row": [],
            "left_id": [],
            "right_id": [],
            "probability": [],
            "weight": [],
            "stage": [],
        }
    )
    if len(li) == 0:
        return LinkResult(empty, None, 0)
    levels = comparison_levels(left, right, li, ri)
    n_pairs = float(len(left)) * float(len(right))
    model = None
    counts = AgreementCounts(left, right)
    patterns = agreement_patterns(levels)
    for _ in range(3):  # u counted over all pairs includes the matches; take them out and refit
        u = estimate_u(left, right, levels, model=model, n_pairs=n_pairs, counts=counts)
        model = fit_em(levels, u, n_pairs, patterns=patterns)
    weight = model.log2_bayes_factor(levels)
    prob = model.match_probability(levels)
    # Stage 1: exact agreement on the strong token (an RRN that appears once on each side).
    lr = left["rrn"].to_numpy()
    rr = right["rrn"].to_numpy()
    l_unique = ~pd.Series(lr).duplicated(keep=False).to_numpy() & (lr != 0)
    r_unique = ~pd.Series(rr).duplicated(keep=False).to_numpy() & (rr != 0)
    exact = (levels["rrn"] == 3) & l_unique[li] & r_unique[ri]
    prob = np.where(exact, 1.0, prob)
    accept = exact | (prob >= threshold)
    li, ri, prob, weight, exact = li[accept], ri[accept], prob[accept], weight[accept], exact[accept]
    score = np.where(exact, np.inf, weight)
    if one_to_one_links:
        keep = one_to_one(li, ri, score)
        li, ri, prob, weight, exact = li[keep], ri[keep], prob[keep], weight[keep], exact[keep]
    pairs = pd.DataFrame(
        {
            "left_row": li,
            "right_row": ri,
            "left_id": left["record_id"].to_numpy()[li],
            "right_id": right["record_id"].to_numpy()[ri],
            "probability": prob,
            "weight": weight,
            "stage": np.where(exact, "exact", "probabilistic"),
        }
    )
    return LinkResult(pairs, model, int(accept.size))


# --- clustering across many sources -------------------------------------------------------------


def cluster(node_source: np.ndarray, ea: np.ndarray, eb: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Union links best first, never two records of one source in a cluster. Returns a root per node."""
    parent = np.arange(len(node_source))
    sources: dict[int, set[int]] = {i: {int(s)} for i, s in enumerate(node_source)}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in np.argsort(-score, kind="stable").tolist():
        a, b = find(int(ea[k])), find(int(eb[k]))
        if a == b or sources[a] & sources[b]:
            continue
        if len(sources[a]) < len(sources[b]):
            a, b = b, a
        parent[b] = a
        sources[a] |= sources.pop(b)
    return np.array([find(i) for i in range(len(node_source))])


_SCHEMA = """
create table if not exists membership (
    source text not null, record_id text not null, master_id text not null, round_id text not null,
    primary key (source, record_id));
create index if not exists membership_master on membership(master_id);
create table if not exists rounds (
    round_id text primary key, resolved_at text not null, sources integer not null,
    records integer not null, masters integer not null);
"""


@dataclass
class ResolveReport:
    round_id: str
    sources: int
    records: int
    masters: int
    links: int


class LinkageUnit:
    """The linkage unit's store: token tables of the current round, master IDs, project keys."""

    def __init__(self, linkage_dir: Path) -> None:
        self.linkage_dir = Path(linkage_dir).absolute()
        self.dir = self.linkage_dir / "unit"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db_path = self.dir / "linkage.sqlite3"
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db_path)
        try:
            with con:
                yield con
        finally:
            con.close()

    def _tokens_dir(self, round_id: str) -> Path:
        return self.dir / "tokens" / custodian.check_name("round id", round_id)

    def receive(self, round_id: str, source: str, tokens: pd.DataFrame) -> Path:
        """Accept a source's token table for a round (replacing that source's earlier table)."""
        check_tokens(tokens, f"token table from {source}")
        d = self._tokens_dir(round_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / f"{custodian.check_name('source', source)}.parquet"
        tmp = path.with_suffix(".tmp")
        tokens.to_parquet(tmp, index=False)
        tmp.replace(path)
        return path

    def sources(self, round_id: str) -> list[str]:
        d = self._tokens_dir(round_id)
        return sorted(p.stem for p in d.glob("*.parquet")) if d.exists() else []

    def resolve(self, round_id: str, threshold: float = 0.5) -> ResolveReport:
        """Link every pair of sources of the round, cluster, and (re)assign master IDs."""
        names = self.sources(round_id)
        if not names:
            raise LinkageError(f"round {round_id!r} has no token tables")
        tables = [pd.read_parquet(self._tokens_dir(round_id) / f"{s}.parquet") for s in names]
        offsets = np.cumsum([0] + [len(t) for t in tables])
        node_source = np.concatenate([np.full(len(t), i) for i, t in enumerate(tables)])
        ea, eb, sc = [], [], []
        for i in range(len(tables)):
            for j in range(i + 1, len(tables)):
                res = link_tables(tables[i], tables[j], threshold=threshold, one_to_one_links=False)
                p = res.pairs
                ea.append(p["left_row"].to_numpy(np.int64) + offsets[i])
                eb.append(p["right_row"].to_numpy(np.int64) + offsets[j])
                sc.append(np.where(p["stage"] == "exact", 1e9, p["weight"].to_numpy(float)))

        def cat(xs, dt):
            return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

        roots = cluster(node_source, cat(ea, np.int64), cat(eb, np.int64), cat(sc, float))
        keys = [(names[s], str(r)) for s, t in enumerate(tables) for r in t["record_id"].tolist()]
        with self._db() as db:
            old = dict(
                ((s, r), m) for s, r, m in db.execute("select source, record_id, master_id from membership")
            )
            masters: dict[int, str] = {}
            by_root: dict[int, list[int]] = {}
            for node, root in enumerate(roots.tolist()):
                by_root.setdefault(root, []).append(node)
            taken: set[str] = set()
            for root, nodes in by_root.items():
                prior = [old[keys[n]] for n in nodes if keys[n] in old]
                choice = None
                for mid in sorted(set(prior), key=lambda x: (-prior.count(x), x)):
                    if mid not in taken:
                        choice = mid
                        break
                masters[root] = choice or secrets.token_hex(16)
                taken.add(masters[root])
            rows = [(keys[n][0], keys[n][1], masters[int(roots[n])], round_id) for n in range(len(keys))]
            db.executemany(
                "insert into membership(source, record_id, master_id, round_id) values (?,?,?,?) "
                "on conflict(source, record_id) do update set master_id=excluded.master_id, "
                "round_id=excluded.round_id",
                rows,
            )
            db.execute(
                "insert or replace into rounds values (?,?,?,?,?)",
                (
                    round_id,
                    datetime.datetime.now(datetime.UTC).isoformat(),
                    len(names),
                    len(keys),
                    len(by_root),
                ),
            )
        return ResolveReport(round_id, len(names), len(keys), len(by_root), int(sum(len(x) for x in ea)))

    def master_ids(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Master IDs of (source, record id) pairs. Internal to the unit: never hand these out."""
        wanted = list(keys)
        out: dict[tuple[str, str], str] = {}
        with self._db() as db:
            for s, r in wanted:
                row = db.execute(
                    "select master_id from membership where source=? and record_id=?", (s, r)
                ).fetchone()
                if row is None:
                    raise KeyError(f"the linkage unit does not know record {r!r} of source {s!r}")
                out[(s, r)] = row[0]
        return out

    def project_pseudonyms(
        self, project: str, source_pseudonyms: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """{(source, record id): HMAC-SHA256(master ID, project key)} as 32 hex characters."""
        key = custodian.project_key(self.linkage_dir, project)
        masters = self.master_ids(source_pseudonyms)
        return {k: hmac.new(key, m.encode(), hashlib.sha256).hexdigest()[:32] for k, m in masters.items()}


def project_pseudonyms(
    project: str, source_pseudonyms: Iterable[tuple[str, str]], *, linkage_dir: Path
) -> Mapping[tuple[str, str], str]:
    """Per-project pseudonyms for (source, record id) pairs already resolved by the unit at `linkage_dir`."""
    return LinkageUnit(linkage_dir).project_pseudonyms(project, source_pseudonyms)
