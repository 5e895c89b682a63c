"""The fleet: sites, nodes, devices, owners and inference streams, loaded from a YAML fleet file.

    name: central
    measurements: measurements.csv        # optional, relative to the YAML file; overrides profiles
    sites:
      - name: central-dc
        kind: central                      # central | micro
        power_cap_w: 60000                 # facility power cap (IT power x PUE)
        pue: 1.3
        nodes:
          - name: h100-1
            host_power_w: 0                # drawn while any device of the node is awake
            devices: {H100: 4}             # or {RNGD: {count: 8, partition: 4}}
    owners:
      - {name: consortium-a, share: 1.0, quota_devices: 16}
    streams:                               # online inference streams fed by a trace
      - {name: chat, class: llm, share: 1.0, owner: consortium-a, residency: null,
         ttft_s: 2.0, tpot_s: 0.1}

A partitioned device becomes k logical devices, each with 1/k of the profile. A stream's latency target
is ttft_s + tpot_s x generated tokens (class llm) or latency_s (class image); batch inference is a stream
with a loose target (e.g. ttft_s: 3600), which lets the energy-aware policy pack it onto efficient devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medhub.fleet.profiles import DeviceProfile, ProfileError, load_profiles


class FleetError(ValueError):
    """A fleet file is malformed or inconsistent."""


@dataclass(frozen=True)
class Site:
    name: str
    kind: str
    power_cap_w: float
    pue: float


@dataclass(frozen=True)
class Node:
    name: str
    site: int
    host_power_w: float


@dataclass(frozen=True)
class Device:
    name: str
    node: int
    site: int
    profile: DeviceProfile


@dataclass(frozen=True)
class Owner:
    name: str
    share: float = 1.0
    quota_devices: int | None = None


@dataclass(frozen=True)
class Stream:
    name: str
    workload_class: str = "llm"
    share: float = 1.0
    owner: str = "default"
    residency: str | None = None
    ttft_s: float = 2.0
    tpot_s: float = 0.1
    latency_s: float = 1.0  # per-request target for non-token classes (images)


@dataclass(frozen=True)
class Fleet:
    name: str
    sites: tuple[Site, ...]
    nodes: tuple[Node, ...]
    devices: tuple[Device, ...]
    owners: tuple[Owner, ...] = field(default=(Owner("default"),))
    streams: tuple[Stream, ...] = field(default=(Stream("default"),))

    def site_index(self, name: str) -> int:
        for i, s in enumerate(self.sites):
            if s.name == name:
                return i
        raise FleetError(f"fleet {self.name}: no site named {name!r}")

    def device_types(self) -> list[str]:
        return sorted({d.profile.name for d in self.devices})

    def groups(self) -> list[tuple[int, str, list[int]]]:
        """(site, device type, device indices) for each homogeneous group, in fleet order."""
        out: dict[tuple[int, str], list[int]] = {}
        for i, d in enumerate(self.devices):
            out.setdefault((d.site, d.profile.name), []).append(i)
        return [(s, t, idx) for (s, t), idx in out.items()]


def _req(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise FleetError(f"{where}: missing {key!r}")
    return mapping[key]


def _number(value, where: str, positive: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FleetError(f"{where}: expected a number, got {value!r}") from None
    if v != v or (positive and v <= 0) or v < 0:
        raise FleetError(
            f"{where}: expected a {'positive' if positive else 'non-negative'} number, got {value!r}"
        )
    return v


def parse_fleet(doc: dict, *, source: str = "<fleet>", base_dir: Path | None = None) -> Fleet:
    """Build a Fleet from a parsed YAML document; errors name `source` and the offending entry."""
    if not isinstance(doc, dict):
        raise FleetError(f"{source}: the fleet file must be a mapping at top level")
    meas = doc.get("measurements")
    if meas is not None:
        meas = Path(meas)
        if not meas.is_absolute() and base_dir is not None:
            meas = base_dir / meas
    try:
        profiles = load_profiles(meas)
    except ProfileError as exc:
        raise FleetError(f"{source}: {exc}") from exc
    sites: list[Site] = []
    nodes: list[Node] = []
    devices: list[Device] = []
    raw_sites = _req(doc, "sites", source)
    if not isinstance(raw_sites, list) or not raw_sites:
        raise FleetError(f"{source}: 'sites' must be a non-empty list")
    for si, s in enumerate(raw_sites):
        where = f"{source}: sites[{si}]"
        if not isinstance(s, dict):
            raise FleetError(f"{where}: must be a mapping")
        name = str(_req(s, "name", where))
        if any(x.name == name for x in sites):
            raise FleetError(f"{where}: duplicate site name {name!r}")
        sites.append(
            Site(
                name,
                str(s.get("kind", "central")),
                _number(_req(s, "power_cap_w", where), f"{where}.power_cap_w"),
                _number(s.get("pue", 1.0), f"{where}.pue"),
            )
        )
        if sites[-1].pue < 1.0:
            raise FleetError(f"{where}.pue: PUE cannot be below 1.0")
        for ni, n in enumerate(s.get("nodes") or []):
            nwhere = f"{where}.nodes[{ni}]"
            if not isinstance(n, dict):
                raise FleetError(f"{nwhere}: must be a mapping")
            nname = str(n.get("name", f"{name}-node{ni}"))
            nodes.append(Node(nname, si, _number(n.get("host_power_w", 0), f"{nwhere}.host_power_w", False)))
            devs = n.get("devices") or {}
            if not isinstance(devs, dict):
                raise FleetError(f"{nwhere}.devices: must map device type to a count")
            for dtype, spec in devs.items():
                if dtype not in profiles:
                    raise FleetError(f"{nwhere}: unknown device type {dtype!r} (known: {sorted(profiles)})")
                count, part = (
                    (spec.get("count"), spec.get("partition", 1)) if isinstance(spec, dict) else (spec, 1)
                )
                count = int(_number(count, f"{nwhere}.devices.{dtype}"))
                try:
                    prof = profiles[dtype].partitioned(int(part))
                except ProfileError as exc:
                    raise FleetError(f"{nwhere}: {exc}") from exc
                for c in range(count):
                    for p in range(int(part)):
                        suffix = f".{p}" if int(part) > 1 else ""
                        devices.append(Device(f"{nname}/{dtype}{c}{suffix}", len(nodes) - 1, si, prof))
    if not devices:
        raise FleetError(f"{source}: the fleet has no devices")
    owners = tuple(
        Owner(
            str(_req(o, "name", f"{source}: owners[{i}]")),
            float(o.get("share", 1.0)),
            int(o["quota_devices"]) if o.get("quota_devices") is not None else None,
        )
        for i, o in enumerate(doc.get("owners") or [{"name": "default"}])
    )
    streams = []
    for i, st in enumerate(doc.get("streams") or [{"name": "default"}]):
        where = f"{source}: streams[{i}]"
        if not isinstance(st, dict):
            raise FleetError(f"{where}: must be a mapping")
        res = st.get("residency")
        if res is not None and res not in {s.name for s in sites}:
            raise FleetError(f"{where}: residency names unknown site {res!r}")
        owner = str(st.get("owner", owners[0].name))
        if owner not in {o.name for o in owners}:
            raise FleetError(f"{where}: unknown owner {owner!r}")
        streams.append(
            Stream(
                name=str(_req(st, "name", where)),
                workload_class=str(st.get("class", "llm")),
                share=_number(st.get("share", 1.0), f"{where}.share"),
                owner=owner,
                residency=res,
                ttft_s=_number(st.get("ttft_s", 2.0), f"{where}.ttft_s"),
                tpot_s=_number(st.get("tpot_s", 0.1), f"{where}.tpot_s"),
                latency_s=_number(st.get("latency_s", 1.0), f"{where}.latency_s"),
            )
        )
    return Fleet(
        str(doc.get("name", source)), tuple(sites), tuple(nodes), tuple(devices), owners, tuple(streams)
    )


def load_fleet(path: Path | str) -> Fleet:
    """Read a YAML fleet file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FleetError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise FleetError(f"{path}: not valid YAML ({exc})") from exc
    return parse_fleet(doc, source=str(path), base_dir=path.parent)
