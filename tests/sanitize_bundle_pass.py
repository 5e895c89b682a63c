"""Run tests/test_deid_fhir_bundle_pass.py against a sanitizer build of the Bundle pass (`make sanitize`).

    LD_PRELOAD=<libasan>:<libubsan> python tests/sanitize_bundle_pass.py BUILT_SO [pytest args]

BUILT_SO is `_fhir_bundle.c` built with -fsanitize=address,undefined (the Makefile's `sanitize`
target builds it under build/sanitize/ with the digest of the source, so the pass accepts it). It is
loaded under the module's own name before medhub imports it, so every test (the Synthea parity,
odd cases, random resources, mutated bytes) runs through the instrumented code: a read or write
out of bounds, or undefined behaviour, stops the run with the sanitizer's report.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys


def main() -> int:
    name = "medhub.privacy.deid._fhir_bundle"
    loader = importlib.machinery.ExtensionFileLoader(name, sys.argv[1])
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module

    from medhub.privacy.deid import fhir_bundle

    if fhir_bundle._fhir_bundle is not module or not fhir_bundle.native_available():
        sys.exit("the sanitizer build is not the one in use (built from another source?)")
    import pytest

    return pytest.main(["-q", "-p", "no:cacheprovider", "tests/test_deid_fhir_bundle_pass.py", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
