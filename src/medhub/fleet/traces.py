"""Workload traces: the Azure LLM inference 2023 trace and the Philly-derived Gavel training traces.

`load_azure_trace` reads `TIMESTAMP,ContextTokens,GeneratedTokens` (7 fractional digits) into arrays.
`inference_workload` turns a trace into requests for the fleet's streams: arrivals compressed by
`scale` (50x = inter-arrival times divided by 50), an optional window of requests, each request given
to a stream deterministically by the streams' shares, with its work in class units and its latency target.
`load_philly_jobs` reads Gavel's tab-separated `.trace` files (job_type, command, num_steps_arg,
needs_data_dir, total_steps, arrival_time, scale_factor).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from medhub.fleet.model import Fleet
from medhub.fleet.profiles import prefill_decode_ratio
from medhub.shared_data import shared_path

NAMED_TRACES = {
    "azure-conv": ("data", "traces", "azure_llm_inference_2023", "AzureLLMInferenceTrace_conv.csv"),
    "azure-code": ("data", "traces", "azure_llm_inference_2023", "AzureLLMInferenceTrace_code.csv"),
    "philly": ("data", "traces", "gavel_philly_derived", "seed=0"),
}


class TraceError(ValueError):
    """A trace file is missing or malformed."""


def resolve_trace(name_or_path: str) -> Path:
    """A named trace (azure-conv, azure-code, philly) in ../shared, or a path."""
    if name_or_path in NAMED_TRACES:
        p = shared_path(*NAMED_TRACES[name_or_path])
        if p is None:
            raise TraceError(f"trace {name_or_path!r} needs ../shared/{'/'.join(NAMED_TRACES[name_or_path])}")
        return p
    p = Path(name_or_path)
    if not p.exists():
        raise TraceError(f"{p}: no such trace file (named traces: {sorted(NAMED_TRACES)})")
    return p


@dataclass(frozen=True)
class RequestTrace:
    arrival_s: np.ndarray  # seconds from the first request
    context_tokens: np.ndarray
    generated_tokens: np.ndarray


def load_azure_trace(path: Path | str) -> RequestTrace:
    """Read an Azure LLM inference trace CSV; a malformed row is an error naming file and line."""
    path = Path(path)
    ts: list[float] = []
    ctx: list[int] = []
    gen: list[int] = []
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != [
                "TIMESTAMP",
                "ContextTokens",
                "GeneratedTokens",
            ]:
                raise TraceError(
                    f"{path}: expected header TIMESTAMP,ContextTokens,GeneratedTokens, got {header}"
                )
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    t = datetime.strptime(row[0][:26], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
                    c, g = int(row[1]), int(row[2])
                except (ValueError, IndexError):
                    raise TraceError(f"{path}:{line}: malformed row {row!r}") from None
                if c < 0 or g < 0:
                    raise TraceError(f"{path}:{line}: negative token count")
                ts.append(t)
                ctx.append(c)
                gen.append(g)
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror})") from exc
    if not ts:
        raise TraceError(f"{path}: no requests")
    t = np.asarray(ts)
    order = np.argsort(t, kind="stable")
    t = t[order]
    return RequestTrace(
        t - t[0], np.asarray(ctx, dtype=np.int64)[order], np.asarray(gen, dtype=np.int64)[order]
    )


@dataclass(frozen=True)
class InferenceWorkload:
    """One row per request, sorted by arrival."""

    arrival: np.ndarray  # s
    stream: np.ndarray  # index into fleet.streams
    units: np.ndarray  # work in class units (decode-equivalent tokens for llm, images for image)
    out_tokens: np.ndarray  # generated tokens (0 for non-token classes)
    target: np.ndarray  # latency target, s
    description: str

    def __len__(self) -> int:
        return len(self.arrival)


def stream_assignment(n: int, shares: list[float]) -> np.ndarray:
    """Deterministic low-discrepancy assignment of n requests to streams in proportion to shares."""
    w = np.asarray(shares, dtype=float)
    cum = np.cumsum(w / w.sum())
    u = (np.arange(n) * 0.6180339887498949) % 1.0
    return np.minimum(np.searchsorted(cum, u, side="right"), len(w) - 1)


def inference_workload(
    fleet: Fleet,
    trace: RequestTrace,
    *,
    scale: float = 1.0,
    start: int = 0,
    limit: int | None = None,
    images_per_request: int = 1,
) -> InferenceWorkload:
    """Requests for the fleet's streams from `trace`, arrivals compressed `scale` times."""
    if scale <= 0:
        raise TraceError(f"scale must be positive, got {scale}")
    if not 0 <= start < len(trace.arrival_s):
        raise TraceError(f"window start {start} is outside the trace ({len(trace.arrival_s)} requests)")
    if limit is not None and limit < 1:
        raise TraceError(f"limit must be at least 1, got {limit}")
    end = len(trace.arrival_s) if limit is None else min(len(trace.arrival_s), start + limit)
    sl = slice(start, end)
    arr = (trace.arrival_s[sl] - trace.arrival_s[start]) / scale
    ctx = trace.context_tokens[sl]
    gen = trace.generated_tokens[sl]
    n = len(arr)
    stream = stream_assignment(n, [s.share for s in fleet.streams])
    alpha = prefill_decode_ratio()
    units = np.empty(n)
    out = np.zeros(n, dtype=np.int64)
    target = np.empty(n)
    for i, s in enumerate(fleet.streams):
        m = stream == i
        if s.workload_class == "llm":
            units[m] = gen[m] + alpha * ctx[m]
            out[m] = gen[m]
            target[m] = s.ttft_s + s.tpot_s * gen[m]
        else:
            units[m] = images_per_request
            target[m] = s.latency_s
    units = np.maximum(units, 1e-6)
    desc = f"{n} requests (trace rows {start}..{end - 1}) at {scale:g}x, span {arr[-1] if n else 0:.1f} s"
    return InferenceWorkload(arr, stream, units, out, target, desc)


@dataclass(frozen=True)
class TrainingJob:
    job_id: int
    job_type: str
    scale: int
    total_steps: float
    arrival: float
    owner: str = "default"
    residency: str | None = None


def load_philly_jobs(
    path: Path | str,
    *,
    max_scale: int = 8,
    limit: int | None = None,
    start: int = 0,
    time_scale: float = 1.0,
    owners: list[str] | None = None,
) -> list[TrainingJob]:
    """Jobs from one `.trace` file or a folder of them (merged by arrival time, each file = one owner
    in round robin over `owners`). Jobs wider than `max_scale` devices are dropped; arrivals are divided
    by `time_scale` and shifted so the window starts at 0."""
    path = Path(path)
    files = sorted(path.glob("*.trace")) if path.is_dir() else [path]
    if not files:
        raise TraceError(f"{path}: no .trace files")
    owners = owners or ["default"]
    rows: list[tuple[float, str, int, float, str]] = []
    for fi, fp in enumerate(files):
        try:
            text = fp.read_text()
        except OSError as exc:
            raise TraceError(f"{fp}: cannot read ({exc.strerror})") from exc
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            cols = raw.split("\t")
            if len(cols) != 7:
                raise TraceError(f"{fp}:{line}: expected 7 tab-separated columns, got {len(cols)}")
            try:
                steps, arrival, scale = float(cols[4]), float(cols[5]), int(cols[6])
            except ValueError:
                raise TraceError(f"{fp}:{line}: malformed numbers in {cols[4:]}") from None
            if scale <= max_scale and steps > 0:
                rows.append((arrival, cols[0], scale, steps, owners[fi % len(owners)]))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    rows = rows[start : None if limit is None else start + limit]
    if not rows:
        raise TraceError(f"{path}: no jobs in the window")
    t0 = rows[0][0]
    return [
        TrainingJob(i, jt, sc, st, (a - t0) / time_scale, ow) for i, (a, jt, sc, st, ow) in enumerate(rows)
    ]
