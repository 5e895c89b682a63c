"""Build script: the FHIR hot path compiled with mypyc where mypyc and a C compiler are at hand, and
the FHIR gate's Bundle pass (C) beside it.

Everything else about the package is in pyproject.toml. The compiled modules are the same code
as their Python sources (`medhub._native` lists them and makes sure a compiled module is used
only while it matches its source); where compiling is not possible, or MEDHUB_COMPILE=0, the
package installs as pure Python and works the same, more slowly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src" / "medhub"))
from _native import COMPILED, MANIFEST, source_path  # noqa: E402 - the list lives beside the guard

sys.path.pop(0)


def _sources() -> list[str]:
    return [str(source_path(ROOT / "src", name).relative_to(ROOT)) for name in COMPILED]


DIGESTS: dict[str, str] = {}  # sha256 of each source, read just before mypyc translates it


class OptionalBuildExt(build_ext):
    """build_ext that records what it compiled and never fails the install over a compiler.

    The manifest of compiled sources is written only when every module was built; otherwise it is
    removed, so that `medhub._native` runs all of them from source rather than trust a mix."""

    def run(self) -> None:
        self._failed = not self.extensions
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, no headers: pure Python it is
            print(f"medhub: compiled speedups not built ({exc}); using pure Python", file=sys.stderr)
            self._failed = True
        for base in {ROOT / "src" / "medhub", Path(self.build_lib) / "medhub"}:
            if not base.is_dir():
                continue
            if self._failed or not DIGESTS:
                if self.extensions:  # a build that compiled nothing leaves an earlier one alone
                    (base / MANIFEST).unlink(missing_ok=True)
            else:
                (base / MANIFEST).write_text(json.dumps(DIGESTS, indent=1, sort_keys=True) + "\n")

    def build_extension(self, ext) -> None:  # noqa: ANN001
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if ext.name == BUNDLE_PASS and OPENSSL in ext.define_macros:
                # without OpenSSL's headers (or libcrypto) the pass leaves each row's hash to the lake
                print(
                    f"medhub: {ext.name} without OpenSSL ({exc}); the lake hashes its rows", file=sys.stderr
                )
                ext.define_macros.remove(OPENSSL)
                ext.libraries.remove("crypto")
                self.build_extension(ext)
                return
            if ext.name == BUNDLE_PASS:  # on its own: the gate then takes every Bundle item by item
                print(
                    f"medhub: {ext.name} not compiled ({exc}); Bundles go through the Python gate",
                    file=sys.stderr,
                )
                return
            print(f"medhub: {ext.name} not compiled ({exc}); all stay pure Python", file=sys.stderr)
            self._failed = True


# The FHIR gate's native pass over whole Bundles (src/medhub/privacy/deid/_fhir_bundle.c): plain C
# on the CPython API, optional like the rest (medhub.privacy.deid.fhir_bundle runs without it).
BUNDLE_PASS = "medhub.privacy.deid._fhir_bundle"
OPENSSL = ("MEDHUB_OPENSSL", "1")  # the pass hashes each row it writes with libcrypto's SHA-256


def _extensions() -> list:
    if os.environ.get("MEDHUB_COMPILE", "1") == "0":
        return []
    source = ROOT / "src" / "medhub" / "privacy" / "deid" / "_fhir_bundle.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()  # the module says what it was built from
    bundle_pass = Extension(
        BUNDLE_PASS,
        [str(source.relative_to(ROOT))],
        define_macros=[("SOURCE_SHA256", f'"{digest}"'), OPENSSL],
        libraries=["crypto"],
        extra_compile_args=["-O2"],
    )
    return [*_mypyc_extensions(), bundle_pass]


def _mypyc_extensions() -> list:
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("medhub: mypyc is not installed; installing pure Python", file=sys.stderr)
        return []
    for n in COMPILED:
        DIGESTS[n] = hashlib.sha256(source_path(ROOT / "src", n).read_bytes()).hexdigest()
    try:
        # Third-party modules are typed Any whether or not they are installed where this runs
        # (the first install builds before its dependencies are there): the same code either way.
        return mypycify(["--ignore-missing-imports", *_sources()], opt_level="3", verbose=False)
    except BaseException as exc:  # noqa: BLE001 - mypyc's type check or code generation failed
        DIGESTS.clear()
        print(f"medhub: mypyc could not compile ({exc}); installing pure Python", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
