"""De-identification of one FHIR R4 resource (a plain dict, as read).

Direct identifiers become keyed pseudonyms: Patient.id and every "Patient/<id>" reference
anywhere in any resource; identifiers everywhere. Patient names, telecom and addresses are removed.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from medhub.privacy.deid.common import Policy, SourceSecrets

_PATIENT_REF = re.compile(r"(?<![A-Za-z0-9])Patient/([A-Za-z0-9\-.]{1,64})")


def deid_resource(resource: dict[str, Any], secrets: SourceSecrets, policy: Policy) -> dict[str, Any]:
    """A de-identified copy of `resource`."""
    out = copy.deepcopy(resource)
    if out.get("resourceType") == "Patient":
        if isinstance(out.get("id"), str):
            out["id"] = secrets.patient(out["id"])
        for k in ("name", "telecom", "address", "photo", "contact"):
            out.pop(k, None)
    return _walk(out, secrets)


def _rewrite_refs(text: str, secrets: SourceSecrets) -> str:
    return _PATIENT_REF.sub(lambda m: "Patient/" + secrets.patient(m.group(1)), text)


def _walk(node: Any, secrets: SourceSecrets, key: str = "") -> Any:
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k == "identifier":
                node[k] = _identifiers(v, secrets)
            else:
                node[k] = _walk(v, secrets, k)
        return node
    if isinstance(node, list):
        return [_walk(v, secrets, key) for v in node]
    if isinstance(node, str) and "Patient/" in node:
        return _rewrite_refs(node, secrets)
    return node


def _identifiers(value: Any, secrets: SourceSecrets) -> Any:
    items = value if isinstance(value, list) else [value]
    out = []
    for ident in items:
        if not isinstance(ident, dict):
            continue
        ident = {k: v for k, v in ident.items() if k in ("use", "type", "system", "value")}
        if "value" in ident:
            kind = "identifier:" + str(ident.get("system", ""))
            ident["value"] = secrets.pseudonym(str(ident["value"]), kind)
        if isinstance(ident.get("type"), dict):
            ident["type"].pop("text", None)
        out.append(ident)
    return out if isinstance(value, list) else (out[0] if out else None)
