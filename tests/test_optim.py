"""Optimizers, clipping and schedules against torch.optim, and bit-exact resume from a state dict."""

import json

import numpy as np
import pytest
import torch

from rnnkit import optim, schedules
from rnnkit.module import Parameter

SHAPES = [(3, 4), (5,), (2, 3, 2)]

# (rnnkit class, torch class, keyword arguments both accept)
CASES = [
    (optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    (optim.Adagrad, torch.optim.Adagrad, dict()),
    (optim.Adagrad, torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    (optim.RMSprop, torch.optim.RMSprop, dict()),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5)),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True, weight_decay=0.1)),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.9, eps=1e-4)),
    (optim.Adam, torch.optim.Adam, dict()),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    (optim.AdamW, torch.optim.AdamW, dict()),
    (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]
IDS = [f"{ours.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
       for ours, _, kw in CASES]


def make_params(rng, dtype=np.float64):
    return [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in SHAPES]


def random_grads(rng, n_steps):
    # A different scale each step, so that amsgrad's running maximum is not just the last value.
    return [[rng.uniform(0.1, 3.0) * rng.standard_normal(shape) for shape in SHAPES]
            for _ in range(n_steps)]


def run(optimizer, grads):
    for step_grads in grads:
        optimizer.zero_grad()
        for p, g in zip(optimizer.params, step_grads):
            p.grad += g.astype(p.grad.dtype)
        optimizer.step()


@pytest.mark.parametrize("ours, theirs, kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-6), (np.float32, 1e-4)])
def test_matches_torch(ours, theirs, kwargs, dtype, rtol):
    rng = np.random.default_rng(0)
    params = make_params(rng, dtype)
    torch_params = [torch.tensor(p.value.copy(), requires_grad=True) for p in params]
    optimizer, torch_optimizer = ours(params, **kwargs), theirs(torch_params, **kwargs)
    for step_grads in random_grads(rng, 6):
        run(optimizer, [step_grads])
        for tp, g in zip(torch_params, step_grads):
            tp.grad = torch.tensor(g.astype(dtype))
        torch_optimizer.step()
        for p, tp in zip(params, torch_params):
            assert p.value.dtype == dtype
            np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=rtol, atol=rtol * 1e-3)
    for state in optimizer.state:
        assert all(buffer.dtype == dtype for buffer in state.values())


@pytest.mark.parametrize("ours, theirs, kwargs", CASES, ids=IDS)
def test_resume_is_bit_exact(ours, theirs, kwargs):
    rng = np.random.default_rng(1)
    initial = [p.value for p in make_params(rng)]
    grads = random_grads(rng, 7)
    straight = ours([Parameter(v.copy()) for v in initial], **kwargs)
    run(straight, grads)

    first = ours([Parameter(v.copy()) for v in initial], **kwargs)
    run(first, grads[:4])
    checkpoint_values = [p.value.copy() for p in first.params]
    saved = first.state_dict()
    run(first, grads[4:])  # must not change the saved state: state_dict returns copies
    # The scalar part goes through JSON; the arrays (only under "state") would go to safetensors.
    scalars = json.loads(json.dumps({k: v for k, v in saved.items() if k != "state"}))
    assert all(isinstance(a, np.ndarray) for s in saved["state"] for a in s.values())
    resumed = ours([Parameter(v) for v in checkpoint_values], **kwargs)
    resumed.load_state_dict({**scalars, "state": saved["state"]})
    run(resumed, grads[4:])
    for a, b, c in zip(straight.params, first.params, resumed.params):
        assert np.array_equal(a.value, b.value) and np.array_equal(a.value, c.value)
    assert resumed.step_count == straight.step_count == 7


def test_resume_restores_lr_and_schedule():
    rng = np.random.default_rng(2)
    initial = [p.value for p in make_params(rng)]
    grads = random_grads(rng, 8)

    def train(optimizer, schedule, step_grads):
        for g in step_grads:
            run(optimizer, [g])
            schedule.step()

    straight = optim.Adam([Parameter(v.copy()) for v in initial], lr=0.01)
    train(straight, schedules.StepDecay(straight, step_size=2, gamma=0.5, start=1), grads)
    first = optim.Adam([Parameter(v.copy()) for v in initial], lr=0.01)
    schedule = schedules.StepDecay(first, step_size=2, gamma=0.5, start=1)
    train(first, schedule, grads[:5])
    saved = json.loads(json.dumps({k: v for k, v in first.state_dict().items() if k != "state"}))
    saved_schedule = json.loads(json.dumps(schedule.state_dict()))
    resumed = optim.Adam([Parameter(p.value.copy()) for p in first.params], lr=1.0)
    resumed.load_state_dict({**saved, "state": first.state_dict()["state"]})
    resumed_schedule = schedules.StepDecay(resumed, step_size=2, gamma=0.5, start=1)
    resumed_schedule.load_state_dict(saved_schedule)
    assert resumed.lr == first.lr == schedule.lr
    train(resumed, resumed_schedule, grads[5:])
    assert resumed.lr == straight.lr
    for a, b in zip(straight.params, resumed.params):
        assert np.array_equal(a.value, b.value)


def test_zero_grad():
    params = make_params(np.random.default_rng(3))
    optimizer = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad += 1.0
    optimizer.zero_grad()
    assert all(not p.grad.any() for p in params)


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(4)
    params = make_params(rng)
    for p in params:
        p.grad += rng.standard_normal(p.shape)
    torch_params = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
    for tp, p in zip(torch_params, params):
        tp.grad = torch.tensor(p.grad.copy())
    norm = optim.clip_grad_norm(params, max_norm)
    torch_norm = torch.nn.utils.clip_grad_norm_(torch_params, max_norm)
    assert norm == pytest.approx(torch_norm.item(), rel=1e-12)
    for p, tp in zip(params, torch_params):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)
    total = np.sqrt(sum((p.grad ** 2).sum() for p in params))
    assert total == pytest.approx(min(norm, max_norm), rel=1e-5)


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(5)
    params = make_params(rng)
    for p in params:
        p.grad += 2 * rng.standard_normal(p.shape)
    torch_params = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
    for tp, p in zip(torch_params, params):
        tp.grad = torch.tensor(p.grad.copy())
    optim.clip_grad_value(params, 0.7)
    torch.nn.utils.clip_grad_value_(torch_params, 0.7)
    for p, tp in zip(params, torch_params):
        assert np.array_equal(p.grad, tp.grad.numpy())
    assert max(np.abs(p.grad).max() for p in params) == 0.7


SCHEDULES = [
    (schedules.StepDecay, dict(step_size=3, gamma=0.5), torch.optim.lr_scheduler.StepLR,
     dict(step_size=3, gamma=0.5)),
    (schedules.ExponentialDecay, dict(gamma=0.9), torch.optim.lr_scheduler.ExponentialLR,
     dict(gamma=0.9)),
    (schedules.CosineDecay, dict(total_steps=10, min_lr=0.01),
     torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=10, eta_min=0.01)),
]


@pytest.mark.parametrize("ours, kwargs, theirs, torch_kwargs", SCHEDULES,
                         ids=[s[0].__name__ for s in SCHEDULES])
def test_schedule_matches_torch(ours, kwargs, theirs, torch_kwargs):
    optimizer = optim.SGD(make_params(np.random.default_rng(6)), lr=0.1)
    schedule = ours(optimizer, **kwargs)
    torch_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    torch_schedule = theirs(torch_optimizer, **torch_kwargs)
    lrs, torch_lrs = [optimizer.lr], [torch_optimizer.param_groups[0]["lr"]]
    for _ in range(10):
        torch_optimizer.step()
        torch_schedule.step()
        schedule.step()
        assert optimizer.lr == schedule.lr
        lrs.append(optimizer.lr)
        torch_lrs.append(torch_optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, torch_lrs, rtol=1e-12, atol=1e-15)


def test_schedule_drives_the_optimizer_like_torch():
    rng = np.random.default_rng(7)
    params = make_params(rng)
    torch_params = [torch.tensor(p.value.copy(), requires_grad=True) for p in params]
    optimizer = optim.SGD(params, lr=0.2, momentum=0.9)
    torch_optimizer = torch.optim.SGD(torch_params, lr=0.2, momentum=0.9)
    schedule = schedules.CosineDecay(optimizer, total_steps=5)
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(torch_optimizer, T_max=5)
    for step_grads in random_grads(rng, 5):
        run(optimizer, [step_grads])
        schedule.step()
        for tp, g in zip(torch_params, step_grads):
            tp.grad = torch.tensor(g)
        torch_optimizer.step()
        torch_schedule.step()
    for p, tp in zip(params, torch_params):
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-10)


def test_step_decay_start_and_cosine_floor():
    optimizer = optim.SGD(make_params(np.random.default_rng(8)), lr=1.0)
    schedule = schedules.StepDecay(optimizer, step_size=2, gamma=0.5, start=3)
    assert [schedule.lr_at(e) for e in range(10)] == [1, 1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]
    cosine = schedules.CosineDecay(optimizer, total_steps=4, min_lr=0.1)
    assert cosine.lr_at(2) == pytest.approx(0.55) and cosine.lr_at(4) == cosine.lr_at(9) == 0.1


BAD_OPTIMIZERS = [
    (optim.SGD, dict(lr=0.0), "lr"),
    (optim.SGD, dict(lr=-0.1), "lr"),
    (optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "nesterov"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (optim.Adagrad, dict(eps=-1e-10), "eps"),
    (optim.Adagrad, dict(lr_decay=-0.1), "lr_decay"),
    (optim.RMSprop, dict(alpha=1.0), "alpha"),
    (optim.RMSprop, dict(momentum=-0.9), "momentum"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "betas"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "betas"),
    (optim.Adam, dict(eps=-1e-8), "eps"),
    (optim.AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (optim.AdamW, dict(lr=float("nan")), "lr"),
]


@pytest.mark.parametrize("cls, kwargs, word", BAD_OPTIMIZERS)
def test_bad_hyperparameters_raise(cls, kwargs, word):
    with pytest.raises(ValueError, match=word):
        cls(make_params(np.random.default_rng(9)), **kwargs)


def test_bad_parameter_lists_and_clip_and_schedule_arguments_raise():
    params = make_params(np.random.default_rng(10))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([params[0], params[0]])
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm(params, 0.0)
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value(params, -1.0)
    optimizer = optim.SGD(params, lr=0.1)
    for cls, kwargs, word in [(schedules.StepDecay, dict(step_size=0, gamma=0.5), "step_size"),
                              (schedules.StepDecay, dict(step_size=2, gamma=0.0), "gamma"),
                              (schedules.StepDecay, dict(step_size=2, gamma=0.5, start=-1), "start"),
                              (schedules.ExponentialDecay, dict(gamma=-0.9), "gamma"),
                              (schedules.CosineDecay, dict(total_steps=0), "total_steps"),
                              (schedules.CosineDecay, dict(total_steps=5, min_lr=-1.0), "min_lr")]:
        with pytest.raises(ValueError, match=word):
            cls(optimizer, **kwargs)


def _corrupt(state, how):
    state = {**state, "hyperparameters": dict(state["hyperparameters"]),
             "state": [dict(s) for s in state["state"]]}
    if how == "type":
        state["type"] = "AdamW"
    elif how == "too few params":
        state["state"] = state["state"][:-1]
    elif how == "shape":
        state["state"][1]["exp_avg"] = np.zeros(7)
    elif how == "missing buffer":
        del state["state"][0]["exp_avg_sq"]
    elif how == "extra hyperparameter":
        state["hyperparameters"]["momentum"] = 0.9
    elif how == "bad hyperparameter":
        state["hyperparameters"]["betas"] = [0.9, 1.5]
    elif how == "step_count":
        state["step_count"] = -1
    elif how == "missing key":
        del state["step_count"]
    return state


@pytest.mark.parametrize("how", ["type", "too few params", "shape", "missing buffer",
                                 "extra hyperparameter", "bad hyperparameter", "step_count",
                                 "missing key"])
def test_mismatched_state_raises_and_changes_nothing(how):
    rng = np.random.default_rng(11)
    source = optim.Adam(make_params(rng))
    run(source, random_grads(rng, 2))
    target = optim.Adam(make_params(rng), lr=0.5)
    before = target.state_dict()
    with pytest.raises(ValueError):
        target.load_state_dict(_corrupt(source.state_dict(), how))
    after = target.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"] and after["step_count"] == 0
    assert all(np.array_equal(after["state"][i][k], v)
               for i, s in enumerate(before["state"]) for k, v in s.items())


def test_mismatched_schedule_state_raises():
    optimizer = optim.SGD(make_params(np.random.default_rng(12)), lr=0.1)
    step_decay = schedules.StepDecay(optimizer, step_size=2)
    with pytest.raises(ValueError, match="StepDecay"):
        step_decay.load_state_dict(schedules.ExponentialDecay(optimizer, gamma=0.9).state_dict())
    with pytest.raises(ValueError, match="last_epoch"):
        step_decay.load_state_dict({**step_decay.state_dict(), "last_epoch": -3})


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_an_lr_scale_scales_the_update(kind):
    rng = np.random.default_rng(5)
    initial = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    grads = [[rng.normal(size=v.shape) for v in initial] for _ in range(3)]

    def make(lr):
        params = [Parameter(v.copy()) for v in initial]
        return params, (optim.SGD(params, lr=lr) if kind == "sgd" else optim.Adam(params, lr=lr, weight_decay=0.1))

    plain_params, plain = make(0.01)
    scaled_params, scaled = make(0.01)
    scaled.set_lr_scale(scaled_params[:1], 0.25)
    low_params, low = make(0.0025)  # what the scaled parameter must follow, step by step
    for step, step_grads in enumerate(grads):
        for opt, params in ((plain, plain_params), (scaled, scaled_params), (low, low_params)):
            before = [p.value.copy() for p in params]
            for p, g in zip(params, step_grads):
                p.grad[...] = g
            opt.step()
            if opt is plain:
                plain_delta = [p.value - b for p, b in zip(params, before)]
            if opt is scaled:
                scaled_delta = [p.value - b for p, b in zip(params, before)]
        if step == 0:  # from the same value and buffers, a quarter of the unscaled step
            np.testing.assert_allclose(scaled_delta[0], 0.25 * plain_delta[0], rtol=1e-9)
        np.testing.assert_array_equal(scaled_delta[1], plain_delta[1])  # the other parameter: lr itself
        np.testing.assert_allclose(scaled_params[0].value, low_params[0].value, rtol=1e-12, atol=1e-12)
    assert scaled.lr == 0.01  # the base rate is left as it was


def test_a_frozen_parameter_does_not_change_until_unfrozen():
    rng = np.random.default_rng(6)
    params = [Parameter(rng.normal(size=(2, 3))), Parameter(rng.normal(size=3))]
    opt = optim.Adam(params, lr=0.01)
    opt.set_lr_scale(params[:1], 0.0)
    frozen, other = params[0].value.copy(), params[1].value.copy()
    for _ in range(3):
        for p in params:
            p.grad[...] = rng.normal(size=p.shape)
        opt.step()
    np.testing.assert_array_equal(params[0].value, frozen)
    assert not np.any(opt.state[0]["exp_avg"])  # skipped, buffers untouched
    assert not np.allclose(params[1].value, other)
    opt.set_lr_scale(params[:1], 1.0)
    params[0].grad[...] = 1.0
    opt.step()
    assert np.all(params[0].value < frozen)


def test_an_unfrozen_parameter_starts_adam_afresh():
    """Unfrozen after k steps, a parameter's first Adam step is a first step, (m/(1 - b1)) /
    sqrt(v/(1 - b2)) = g/|g|: lr per element, not up to sqrt(1/(1 - b2^k)) times more."""
    rng = np.random.default_rng(7)
    params = [Parameter(rng.normal(size=(2, 3))), Parameter(rng.normal(size=3))]
    opt = optim.Adam(params, lr=0.01, eps=0.0)
    opt.set_lr_scale(params[:1], 0.0)
    for _ in range(50):
        for p in params:
            p.grad[...] = rng.normal(size=p.shape)
        opt.step()
    opt.set_lr_scale(params[:1], 1.0)
    before = params[0].value.copy()
    params[0].grad[...] = rng.normal(size=(2, 3))
    opt.step()
    np.testing.assert_allclose(np.abs(params[0].value - before), 0.01, rtol=1e-9)
    assert opt.step_count == 51 and opt.param_steps == [1, 51]


@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_bad_lr_scales_are_refused(scale):
    params = [Parameter(np.zeros(2))]
    opt = optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="lr scale"):
        opt.set_lr_scale(params, scale)
    with pytest.raises(ValueError, match="does not update"):
        opt.set_lr_scale([Parameter(np.zeros(2))], 0.5)
