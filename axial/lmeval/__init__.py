"""lm-evaluation-harness integration (`pip install 'axial[lmeval]'`): the `axial` model for lm-eval.

lm-eval 0.4.13 finds models only in its registry, which is filled when a module registers into it (it reads no
entry points, and `--include_path` brings task files only), so the model is registered by importing this
package — lazily: the model class and torch load when lm-eval first asks for `axial`:

    python -m axial.lmeval --model axial --model_args model=embedded source=base --device cpu --tasks ...
    axial lm-eval --model axial ...          (the same: lm-eval's own CLI with `axial` registered)

    import axial.lmeval, lm_eval
    lm_eval.simple_evaluate(model="axial", model_args={"model": "embedded", "source": "base"}, tasks=[...])
    lm_eval.simple_evaluate(model=axial.lmeval.AxialLM(model="embedded", experts=[...], source="..."), ...)

`axial.lmeval.tasks` writes lm-eval task folders for data lm-eval would fetch from the hub (TruthfulQA MC from
the CSV), for `--include_path`.
"""

from __future__ import annotations

import importlib.util

from axial.errors import AxialError

MODEL_NAME = "axial"
_TARGET = "axial.lmeval.model:AxialLM"


def available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def require() -> None:
    if not available():
        raise AxialError("lm-evaluation-harness is not installed: pip install 'axial[lmeval]'")


def register() -> bool:
    """Put `axial` into lm-eval's model registry (a lazy entry). False when lm-eval is not installed."""
    if not available():
        return False
    import lm_eval.models  # noqa: F401  (lm-eval's own models first: its registry fills itself only when empty)
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=_TARGET)
    return True


register()


def __getattr__(name: str):
    if name in ("AxialLM", "expert_list"):
        require()
        from axial.lmeval import model

        return getattr(model, name)
    raise AttributeError(f"module 'axial.lmeval' has no attribute {name!r}")
