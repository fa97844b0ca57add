"""MoCaE (TrinityX / AlignX stage 2): routers over the mixture layer's experts, their training and calibration."""

from axial.mocae.calibration import (
    TemperatureScaling,
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    reliability_diagram,
)
from axial.mocae.router import MoCaERouter, task_vector_importance
from axial.mocae.store import LoadedRouter, load_router

__all__ = ["LoadedRouter", "MoCaERouter", "TemperatureScaling",
           "brier_score", "calibration_metrics", "expected_calibration_error", "load_router",
           "reliability_diagram", "task_vector_importance"]
