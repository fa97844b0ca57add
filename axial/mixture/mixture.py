"""`Mixture`: attach K experts to a model in place and choose where their weights come from.

    mixture = Mixture.attach(model, ["adapters/helpful", "adapters/harmless"])
    mixture.use(parse_source("pref:helpful=0.7,harmless=0.3"))   # any axial.sources source
    mixture.use(Static([0.7, 0.3]))                 # raw weights: [K], [B, K] per row or [B, T, K] per token
    mixture.use(Routed(router, GateConfig(temperature=2.0)))     # per token, from the hidden state
    mixture.use_rows([src_a, src_b, src_a])         # one source per batch row (static or routed)
    with mixture.using(source): ...                 # for the duration, then the previous state
    mixture.use(Static(None))                       # the base model, LoRA path skipped
    mixture.detach()                                # the original modules back

`use` and `use_rows` are the only ways to change where the weights come from: every caller (eval, chat,
serve, pareto, MORA, router training) goes through them, so the rule "a router overrides static weights" and
the router hooks live here once.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from axial.arch import find_decoder_layers
from axial.errors import AxialError
from axial.mixture.experts import Expert, ExpertSet, load_experts
from axial.mixture.layer import MixtureLinear, RoutingState
from axial.mixture.resolved import Routed, Static, WeightSource
from axial.mixture.routing import GateConfig, Router, RowsRouter


def _check_bases(experts: ExpertSet, model: nn.Module, allow: bool) -> None:
    import logging

    from axial.baseref import check_base

    live = getattr(model, "axial_source", None) or {}
    for e in experts:
        what = f"expert '{e.name}' ({e.source or 'in memory'})"
        if e.base:
            check_base(e.base, model, what=what, allow=allow)
            continue
        named = e.meta.get("peft_base_name")
        known = {live.get("spec"), live.get("hub_id")} - {None}
        if named and known and named not in known and not Path(named).exists():
            logging.getLogger(__name__).warning(
                "%s names base '%s' in its adapter_config.json; the model is '%s'. Not verifiable (the adapter "
                "has no axial base reference): check that it was trained on this base.", what, named,
                live.get("spec"))


class Mixture:
    def __init__(self, model: nn.Module, experts: ExpertSet, modules: dict[str, MixtureLinear],
                 originals: dict[str, nn.Module], layers: dict[int, nn.Module]):
        self.model, self.experts = model, experts
        self.modules, self._originals, self._layers = modules, originals, layers
        self.state = modules[next(iter(modules))].state
        self.router: Router | None = None
        self.gate = GateConfig()
        self.active: Static | Routed = Static(None)
        self._hooks: list = []
        self._resolved: OrderedDict = OrderedDict()  # source -> Static | Routed (routers load once)
        self.attached = True

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def attach(cls, model: nn.Module, experts: ExpertSet | Sequence[str | Expert | ExpertSet],
               names: Sequence[str] | None = None, target_modules: Sequence[str] | None = None, *,
               allow_base_mismatch: bool = False) -> Mixture:
        """Replace every target linear (default: all modules any expert touches) with a MixtureLinear.

        `target_modules` restricts by name or name suffix (PEFT style: "q_proj" or "layers.0.mlp.up_proj").
        An expert whose recorded base (axial.baseref) is not this model is refused; `allow_base_mismatch=True`
        (or AXIAL_ALLOW_BASE_MISMATCH=1) applies it anyway, with a warning.
        """
        if getattr(model, "axial_mixture", None) is not None:
            raise AxialError("this model already has a mixture attached; detach() it first")
        if isinstance(experts, (str, Path, Expert, ExpertSet)):
            experts = [experts]
        experts = load_experts(experts, names, allow_base_mismatch=allow_base_mismatch)
        _check_bases(experts, model, allow_base_mismatch)
        wanted = experts.module_names
        if target_modules is not None:
            wanted = [m for m in wanted if any(m == t or m.endswith("." + t) for t in target_modules)]
            if not wanted:
                raise AxialError(f"target_modules={list(target_modules)} match none of the experts' modules "
                                 f"(e.g. {experts.module_names[:3]})")
        named = dict(model.named_modules())
        missing = [m for m in wanted if m not in named]
        if missing:
            raise AxialError(f"the experts adapt {len(missing)} module(s) the model does not have (first: "
                             f"'{missing[0]}'); were they trained on a different base model?")
        state = RoutingState()
        modules, originals, layers = {}, {}, {}
        try:
            stack = find_decoder_layers(model)
        except AxialError:
            stack = None  # no block stack: static weights still work; set_router says why it cannot route
        for name in wanted:
            base = named[name]
            if not isinstance(base, nn.Linear):
                raise AxialError(f"module '{name}' is a {type(base).__name__}, not nn.Linear; only linear "
                                 "layers can carry LoRA experts")
            layer_idx = stack.index_of(name) if stack is not None else None
            if layer_idx is not None:
                layers[layer_idx] = stack.layers[layer_idx]
            A, B, scaling, r_max = experts.stacked(name)
            modules[name] = MixtureLinear(base, A, B, scaling, r_max, state, layer_idx, name)
            originals[name] = base
        mixture = cls(model, experts, modules, originals, layers)
        mixture._swap(modules)
        model.axial_mixture = mixture
        return mixture

    def _swap(self, table: dict[str, nn.Module]) -> None:
        for name, module in table.items():
            parent, _, child = name.rpartition(".")
            setattr(self.model.get_submodule(parent) if parent else self.model, child, module)

    def detach(self) -> None:
        """Put the original linears back and forget the router; the model is the plain base model again."""
        self._set_router(None)
        self._swap(self._originals)
        self.model.axial_mixture = None
        self.attached = False

    @contextlib.contextmanager
    def detached(self):
        """The original modules in place for the duration (e.g. to save_pretrained a clean model)."""
        self._swap(self._originals)
        try:
            yield self.model
        finally:
            self._swap(self.modules)

    # ---- weights -------------------------------------------------------------------------------------
    @property
    def expert_names(self) -> list[str]:
        return self.experts.names

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    @property
    def device(self):
        return next(iter(self.modules.values())).lora_A.device

    def as_weights(self, w) -> torch.Tensor | None:
        """Validate w: None, a {name: weight} dict (missing names = 0), or anything tensor-like [..., K]."""
        if w is None:
            return None
        if isinstance(w, dict):
            unknown = sorted(set(w) - set(self.expert_names))
            if unknown:
                raise AxialError(f"mixture weights name unknown expert(s) {unknown}; experts: {self.expert_names}")
            w = [float(w.get(n, 0.0)) for n in self.expert_names]
        t = torch.as_tensor(w, dtype=torch.float32).detach()
        if t.dim() not in (1, 2, 3) or t.shape[-1] != self.num_experts:
            raise AxialError(f"mixture weights: expected shape [K], [B, K] or [B, T, K] with K="
                             f"{self.num_experts} ({self.expert_names}), got {list(t.shape)}")
        if not torch.isfinite(t).all():
            raise AxialError(f"mixture weights: must be finite, got {w}")
        return t.to(self.device)

    @property
    def current_weights(self) -> torch.Tensor | None:
        """The static weights in force (None: base model, or a router decides)."""
        return None if self.state.routed else self.state.weights

    # ---- sources -------------------------------------------------------------------------------------
    _CACHE = 256

    def resolve(self, source: WeightSource) -> Static | Routed:
        """What `source` means for this mixture's experts (cached per source: a router loads once)."""
        if not isinstance(source, WeightSource):
            raise AxialError(f"a mixture takes a weight source (axial.sources, or Static/Routed), got "
                             f"{type(source).__name__} {source!r}; parse strings with axial.sources.parse_source")
        if isinstance(source, (Static, Routed)):
            return source
        hit = self._resolved.get(source)
        if hit is None:
            hit = source.resolve(self)
            if not isinstance(hit, (Static, Routed)):
                raise AxialError(f"source {source!r} resolved to {type(hit).__name__}, not Static or Routed")
            self._resolved[source] = hit
            if len(self._resolved) > self._CACHE:
                self._resolved.popitem(last=False)
        self._resolved.move_to_end(source)
        return hit

    def use(self, source: WeightSource) -> Mixture:
        """Take the expert weights from `source` from now on (replacing whatever was in force)."""
        resolved = self.resolve(source)
        self._apply(resolved)
        return self

    def use_rows(self, sources: Sequence[WeightSource]) -> Mixture:
        """One source per batch row: static rows become per-row weights [B, K]; with any routed row, one
        `RowsRouter` gives every row its own source's weights in the same forward pass."""
        if not sources:
            raise AxialError("use_rows: no sources given")
        resolved = [self.resolve(s) for s in sources]
        k = self.num_experts
        rows = torch.zeros(len(resolved), k)
        groups: dict[int, tuple[Router, GateConfig, list[int]]] = {}
        any_weights = False
        for i, r in enumerate(resolved):
            if isinstance(r, Routed):
                groups.setdefault(id(r), (r.router, r.gate or GateConfig(), []))[2].append(i)
                continue
            w = self.as_weights(r.weights)
            if w is None:
                continue
            if w.dim() != 1:
                raise AxialError(f"use_rows: row {i}'s source has weights of shape {list(w.shape)}; a row takes "
                                 "one weight vector [K]")
            rows[i] = w.cpu()
            any_weights = True
        if groups:
            self._apply(Routed(RowsRouter(rows.to(self.device), list(groups.values()))))
        else:
            self._apply(Static(rows if any_weights else None))
        return self

    @contextlib.contextmanager
    def using(self, source: WeightSource):
        """`use(source)` for the duration of the block, then whatever was in force before."""
        previous = self.active
        self.use(source)
        try:
            yield self
        finally:
            self._apply(previous)

    def row_sources(self, per_prompt: Sequence[WeightSource]):
        """For `generate_responses(row_kwargs=...)`: before each batch, `use_rows` with the sources of the
        batch's prompts (generate_responses reorders prompts into batches by length)."""
        per_prompt = list(per_prompt)

        def for_rows(idx) -> dict:
            self.use_rows([per_prompt[i] for i in idx])
            return {}

        return for_rows

    def _apply(self, resolved: Static | Routed) -> None:
        if isinstance(resolved, Routed):
            self._set_router(resolved.router, resolved.gate)
        else:
            self._set_router(None)
            self.state.weights = self.as_weights(resolved.weights)
        self.active = resolved

    # ---- router --------------------------------------------------------------------------------------
    def _set_router(self, router: Router | None, gate: GateConfig | None = None) -> None:
        for h in self._hooks:
            h.remove()
        if self.router is not None and self.router is not router:
            self.router.unbind()
        self._hooks, self.router = [], router
        self.state.gates.clear()
        self.state.routed = router is not None
        if router is None:
            return
        if not isinstance(router, Router):
            raise AxialError(f"a mixture routes with an axial.mixture.Router, got {type(router).__name__}")
        if not self._layers:
            raise AxialError("routing: none of the mixture's modules is inside a decoder layer "
                             "(the model's stack of decoder blocks), so there is no hidden state to route on")
        if router.expert_names is not None and list(router.expert_names) != self.expert_names:
            raise AxialError(f"router was built for experts {list(router.expert_names)}, the mixture has "
                             f"{self.expert_names}")
        router.bind(self.model)
        self.gate = gate or GateConfig()
        for idx, layer in self._layers.items():
            self._hooks.append(layer.register_forward_pre_hook(self._route_hook(idx), with_kwargs=True))

    def _route_hook(self, idx: int):
        def hook(_module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            out = self.router(hidden, idx)
            if out.shape != (*hidden.shape[:-1], self.num_experts):
                raise AxialError(f"router returned shape {list(out.shape)} at layer {idx}; expected "
                                 f"{[*hidden.shape[:-1], self.num_experts]}")
            self.state.gates[idx] = out if self.router.outputs_weights else self.gate(out)
            return None

        return hook

    # ---- inspection ----------------------------------------------------------------------------------
    def delta_weights(self, w) -> dict[str, torch.Tensor]:
        """{module: Σ_k w_k s_k B_k A_k} (fp32) for global weights [K]: the update folding the mixture adds."""
        t = self.as_weights(w)
        if t is None or t.dim() != 1:
            raise AxialError("delta_weights: needs one global weight vector [K]")
        # From the experts' fp32 factors, not the layer buffers, which may be bf16.
        out = {}
        for name in self.modules:
            parts = [wk * e.factors[name].delta() for wk, e in zip(t.tolist(), self.experts, strict=True)
                     if wk != 0 and name in e.factors]
            out[name] = sum(parts) if parts else torch.zeros_like(self._originals[name].weight, dtype=torch.float32)
        return out

    def __repr__(self) -> str:
        w = self.state.weights
        src = "router" if self.router is not None else ("base" if w is None else f"weights{list(w.shape)}")
        return (f"Mixture(experts={self.expert_names}, modules={len(self.modules)}, source={src}, "
                f"attached={self.attached})")

