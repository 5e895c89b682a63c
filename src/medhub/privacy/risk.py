"""Re-identification risk of a table: k-anonymity, prosecutor risk, records at risk, l-diversity.

`assess(table, quasi_identifiers, sensitive=...)` groups the rows by their quasi-identifiers
(equivalence classes; a missing value is a value of its own) in one vectorised groupby and
returns a `RiskReport` with a pass/fail per rule. The review board's risk report uses it.

Rules and defaults: k-anonymity k >= 5; maximum prosecutor risk (1 / smallest class) <= 0.2;
at most 5% of records at risk (a record is at risk when its class's risk exceeds the
threshold); and, per sensitive column, distinct l-diversity l >= 2 when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RiskPolicy:
    k: int = 5
    max_risk: float = 0.2
    max_share_at_risk: float = 0.05
    risk_threshold: float = 0.2  # a record is "at risk" when its prosecutor risk exceeds this
    min_l: int = 2


@dataclass(frozen=True)
class Rule:
    name: str
    value: float
    limit: float
    passed: bool
    detail: str


@dataclass
class RiskReport:
    rows: int
    quasi_identifiers: list[str]
    classes: int
    k: int
    max_risk: float
    mean_risk: float
    share_at_risk: float
    l_diversity: dict[str, int] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "quasi_identifiers": self.quasi_identifiers,
            "classes": self.classes,
            "k": self.k,
            "max_risk": self.max_risk,
            "mean_risk": self.mean_risk,
            "share_at_risk": self.share_at_risk,
            "l_diversity": dict(self.l_diversity),
            "passed": self.passed,
            "rules": [r.__dict__ for r in self.rules],
        }


def _to_pandas(table, columns: Sequence[str]) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        df = table
    elif hasattr(table, "to_pandas"):  # pyarrow Table / RecordBatch
        df = table.select(list(columns)).to_pandas() if hasattr(table, "select") else table.to_pandas()
    elif hasattr(table, "df"):  # DuckDB relation
        df = table.df()
    else:
        raise TypeError(
            f"cannot assess a {type(table).__name__}: give a pandas DataFrame, pyarrow Table or "
            "DuckDB relation"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table (columns: {list(df.columns)[:30]})")
    return df


def _codes(s: pd.Series) -> np.ndarray:
    return pd.factorize(s, use_na_sentinel=False)[0]


def assess(
    table, quasi_identifiers: Sequence[str], sensitive: Sequence[str] = (), policy: RiskPolicy | None = None
) -> RiskReport:
    """Risk of re-identifying a row of `table` from its quasi-identifiers (prosecutor model)."""
    policy = policy or RiskPolicy()
    qi = list(quasi_identifiers)
    if not qi:
        raise ValueError("at least one quasi-identifier is needed")
    sens = list(sensitive)
    df = _to_pandas(table, qi + sens)
    n = len(df)
    if n == 0:
        raise ValueError("the table has no rows")
    # one integer id per equivalence class, from per-column codes (vectorised)
    cls = df.groupby(qi, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    sizes = np.bincount(cls)
    record_risk = 1.0 / sizes[cls]
    k = int(sizes.min())
    max_risk = float(1.0 / k)
    mean_risk = float(record_risk.mean())  # = classes / rows
    share = float((record_risk > policy.risk_threshold).mean())
    report = RiskReport(
        rows=n,
        quasi_identifiers=qi,
        classes=len(sizes),
        k=k,
        max_risk=max_risk,
        mean_risk=mean_risk,
        share_at_risk=share,
    )
    report.rules += [
        Rule("k-anonymity", k, policy.k, k >= policy.k, f"smallest class has {k} record(s)"),
        Rule(
            "max prosecutor risk",
            max_risk,
            policy.max_risk,
            max_risk <= policy.max_risk,
            f"1/{k} = {max_risk:.3f}",
        ),
        Rule(
            "records at risk",
            share,
            policy.max_share_at_risk,
            share <= policy.max_share_at_risk,
            f"{share:.1%} of records have risk > {policy.risk_threshold}",
        ),
    ]
    for s in sens:
        v = _codes(df[s]).astype(np.int64)
        pair = np.unique(cls.astype(np.int64) * (int(v.max()) + 1) + v)  # distinct (class, value)
        l_per_class = np.bincount(pair // (int(v.max()) + 1), minlength=len(sizes))
        ell = int(l_per_class.min())
        report.l_diversity[s] = ell
        report.rules.append(
            Rule(
                f"l-diversity({s})",
                ell,
                policy.min_l,
                ell >= policy.min_l,
                f"the least diverse class has {ell} distinct value(s) of {s}",
            )
        )
    return report


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, with a clear error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            return pd.read_csv(
                path,
                sep="\t" if path.suffix.lower() == ".tsv" else ",",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
            )
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        raise ValueError(f"{path}: cannot read it as a table: {exc}") from exc
    raise ValueError(f"{path}: unsupported table format (use .csv, .tsv or .parquet)")
