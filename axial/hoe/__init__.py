"""HoE (hierarchical mixture of LoRA experts): the three levels in one place.

1. LoRA experts: the axis experts (axial.experts) and multi-objective experts merged at anchor preferences
   (`merge_experts`, axial.preference.merge: TIES/DARE at full strength, SVD back to LoRA; `axial merge-experts`).
   HoE's SVD compression of full fine-tunes is `experts_from_finetuned` (axial.mixture).
2. Router experts: one router per anchor preference λ_a, restricted to the N experts nearest λ_a, trained with
   the Tchebycheff scalarisation of per-axis preference losses (`train_hoe`, `axial train-hoe`; an offline
   preference-loss surrogate of the paper's PPO training, see axial.hoe.train).
3. Preference routing: a user's λ -> convex weights w1 over the nearest anchors -> w2 = Σ w1_i η_i(x)
   (axial.preference.routing), served as the weight source `hoe:AXIS=W,...?set=DIR` (axial.sources).

Without router experts, `pref:λ` over the axis experts alone is plain linear weight mixing (w = λ), not HoE.
"""

from axial._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "HoEConfig": "train", "train_hoe": "train", "write_anchors": "train",
    "default_anchor_preferences": "experts", "expert_positions": "experts", "nearest_experts": "experts",
    "HoESet": "store", "load_hoe": "store",
    "MergeConfig": "_merge", "merge_experts": "_merge",
})
