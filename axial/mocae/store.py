"""A trained router on disk, and `load_router(DIR)`: what a Mixture needs to route with it.

    DIR/router.safetensors   the heads (safetensors only)
    DIR/mocae.json           router shape, expert names + adapter folders, base model and its reference
                             (axial.baseref; checked when bound to a mixture), gate (top-k, γ)
    DIR/router_config.json   the RouterConfig it was trained with
    DIR/train_keys.json      sha256 of every training prompt's split key (calibrate refuses to fit on them)
    DIR/calibration.json     written by `axial calibrate`: the fitted calibrator and its held-out metrics

Ablations at load time, as options after the folder (`mocae:DIR?top_k=1&calibration=none`):
top_k (0 = soft), calibration (none | fitted; default: fitted when DIR/calibration.json is marked "apply", which
`axial calibrate` does not do for a preference-trained router), importance (none | saved).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from axial.config import read_json_object
from axial.errors import AxialError, DataError
from axial.io import atomic_output, atomic_write_json
from axial.mixture.resolved import Routed
from axial.mixture.routing import GateConfig
from axial.mocae.calibration import calibrator_from_dict
from axial.mocae.router import MoCaERouter

ROUTER_WEIGHTS = "router.safetensors"
META = "mocae.json"
CALIBRATION = "calibration.json"
TRAIN_KEYS = "train_keys.json"
_OPTIONS = {"top_k", "calibration", "importance"}


def key_hash(text: str) -> str:
    from axial.data.splits import normalise_text

    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def save_router(router: MoCaERouter, folder: str | Path, *, expert_dirs: list[str], base_model: str,
                top_k: int, importance: list[float] | None, extra: dict | None = None) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / ROUTER_WEIGHTS) as tmp:
        save_file({k: v.detach().float().contiguous() for k, v in router.state_dict().items()}, str(tmp))
    # Both forms: absolute for the machine that trained it, relative to the router folder so a router committed
    # or copied together with its experts still finds them.
    absolute = [Path(d).resolve() for d in expert_dirs]
    relative = [os.path.relpath(d, folder.resolve()) for d in absolute]
    meta = {"router": router.config(), "expert_dirs": [str(d) for d in absolute], "expert_dirs_relative": relative,
            "base_model": base_model, "gate": {"top_k": top_k, "importance": importance}, **(extra or {})}
    # Last: mocae.json marks a complete router (train_router writes its other files before calling this).
    atomic_write_json(folder / META, meta)
    return folder


@dataclass
class LoadedRouter:
    router: MoCaERouter
    gate: GateConfig
    expert_dirs: list[str]
    base_model: str
    path: Path
    calibration: dict | None
    options: dict
    base: dict | None = None

    @property
    def expert_names(self) -> list[str]:
        return self.router.expert_names

    def __iter__(self):
        """`router, gate = load_router(DIR, mixture)`: the two things a `Routed` source holds."""
        return iter((self.router, self.gate))

    def bind(self, mixture, *, allow_base_mismatch: bool = False) -> LoadedRouter:
        """Check the experts and the base match and let the router read the mixture's model's attention masks."""
        from axial.baseref import check_base

        check_base(self.base, mixture.model, what=f"router {self.path}", allow=allow_base_mismatch)
        if list(mixture.expert_names) != self.expert_names:
            raise AxialError(f"router {self.path} was trained for experts {self.expert_names}, the mixture has "
                             f"{list(mixture.expert_names)} (pass the expert folders in the same order: "
                             f"{self.expert_dirs})")
        self.router.bind(mixture.model)
        return self

    @property
    def routed(self) -> Routed:
        return Routed(self.router, self.gate)

    def attach(self, mixture):
        """Route `mixture` with this router."""
        self.bind(mixture)
        mixture.use(self.routed)
        return mixture


def parse_router_spec(spec: str | Path) -> tuple[Path, dict]:
    text = str(spec)
    folder, _, query = text.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise AxialError(f"router spec '{text}': unknown option(s) {unknown}; known: {sorted(_OPTIONS)}")
    return Path(folder), options


def load_router(spec: str | Path, mixture=None, **overrides) -> LoadedRouter:
    """Router + gate + expert folders from DIR (optionally `DIR?top_k=1&calibration=none&importance=none`).

    With `mixture`, the router is checked against its experts and bound to its model (see `LoadedRouter.bind`).
    """
    from safetensors.torch import load_file

    folder, options = parse_router_spec(spec)
    options.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise AxialError(f"load_router: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}")
    if not (folder / META).is_file() or not (folder / ROUTER_WEIGHTS).is_file():
        raise AxialError(f"router '{folder}': expected {META} and {ROUTER_WEIGHTS} (made by `axial train-router`)")
    meta = read_json_object(folder / META)
    try:
        router = MoCaERouter(**meta["router"])
        gate_meta = meta["gate"]
        expert_dirs = [d if Path(d).is_dir() or rel is None else str((folder / rel).resolve())
                       for d, rel in zip(meta["expert_dirs"], meta.get("expert_dirs_relative")
                                         or [None] * len(meta["expert_dirs"]), strict=True)]
    except (KeyError, TypeError) as e:
        raise DataError(f"missing or malformed entry: {e}", path=str(folder / META)) from e
    if len(expert_dirs) != router.num_experts:
        raise DataError(f"{len(expert_dirs)} expert folders for a router over {router.num_experts} experts",
                        path=str(folder / META), field="expert_dirs")
    state = load_file(str(folder / ROUTER_WEIGHTS))
    try:
        router.load_state_dict(state)
    except RuntimeError as e:
        raise DataError(f"weights do not match the router in {META}: {e}", path=str(folder / ROUTER_WEIGHTS)) from e
    router.eval().requires_grad_(False)

    calibration = read_json_object(folder / CALIBRATION) if (folder / CALIBRATION).is_file() else None
    # A calibration saved with "apply": false (a preference-trained router) is reported but routes only on request.
    default = "fitted" if calibration is None or calibration.get("apply", True) else "none"
    use_cal = options.get("calibration", default)
    if use_cal not in ("none", "fitted"):
        raise AxialError(f"router option calibration='{use_cal}': expected none or fitted")
    if use_cal == "fitted" and calibration is not None:
        router.calibrator = calibrator_from_dict(calibration["calibrator"])
    top_k = int(options.get("top_k", gate_meta.get("top_k", 0)))
    importance = gate_meta.get("importance")
    if options.get("importance", "saved") == "none":
        importance = None
    elif options.get("importance", "saved") != "saved":
        raise AxialError(f"router option importance='{options['importance']}': expected none or saved")
    gate = GateConfig(temperature=1.0, top_k=top_k, importance=importance)
    base = meta.get("base")
    if base is not None and not isinstance(base, dict):
        raise DataError(f"must be a base reference object, got {base!r}", path=str(folder / META), field="base")
    if router.base_option:
        router.gate = gate  # a base-option router gates itself (see axial.mocae.router)
    loaded = LoadedRouter(router, gate, expert_dirs, meta.get("base_model", "embedded"), folder, calibration,
                          options, base)
    return loaded.bind(mixture) if mixture is not None else loaded
