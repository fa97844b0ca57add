"""lm-evaluation-harness integration (`pip install 'axial[lmeval]'`): the `axial` model for lm-eval.

lm-eval 0.4.13 finds models only in its registry, which `@register_model` fills when a module is imported
(it reads no entry points and imports nothing from `--include_path` but task files), so the model is
registered by importing this package:

    python -m axial.lmeval --model axial --model_args model=embedded source=base --device cpu --tasks ...
    axial lm-eval --model axial ...                     (the same: lm-eval's CLI with `axial` registered)

    import axial.lmeval, lm_eval
    lm_eval.simple_evaluate(model="axial", model_args={"model": "embedded", "source": "base"}, tasks=[...])
    lm_eval.simple_evaluate(model=axial.lmeval.AxialLM(model="embedded", experts=[...], source="..."), ...)

`axial.lmeval.tasks` writes lm-eval task folders for data that lm-eval would fetch from the hub (TruthfulQA MC
from the CSV), for `--include_path`.
"""

from __future__ import annotations

try:
    import lm_eval  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    from axial.errors import AxialError

    raise AxialError("axial.lmeval needs lm-evaluation-harness: pip install 'axial[lmeval]'") from e

from axial.lmeval.model import AxialLM, expert_list

__all__ = ["AxialLM", "expert_list"]
