"""Step 1 (sample): k temperature-sampled rollouts per prompt, each scored on every axis.

The output is an append-only JSONL file, one line per prompt, written only after all k rollouts of that prompt
are generated and scored:

    {"id", "axis", "source", "messages", "rollouts": [{"response": str, "scores": {axis: float}}, ...]}

A killed run loses at most the chunk in flight. On restart, prompts already in the file are skipped and a
truncated last line (the process died while writing it) is cut off and its prompt redone, so no prompt is
sampled twice or lost. A corrupt line anywhere else is an error naming the line, never skipped. The settings
that shape the rollouts are kept in `<file>.meta.json`; continuing a file with different settings is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from axial.errors import AxialError, DataError
from axial.generate import GenerationConfig, generate_responses
from axial.io import append_jsonl, atomic_write_json, read_jsonl_resumable
from axial.mora.prompts import Prompt

Generator = Callable[[Sequence[Sequence[dict]], GenerationConfig], list[str]]


def check_meta(path: Path, meta: dict) -> None:
    """Write the settings beside a results file, or refuse to continue one made with different settings."""
    meta_path = path.with_name(path.name + ".meta.json")
    if meta_path.exists() and path.exists() and path.stat().st_size:
        try:
            old = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"corrupt settings file ({e.msg}); use another `out`, or delete it together with "
                            f"{path.name} to start over", path=str(meta_path), line=e.lineno) from None
        changed = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise AxialError(f"{path}: was made with different settings ({detail}); use another `out` or delete "
                             "the file to start over")
    atomic_write_json(meta_path, meta, sort_keys=True)


def hf_generator(model, tok) -> Generator:
    def generate(prompts, cfg: GenerationConfig) -> list[str]:
        return generate_responses(model, tok, prompts, cfg, progress=False)

    return generate


def vllm_generator(model_spec: str, dtype: str, seed: int) -> Generator:
    """vLLM backend (optional import): much faster sampling on a GPU; not installed on CPU-only machines."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as e:
        raise AxialError("MoraConfig.backend: 'vllm' needs `pip install vllm` (or use backend=hf)") from e
    from axial.models import resolve_model_path

    llm = LLM(model=resolve_model_path(model_spec), dtype={"bf16": "bfloat16", "fp32": "float32"}.get(dtype, "auto"),
              seed=seed)

    def generate(prompts, cfg: GenerationConfig) -> list[str]:
        # No per-request seed: the k copies of a prompt in one call would then all sample the same answer.
        params = SamplingParams(temperature=cfg.temperature if cfg.do_sample else 0.0, top_p=cfg.top_p,
                                max_tokens=cfg.max_new_tokens)
        outs = llm.chat([list(p) for p in prompts], params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outs]

    return generate


def make_generator(config, model=None, tok=None) -> Generator:
    """The sampler: transformers unless `backend=vllm` is asked for. `auto` means hf, even with vLLM installed:
    the vLLM path is not exercised by axial's tests, so it is never picked silently."""
    if model is not None:
        return hf_generator(model, tok)
    if config.backend == "vllm":
        import logging

        logging.getLogger(__name__).warning(
            "MORA sampling through vLLM (backend=vllm): this path is not covered by axial's tests; its samples "
            "come from vLLM's own sampler and chat template handling, not transformers'")
        return vllm_generator(config.model, config.dtype, config.seed)
    from axial.models import load_model

    model, tok = load_model(config.model, dtype=config.dtype)
    return hf_generator(model, tok)


def load_judges(config, axes: Sequence[str] | None = None) -> dict:
    from axial.rewards import load_judge

    return {axis: load_judge(config.judge_spec(axis), axis=axis) for axis in axes or config.axis_names()}


def sampling_config(config, seed: int) -> GenerationConfig:
    return GenerationConfig(max_new_tokens=config.max_new_tokens, do_sample=True, temperature=config.temperature,
                            top_p=config.top_p, batch_size=config.batch_size, seed=seed)


def chunk_seed(seed: int, ids: Sequence[str]) -> int:
    """A seed fixed by the chunk's prompts, so a resumed run samples a redone chunk as the first run would."""
    digest = hashlib.sha256(f"{seed}:{'|'.join(ids)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def rollouts_for(prompts: Sequence[Prompt], k: int, generate: Generator, judges: Mapping, cfg: GenerationConfig
                 ) -> list[list[dict]]:
    """k scored rollouts for each prompt: [[{"response", "scores": {axis: score}}] * k] * len(prompts)."""
    expanded = [p.messages for p in prompts for _ in range(k)]
    responses = generate(expanded, cfg)
    if len(responses) != len(expanded):
        raise AxialError(f"generator returned {len(responses)} responses for {len(expanded)} prompts")
    scores = {axis: judge.score(expanded, responses) for axis, judge in judges.items()}
    out = []
    for i in range(len(prompts)):
        rows = []
        for j in range(i * k, (i + 1) * k):
            rows.append({"response": responses[j], "scores": {a: float(scores[a][j]) for a in judges}})
        out.append(rows)
    return out


def sample_meta(config, judges: Mapping) -> dict:
    return {"model": config.model, "k": config.k, "temperature": config.temperature, "top_p": config.top_p,
            "max_new_tokens": config.max_new_tokens, "seed": config.seed,
            "judges": {a: config.judge_spec(a) for a in judges}}


def sample(config, prompts: Sequence[Prompt], path: str | Path, *, generate: Generator | None = None,
           judges: Mapping | None = None, desc: str = "sample") -> list[dict]:
    """Sample and score k rollouts for every prompt not yet in `path`; returns all rows in the file.

    generate / judges: injected by callers that already hold a model (the pipeline) or by tests.
    """
    path = Path(path)
    judges = judges if judges is not None else load_judges(config)
    check_meta(path, sample_meta(config, judges))
    rows = read_jsonl_resumable(path)
    done = {r["id"] for r in rows}
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise AxialError(f"{desc}: duplicate prompt ids in the input")
    todo = [p for p in prompts if p.id not in done]
    if todo:
        generate = generate or make_generator(config)
    bar = tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc=desc, unit="prompt")
    for start in range(0, len(todo), config.chunk_prompts):
        chunk = todo[start:start + config.chunk_prompts]
        cfg = sampling_config(config, chunk_seed(config.seed, [p.id for p in chunk]))
        scored = rollouts_for(chunk, config.k, generate, judges, cfg)
        new = [{"id": p.id, "axis": p.axis, "source": p.source, "messages": p.messages, "meta": p.meta,
                "rollouts": r} for p, r in zip(chunk, scored, strict=True)]
        append_jsonl(path, new)
        rows.extend(new)
        bar.update(len(chunk))
    bar.close()
    return rows
