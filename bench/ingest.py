"""Benchmark: ingestion throughput and memory, medhub against bare parsing, in one run.

    nice -n 10 .venv/bin/python bench/ingest.py [--quick] [--bundles N] [--dicom-copies K]

1. FHIR: the Synthea sample in ../shared/data/synthea (250 transaction Bundles; --quick: 25),
   ingested with the hub's privacy gate, in resources per CPU-second, against a bare
   `orjson.loads` of the same files (the parse every ingest must do), run as a program of its
   own: a fresh child process that imports orjson alone and times its own loop. The hub's gate
   takes each Bundle in one native pass (privacy/deid/_fhir_bundle.c, since 2026-12-07). Also
   shown: the same ingest with an identity gate (privacy left out; that gate has no Bundle pass,
   so this is the item-by-item Python path: each Bundle parsed into Python objects), and the bare
   parse inside this process, with the default collector (what this bench took as its baseline
   until 2026-12-07: the collector's full sweeps there also walk every object medhub and its
   libraries hold, which made that parse about 2.5x dearer than the bare program) and with the
   pipeline's collector setting; and, as a program of its own too, the least any ingest that keeps
   each resource's JSON and content hash must do (each file read, hashed and parsed, each
   resource serialized and hashed: the ceiling of that design). Goal >= 0.5x.
2. DICOM: the public DICOM set in ../shared/data/dicom, each file copied K times with new
   SOP Instance UIDs (distinct content), ingested with the hub's gate, in files per second,
   against a bare pydicom read-and-write loop over the same files (each written back to a file
   on disk, as the hub writes its blob; the same loop writing to memory is shown too). Files the
   gate holds for review (burned-in text risk) are left out of both. Goal >= 0.7x.
3. Memory: peak RSS of a child process ingesting the Synthea sample as NDJSON at 1x and at 4x
   (4x: four copies with distinct ids). Goal: flat (4x peak within 1.25x of the 1x peak).

CPU time is user+system of this process (all threads) from getrusage (a measure run in a child
process reports the child's own figure for its timed loop); each figure is the best
of 5 runs (`--repeat`), the measures of one part taking turns round by round
(`interleaved_rounds`). The ratios are best against best; the ratio of each round (medhub and
its baseline measured seconds apart) and their median are shown beside them, as a check on a
noisy machine. Each hub run starts cold: its lake is deleted and de-identification's caches are
emptied after it (`clear_hubs`), as a fresh `medhub ingest` process would start. Results are
printed and written to bench/out/ingest.json.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import orjson
import pydicom
from pydicom.uid import generate_uid

from medhub.config import Settings, load_settings
from medhub.ingest.pipeline import GC_THRESHOLD
from medhub.ingest.records import DicomItem, HeldForReview
from medhub.lake.intake import hub_gate, ingest_paths
from medhub.privacy.deid import clear_caches
from medhub.shared_data import shared_path

REPEAT = 5  # rounds: each measure is the best (least CPU) of this many runs, in turns (shared machine)


# A run (returning None, timed here, or the CPU-s a child process measured itself), and what to
# do after it.
Measure = tuple[Callable[[], float | None], Callable[[], None] | None]


def interleaved_rounds(rounds: int, measures: dict[str, Measure]) -> dict[str, list[float]]:
    """The CPU time of each measure in each of `rounds` rounds, the measures taking turns within
    each round (noise on a shared machine only ever adds, and a burst of it then hits every
    measure alike instead of all the runs of one). A measure's cleanup runs after it, outside the
    timing (deleting what a run wrote is not its work). A measure that runs in a child process
    returns the child's own CPU time for its timed loop (interpreter start and imports left out)."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, (fn, cleanup) in measures.items():
            t = cpu()
            own = fn()
            times[name].append(own if own is not None else cpu() - t)
            if cleanup is not None:
                cleanup()
    return times


def best_of(times: dict[str, list[float]]) -> dict[str, float]:
    """Each measure's least CPU time (`interleaved_rounds`)."""
    return {name: min(ts) for name, ts in times.items()}


def round_ratios(base: list[float], medhub: list[float], scale: float = 1.0) -> list[float]:
    """medhub's throughput over the baseline's, round by round (each pair measured seconds apart,
    so a slow phase of the machine weighs on both): a check on the best-against-best ratio."""
    return [round(scale * b / m, 3) for b, m in zip(base, medhub, strict=True)]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fresh_settings(root: Path, name: str) -> Settings:
    base = root / name
    s = load_settings(
        {
            "MEDHUB_HOME": str(base / "hub"),
            "MEDHUB_KEY_DIR": str(base / "keys"),
            "MEDHUB_LINKAGE_DIR": str(base / "linkage"),
        }
    )
    s.ensure_dirs()
    return s


def clear_hubs(root: Path, prefix: str) -> None:
    """Delete the hubs the runs wrote, and empty de-identification's caches: each run starts as
    cold as a fresh `medhub ingest` process (a run after another would find the same texts and
    dates worked out, and the baseline's collector would walk what they hold)."""
    for d in root.glob(f"{prefix}*"):
        shutil.rmtree(d, ignore_errors=True)
    clear_caches()


def extract_synthea(dest: Path, n: int) -> list[Path]:
    tgz = shared_path("data", "synthea", "synthea-r4-250-patients-bundles.tar.gz")
    if tgz is None:
        sys.exit("../shared/data/synthea is absent: the FHIR benchmark needs the Synthea sample")
    dest.mkdir(parents=True)
    out = []
    with tarfile.open(tgz) as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".json"):
                p = dest / Path(m.name).name
                p.write_bytes(tar.extractfile(m).read())
                out.append(p)
                if len(out) == n:
                    break
    return out


# The FHIR baselines as programs of their own (nothing imported but orjson, and for the ceiling
# the hashes the hub uses: BLAKE3 for a file, as the store records it since migration 0002, and
# sha256 for a resource, the lake's content hash; the default collector), each printing the CPU
# time of its loop (the files are in the page cache already). "parse": the bare parse. "ceiling":
# the least an ingest that keeps each resource's JSON and its content hash must do (nothing
# validated, de-identified or written): each file read, hashed and parsed, each Bundle entry's
# resource serialized and hashed; its ratio is the ceiling of any design that turns every
# resource into a Python object and back.
_FHIR_PROGRAM = """
import resource, sys
import orjson
paths = open(sys.argv[1], encoding="utf-8").read().splitlines()
ceiling = sys.argv[2] == "ceiling"
if ceiling:
    import hashlib
    from blake3 import blake3
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t = cpu()
for p in paths:
    with open(p, "rb") as f:
        data = f.read()
    if not ceiling:
        orjson.loads(data)
        continue
    blake3(data).digest()
    for e in orjson.loads(data).get("entry") or []:
        hashlib.sha256(orjson.dumps(e["resource"])).digest()
print(cpu() - t)
"""


def child_cpu(code: str, *args: str) -> float:
    """Run `code` in a fresh interpreter and return the CPU-s it printed for its timed loop."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"a baseline program failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return float(out.stdout.split()[-1])


def bench_fhir(root: Path, n: int) -> dict:
    files = extract_synthea(root / "synthea", n)
    for f in files:  # warm the page cache for both sides
        f.read_bytes()
    resources = sum(len(orjson.loads(f.read_bytes())["entry"]) for f in files)
    file_list = root / "synthea-files.txt"
    file_list.write_text("\n".join(str(f) for f in files), encoding="utf-8")

    def bare_program() -> float:
        return child_cpu(_FHIR_PROGRAM, str(file_list), "parse")

    def floor_program() -> float:
        return child_cpu(_FHIR_PROGRAM, str(file_list), "ceiling")

    def bare_parse() -> None:
        # In this process: the default collector's full sweeps also walk the ~10^5 objects that
        # medhub and its libraries hold here, which a bare program does not have.
        for f in files:
            orjson.loads(f.read_bytes())

    def bare_parse_same_gc() -> None:
        # The pipeline collects reference cycles less often while it runs (medhub.ingest.pipeline
        # GC_THRESHOLD); the bare parse under that same setting is shown too, for a strict reading.
        old_gc = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, old_gc[1], old_gc[2])
        try:
            bare_parse()
        finally:
            gc.set_threshold(*old_gc)

    landed = 0

    def ingest(gate):  # noqa: ANN001 - a Gate or None (the hub's gate)
        def run() -> None:
            nonlocal landed
            name = f"fhir-{secrets.token_hex(4)}"
            s = ingest_paths(fresh_settings(root, name), "synthea", [root / "synthea"], gate=gate)
            assert s.quarantined == 0, s.problems[:3]
            landed = s.accepted + s.duplicate

        return run

    clear = functools.partial(clear_hubs, root, "fhir-")
    times = interleaved_rounds(
        REPEAT,
        {
            "bare": (bare_program, None),
            "floor": (floor_program, None),
            "bare_here": (bare_parse, None),
            "bare_tuned": (bare_parse_same_gc, None),
            "hub": (ingest(None), clear),
            "ident": (ingest(lambda item: item), clear),
        },
    )
    t = best_of(times)
    bare, bare_here, bare_tuned, hub, ident = t["bare"], t["bare_here"], t["bare_tuned"], t["hub"], t["ident"]
    per_round = round_ratios(times["bare"], times["hub"], landed / resources)
    bare_rate, hub_rate, id_rate = resources / bare, landed / hub, landed / ident
    return {
        "bundles": len(files),
        "resources": resources,
        "bytes": sum(f.stat().st_size for f in files),
        "bare_cpu_s": round(bare, 3),
        "medhub_cpu_s": round(hub, 3),
        "medhub_identity_gate_cpu_s": round(ident, 3),
        "bare_resources_per_cpu_s": round(bare_rate),
        "medhub_resources_per_cpu_s": round(hub_rate),
        "medhub_identity_gate_resources_per_cpu_s": round(id_rate),
        "ratio": round(hub_rate / bare_rate, 3),
        "ratio_identity_gate": round(id_rate / bare_rate, 3),
        "floor_cpu_s": round(t["floor"], 3),
        "ratio_floor": round(bare / t["floor"], 3),
        "bare_in_this_process_cpu_s": round(bare_here, 3),
        "ratio_vs_bare_in_this_process": round(bare_here / hub * landed / resources, 3),
        "bare_same_gc_cpu_s": round(bare_tuned, 3),
        "ratio_vs_bare_same_gc": round(bare_tuned / hub * landed / resources, 3),
        "ratio_identity_gate_vs_bare_same_gc": round(bare_tuned / ident * landed / resources, 3),
        "ratio_by_round": per_round,
        "ratio_median_of_rounds": statistics.median(per_round),
        "goal": 0.5,
    }


def make_dicom_corpus(root: Path, copies: int, settings: Settings) -> list[Path]:
    src = shared_path("data", "dicom")
    if src is None:
        sys.exit("../shared/data/dicom is absent: the DICOM benchmark needs the public DICOM set")
    gate = hub_gate(settings, "probe")
    keep = []
    for f in sorted(src.rglob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(f, force=True)
            try:
                gate(DicomItem(str(f), ds))
            except HeldForReview:
                continue
        keep.append(f)
    out_dir = root / "dicom"
    out_dir.mkdir()
    out = []
    for k in range(copies):
        for f in keep:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(f, force=True)
                ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(f), str(k)])
                if (
                    getattr(ds, "file_meta", None) is not None
                    and "MediaStorageSOPInstanceUID" in ds.file_meta
                ):
                    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                p = out_dir / f"{k:03d}-{f.name}"
                ds.save_as(p)
            out.append(p)
    return out


def bench_dicom(root: Path, copies: int) -> dict:
    settings = fresh_settings(root, "dicom-hub")
    files = make_dicom_corpus(root, copies, settings)
    for f in files:
        f.read_bytes()

    def bare_loop() -> None:  # read each file, write it back to disk (as the hub must)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in files:
                ds = pydicom.dcmread(f, force=True)
                pydicom.dcmwrite(bare_out / f.name, ds)

    def bare_loop_memory() -> None:  # the same, written to memory only (a stricter baseline)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in files:
                ds = pydicom.dcmread(f, force=True)
                pydicom.dcmwrite(io.BytesIO(), ds)

    def ingest(gate):  # noqa: ANN001 - a Gate or None (the hub's gate)
        def run() -> None:
            name = f"dicom-{secrets.token_hex(4)}"
            s = ingest_paths(fresh_settings(root, name), "dicom", [root / "dicom"], gate=gate)
            assert s.counts["dicom"].accepted == len(files), s.as_dict()["counts"]

        return run

    bare_out = root / "bare-out"

    def clear_bare() -> None:
        shutil.rmtree(bare_out, ignore_errors=True)
        bare_out.mkdir()

    clear_bare()
    clear = functools.partial(clear_hubs, root, "dicom-")
    times = interleaved_rounds(
        REPEAT,
        {
            "bare": (bare_loop, clear_bare),
            "bare_mem": (bare_loop_memory, None),
            "hub": (ingest(None), clear),
            "ident": (ingest(lambda item: item), clear),
        },
    )
    t = best_of(times)
    bare, bare_mem, hub, ident = t["bare"], t["bare_mem"], t["hub"], t["ident"]
    per_round = round_ratios(times["bare"], times["hub"])
    return {
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "bare_cpu_s": round(bare, 3),
        "medhub_cpu_s": round(hub, 3),
        "bare_files_per_cpu_s": round(len(files) / bare, 1),
        "medhub_files_per_cpu_s": round(len(files) / hub, 1),
        "medhub_identity_gate_cpu_s": round(ident, 3),
        "ratio": round(bare / hub, 3),
        "ratio_identity_gate": round(bare / ident, 3),
        "bare_in_memory_cpu_s": round(bare_mem, 3),
        "bare_in_memory_files_per_cpu_s": round(len(files) / bare_mem, 1),
        "ratio_vs_in_memory": round(bare_mem / hub, 3),
        "ratio_identity_gate_vs_in_memory": round(bare_mem / ident, 3),
        "ratio_by_round": per_round,
        "ratio_median_of_rounds": statistics.median(per_round),
        "goal": 0.7,
    }


def write_ndjson(src_bundles: list[Path], dest: Path, times: int) -> int:
    """The bundles flattened to one NDJSON file per type, `times` copies with distinct ids."""
    dest.mkdir(parents=True)
    handles: dict[str, object] = {}
    n = 0
    try:
        for k in range(times):
            for f in src_bundles:
                for e in orjson.loads(f.read_bytes())["entry"]:
                    r = e["resource"]
                    r["id"] = f"{r['id']}-{k}" if k else r["id"]
                    text = orjson.dumps(r).replace(b"urn:uuid:", b"")
                    h = handles.get(r["resourceType"])
                    if h is None:
                        h = handles[r["resourceType"]] = open(dest / f"{r['resourceType']}.ndjson", "wb")  # noqa: SIM115
                    h.write(text + b"\n")
                    n += 1
    finally:
        for h in handles.values():
            h.close()
    return n


# The child's own peak is VmHWM: ru_maxrss carries the parent's peak across fork and exec on Linux,
# so a child started by a large parent would report the parent's peak at every input size.
_CHILD = """
import re, sys
from medhub.config import load_settings
from medhub.lake.intake import ingest_paths
s = ingest_paths(load_settings(), "mem", [sys.argv[1]], progress=False)
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(s.accepted, hwm)
"""


def bench_memory(root: Path) -> dict:
    bundles = sorted((root / "synthea").glob("*.json"))
    out = {}
    for times in (1, 4):
        d = root / f"ndjson-{times}x"
        n = write_ndjson(bundles, d, times)
        base = root / f"mem-{times}x"
        env = {
            **os.environ,
            "MEDHUB_HOME": str(base / "hub"),
            "MEDHUB_KEY_DIR": str(base / "keys"),
            "MEDHUB_LINKAGE_DIR": str(base / "linkage"),
        }
        r = subprocess.run(
            [sys.executable, "-c", _CHILD, str(d)], env=env, capture_output=True, text=True, check=True
        )
        accepted, maxrss_kb = map(int, r.stdout.split())
        out[f"{times}x"] = {
            "resources": n,
            "accepted": accepted,
            "input_mb": round(sum(p.stat().st_size for p in d.iterdir()) / 1e6, 1),
            "peak_rss_mb": round(maxrss_kb / 1024, 1),
        }
    out["ratio_4x_to_1x"] = round(out["4x"]["peak_rss_mb"] / out["1x"]["peak_rss_mb"], 3)
    out["goal"] = "flat: 4x peak within 1.25x of 1x"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (25 bundles, 1 DICOM copy)")
    ap.add_argument("--bundles", type=int, default=None, help="Synthea bundles (default 250)")
    ap.add_argument("--dicom-copies", type=int, default=None, help="copies of the DICOM set (default 8)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="rounds; each measure's best is kept (default 5)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    bundles = args.bundles or (25 if args.quick else 250)
    copies = args.dicom_copies or (1 if args.quick else 8)
    results: dict = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="medhub-bench-ingest-") as tmp:
        root = Path(tmp)
        results["fhir"] = bench_fhir(root, bundles)
        print("FHIR  ", json.dumps(results["fhir"]), flush=True)
        results["dicom"] = bench_dicom(root, copies)
        print("DICOM ", json.dumps(results["dicom"]), flush=True)
        if not args.skip_memory:
            results["memory"] = bench_memory(root)
            print("MEMORY", json.dumps(results["memory"]), flush=True)
        shutil.rmtree(root, ignore_errors=True)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2))
    f, d = results["fhir"], results["dicom"]
    print(
        f"\nFHIR  medhub {f['medhub_resources_per_cpu_s']:,} resources/CPU-s vs bare orjson "
        f"{f['bare_resources_per_cpu_s']:,}: ratio {f['ratio']} (goal >= 0.5); "
        f"identity gate {f['ratio_identity_gate']}; "
        f"parse, dump and hash alone (the ceiling) {f['ratio_floor']}; "
        f"against the bare parse inside this process (the baseline "
        f"until 2026-12-07): {f['ratio_vs_bare_in_this_process']}; with the pipeline's GC setting: "
        f"{f['ratio_vs_bare_same_gc']}, identity gate {f['ratio_identity_gate_vs_bare_same_gc']}; "
        f"round by round {f['ratio_by_round']} (median {f['ratio_median_of_rounds']})"
    )
    print(
        f"DICOM medhub {d['medhub_files_per_cpu_s']} files/CPU-s vs bare pydicom "
        f"{d['bare_files_per_cpu_s']}: "
        f"ratio {d['ratio']} (goal >= 0.7); identity gate {d['ratio_identity_gate']}; "
        f"against a read-and-write to memory ({d['bare_in_memory_files_per_cpu_s']} files/CPU-s): "
        f"{d['ratio_vs_in_memory']}, identity gate {d['ratio_identity_gate_vs_in_memory']}; "
        f"round by round {d['ratio_by_round']} (median {d['ratio_median_of_rounds']})"
    )
    if "memory" in results:
        m = results["memory"]
        print(
            f"MEMORY peak RSS 1x {m['1x']['peak_rss_mb']} MB, 4x {m['4x']['peak_rss_mb']} MB: "
            f"ratio {m['ratio_4x_to_1x']}"
        )


if __name__ == "__main__":
    main()
