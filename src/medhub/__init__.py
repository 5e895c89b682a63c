"""medhub: the software that runs a sovereign medical AI data center.

Data flows one way: ingest -> privacy -> lake -> views -> governance -> ledger,
with fleet (scheduling) and serve (inference) beside them. See docs/architecture.md.
"""

__version__ = "0.1.0"

from medhub._native import install_guard as _install_guard

_install_guard()  # compiled speedups only where they match their source (medhub._native)
