"""`rnnkit forecast`: many-to-one time-series forecasting with a Gaussian head, multi-step sample
paths, a rolling-origin backtest against naive, seasonal naive, ETS and ARIMA, and plots.
Stands on network.SequenceNetwork, train.Trainer, losses.gaussian_nll, data.batches, metrics, viz.
In Python: `RecurrentForecaster(...).fit(series).predict(horizon)` (`api.py`)."""

from .api import RecurrentForecaster

__all__ = ["RecurrentForecaster"]
