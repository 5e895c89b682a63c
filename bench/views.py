# ruff: noqa: E501  (hand-written SQL text is kept on readable lines)
"""Benchmark: SQL on FHIR views, medhub's compiled DuckDB SQL vs per-resource engines vs hand-written SQL.

Workload: the specification's 10 example ViewDefinitions over the Synthea R4 250-patient sample
(../shared/data/synthea). Setup (untimed): extract the bundles to a temp dir and flatten them into
one NDJSON file per resource type. Each engine then reads the view's type file:

  medhub       compile the view to DuckDB SQL and run it (fetch to Arrow)
  handwritten  a hand-written DuckDB query for the same view (checked to return the same rows)
  sqlonfhir    SAS's Python engine (reads the same NDJSON; orjson parsing is charged to it)
  pysof        the Rust engine via pysof.process_ndjson_to_file (NDJSON in, CSV out)

Metric: input resources per CPU-second (process CPU time, all threads), best of --repeat runs.
Prints per view and overall ratios: medhub / per-resource engines (goal >= 10x) and medhub /
hand-written SQL (goal >= 0.5x).

    .venv/bin/python bench/views.py [--quick] [--repeat N] [--scale K]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import duckdb
import orjson

from medhub.shared_data import shared_path
from medhub.views.definition import parse_view
from medhub.views.run import file_source, run_view_arrow

EXAMPLES = ("conformance", "sql-on-fhir-v2", "example-views")
SYNTHEA = ("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")

# Hand-written DuckDB SQL per example view, over {src} = read_ndjson_objects(...) with column `json`.
# Written the way an analyst who knows FHIR's cardinalities would write it.
HANDWRITTEN = {
    "PatientDemographics": """
        SELECT json_extract_string(json, '$.id') AS id, json_extract_string(json, '$.gender') AS gender,
               nullif(array_to_string(CAST(json_extract(n, '$.given') AS VARCHAR[]), ' '), '') AS given_name,
               json_extract_string(n, '$.family') AS family_name
        FROM (SELECT json, list_filter(CAST(json_extract(json, '$.name') AS JSON[]),
                     lambda x: json_extract_string(x, '$.use') = 'official')[1] AS n FROM {src})
        WHERE n IS NOT NULL""",
    "PatientAddresses": """
        SELECT json_extract_string(json, '$.id') AS patient_id,
               nullif(array_to_string(CAST(json_extract(a, '$.line') AS VARCHAR[]), chr(10)), '') AS street,
               json_extract_string(a, '$.use') AS use, json_extract_string(a, '$.city') AS city,
               json_extract_string(a, '$.postalCode') AS zip
        FROM (SELECT json, unnest(CAST(json_extract(json, '$.address') AS JSON[])) AS a FROM {src})""",
    "PatientNamesWithIndex": """
        SELECT json_extract_string(json, '$.id') AS patient_id, i - 1 AS name_index,
               json_extract_string(n, '$.use') AS use, json_extract_string(n, '$.family') AS family,
               nullif(array_to_string(CAST(json_extract(n, '$.given') AS VARCHAR[]), ' '), '') AS given
        FROM (SELECT json, unnest(CAST(json_extract(json, '$.name') AS JSON[])) AS n,
                     unnest(generate_series(1, len(CAST(json_extract(json, '$.name') AS JSON[])))) AS i
              FROM {src})""",
    "PatientAndContactAddressUnion": """
        SELECT json_extract_string(json, '$.id') AS resource_id,
               nullif(array_to_string(CAST(json_extract(a, '$.line') AS VARCHAR[]), chr(10)), '') AS street,
               json_extract_string(a, '$.city') AS city, json_extract_string(a, '$.postalCode') AS zip,
               true AS is_patient
        FROM (SELECT json, unnest(CAST(json_extract(json, '$.address') AS JSON[])) AS a FROM {src})
        UNION ALL
        SELECT json_extract_string(json, '$.id'),
               nullif(array_to_string(CAST(json_extract(a, '$.line') AS VARCHAR[]), chr(10)), ''),
               json_extract_string(a, '$.city'), json_extract_string(a, '$.postalCode'), false
        FROM (SELECT json, json_extract(unnest(CAST(json_extract(json, '$.contact') AS JSON[])), '$.address') AS a
              FROM {src}) WHERE a IS NOT NULL""",
    "ConditionFlat": """
        SELECT json_extract_string(json, '$.id') AS id,
               regexp_extract(json_extract_string(json, '$.subject.reference'), '([^/:]+)$', 1) AS patient_id,
               regexp_extract(json_extract_string(json, '$.encounter.reference'), '([^/:]+)$', 1) AS encounter_id,
               json_extract_string(json, '$.onsetDateTime') AS onset_datetime,
               json_extract_string(c, '$.system') AS system, json_extract_string(c, '$.code') AS code,
               json_extract_string(json, '$.category[0].coding[0].code') AS category,
               json_extract_string(json, '$.clinicalStatus.coding[0].code') AS clinical_status,
               json_extract_string(json, '$.verificationStatus.coding[0].code') AS verification_status
        FROM (SELECT json, unnest(coalesce(CAST(json_extract(json, '$.code.coding') AS JSON[]), [NULL::JSON])) AS c
              FROM {src})""",
    "EncounterFlat": """
        SELECT json_extract_string(json, '$.id') AS id, json_extract_string(json, '$.status') AS status,
               regexp_extract(json_extract_string(json, '$.subject.reference'), '([^/:]+)$', 1) AS patient_id,
               regexp_extract(json_extract_string(json, '$.serviceProvider.reference'), '([^/:]+)$', 1)
                   AS service_org_id,
               json_extract_string(json, '$.period.start') AS period_start,
               json_extract_string(json, '$.period.end') AS period_end,
               NULL::VARCHAR AS EpisodeOfCareId,
               json_extract_string(t, '$.system') AS type_sys, json_extract_string(t, '$.code') AS type_code,
               regexp_extract(json_extract_string(p, '$.individual.reference'), '([^/:]+)$', 1) AS practitioner_id,
               regexp_extract(json_extract_string(l, '$.location.reference'), '([^/:]+)$', 1) AS location_id
        FROM (SELECT json, unnest(coalesce(CAST(json_extract(json, '$.type[0].coding') AS JSON[]), [NULL::JSON])) AS t
              FROM {src}),
             (SELECT unnest(coalesce(CAST(json_extract(json, '$.participant') AS JSON[]), [NULL::JSON])) AS p),
             (SELECT unnest(coalesce(CAST(json_extract(json, '$.location') AS JSON[]), [NULL::JSON])) AS l)""",
    "UsCoreBloodPressures": """
        SELECT json_extract_string(json, '$.id') AS id,
               regexp_extract(json_extract_string(json, '$.subject.reference'), '([^/:]+)$', 1) AS patient_id,
               json_extract_string(json, '$.effectiveDateTime') AS effective_date_time,
               json_extract_string(s, '$.valueQuantity.system') AS sbp_quantity_system,
               json_extract_string(s, '$.valueQuantity.code') AS sbp_quantity_code,
               json_extract_string(s, '$.valueQuantity.unit') AS sbp_quantity_unit,
               json_extract_string(s, '$.valueQuantity.value') AS sbp_quantity_value,
               json_extract_string(d, '$.valueQuantity.system') AS dbp_quantity_system,
               json_extract_string(d, '$.valueQuantity.code') AS dbp_quantity_code,
               json_extract_string(d, '$.valueQuantity.unit') AS dbp_quantity_unit,
               json_extract_string(d, '$.valueQuantity.value') AS dbp_quantity_value
        FROM (SELECT json,
                     list_filter(comps, lambda c: len(list_filter(CAST(json_extract(c, '$.code.coding') AS JSON[]),
                         lambda k: json_extract_string(k, '$.system') = 'http://loinc.org'
                                   AND json_extract_string(k, '$.code') = '8480-6')) > 0)[1] AS s,
                     list_filter(comps, lambda c: len(list_filter(CAST(json_extract(c, '$.code.coding') AS JSON[]),
                         lambda k: json_extract_string(k, '$.system') = 'http://loinc.org'
                                   AND json_extract_string(k, '$.code') = '8462-4')) > 0)[1] AS d
              FROM (SELECT json, CAST(json_extract(json, '$.component') AS JSON[]) AS comps FROM {src}
                    WHERE len(list_filter(CAST(json_extract(json, '$.code.coding') AS JSON[]),
                          lambda k: json_extract_string(k, '$.system') = 'http://loinc.org'
                                    AND json_extract_string(k, '$.code') = '85354-9')) > 0))
        WHERE s IS NOT NULL AND d IS NOT NULL""",
}
# The shareable profile of PatientDemographics selects the same columns.
HANDWRITTEN["ShareablePatientDemographics"] = HANDWRITTEN["PatientDemographics"]


def setup(workdir: Path, scale: int) -> tuple[Path, collections.Counter]:
    """Extract the Synthea bundles and flatten them to one NDJSON file per type (untimed)."""
    tarball = shared_path(*SYNTHEA)
    if tarball is None:
        sys.exit(f"../shared/{'/'.join(SYNTHEA)} is absent")
    with tarfile.open(tarball) as tar:
        tar.extractall(workdir / "bundles", filter="data")
    nd = workdir / "ndjson"
    nd.mkdir()
    counts: collections.Counter = collections.Counter()
    handles = {}
    for f in sorted((workdir / "bundles").rglob("*.json")):
        bundle = orjson.loads(f.read_bytes())
        for e in bundle.get("entry", []):
            r = e["resource"]
            t = r["resourceType"]
            if t not in handles:
                handles[t] = open(nd / f"{t}.ndjson", "wb")  # noqa: SIM115 - closed below
            for _ in range(scale):
                handles[t].write(orjson.dumps(r) + b"\n")
            counts[t] += scale
    for h in handles.values():
        h.close()
    return nd, counts


def cpu_best(fn, repeat: int) -> tuple[float, object]:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def run_medhub(view: dict, path: Path):
    v = parse_view(view)
    return run_view_arrow(v, file_source([path])).num_rows


_HAND: list = []


def _hand_engine() -> duckdb.DuckDBPyConnection:
    if not _HAND:
        _HAND.append(duckdb.connect())
    return _HAND[0]


def run_handwritten(name: str, path: Path):
    src = f"read_ndjson_objects('{path}')"
    con = _hand_engine().cursor()  # one DuckDB per process, as medhub's runner does
    try:
        return con.sql(HANDWRITTEN[name].format(src=src)).to_arrow_table().num_rows
    finally:
        con.close()


def run_sqlonfhir(view: dict, path: Path):
    """sqlonfhir over the same NDJSON file: parse each line (orjson, fast) and evaluate."""
    import sqlonfhir

    with open(path, "rb") as fh:
        resources = [orjson.loads(line) for line in fh if line.strip()]
    return len(sqlonfhir.evaluate(resources, view))


def pysof_problem() -> str | None:
    """Why pysof cannot run here (its Rust extension fails to load), or None."""
    try:
        import pysof._pysof  # noqa: F401
    except ImportError as exc:
        return f"pysof cannot run on this machine: its Rust extension does not load ({exc})"
    return None


def run_pysof(view: dict, path: Path, out: Path):
    import pysof

    pysof.process_ndjson_to_file(view, str(path), str(out), "csv")
    with open(out, encoding="utf-8") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 views, 1 run each")
    ap.add_argument("--repeat", type=int, default=3, help="runs per engine and view (best is kept)")
    ap.add_argument(
        "--scale", type=int, default=1, help="copies of each resource (default 1: the sample as is)"
    )
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    views_dir = shared_path(*EXAMPLES)
    if views_dir is None:
        sys.exit(f"../shared/{'/'.join(EXAMPLES)} is absent")
    files = sorted(views_dir.glob("ViewDefinition-*.json"))
    if args.quick:
        files = [
            f for f in files if any(k in f.name for k in ("PatientDemographics", "ConditionFlat", "Blood"))
        ]
    print(f"# bench/views.py  repeat={repeat} scale={args.scale} cpus={os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="medhub-bench-views-") as tmp:
        nd, counts = setup(Path(tmp), args.scale)
        print(f"setup: {sum(counts.values())} resources flattened to NDJSON per type (untimed)")
        header = f"{'view':32} {'type':22} {'n':>6} {'rows':>6} " + " ".join(
            f"{e:>12}" for e in ("medhub", "handwritten", "sqlonfhir", "pysof")
        )
        print(header + "   (resources per CPU-second)")
        totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        notes: list[str] = []
        no_pysof = pysof_problem()
        if no_pysof:
            notes.append(no_pysof)
        per_view: dict[str, list[float]] = collections.defaultdict(list)  # medhub rate / engine rate
        for f in files:
            view = json.loads(f.read_text())
            name = f.stem.removeprefix("ViewDefinition-")
            rtype = view["resource"]
            path = nd / f"{rtype}.ndjson"
            n = counts.get(rtype, 0)
            if not path.exists():
                path.write_text("")
            rates: dict[str, str] = {}
            secs, rows = cpu_best(lambda view=view, path=path: run_medhub(view, path), repeat)
            rates["medhub"] = f"{n / secs:,.0f}" if secs else "-"
            totals["medhub"][0] += n
            totals["medhub"][1] += secs
            per_engine_secs = {"medhub": secs}
            if name in HANDWRITTEN:
                s, hrows = cpu_best(lambda name=name, path=path: run_handwritten(name, path), repeat)
                if hrows != rows:
                    notes.append(f"{name}: hand-written SQL returned {hrows} rows, medhub {rows}")
                rates["handwritten"] = f"{n / s:,.0f}" if s else "-"
                per_engine_secs["handwritten"] = s
            else:
                rates["handwritten"] = "n/a"
            try:
                s, _ = cpu_best(lambda view=view, path=path: run_sqlonfhir(view, path), repeat)
                rates["sqlonfhir"] = f"{n / s:,.0f}" if s else "-"
                per_engine_secs["sqlonfhir"] = s
            except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, not fatal
                rates["sqlonfhir"] = "FAIL"
                notes.append(f"{name}: sqlonfhir failed: {type(exc).__name__}: {str(exc)[:160]}")
            if no_pysof:
                rates["pysof"] = "n/a"
            else:
                try:
                    out = Path(tmp) / "pysof.csv"
                    s, _ = cpu_best(lambda view=view, path=path, out=out: run_pysof(view, path, out), repeat)
                    rates["pysof"] = f"{n / s:,.0f}" if s else "-"
                    per_engine_secs["pysof"] = s
                except Exception as exc:  # noqa: BLE001
                    rates["pysof"] = "FAIL"
                    notes.append(f"{name}: pysof failed: {type(exc).__name__}: {str(exc)[:160]}")
            for eng in ("handwritten", "sqlonfhir", "pysof"):
                if eng in per_engine_secs and n and secs and per_engine_secs[eng]:
                    per_view[eng].append(per_engine_secs[eng] / secs)
                if eng in per_engine_secs and n:
                    totals[eng][0] += n
                    totals[eng][1] += per_engine_secs[eng]
                    totals[f"medhub_vs_{eng}"][0] += n
                    totals[f"medhub_vs_{eng}"][1] += secs
            print(
                f"{name:32} {rtype:22} {n:>6} {rows:>6} "
                + " ".join(f"{rates[e]:>12}" for e in ("medhub", "handwritten", "sqlonfhir", "pysof"))
            )
        print()
        for eng in ("handwritten", "sqlonfhir", "pysof"):
            if totals[eng][1] and totals[f"medhub_vs_{eng}"][1]:
                mine = totals[f"medhub_vs_{eng}"][0] / totals[f"medhub_vs_{eng}"][1]
                theirs = totals[eng][0] / totals[eng][1]
                goal = "goal >= 0.5x" if eng == "handwritten" else "goal >= 10x"
                ratios = per_view[eng]
                gmean = math.exp(sum(map(math.log, ratios)) / len(ratios))
                print(
                    f"medhub / {eng:12}: per view {min(ratios):.2f}x .. {max(ratios):.2f}x, "
                    f"geometric mean {gmean:.2f}x over {len(ratios)} views"
                )
                print(
                    f"medhub / {eng:12}: {mine / theirs:6.2f}x  ({mine:,.0f} vs {theirs:,.0f} resources/CPU-s "
                    f"over the views both ran; {goal})"
                )
        for note in notes:
            print("note:", note)


if __name__ == "__main__":
    main()
