"""Device profiles: the package's own table of public figures, and on-site measurements merged over it.

`profiles.csv` (shipped with the package) holds one number per row with its unit and source, so the
package works without ../shared. `load_profiles(measurements=...)` merges a measurements file (same
columns: device,field,value[,unit,source]) over the defaults; a measurement always wins.

Inference model (one per device and workload class; units: tokens for "llm", images for "image"):
  throughput at concurrency n:  T(n) = T_sat * min(1, (1 + h/B) * n / (n + h)),  h = B/4, B = max_batch
  power at concurrency n:       P(n) = P_idle + (P_peak - P_idle) * (T(n) / T_sat) ** power_exponent
Power is concave in load (exponent 0.4, fitted to SplitwiseSim's measured A100 power vs batch), so a
device at low load spends more energy per unit than one at full load: P(U) >= U * P_peak, which is what
makes P_peak / T_sat the least energy per unit any schedule can reach (the LP bound uses it). Packing,
consolidation and power-down are what save energy. A prompt token counts as `prefill_decode_ratio`
decode tokens of work.

Training model: a job's steps/s on a device is Gavel's measured steps/s on the device's reference GPU
(`train_reference`: V100 for H100, P100 for L40S, K80 for RNGD) times `train_factor`, drawing
`train_power_fraction` x board power while it runs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROFILES_CSV = Path(__file__).with_name("profiles.csv")
TRAINING_CSV = Path(__file__).with_name("training_throughputs.csv")

CLASS_FIELDS = {"llm": "llm_tokens_per_s", "image": "image_per_s"}
NUMERIC = {
    "memory_gb",
    "peak_power_w",
    "idle_power_w",
    "sleep_power_w",
    "wake_s",
    "cost_per_hour",
    "llm_tokens_per_s",
    "image_per_s",
    "max_batch",
    "train_factor",
    "train_power_fraction",
    "power_exponent",
}


class ProfileError(ValueError):
    """A profile table or measurements file is malformed or lacks a number that is needed."""


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    kind: str
    ray_resource: str
    memory_gb: float
    peak_power_w: float
    idle_power_w: float
    sleep_power_w: float
    wake_s: float
    cost_per_hour: float
    max_batch: int
    throughput: dict[str, float]  # workload class -> units/s at saturation
    train_reference: str | None
    train_factor: float
    train_power_fraction: float
    partitions: tuple[int, ...]
    power_exponent: float = 1.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def saturation(self, workload_class: str) -> float:
        t = self.throughput.get(workload_class)
        if not t:
            raise ProfileError(
                f"device {self.name} has no throughput for workload class {workload_class!r}: "
                "add an on-site measurement (field "
                f"{CLASS_FIELDS.get(workload_class, workload_class)})"
            )
        return t

    def partitioned(self, k: int) -> DeviceProfile:
        """The profile of one of k equal partitions of this device."""
        if k not in self.partitions:
            raise ProfileError(f"device {self.name} cannot be split {k} ways (allowed: {self.partitions})")
        if k == 1:
            return self
        return DeviceProfile(
            name=f"{self.name}/{k}",
            kind=self.kind,
            ray_resource=self.ray_resource,
            memory_gb=self.memory_gb / k,
            peak_power_w=self.peak_power_w / k,
            idle_power_w=self.idle_power_w / k,
            sleep_power_w=self.sleep_power_w / k,
            wake_s=self.wake_s,
            cost_per_hour=self.cost_per_hour / k,
            max_batch=max(1, self.max_batch // k),
            throughput={c: t / k for c, t in self.throughput.items()},
            train_reference=self.train_reference,
            train_factor=self.train_factor / k,
            train_power_fraction=self.train_power_fraction,
            partitions=(1,),
            sources=self.sources,
            power_exponent=self.power_exponent,
        )


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a profile/measurements CSV (device, field, value, [unit, source])."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"device", "field", "value"} - set(reader.fieldnames or [])
            if missing:
                raise ProfileError(f"{path}: missing columns {sorted(missing)}")
            rows = []
            for i, row in enumerate(reader, start=2):
                if not row.get("device") or not row.get("field"):
                    raise ProfileError(f"{path}:{i}: empty device or field")
                if row["field"] in NUMERIC:
                    try:
                        float(row["value"])
                    except (TypeError, ValueError):
                        raise ProfileError(
                            f"{path}:{i}: {row['device']}.{row['field']} is not a number: {row['value']!r}"
                        ) from None
                rows.append(row)
            return rows
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror})") from exc
    except csv.Error as exc:
        raise ProfileError(f"{path}: malformed CSV ({exc})") from exc


def merged_fields(measurements: Path | None = None) -> dict[str, dict[str, tuple[str, str]]]:
    """device -> field -> (value, source), defaults first and measurements over them."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for path, tag in ((PROFILES_CSV, ""), (measurements, "on-site measurement: ")):
        if path is None:
            continue
        for row in read_table(Path(path)):
            src = row.get("source") or str(path)
            out.setdefault(row["device"], {})[row["field"]] = (row["value"], tag + src)
    return out


def _build(name: str, f: dict[str, tuple[str, str]]) -> DeviceProfile:
    def num(key: str, default: float | None = None) -> float:
        if key in f:
            return float(f[key][0])
        if default is None:
            raise ProfileError(f"device {name}: no value for {key}")
        return default

    throughput = {c: float(f[k][0]) for c, k in CLASS_FIELDS.items() if k in f and f[k][0]}
    parts = tuple(int(p) for p in f.get("partitions", ("1", ""))[0].split())
    return DeviceProfile(
        name=name,
        kind=f.get("kind", ("GPU", ""))[0],
        ray_resource=f.get("ray_resource", ("GPU", ""))[0],
        memory_gb=num("memory_gb"),
        peak_power_w=num("peak_power_w"),
        idle_power_w=num("idle_power_w"),
        sleep_power_w=num("sleep_power_w", 0.0),
        wake_s=num("wake_s", 5.0),
        cost_per_hour=num("cost_per_hour", 0.0),
        max_batch=int(num("max_batch", 64)),
        throughput=throughput,
        train_reference=f["train_reference"][0] if "train_reference" in f else None,
        train_factor=num("train_factor", 1.0),
        train_power_fraction=num("train_power_fraction", 0.85),
        partitions=parts or (1,),
        sources={k: v[1] for k, v in f.items()},
        power_exponent=num("power_exponent", 1.0),
    )


def load_profiles(measurements: Path | str | None = None) -> dict[str, DeviceProfile]:
    """Every device profile, with on-site measurements (if given) overriding the defaults."""
    if measurements is None:
        return dict(_default_profiles())
    fields = merged_fields(Path(measurements))
    return {n: _build(n, f) for n, f in fields.items() if n != "all"}


@lru_cache(maxsize=1)
def _default_profiles() -> dict[str, DeviceProfile]:
    fields = merged_fields(None)
    return {n: _build(n, f) for n, f in fields.items() if n != "all"}


def prefill_decode_ratio(measurements: Path | str | None = None) -> float:
    """Decode-token equivalents of work per prompt token."""
    f = merged_fields(Path(measurements) if measurements else None).get("all", {})
    return float(f.get("prefill_decode_ratio", ("0.115", ""))[0])


@lru_cache(maxsize=1)
def training_throughputs() -> dict[tuple[str, int], dict[str, float]]:
    """(job_type, scale_factor) -> {"k80"|"p100"|"v100": steps/s} from the carried Gavel table."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    with open(TRAINING_CSV, newline="") as f:
        for row in csv.DictReader(f):
            out[(row["job_type"], int(row["scale_factor"]))] = {
                g: float(row[g]) for g in ("k80", "p100", "v100")
            }
    return out


def train_steps_per_s(profile: DeviceProfile, job_type: str, scale: int) -> float:
    """Steps/s of a `scale`-device gang of `profile` devices running `job_type` (0 if unknown).

    Gavel measured scale factors 1, 2, 4, 8; larger gangs extrapolate linearly from 8."""
    if profile.train_reference is None:
        return 0.0
    table = training_throughputs()
    if scale > 8 and (job_type, 8) in table:
        return table[(job_type, 8)][profile.train_reference] * profile.train_factor * scale / 8
    row = table.get((job_type, scale)) or table.get((job_type, 1))
    if row is None:
        return 0.0
    base = row[profile.train_reference] * profile.train_factor
    return base if (job_type, scale) in table else base * scale


def throughput_curve(profile: DeviceProfile, n_max: int) -> list[float]:
    """U(n) = T(n)/T_sat for n = 0..n_max (the concave batching curve, flat beyond max_batch)."""
    b = max(1, profile.max_batch)
    h = b / 4
    return [min(1.0, (1 + h / b) * n / (n + h)) if n else 0.0 for n in range(n_max + 1)]
