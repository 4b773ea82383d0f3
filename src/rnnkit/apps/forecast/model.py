"""Time-series forecasting with a recurrent network: the lecture's many-to-one predictor
y_{t+1} from y_t, ..., y_{t-k+1}, and its probabilistic form P(y_{t+1} | y_t, ...).

A window of the last k values (and covariates) goes in one step at a time; the head's output at
the last step is the forecast. With the Gaussian head it is two numbers, a mean and a log
variance,

    P(y_{t+1} | y_t .. y_{t-k+1}) = N(mu_t, sigma_t^2),   (mu_t, v_t) = W_head h_t + b_head,
    sigma_t^2 = exp(v_t)

trained by the negative log-likelihood 0.5 (v_t + (y_{t+1} - mu_t)^2 exp(-v_t)) per window;
without it, one number trained by squared error. The network sees scaled values (`Scaler`,
fitted on the training part only), in one of three encodings (s = t-k+1 .. t):

    target "level"     inputs (y_s - mean) / scale_y      predicts (y_{t+1} - mean) / scale_y
    target "change"    inputs (y_s - y_t) / scale_y       predicts (y_{t+1} - y_t) / scale_dy
    target "seasonal"  inputs (w_s - mean_w) / scale_w    predicts (w_{t+1} - mean_w) / scale_w
                       with w_s = y_s - y_{s-m}, the change from the same season a cycle before

"level" lets the network learn a mean to revert to (Nile). "change" makes it blind to the
absolute level, so a trend that leaves the training range is no harder than one inside it.
"seasonal" is seasonal differencing, as in SARIMA: seasonal naive becomes the forecast of 0, and
the network models what differs from last cycle (a network learns a fixed seasonal pattern
poorly from a few hundred values; Zhang & Qi 2005).

Multi-step forecasts feed each prediction back: the window slides one step, its oldest value
drops out and the forecast comes in, for `horizon` steps (the network always sees windows of
exactly the length it was trained on). The point forecast feeds back the means; the prediction
interval of step 1 is mu +- z sigma, and of later steps the quantiles of sample paths that feed
back draws from N(mu, sigma^2), so the interval widens as errors compound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import numpy as np

from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.data.batches import ExampleBatches
from rnnkit.init import as_generator
from rnnkit.losses import gaussian_nll, mse
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.threads import one_blas_thread
from rnnkit.train import Trainer, load_model_weights

from .config import TARGETS, Forecast, ForecastConfig
from .series import Scaler, sliding_windows

__all__ = ["Forecaster", "ForecastConfig", "Forecast", "gaussian_head_loss", "KIND", "TARGETS"]

KIND = "forecaster"
CHUNK = 4096  # windows per forward pass at inference (bounds the memory of a large backtest)


def gaussian_head_loss(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None):
    """The Trainer's `loss_fn(outputs, targets, mask) -> (loss, d_outputs)` for a Gaussian head:
    outputs (T, B, 2) are (mean, log variance), targets (T, B, 1), mask (T, B).

        loss = (1/N) sum_counted 0.5 (log s2 + (y - mu)^2 / s2),  s2 = max(exp(v), eps)
        d_outputs = [dloss/dmu, dloss/dv] stacked on the last axis

    (losses.gaussian_nll; the variance floor eps = 1e-6, PyTorch's, keeps both finite for any v.)"""
    if outputs.shape[-1] != 2:
        raise ValueError(f"a Gaussian head has 2 outputs (mean, log variance), got {outputs.shape[-1]}")
    loss, grad_mean, grad_log_var = gaussian_nll(outputs[..., :1], outputs[..., 1:], targets, mask)
    return loss, np.concatenate([grad_mean, grad_log_var], axis=-1)


class Forecaster:
    """One or more `SequenceNetwork`s (features in, 2 or 1 outputs) with the window, encoding
    and scaler they share. Several networks are an ensemble: members differ only in their seed
    (initial weights, batch order), are trained independently, and their forecasts are pooled
    as an equal mixture,

        mu = (1/M) sum_i mu_i,    sigma^2 = (1/M) sum_i (sigma_i^2 + mu_i^2) - mu^2

    which averages away much of the seed-to-seed variance of a network trained on a few hundred
    values."""

    def __init__(self, config: ForecastConfig, networks: SequenceNetwork | list[SequenceNetwork],
                 scaler: Scaler | None = None):
        networks = [networks] if isinstance(networks, SequenceNetwork) else list(networks)
        if not networks:
            raise ValueError("a forecaster needs at least one network")
        expected_inputs, expected_outputs = 1 + len(config.covariates), 2 if config.probabilistic else 1
        for network in networks:
            if network.config.input_size != expected_inputs or network.config.output_size != expected_outputs:
                raise ValueError(f"the network reads {network.config.input_size} and writes "
                                 f"{network.config.output_size} values per step; this forecaster needs "
                                 f"{expected_inputs} and {expected_outputs}")
            if network.config != networks[0].config:
                raise ValueError("the members of an ensemble must share one network configuration")
        self.config, self.networks, self.scaler = config, networks, scaler
        self.history: list[dict] = []
        self.validation_mae: float | None = None  # one step ahead, set by fit

    @property
    def network(self) -> SequenceNetwork:
        """The first (or only) member."""
        return self.networks[0]

    @classmethod
    def build(cls, window: int, *, target: str = "level", season: int = 1, probabilistic: bool = True,
              covariates: tuple[str, ...] = (), cell: str = "lstm", hidden_size: int = 32, num_layers: int = 1,
              dropout: float = 0.0, members: int = 1, seed: int = 0, forget_bias: float = 0.0,
              dtype=np.float32) -> Forecaster:
        """A new forecaster; member i's weights come from seed + i."""
        config = ForecastConfig(window, target, probabilistic, tuple(covariates), season)
        if not isinstance(members, (int, np.integer)) or members <= 0:
            raise ValueError(f"an ensemble needs a positive number of members, got {members!r}")
        network_config = NetworkConfig(input_size=1 + len(config.covariates), output_size=2 if probabilistic else 1,
                                       cell=cell, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                                       forget_bias=forget_bias)
        return cls(config, [SequenceNetwork(network_config, dtype=dtype, rng=seed + i) for i in range(members)])

    # ------------------------------------------------------------------------- encoding
    def _check(self, values, covariates) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"a series must be 1-D, got shape {values.shape}")
        count = len(self.config.covariates)
        if covariates is None:
            covariates = np.zeros((len(values), 0))
        covariates = np.asarray(covariates, dtype=np.float64).reshape(len(covariates), -1)
        if covariates.shape[1] != count:
            raise ValueError(f"this forecaster reads {count} covariate(s), got {covariates.shape[1]}")
        for what, array in (("values", values), ("covariates", covariates)):
            bad = int((~np.isfinite(array)).sum())
            if bad:
                raise ValueError(f"the {what} hold {bad} NaN or infinite entries; fill them first")
        return values, covariates

    def _inputs(self, windows: np.ndarray, covariate_windows: np.ndarray) -> np.ndarray:
        """(B, lag + k) raw values and (B, k, C) covariates -> network inputs (k, B, 1 + C)."""
        s, target = self.scaler, self.config.target
        if target == "seasonal":
            m = self.config.season
            scaled = (windows[:, m:] - windows[:, :-m] - s.seasonal_mean) / s.seasonal_scale
        else:
            anchor = windows[:, -1:] if target == "change" else s.level_mean
            scaled = (windows - anchor) / s.level_scale
        features = [scaled[..., None]]
        if covariate_windows.shape[-1]:
            features.append(s.covariates(covariate_windows))
        return np.swapaxes(np.concatenate(features, axis=-1), 0, 1).astype(self.network.dtype)

    def _target_frame(self, windows: np.ndarray) -> tuple[np.ndarray | float, float]:
        """(center, scale) per window such that y_{t+1} = center + scale * (network's target)."""
        s, target = self.scaler, self.config.target
        if target == "seasonal":
            return windows[:, -self.config.season] + s.seasonal_mean, s.seasonal_scale  # y_{t+1-m} + mean_w
        if target == "change":
            return windows[:, -1], s.change_scale
        return s.level_mean, s.level_scale

    def _decode(self, outputs: np.ndarray, windows: np.ndarray):
        """Head outputs (B, 2 or 1) -> (mean (B,), standard deviation (B,) or None) in data units."""
        center, scale = self._target_frame(windows)
        outputs = outputs.astype(np.float64)
        mean = center + scale * outputs[:, 0]
        if not self.config.probabilistic:
            return mean, None
        return mean, scale * np.exp(0.5 * np.clip(outputs[:, 1], -30.0, 30.0))

    def _windows(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return sliding_windows(values, self.config.window + self.config.lag, origins)

    def training_examples(self, values, covariates, origins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows ending at `origins`, for the Trainer: inputs (N, k, F), targets (N, k, 1) and
        mask (N, k), the target y_{o+1} at the last step only (many-to-one)."""
        k = self.config.window
        windows = self._windows(values, origins)
        inputs = np.swapaxes(self._inputs(windows, sliding_windows(covariates, k, origins)), 0, 1)
        center, scale = self._target_frame(windows)
        targets = np.zeros((len(origins), k, 1), dtype=self.network.dtype)
        targets[:, -1, 0] = (values[origins + 1] - center) / scale
        mask = np.zeros((len(origins), k), dtype=bool)
        mask[:, -1] = True
        return inputs, targets, mask

    # -------------------------------------------------------------------------- training
    def fit(self, values, covariates=None, *, train_end: int, validation_end: int | None = None,
            steps: int = 2000, max_seconds: float | None = None, batch_size: int = 32, lr: float = 3e-3,
            clip_norm: float | None = 1.0, eval_every: int = 50, patience: int | None = 10,
            seed: int = 0, callbacks: tuple[Callable, ...] = ()) -> list[dict]:
        """Train on the windows whose target lies in values[:train_end]; validate on those whose
        target lies in values[train_end:validation_end]. The scaler is fitted on
        values[:train_end] only; nothing at or after `validation_end` is read.

        Every `eval_every` steps the validation windows are forecast one step ahead; training
        stops after `patience` evaluations without a lower validation MAE, and the weights of the
        best one are kept; each ensemble member i trains this way with seed + i. (The MAE of the
        point forecast, not the NLL: one outburst in the validation part, such as 2008 in
        elec_equip, makes the NLL prefer a barely trained network with a huge variance.)
        Returns the trainers' history, with "val_loss" (NLL or MSE) and "val_mae" at each
        evaluation, and "member" in every record; `validation_mae` is then the whole ensemble's."""
        values, covariates = self._check(values, covariates)
        k, first = self.config.window, self.config.window + self.config.lag - 1  # the first origin
        validation_end = train_end if validation_end is None else validation_end
        if not 0 < train_end <= validation_end <= len(values):
            raise ValueError(f"need 0 < train_end <= validation_end <= {len(values)}, "
                             f"got {train_end} and {validation_end}")
        if train_end < first + 2:
            raise ValueError(f"the training part has {train_end} values, too few for one window of {k} and its "
                             f"target (needs at least {first + 2}); use a shorter --window or more training data")
        self.scaler = Scaler.fit(values[:train_end], covariates[:train_end], self.config.season)
        seen, seen_covariates = values[:validation_end], covariates[:validation_end]
        train = self.training_examples(seen, seen_covariates, np.arange(first, train_end - 1))
        validation_origins = np.arange(max(first, train_end - 1), validation_end - 1)
        validation = None
        if len(validation_origins):
            v = self.training_examples(seen, seen_covariates, validation_origins)
            validation = ExampleBatches(v[0], v[1], mask=v[2], strategy="full", batch_size=len(v[0]))
        loss = gaussian_head_loss if self.config.probabilistic else mse
        self.history = []
        seconds_each = max_seconds / len(self.networks) if max_seconds else None
        def validation_mae(networks) -> float:
            """The one-step MAE of the networks' pooled forecast on the validation windows."""
            mean, _ = self._one_step(self._windows(seen, validation_origins),
                                     sliding_windows(seen_covariates, k, validation_origins), networks)
            return float(np.mean(np.abs(mean - seen[validation_origins + 1])))

        with one_blas_thread():  # small matrices: see rnnkit.threads
            for member, network in enumerate(self.networks):
                batches = ExampleBatches(*train[:2], mask=train[2], batch_size=batch_size, seed=seed + member)
                trainer = Trainer(network, Adam(network.parameters(), lr=lr), loss, clip_norm=clip_norm)
                trainer.callbacks += list(callbacks)
                history = trainer.fit(batches, steps=steps, max_seconds=seconds_each, validation=validation,
                                      eval_every=eval_every, patience=patience if validation is not None else None,
                                      score=(lambda n=network: validation_mae([n])) if validation is not None else None)
                self.history += [{"member": member, **_renamed(record)} for record in history]
                if validation is not None and trainer.best_weights is not None:
                    network.load_state_dict(trainer.best_weights)
                network.eval()
            self.validation_mae = validation_mae(self.networks) if validation is not None else None
        return self.history

    # ------------------------------------------------------------------------- inference
    def _one_step(self, windows: np.ndarray, covariate_windows: np.ndarray, networks=None):
        """(B, lag + k) raw windows -> (mean (B,), std (B,) or None) of the next value: the
        mixture of `networks` (default: every member)."""
        if self.scaler is None:
            raise ValueError("this forecaster has not been fitted (no scaler); fit or load one first")
        networks = self.networks if networks is None else networks
        means = np.empty((len(networks), len(windows)))
        variances = np.zeros_like(means)
        for index, network in enumerate(networks):
            network.eval()
            for begin in range(0, len(windows), CHUNK):
                part = slice(begin, begin + CHUNK)
                outputs, _, _ = network.forward(self._inputs(windows[part], covariate_windows[part]))
                means[index, part], std = self._decode(outputs[-1], windows[part])
                if std is not None:
                    variances[index, part] = std ** 2
        mean = means.mean(axis=0)
        if not self.config.probabilistic:
            return mean, None
        mixture_variance = (variances + means ** 2).mean(axis=0) - mean ** 2
        return mean, np.sqrt(np.maximum(mixture_variance, 0.0))  # >= 0 but for rounding

    def _paths(self, values, covariates, origins, horizon, *, copies=1, rng=None):
        """Feed forecasts back `horizon` times: the means (rng None) or draws from N(mu, sigma^2)
        (a sample path; for an ensemble, the Gaussian with the mixture's mean and variance).
        Returns (path, std): the values fed back and the one-step standard deviations, each
        (O * copies, H)."""
        k = self.config.window
        windows = np.repeat(self._windows(values, origins), copies, axis=0)
        repeated_origins = np.repeat(origins, copies)
        path, stds = np.empty((len(windows), horizon)), np.empty((len(windows), horizon))
        for h in range(horizon):
            covariate_windows = (sliding_windows(covariates, k, repeated_origins + h) if covariates.shape[1]
                                 else np.zeros((len(windows), k, 0)))
            mean, std = self._one_step(windows, covariate_windows)
            path[:, h] = mean if rng is None else mean + std * rng.standard_normal(len(mean))
            stds[:, h] = np.nan if std is None else std
            windows = np.concatenate([windows[:, 1:], path[:, h, None]], axis=1)
        return path, stds

    def forecast(self, values, covariates=None, *, horizon: int = 1, origins=None, level: float = 0.9,
                 samples: int = 200, rng: np.random.Generator | int | None = 0,
                 future_covariates=None) -> Forecast:
        """Forecast `horizon` steps after each origin (default: the last value). Covariates must
        be known up to o + horizon - 1: pass those after the end as `future_covariates`
        (horizon - 1 rows). Intervals beyond step 1 come from `samples` sample paths (with
        samples=0, from each step's one-step variance alone: too narrow, as it ignores the
        errors fed back). Each sample path costs `horizon` forward passes over a window."""
        values, covariates = self._check(values, covariates)
        first = self.config.window + self.config.lag - 1
        if not isinstance(horizon, (int, np.integer)) or horizon <= 0:
            raise ValueError(f"the horizon must be a positive integer, got {horizon!r}")
        if not 0 < level < 1:
            raise ValueError(f"the interval level must be in (0, 1), got {level}")
        if len(values) <= first:
            raise ValueError(f"the series has {len(values)} values, fewer than the {first + 1} one forecast reads "
                             f"(a window of {self.config.window}" + (f" and a season of {self.config.lag})"
                                                                    if self.config.lag else ")"))
        origins = np.array([len(values) - 1]) if origins is None else np.asarray(origins, dtype=np.int64)
        if origins.size and (origins.min() < first or origins.max() >= len(values)):
            raise ValueError(f"forecast origins must lie in [{first}, {len(values) - 1}] (a whole window "
                             "before each)")
        if future_covariates is not None:
            covariates = np.concatenate([covariates, self._check(np.zeros(len(future_covariates)),
                                                                 future_covariates)[1]])
        needed = (origins.max() if origins.size else 0) + horizon - 1
        if self.config.covariates and needed >= len(covariates):
            raise ValueError(f"forecasting {horizon} steps needs the covariates up to {needed - len(values) + 1} "
                             "step(s) past the end; pass them as future covariates")
        with one_blas_thread():  # small matrices: see rnnkit.threads
            means, stds = self._paths(values, covariates, origins, horizon)
            drawn = None
            if self.config.probabilistic and horizon > 1 and samples > 0:
                drawn, _ = self._paths(values, covariates, origins, horizon, copies=samples, rng=as_generator(rng))
        if not self.config.probabilistic:
            return Forecast(origins, means, None, None, level)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        lower, upper = means - z * stds, means + z * stds
        if drawn is not None:
            drawn = drawn.reshape(len(origins), samples, horizon)
            lower[:, 1:] = np.quantile(drawn[..., 1:], 0.5 - level / 2, axis=1)
            upper[:, 1:] = np.quantile(drawn[..., 1:], 0.5 + level / 2, axis=1)
        return Forecast(origins, means, lower, upper, level)

    def backtest(self, values, covariates=None, *, test_start: int, horizon: int = 1, **options) -> Forecast:
        """Rolling origin over the test part values[test_start:]: a forecast from every origin
        o = test_start - 1 .. N - 1 - horizon, each knowing the true values up to o, so that every
        forecast step lands inside the test part. `options` go to `forecast`."""
        count = len(values) - test_start - horizon + 1
        if count <= 0:
            raise ValueError(f"the test part has {len(values) - test_start} values, fewer than the horizon "
                             f"{horizon}; use a larger test part or a shorter --horizon")
        return self.forecast(values, covariates, horizon=horizon, origins=np.arange(count) + test_start - 1,
                             **options)

    # ------------------------------------------------------------------------ save / load
    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """One checkpoint file: the weights (PyTorch's names for a single network, prefixed
        `members.<i>.` in an ensemble) and {"kind": "forecaster", "model", "members",
        "forecast", "scaler", "history", "user": metadata} (e.g. where the data came from)."""
        if self.scaler is None:
            raise ValueError("fit the forecaster before saving it (it has no scaler yet)")
        if len(self.networks) == 1:
            tensors = self.network.state_dict()
        else:
            tensors = {f"members.{i}.{name}": value for i, network in enumerate(self.networks)
                       for name, value in network.state_dict().items()}
        save_checkpoint(path, tensors, {
            "kind": KIND, "model": self.network.config.to_dict(), "members": len(self.networks),
            "forecast": self.config.to_dict(), "scaler": self.scaler.to_dict(),
            "history": _json_history(self.history), "user": metadata or {}})

    @classmethod
    def load(cls, path: str | Path) -> tuple[Forecaster, dict]:
        """(the forecaster, the metadata saved with it)."""
        tensors, info = load_checkpoint(path)
        if info.get("kind") != KIND:
            raise ValueError(f"{path} is an rnnkit checkpoint, but not of a forecaster")
        config, members = NetworkConfig.from_dict(info["model"]), int(info.get("members", 1))
        networks = [SequenceNetwork(config) for _ in range(members)]
        for index, network in enumerate(networks):
            prefix = "" if members == 1 else f"members.{index}."
            load_model_weights(network, {name[len(prefix):]: value for name, value in tensors.items()
                                         if name.startswith(prefix)}, path)
            network.eval()
        forecaster = cls(ForecastConfig.from_dict(info["forecast"]), networks, Scaler.from_dict(info["scaler"]))
        forecaster.history = info.get("history", [])
        return forecaster, info.get("user", {})


def _renamed(record: dict) -> dict:
    """A trainer's record with its validation score under the name of what it is here."""
    return {("val_mae" if key == "val_score" else key): value for key, value in record.items()}


def _json_history(history: list[dict]) -> list[dict]:
    return [{k: (float(v) if isinstance(v, (float, np.floating)) and math.isfinite(v) else v)
             for k, v in record.items()} for record in history]
