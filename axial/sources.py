"""Weight sources: where a mixture's expert weights come from, as typed values with one grammar.

Every command (eval, chat, serve, pareto, export, MORA's report, the demo) and the Python API take the same
source strings, parsed once here into frozen dataclasses, and every mixture applies them the same way
(`Mixture.use(source)` / `Mixture.use_rows([...])`), so what is served is what was measured.

Grammar:  KIND[:ARGUMENT][?OPTION=VALUE&OPTION=VALUE...]

  base                               the base model alone (w = 0; experts stay attached, inactive)
  uniform                            equal weights over the single-objective experts (every expert but merged
                                     anchors, i.e. those whose axial_expert.json carries a 'preference'; over
                                     every expert when all are merged): the uniform merge, exact at the output
  expert:NAME                        one expert alone (w = one-hot); an unknown NAME is an error
  weights:NAME=W,...                 raw expert weights, NOT renormalised (experts not named get 0; W > 1
                                     extrapolates) — for interpolation sweeps and ablations
  pref:AXIS=W,...[?anchors=FILE&n=N]  a preference over the axes, validated and normalised to the simplex,
                                     mapped to expert weights through anchors (axial.preference.routing):
                                     default anchors = the axis experts at their axis and merged experts at
                                     their stored preference; `anchors=FILE` reads anchors (weights or routers)
                                     from JSON; `n` = how many nearest anchors to start from. With only axis
                                     experts as anchors this is plain linear weight mixing of the experts
                                     (w = λ), not HoE (that is `hoe:`).
  hoe:AXIS=W,...?set=DIR[&n=N]      HoE preference routing (axial.hoe) over a set made by `axial train-hoe`:
                                     the router experts and fixed-weight experts of DIR/anchors.json mixed as
                                     w2 = Σ w1_i η_i(x) for the preference; the mixture must hold the set's
                                     experts in its order (DIR/hoe.json)
  mocae:DIR[?top_k=K&calibration=none|fitted&importance=none|saved]
                                     a trained MoCaE router (axial.mocae): per-sequence or per-token routing

`resolve(mixture)` turns a source into `Static` weights ([K]) or a `Routed` (router, gate) pair; a mixture
caches the result per source, so a router loads once however many requests name it. New kinds register with
`register_source_kind` (a class with `kind`, `parse` and `resolve`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode

from axial.errors import AxialError
from axial.mixture.resolved import Routed, Static, WeightSource

GRAMMAR = "KIND[:ARGUMENT][?OPTION=VALUE&...]"


@dataclass(frozen=True)
class Source(WeightSource):
    """A named, parseable weight source. Subclasses set the class attributes and implement parse/resolve."""

    kind: ClassVar[str]
    #: What follows 'kind:' (None: the kind takes no argument).
    argument: ClassVar[str | None] = None
    #: option -> what it means.
    options: ClassVar[dict[str, str]] = {}
    example: ClassVar[str] = ""
    #: True when resolving reads files named in the source (routers, anchors): a server only lets clients
    #: name such sources if the operator declared them.
    reads_files: ClassVar[bool] = False

    @classmethod
    def parse(cls, arg: str, options: dict[str, str], text: str, axes: Sequence[str] | None) -> Source:
        return cls()

    def spec(self) -> str:
        """The canonical string: parse_source(s.spec()) == s."""
        return self.kind

    def __str__(self) -> str:
        return self.spec()


SOURCE_KINDS: dict[str, type[Source]] = {}


def register_source_kind(cls: type[Source]) -> type[Source]:
    SOURCE_KINDS[cls.kind] = cls
    return cls


def source_help() -> str:
    """One line per kind, for --help texts and error messages."""
    return "; ".join(cls.example or cls.kind for cls in SOURCE_KINDS.values())


def parse_source(text: str | Source, *, axes: Sequence[str] | None = None) -> Source:
    """Parse a source string (see the module docstring); a Source passes through unchanged.

    `axes` are the configured axis names for `pref:` (default: the built-in axes).
    """
    if isinstance(text, Source):
        return text
    if not isinstance(text, str) or not text.strip():
        raise AxialError(f"source {text!r}: empty; expected {GRAMMAR}, one of: {source_help()}")
    text = text.strip()
    head, qmark, query = text.partition("?")
    kind, colon, arg = head.partition(":")
    cls = SOURCE_KINDS.get(kind.strip())
    if cls is None:
        raise AxialError(f"source '{text}': unknown kind '{kind}'; expected {GRAMMAR}, one of: {source_help()}")
    arg = arg.strip()
    if cls.argument is None and (colon or arg):
        raise AxialError(f"source '{text}': '{cls.kind}' takes no argument")
    if cls.argument is not None and not arg:
        raise AxialError(f"source '{text}': '{cls.kind}:' needs {cls.argument}, e.g. {cls.example}")
    options: dict[str, str] = {}
    if qmark:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise AxialError(f"source '{text}': options '?{query}' are not OPTION=VALUE&...") from None
        for key, value in pairs:
            if key not in cls.options:
                known = ", ".join(f"{k} ({v})" for k, v in cls.options.items()) or "none"
                raise AxialError(f"source '{text}': unknown option '{key}' for '{cls.kind}'; options: {known}")
            if key in options:
                raise AxialError(f"source '{text}': option '{key}' given twice")
            options[key] = value
    return cls.parse(arg, options, text, axes)


def _name_weights(arg: str, text: str) -> tuple[tuple[str, float], ...]:
    out: dict[str, float] = {}
    for part in (p.strip() for p in arg.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise AxialError(f"source '{text}': '{part}' is not NAME=WEIGHT")
        if key in out:
            raise AxialError(f"source '{text}': field '{key}': given twice")
        try:
            w = float(value)
        except ValueError:
            raise AxialError(f"source '{text}': field '{key}': {value.strip()!r} is not a number") from None
        if not math.isfinite(w):
            raise AxialError(f"source '{text}': field '{key}': must be finite, got {value.strip()!r}")
        out[key] = w
    if not out:
        raise AxialError(f"source '{text}': no NAME=WEIGHT given")
    return tuple(out.items())


def _fmt(x: float) -> str:
    return f"{x:.10g}"


# ---- the kinds ----------------------------------------------------------------------------------------------
@register_source_kind
@dataclass(frozen=True)
class Base(Source):
    kind: ClassVar[str] = "base"
    example: ClassVar[str] = "base"

    def resolve(self, mixture) -> Static:
        return Static(None)


@register_source_kind
@dataclass(frozen=True)
class Uniform(Source):
    kind: ClassVar[str] = "uniform"
    example: ClassVar[str] = "uniform"

    def resolve(self, mixture) -> Static:
        single = [i for i, e in enumerate(mixture.experts) if not isinstance(e.meta.get("preference"), dict)]
        over = single or list(range(mixture.num_experts))
        return Static([1.0 / len(over) if i in over else 0.0 for i in range(mixture.num_experts)])


@register_source_kind
@dataclass(frozen=True)
class Expert(Source):
    name: str
    kind: ClassVar[str] = "expert"
    argument: ClassVar[str | None] = "an expert name"
    example: ClassVar[str] = "expert:NAME"

    @classmethod
    def parse(cls, arg, options, text, axes):
        return cls(arg)

    def spec(self) -> str:
        return f"expert:{self.name}"

    def resolve(self, mixture) -> Static:
        if self.name not in mixture.expert_names:
            raise AxialError(f"source '{self}': unknown expert '{self.name}'; experts: {mixture.expert_names}")
        return Static([1.0 if n == self.name else 0.0 for n in mixture.expert_names])


@register_source_kind
@dataclass(frozen=True)
class Weights(Source):
    weights: tuple[tuple[str, float], ...]
    kind: ClassVar[str] = "weights"
    argument: ClassVar[str | None] = "NAME=WEIGHT,... over the experts"
    example: ClassVar[str] = "weights:NAME=W,..."

    @classmethod
    def parse(cls, arg, options, text, axes):
        return cls(_name_weights(arg, text))

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> Weights:
        return cls(tuple((str(k), float(v)) for k, v in weights.items()))

    def spec(self) -> str:
        return "weights:" + ",".join(f"{k}={_fmt(v)}" for k, v in self.weights)

    def resolve(self, mixture) -> Static:
        unknown = [k for k, _ in self.weights if k not in mixture.expert_names]
        if unknown:
            raise AxialError(f"source '{self}': field '{unknown[0]}': unknown expert; experts: "
                             f"{mixture.expert_names}")
        d = dict(self.weights)
        return Static([d.get(n, 0.0) for n in mixture.expert_names])


@register_source_kind
@dataclass(frozen=True)
class Pref(Source):
    preference: object  # axial.preference.Preference (frozen, normalised to the simplex)
    anchors: str | None = None
    n_nearest: int | None = None
    kind: ClassVar[str] = "pref"
    argument: ClassVar[str | None] = "AXIS=WEIGHT,... over the axes"
    options: ClassVar[dict[str, str]] = {"anchors": "anchors JSON file", "n": "nearest anchors to start from"}
    example: ClassVar[str] = "pref:AXIS=W,...[?anchors=FILE&n=N]"

    @classmethod
    def parse(cls, arg, options, text, axes):
        from axial.preference.preference import parse_preference

        try:
            pref = parse_preference(arg, axes)
        except AxialError as e:
            raise AxialError(f"source '{text}': {e}") from None
        n = options.get("n")
        if n is not None:
            try:
                n_val = int(n)
            except ValueError:
                raise AxialError(f"source '{text}': option 'n': expected a whole number, got {n!r}") from None
            if n_val < 1:
                raise AxialError(f"source '{text}': option 'n': must be >= 1, got {n_val}")
        anchors = options.get("anchors")
        if anchors is not None and not anchors:
            raise AxialError(f"source '{text}': option 'anchors': empty; give an anchors JSON file")
        return cls(pref, anchors, None if n is None else n_val)

    @classmethod
    def of(cls, preference, *, axes: Sequence[str] | None = None, anchors: str | None = None,
           n_nearest: int | None = None) -> Pref:
        """From a Preference, a {axis: weight} mapping or 'axis=w,...' text."""
        from axial.preference.preference import parse_preference

        return cls(parse_preference(preference, axes), anchors, n_nearest)

    @property
    def reads_files(self) -> bool:  # type: ignore[override]
        return self.anchors is not None

    def spec(self) -> str:
        text = "pref:" + ",".join(f"{a}={_fmt(v)}" for a, v in zip(self.preference.axes, self.preference.values,
                                                                     strict=True) if v)
        opts = {k: v for k, v in (("anchors", self.anchors), ("n", self.n_nearest)) if v is not None}
        return text + ("?" + urlencode(opts, safe="/:,.~") if opts else "")

    def resolve(self, mixture) -> Static | Routed:
        from axial.preference.routing import anchor_mixture, load_anchors

        anchors = load_anchors(self.anchors, mixture, self.preference.axes) if self.anchors else None
        try:
            return anchor_mixture(mixture, self.preference, anchors, self.n_nearest)
        except AxialError as e:
            raise AxialError(f"source '{self}': {e}") from None


def _nearest_option(options: dict[str, str], text: str) -> int | None:
    n = options.get("n")
    if n is None:
        return None
    try:
        value = int(n)
    except ValueError:
        raise AxialError(f"source '{text}': option 'n': expected a whole number, got {n!r}") from None
    if value < 1:
        raise AxialError(f"source '{text}': option 'n': must be >= 1, got {value}")
    return value


@register_source_kind
@dataclass(frozen=True)
class HoE(Source):
    preference: object  # axial.preference.Preference
    set: str
    n_nearest: int | None = None
    kind: ClassVar[str] = "hoe"
    argument: ClassVar[str | None] = "AXIS=WEIGHT,... over the axes"
    options: ClassVar[dict[str, str]] = {"set": "a HoE folder made by `axial train-hoe` (required)",
                                         "n": "nearest anchors to start from"}
    example: ClassVar[str] = "hoe:AXIS=W,...?set=DIR[&n=N]"
    reads_files: ClassVar[bool] = True

    @classmethod
    def parse(cls, arg, options, text, axes):
        from axial.preference.preference import parse_preference

        if not options.get("set"):
            raise AxialError(f"source '{text}': option 'set' is required: the HoE folder made by `axial train-hoe`, "
                             "e.g. hoe:helpful=0.7,harmless=0.3?set=DIR")
        try:
            pref = parse_preference(arg, axes)
        except AxialError as e:
            raise AxialError(f"source '{text}': {e}") from None
        return cls(pref, options["set"], _nearest_option(options, text))

    @classmethod
    def of(cls, preference, set: str, *, axes: Sequence[str] | None = None, n_nearest: int | None = None) -> HoE:
        from axial.preference.preference import parse_preference

        return cls(parse_preference(preference, axes), str(set), n_nearest)

    def spec(self) -> str:
        text = "hoe:" + ",".join(f"{a}={_fmt(v)}" for a, v in zip(self.preference.axes, self.preference.values,
                                                                    strict=True) if v)
        opts = {k: v for k, v in (("set", self.set), ("n", self.n_nearest)) if v is not None}
        return text + "?" + urlencode(opts, safe="/:,.~")

    def resolve(self, mixture) -> Static | Routed:
        from axial.hoe.store import load_hoe
        from axial.preference.routing import anchor_mixture, load_anchors

        try:
            hoe = load_hoe(self.set)
            hoe.check_experts(mixture.expert_names)
            missing = [a for a in hoe.axes if a not in self.preference.axes]
            if missing:
                raise AxialError(f"the set's axes {hoe.axes} are not all configured axes {list(self.preference.axes)}")
            anchors = load_anchors(hoe.anchors_file, mixture, self.preference.axes)
            return anchor_mixture(mixture, self.preference, anchors, self.n_nearest)
        except AxialError as e:
            raise AxialError(f"source '{self}': {e}") from None


@register_source_kind
@dataclass(frozen=True)
class MoCaE(Source):
    path: str
    top_k: int | None = None
    calibration: str | None = None
    importance: str | None = None
    kind: ClassVar[str] = "mocae"
    argument: ClassVar[str | None] = "a router folder made by `axial train-router`"
    options: ClassVar[dict[str, str]] = {"top_k": "0 = soft over all experts", "calibration": "none | fitted",
                                         "importance": "none | saved"}
    example: ClassVar[str] = "mocae:DIR[?top_k=K&calibration=none|fitted&importance=none|saved]"
    reads_files: ClassVar[bool] = True

    @classmethod
    def parse(cls, arg, options, text, axes):
        top_k = options.get("top_k")
        if top_k is not None:
            try:
                top_k = int(top_k)
            except ValueError:
                raise AxialError(f"source '{text}': option 'top_k': expected a whole number, got {top_k!r}") from None
            if top_k < 0:
                raise AxialError(f"source '{text}': option 'top_k': must be >= 0, got {top_k}")
        for key, allowed in (("calibration", ("none", "fitted")), ("importance", ("none", "saved"))):
            if key in options and options[key] not in allowed:
                raise AxialError(f"source '{text}': option '{key}': expected one of {list(allowed)}, got "
                                 f"{options[key]!r}")
        return cls(arg, top_k, options.get("calibration"), options.get("importance"))

    def spec(self) -> str:
        opts = {k: v for k, v in (("top_k", self.top_k), ("calibration", self.calibration),
                                  ("importance", self.importance)) if v is not None}
        return f"mocae:{self.path}" + ("?" + urlencode(opts) if opts else "")

    def resolve(self, mixture) -> Routed:
        from axial.mocae.store import load_router

        loaded = load_router(self.path, mixture, top_k=self.top_k, calibration=self.calibration,
                             importance=self.importance)
        return loaded.routed


SOURCE_OPTION_HELP = (f"weight source, {GRAMMAR}: " + " | ".join(c.example for c in SOURCE_KINDS.values())
                      + " (see `python -m pydoc axial.sources`)")
