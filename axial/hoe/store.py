"""A trained HoE set on disk (`axial train-hoe`):

    DIR/hoe.json           axes, experts (names, adapter folders, positions in preference space), ideal point z*,
                           the single experts' losses on each axis' pairs, a summary of every router expert
    DIR/anchors.json       what preference routing reads (axial.preference.routing.load_anchors)
    DIR/routers/<anchor>/  one router expert each (axial.mocae router folder: mocae.json, router.safetensors,
                           train_metrics.json, training.png)
    DIR/hoe_config.json    the HoEConfig it was trained with
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from axial.config import read_json_object
from axial.errors import AxialError, DataError

HOE_META = "hoe.json"


@dataclass
class HoESet:
    path: Path
    axes: list[str]
    experts: list[str]
    expert_dirs: list[str]
    anchors_file: Path
    meta: dict

    def check_experts(self, names: list[str]) -> None:
        """A mixture must hold exactly the set's experts, in its order (router experts route over them)."""
        if list(names) != self.experts:
            raise AxialError(f"HoE set {self.path} routes over experts {self.experts} (folders: {self.expert_dirs}); "
                             f"the mixture has {list(names)}: pass those expert folders, in that order")


def load_hoe(folder: str | Path) -> HoESet:
    folder = Path(folder)
    if not (folder / HOE_META).is_file():
        raise AxialError(f"HoE set '{folder}': no {HOE_META} (made by `axial train-hoe`)")
    meta = read_json_object(folder / HOE_META)
    try:
        anchors = folder / meta["anchors_file"]
        out = HoESet(folder, list(meta["axes"]), list(meta["experts"]), list(meta["expert_dirs"]), anchors, meta)
    except (KeyError, TypeError) as e:
        raise DataError(f"missing or malformed entry: {e}", path=str(folder / HOE_META)) from e
    if not anchors.is_file():
        raise AxialError(f"HoE set '{folder}': {anchors.name} is missing")
    return out


def shipped_hoe_dir() -> Path | None:
    """The HoE router-expert set shipped for the shipped embedded experts (axial/experts_embedded/hoe), if any."""
    path = Path(__file__).resolve().parent.parent / "experts_embedded" / "hoe"
    return path if (path / HOE_META).is_file() else None
