"""The import rule: a domain imports only from domains to its left in the flow.

ingest -> privacy -> lake -> views -> governance -> ledger; fleet and serve beside them;
shared helpers (config, shared_data, store) importable by all; cli/api/web and demo are doors.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "medhub"
FLOW = ["synth", "ingest", "privacy", "lake", "views", "governance", "ledger"]
HELPERS = {"config", "shared_data", "store", "hangul", "__init__"}
DOORS = {"cli", "api", "web", "demo"}
# What each domain may import besides helpers and itself.
ALLOWED: dict[str, set[str]] = {name: set(FLOW[: i]) for i, name in enumerate(FLOW)}
ALLOWED["synth"] = set()
ALLOWED["ingest"] = set()  # ingest must not depend on the generator of test data
ALLOWED["fleet"] = set()
ALLOWED["serve"] = {"fleet"}
ALLOWED["store"] = set()


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m.split(".")[1] for m in found if m.startswith("medhub.") and m.count(".") >= 1]


def test_domains_import_only_to_their_left() -> None:
    violations = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        domain = rel.parts[0].removesuffix(".py")
        if domain in DOORS or domain in HELPERS - {"store"}:
            continue
        allowed = ALLOWED.get(domain, set()) | (HELPERS - {"__init__"}) | {domain}
        for target in _imports(path):
            if target not in allowed:
                violations.append(f"{rel}: imports medhub.{target}")
    assert not violations, "imports against the data flow:\n" + "\n".join(violations)
