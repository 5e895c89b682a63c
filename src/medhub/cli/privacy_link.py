"""CLI for the linkage unit and re-identification risk: `medhub link` and `medhub risk` (thin wrappers)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _mapping(columns: list[str], pairs: list[str]) -> dict[str, str]:
    from medhub.privacy.linkage.columns import guess_mapping

    if pairs:
        out = {}
        for p in pairs:
            if "=" not in p:
                raise typer.BadParameter(f"--map {p!r}: use COLUMN=FIELD")
            col, fld = p.split("=", 1)
            out[col.strip()] = fld.strip()
        return {c: f for c, f in out.items() if c in columns} or out
    return guess_mapping(columns)


def _read_csv(path: Path):
    import pandas as pd

    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        raise typer.BadParameter(f"{path}: cannot read it as CSV: {exc}") from exc


def register(app: typer.Typer) -> None:
    """Attach `link` and `risk` to the root app."""

    @app.command()
    def link(
        left: Path = typer.Option(..., "--left", help="CSV of the first source"),
        right: Path = typer.Option(..., "--right", help="CSV of the second source"),
        out: Path = typer.Option(..., "--out", help="CSV of matched pairs to write"),
        map_: list[str] = typer.Option(
            [],
            "--map",
            help="COLUMN=FIELD (both files); fields: family_name, "
            "given_name, family_name_roman, given_name_roman, sex, birth_date, rrn, "
            "phone, address, postcode",
        ),
        left_id: str = typer.Option(None, "--left-id", help="id column of --left (default: row number)"),
        right_id: str = typer.Option(None, "--right-id", help="id column of --right (default: row number)"),
        with_rrn: bool = typer.Option(True, "--with-rrn/--without-rrn", help="use the RRN (national id)"),
        threshold: float = typer.Option(0.5, help="match probability to accept a pair"),
        workers: int = typer.Option(1, help="processes per file for tokenizing (worth it from ~50k rows)"),
        round_id: str = typer.Option(
            None,
            "--round",
            help="tokenize with this round's key from the custodian's key store under MEDHUB_KEY_DIR "
            "(created on first use; default: a one-off key that is never stored)",
        ),
    ) -> None:
        """Link two files through the token path: tokenize each side, link the tokens, write pairs."""
        import secrets
        import time

        from medhub.config import load_settings
        from medhub.privacy.linkage import custodian, intake
        from medhub.privacy.linkage.tokens import tokenize
        from medhub.privacy.linkage.unit import LinkageError, link_tables

        console = Console(stderr=True)
        key = (
            intake.round_key(load_settings(), round_id)
            if round_id
            else secrets.token_bytes(custodian.KEY_BYTES)
        )
        t0 = time.perf_counter()
        tables = []
        with console.status("tokenizing at the sources...") as status:
            for path, id_col in ((left, left_id), (right, right_id)):
                df = _read_csv(path)
                mapping = _mapping(list(df.columns), map_)
                status.update(f"tokenizing {path.name} ({len(df)} rows)")
                try:
                    tables.append(
                        tokenize(
                            df, key, id_column=id_col, mapping=mapping, with_rrn=with_rrn, workers=workers
                        )
                    )
                except ValueError as exc:
                    raise typer.BadParameter(f"{path}: {exc}") from exc
            status.update("linking tokens in the unit...")
            try:
                res = link_tables(tables[0], tables[1], threshold=threshold)
            except LinkageError as exc:
                raise typer.BadParameter(str(exc)) from exc
        del key
        cols = ["left_id", "right_id", "probability", "weight", "stage"]
        out.parent.mkdir(parents=True, exist_ok=True)
        res.pairs[cols].to_csv(out, index=False)
        console.print(
            f"{len(res.pairs)} matched pairs from {res.n_candidates} candidates "
            f"({len(tables[0])} x {len(tables[1])} records) in {time.perf_counter() - t0:.1f}s -> {out}"
        )

    @app.command()
    def risk(
        table: Path = typer.Argument(..., help="a .csv, .tsv or .parquet table"),
        qi: list[str] = typer.Option(..., "--qi", help="a quasi-identifier column (repeat)"),
        sensitive: list[str] = typer.Option([], "--sensitive", help="a sensitive column (repeat)"),
        k: int = typer.Option(5, help="k-anonymity required"),
        max_risk: float = typer.Option(0.2, help="largest prosecutor risk allowed"),
        max_share: float = typer.Option(0.05, help="largest share of records at risk allowed"),
        min_l: int = typer.Option(2, help="distinct l-diversity required of each sensitive column"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Re-identification risk of a table; exit status 1 when a rule fails."""
        from medhub.privacy.risk import RiskPolicy, assess, read_table

        try:
            df = read_table(table)
            report = assess(
                df,
                qi,
                sensitive,
                RiskPolicy(
                    k=k, max_risk=max_risk, max_share_at_risk=max_share, risk_threshold=max_risk, min_l=min_l
                ),
            )
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise typer.BadParameter(f"{table}: {exc}") from exc
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            t = Table(title=f"{table.name}: {report.rows} rows, {report.classes} classes")
            for c in ("rule", "value", "limit", "result", "detail"):
                t.add_column(c)
            for r in report.rules:
                t.add_row(
                    r.name, f"{r.value:.4g}", f"{r.limit:.4g}", "pass" if r.passed else "FAIL", r.detail
                )
            Console().print(t)
        if not report.passed:
            raise typer.Exit(1)
