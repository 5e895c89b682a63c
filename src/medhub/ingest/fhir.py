"""FHIR R4 readers: NDJSON (Bulk Data, line by line) and JSON documents (a Bundle or one resource).

NDJSON streams one line at a time (orjson), so memory stays bounded whatever the file size; an
overlong line is skipped without being held whole. A JSON document is parsed whole, up to
MAX_JSON_BYTES; larger documents are refused with a clear error (send them as NDJSON).
Bundle entries are yielded one by one with `urn:uuid:` references resolved to `Type/id`
from the entries' fullUrls; with `resolve=False` (for a gate that resolves them in its own walk)
they are left as sent and the fullUrl map rides on the item (`FhirItem.refs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson

from medhub.ingest.records import FhirItem, Rejected

_BOM: Final = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, which some exporters write and orjson refuses
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
MAX_JSON_BYTES = 256 * 1024 * 1024


def _fhir_id(rid: str) -> bool:
    """Whether `rid` is a FHIR id: 1-64 of A-Z, a-z, 0-9, '-' and '.' (str methods, no regex per resource)."""
    if not 0 < len(rid) <= 64 or not rid.isascii():
        return False
    rest = rid.replace("-", "").replace(".", "")
    return not rest or rest.isalnum()


def _type_name(rtype: str) -> bool:
    """Whether `rtype` has the shape of a FHIR resource type name: a capital, then 1-63 letters (ASCII)."""
    return 2 <= len(rtype) <= 64 and rtype.isascii() and rtype.isalpha() and "A" <= rtype[0] <= "Z"


def check_resource(res: Any) -> str | None:
    """Why `res` is not an acceptable FHIR resource, or None."""
    if not isinstance(res, dict):
        return f"expected a JSON object (a FHIR resource), got {type(res).__name__}"
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return "resource has no resourceType"
    if not _type_name(rtype):
        return f"resourceType {rtype[:80]!r} is not a FHIR resource type name"
    rid = res.get("id")
    if rid is None or rid == "":
        return f"{rtype} resource has no id"
    if not isinstance(rid, str) or not _fhir_id(rid):
        return f"{rtype} id {str(rid)[:80]!r} is not a valid FHIR id ([A-Za-z0-9-.], 1-64 characters)"
    return None


def read_ndjson(path: Path, resolve: bool = True) -> Iterator[FhirItem | Rejected]:
    name = str(path)
    with open(path, "rb") as f:
        lineno = 0
        while True:
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            lineno += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while True:  # skip the rest of the overlong line in bounded pieces
                    more = f.readline(MAX_LINE_BYTES)
                    if not more or more.endswith(b"\n"):
                        break
                yield Rejected(name, f"line longer than {MAX_LINE_BYTES} bytes, skipped", lineno)
                continue
            if lineno == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if not line.strip():
                continue
            try:
                res = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Rejected(name, f"invalid JSON: {exc}", lineno)
                continue
            yield from _document_items(name, res, lineno, resolve)


def read_json(path: Path, data: bytes | None = None, resolve: bool = True) -> Iterator[FhirItem | Rejected]:
    """Items of one JSON document; `data`, where given, is the file's content already read."""
    name = str(path)
    size = len(data) if data is not None else path.stat().st_size
    if size > MAX_JSON_BYTES:
        yield Rejected(
            name,
            f"JSON document of {size} bytes is larger than the {MAX_JSON_BYTES} byte limit for one document; "
            "send large exports as NDJSON (one resource per line)",
        )
        return
    try:
        raw = data if data is not None else path.read_bytes()
        doc = orjson.loads(raw[len(_BOM) :] if raw.startswith(_BOM) else raw)
    except orjson.JSONDecodeError as exc:
        yield Rejected(name, f"invalid JSON: {exc}")
        return
    yield from _document_items(name, doc, None, resolve)


def _document_items(
    name: str, doc: Any, line: int | None, resolve: bool = True
) -> Iterable[FhirItem | Rejected]:
    """The items of one parsed document (an NDJSON line or a whole JSON file): a Bundle's entries, or itself.
    A plain resource comes back as a 1-tuple, not a generator: this runs once per NDJSON line."""
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return _bundle_items(name, doc, line, resolve)
    problem = check_resource(doc)
    return (Rejected(name, problem, line),) if problem else (FhirItem(name, doc, line),)


def _bundle_items(
    name: str, bundle: dict, line: int | None, resolve: bool = True
) -> Iterator[FhirItem | Rejected]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield Rejected(name, "Bundle.entry is not a list", line)
        return
    urls = bundle_urls(entries)
    for i, e in enumerate(entries):
        entries[i] = None  # the entry is this loop's alone from here: freed once its item is done with
        yield bundle_entry_item(name, i, e, urls, line, resolve)


def bundle_urls(entries: list) -> dict[str, str]:
    """The Bundle's fullUrl map (`urn:uuid:...` -> `Type/id`); an entry without an id gets its
    uuid as id, in place (a server would assign one; the entry's uuid is the natural one)."""
    urls: dict[str, str] = {}
    for e in entries:
        if not isinstance(e, dict):
            continue
        res, full = e.get("resource"), e.get("fullUrl")
        if isinstance(res, dict) and isinstance(full, str) and full.startswith("urn:uuid:"):
            if not res.get("id"):
                res["id"] = full[9:]
            rtype = res.get("resourceType")
            if isinstance(rtype, str):
                urls[full] = f"{rtype}/{res['id']}"
    return urls


def bundle_entry_item(
    name: str, i: int, e: Any, urls: dict[str, str], line: int | None = None, resolve: bool = True
) -> FhirItem | Rejected:
    """The item of Bundle entry `i`: its resource (references resolved, or left to the gate with
    the map where `resolve` is False), or why it is not one."""
    res = e.get("resource") if isinstance(e, dict) else None
    if res is None:
        req = e.get("request") if isinstance(e, dict) else None
        what = (
            f" ({req.get('method')} {req.get('url')}: only entries carrying a resource are ingested)"
            if isinstance(req, dict)
            else ""
        )
        return Rejected(name, f"Bundle entry {i} has no resource{what}", line)
    problem = check_resource(res)
    if problem:
        return Rejected(name, f"Bundle entry {i}: {problem}", line)
    if not urls:
        return FhirItem(name, res, line)
    if resolve:
        _resolve(res, urls)
        return FhirItem(name, res, line)
    return FhirItem(name, res, line, urls)


_CODING_KEYS: Final = frozenset({"system", "version", "code", "display", "userSelected"})


def _resolve(node: dict, urls: dict[str, str]) -> None:
    """Replace `urn:uuid:` references by `Type/id` in place (FHIR arrays never nest directly).
    Two shapes are settled without a call, a third of the walk on real resources: a Reference
    holding only its reference, and the Codings of a `coding` list (no key but system, version,
    code, display, userSelected: no reference can be in them)."""
    for k, v in node.items():
        t = type(v)
        if t is str:
            if k == "reference" and v.startswith("urn:uuid:"):
                node[k] = urls.get(v, v)
        elif t is dict:
            ref = v.get("reference") if len(v) == 1 else None
            if type(ref) is not str:
                _resolve(v, urls)
            elif ref.startswith("urn:uuid:"):
                v["reference"] = urls.get(ref, ref)
        elif t is list:
            coding = k == "coding"
            for x in v:
                if type(x) is not dict or (coding and x.keys() <= _CODING_KEYS):
                    continue
                ref = x.get("reference") if len(x) == 1 else None
                if type(ref) is not str:
                    _resolve(x, urls)
                elif ref.startswith("urn:uuid:"):
                    x["reference"] = urls.get(ref, ref)
