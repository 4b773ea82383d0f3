"""The forecaster: the Gaussian head's loss adapter against finite differences (float64), a
synthetic sine that it must forecast better than naive, multi-step intervals that widen,
ensembles, covariates, and save/load."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.forecast.model import Forecaster, gaussian_head_loss
from rnnkit.metrics import coverage, mae
from rnnkit.network import NetworkConfig, SequenceNetwork


def test_gaussian_head_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    outputs = rng.standard_normal((6, 4, 2))  # (T, B, [mean, log variance]), float64
    targets = rng.standard_normal((6, 4, 1))
    mask = rng.random((6, 4)) < 0.6
    mask[-1] = True
    loss, d_outputs = gaussian_head_loss(outputs, targets, mask)
    numeric = numeric_gradient(lambda: gaussian_head_loss(outputs, targets, mask)[0], outputs)
    assert relative_error(d_outputs, numeric) < 1e-7
    assert np.all(d_outputs[~mask] == 0)
    # the value itself: mean over counted positions of 0.5 (v + (y - mu)^2 exp(-v))
    mu, v, y = outputs[..., 0], outputs[..., 1], targets[..., 0]
    assert loss == pytest.approx(np.mean((0.5 * (v + (y - mu) ** 2 * np.exp(-v)))[mask]))


def test_gaussian_head_gradient_through_the_network_matches_finite_differences():
    """The adapter in the Trainer's place: many-to-one (target at the last step only), float64."""
    rng = np.random.default_rng(1)
    network = SequenceNetwork(NetworkConfig(input_size=2, output_size=2, hidden_size=3), dtype=np.float64, rng=2)
    for _, p in network.named_parameters():
        p.value[...] = rng.uniform(-0.5, 0.5, p.value.shape)  # non-zero biases too
    inputs = rng.standard_normal((5, 3, 2))
    targets = rng.standard_normal((5, 3, 1))
    mask = np.zeros((5, 3), bool)
    mask[-1] = True

    def loss() -> float:
        return gaussian_head_loss(network.forward(inputs)[0], targets, mask)[0]

    outputs, _, cache = network.forward(inputs)
    network.zero_grad()
    network.backward(gaussian_head_loss(outputs, targets, mask)[1], cache)
    for name, p in network.named_parameters():
        assert relative_error(p.grad, numeric_gradient(loss, p.value)) < 1e-6, name


def sine(length: int, seed: int = 0, period: int = 16, noise: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * np.arange(length) / period) + noise * rng.standard_normal(length)


@pytest.fixture(scope="module")
def sine_forecaster():
    values = sine(300)
    forecaster = Forecaster.build(16, hidden_size=12, seed=0)
    forecaster.fit(values, train_end=200, validation_end=250, steps=400, eval_every=25, lr=0.01)
    return forecaster, values


def test_sine_is_forecast_better_than_naive_with_calibrated_intervals(sine_forecaster):
    forecaster, values = sine_forecaster
    for horizon in (1, 4):
        forecast = forecaster.backtest(values, test_start=250, horizon=horizon, samples=100, rng=0)
        actual = values[forecast.origins[:, None] + np.arange(1, horizon + 1)]
        naive = np.repeat(values[forecast.origins][:, None], horizon, axis=1)
        assert mae(actual, forecast.mean) < 0.6 * mae(actual, naive), horizon
        assert 0.7 <= coverage(actual, forecast.lower, forecast.upper) <= 1.0
    widths = forecast.upper - forecast.lower
    assert widths[:, -1].mean() > widths[:, 0].mean()  # errors compound over the horizon


def test_forecast_from_the_end_and_its_errors(sine_forecaster):
    forecaster, values = sine_forecaster
    forecast = forecaster.forecast(values, horizon=5, samples=50, rng=3)
    assert forecast.mean.shape == (1, 5) and np.all(forecast.lower < forecast.mean)
    again = forecaster.forecast(values, horizon=5, samples=50, rng=3)
    np.testing.assert_array_equal(forecast.upper, again.upper)  # the seed fixes the sample paths
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        forecaster.forecast(values, horizon=0)
    with pytest.raises(ValueError, match="fewer than the 16 one forecast reads"):
        forecaster.forecast(values[:10])
    with pytest.raises(ValueError, match="NaN or infinite"):
        forecaster.forecast(np.where(np.arange(300) == 5, np.nan, values))


def test_save_and_load_give_the_same_forecasts(sine_forecaster, tmp_path):
    forecaster, values = sine_forecaster
    forecaster.save(tmp_path / "m.safetensors", {"note": "sine"})
    loaded, metadata = Forecaster.load(tmp_path / "m.safetensors")
    assert metadata == {"note": "sine"} and loaded.config == forecaster.config
    np.testing.assert_allclose(loaded.forecast(values, horizon=3, samples=20).upper,
                               forecaster.forecast(values, horizon=3, samples=20).upper)


def test_ensemble_pools_its_members_and_round_trips(tmp_path):
    values = sine(120, seed=1)
    ensemble = Forecaster.build(8, hidden_size=4, members=2, seed=5)
    ensemble.fit(values, train_end=80, validation_end=100, steps=30, eval_every=10)
    assert {r["member"] for r in ensemble.history} == {0, 1}
    windows = ensemble._windows(values, np.array([50, 60]))
    covariates = np.zeros((2, 8, 0))
    parts = [ensemble._one_step(windows, covariates, [network]) for network in ensemble.networks]
    mean, std = ensemble._one_step(windows, covariates)
    np.testing.assert_allclose(mean, (parts[0][0] + parts[1][0]) / 2)
    second_moment = np.mean([s ** 2 + m ** 2 for m, s in parts], axis=0)
    np.testing.assert_allclose(std ** 2, second_moment - mean ** 2, rtol=1e-6)
    validation = ensemble._one_step(ensemble._windows(values, np.arange(79, 99)), np.zeros((20, 8, 0)))[0]
    assert ensemble.validation_mae == pytest.approx(np.mean(np.abs(validation - values[80:100])))
    ensemble.save(tmp_path / "e.safetensors")
    loaded, _ = Forecaster.load(tmp_path / "e.safetensors")
    np.testing.assert_allclose(loaded._one_step(windows, covariates)[0], mean)


def test_covariates_are_inputs_and_must_be_known_ahead():
    rng = np.random.default_rng(2)
    driver = rng.standard_normal(160)
    values = np.concatenate([[0.0], 0.9 * driver[:-1]]) + 0.05 * rng.standard_normal(160)  # y_{t+1} = 0.9 x_t
    with_driver = Forecaster.build(4, covariates=("x",), hidden_size=8, seed=0)
    with_driver.fit(values, driver[:, None], train_end=110, validation_end=135, steps=300, eval_every=25, lr=0.01)
    blind = Forecaster.build(4, hidden_size=8, seed=0)
    blind.fit(values, train_end=110, validation_end=135, steps=300, eval_every=25, lr=0.01)
    actual = values[136:]
    assert (mae(actual, with_driver.backtest(values, driver[:, None], test_start=136).mean[:, 0])
            < 0.5 * mae(actual, blind.backtest(values, test_start=136).mean[:, 0]))
    with pytest.raises(ValueError, match="covariates up to 1 step"):
        with_driver.forecast(values, driver[:, None], horizon=2)
    forecast = with_driver.forecast(values, driver[:, None], horizon=2, future_covariates=np.array([[0.5]]))
    assert forecast.mean.shape == (1, 2)
