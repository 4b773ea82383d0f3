"""What a forecaster is (`ForecastConfig`: the window it reads, how its values are encoded, its
head and covariates) and what it returns (`Forecast`: means and intervals per origin). The
encodings ("level", "change", "seasonal") are explained in `model.py`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["TARGETS", "Forecast", "ForecastConfig"]

TARGETS = ("level", "change", "seasonal")


@dataclass(frozen=True)
class ForecastConfig:
    """window: k, the values one forecast reads; target: "level", "change" or "seasonal"
    (module docstring); season: m, for the "seasonal" target; probabilistic: Gaussian head
    (mean, log variance) trained by NLL, else the mean alone by MSE; covariates: names of the
    extra input columns."""

    window: int
    target: str = "level"
    probabilistic: bool = True
    covariates: tuple[str, ...] = ()
    season: int = 1

    def __post_init__(self):
        if not isinstance(self.window, (int, np.integer)) or isinstance(self.window, bool) or self.window <= 0:
            raise ValueError(f"the window must be a positive integer, got {self.window!r}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if not isinstance(self.season, (int, np.integer)) or self.season <= 0:
            raise ValueError(f"the seasonal period must be a positive integer, got {self.season!r}")
        if self.target == "seasonal" and self.season < 2:
            raise ValueError("the seasonal target needs a seasonal period of at least 2")
        object.__setattr__(self, "covariates", tuple(self.covariates))

    @property
    def lag(self) -> int:
        """Values needed before a window: m for the seasonal target, else 0."""
        return self.season if self.target == "seasonal" else 0

    def to_dict(self) -> dict:
        return {**asdict(self), "covariates": list(self.covariates)}

    @classmethod
    def from_dict(cls, values: dict) -> ForecastConfig:
        return cls(**values)


@dataclass
class Forecast:
    """Forecasts from each origin o (the last known index): mean (O, H) for o+1 .. o+H, and a
    central prediction interval [lower, upper] of probability `level` (None without a
    probabilistic head)."""

    origins: np.ndarray
    mean: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    level: float

    @property
    def horizon(self) -> int:
        return self.mean.shape[1]
