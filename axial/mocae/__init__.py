"""MoCaE (TrinityX / AlignX stage 2): routers over the mixture layer's experts, their training and calibration."""

from axial._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{name: "calibration" for name in ("TemperatureScaling", "brier_score", "calibration_metrics",
                                        "expected_calibration_error", "reliability_diagram")},
    "MoCaERouter": "router", "task_vector_importance": "router",
    "LoadedRouter": "store", "load_router": "store",
})
