"""Package namespaces that import a submodule on first use of one of its names.

Every `axial <verb>` imports all command modules to build the CLI; without this, `axial data inspect` or
`axial --help` would pay for importing torch, transformers' Trainer and TRL, which only some verbs use.
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """Return (__getattr__, __dir__, __all__) for a package whose public `name` lives in `package.exports[name]`."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
