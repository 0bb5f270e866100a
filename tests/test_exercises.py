"""Every check accepts the model solution and rejects typical mistakes with the right message."""

import pytest
import torch

from diffusion_lab import exercises as ex
from diffusion_lab.samplers import remove_noise


def _solution_fn(name: str):
    namespace = {"torch": torch, "math": __import__("math"), "remove_noise": remove_noise}
    exec(ex._get(name).solution, namespace)  # the solution shown to learners
    return namespace[name]


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", ex.list_exercises())
def test_model_solution_passes_and_stub_is_not_done(name, capsys):
    check = ex._get(name).check
    result = check(_solution_fn(name))
    assert result.passed, result.message
    assert repr(result).startswith("[Correct]")
    stub = check(_stub)
    assert not stub.passed and "not done yet" in stub.message
    capsys.readouterr()
    assert ex.hint(name) is None  # printed once, not echoed again as a return value
    assert len(capsys.readouterr().out) > 40
    ex.solution(name)
    assert f"def {name}(" in capsys.readouterr().out


def test_every_exercise_has_a_public_check_function():
    for name in ex.list_exercises():
        assert getattr(ex, f"check_{name}") is ex._get(name).check
        assert f"check_{name}" in ex.__all__


def test_unknown_exercise_lists_known_ones():
    with pytest.raises(ValueError, match="unknown exercise 'nope'; known: gaussian_noise"):
        ex.hint("nope")


def _loop_without_noise(model, schedule, x_T, noises):
    x = x_T
    for t in reversed(range(len(schedule))):
        x = remove_noise(x, model(x, torch.full((len(x),), t)), t, schedule, noise=0 * noises[t])
    return x


def _loop_upwards(model, schedule, x_T, noises):
    x = x_T
    for t in range(len(schedule)):
        x = remove_noise(x, model(x, torch.full((len(x),), t)), t, schedule, noise=noises[t])
    return x


def _loop_skipping_the_last_step(model, schedule, x_T, noises):
    x = x_T
    for t in range(len(schedule) - 1, 0, -1):
        x = remove_noise(x, model(x, t), t, schedule, noise=noises[t])  # an int t works too
    return x


def _ddim_returning_a_tuple(xt, eps_hat, a, a_prev):
    x0_hat = (xt - (1 - a) ** 0.5 * eps_hat) / a**0.5
    return a_prev**0.5 * x0_hat + (1 - a_prev) ** 0.5 * eps_hat, x0_hat


def _slerp_without_arccos(a, b, w):
    theta = (a.flatten() @ b.flatten()) / (a.norm() * b.norm())  # forgot arccos
    return (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)


def _pairwise_without_flatten(images):
    n = len(images)
    return torch.cdist(images, images).sum() / (n * (n - 1))


def _ddim_with_a_t(xt, eps_hat, a, a_prev):
    x0_hat = (xt - (1 - a) ** 0.5 * eps_hat) / a**0.5
    return a**0.5 * x0_hat + (1 - a) ** 0.5 * eps_hat


def _drop_keeping_p(labels, p, null, g):
    return torch.where(torch.rand(len(labels), generator=g) < 1 - p, null, labels)


def _drop_in_place(labels, p, null, g):
    labels[torch.rand(len(labels), generator=g) < p] = null
    return labels


def _drop_to_zero(labels, p, null, g):
    return torch.where(torch.rand(len(labels), generator=g) < p, 0, labels)


def _guided_swapped(model, xt, t, labels, w, null):
    out = model(
        torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, null)])
    )
    u, c = out.chunk(2)
    return u + w * (c - u)


def _guided_without_repeating_t(model, xt, t, labels, w, null):
    out = model(torch.cat([xt, xt]), t, torch.cat([torch.full_like(labels, null), labels]))
    u, c = out.chunk(2)
    return u + w * (c - u)


def _guided_labels_twice(model, xt, t, labels, w, null):
    out = model(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([labels, labels]))
    u, c = out.chunk(2)
    return u + w * (c - u)


def _guided_two_calls(model, xt, t, labels, w, null):
    u, c = model(xt, t, torch.full_like(labels, null)), model(xt, t, labels)
    return u + w * (c - u)


def test_guidance_in_two_calls_fails_with_the_reason():
    result = ex.check_guided_prediction(_guided_two_calls)
    assert not result.passed and "2 model calls" in result.message


def test_label_dropout_that_ignores_the_generator_passes_with_a_note():
    def drop(labels, p, null, g):
        return torch.where(torch.rand(len(labels)) < p, null, labels)

    result = ex.check_drop_labels(drop)
    assert result.passed and "generator" in result.message


WRONG = [
    (
        ex.check_gaussian_noise,
        lambda shape, m, s, g: m + s**2 * torch.randn(shape, generator=g),
        "std**2",
    ),
    (
        ex.check_gaussian_noise,
        lambda shape, m, s, g: s * torch.randn(shape, generator=g),
        "add the mean",
    ),
    (
        ex.check_gaussian_noise,
        lambda shape, m, s, g: (torch.randn(shape, generator=g) + m) * s,
        "scale first",
    ),
    (ex.check_gaussian_noise, lambda shape, m, s, g: torch.randn(shape[0] - 1), "shape"),
    (ex.check_mix_keep_variance, lambda x, n, w: (1 - w) * x + w * n, "square roots"),
    (ex.check_mix_keep_variance, lambda x, n, w: w**0.5 * x + (1 - w) ** 0.5 * n, "swapped"),
    (
        ex.check_heat_step,
        lambda u, r: u - r * (torch.roll(u, 1) + torch.roll(u, -1) - 2 * u),
        "sign is flipped",
    ),
    (
        ex.check_heat_step,
        lambda u, r: r * (torch.roll(u, 1) + torch.roll(u, -1) - 2 * u),
        "only the change",
    ),
    (ex.check_add_noise, lambda x, n, a: a * x + (1 - a) * n, "missing square roots"),
    (ex.check_add_noise, lambda x, n, a: (1 - a) ** 0.5 * x + a**0.5 * n, "swapped"),
    (ex.check_add_noise, lambda x, n, a: a**0.5 * x + (1 - a) * n, "noise weight"),
    (ex.check_add_noise, lambda x, n, a: None, "forget `return`"),
    (ex.check_add_noise, lambda x, n, a: x[0], "expected shape"),
    (ex.check_add_noise, lambda x, n, a: 1 / 0, "raised ZeroDivisionError"),
    (ex.check_forward_step, lambda x, n, b: (1 - b) * x + b * n, "missing square roots"),
    (ex.check_forward_step, lambda x, n, b: x + b**0.5 * n, "variance grows"),
    (ex.check_alpha_bar_from_betas, lambda b: torch.cumprod(b, 0), "not of the betas"),
    (ex.check_alpha_bar_from_betas, lambda b: 1 - torch.cumsum(b, 0), "first-order"),
    (ex.check_alpha_bar_from_betas, lambda b: torch.prod(1 - b), "expected shape"),
    (ex.check_x0_from_noise, lambda xt, e, a: xt - (1 - a) ** 0.5 * e, "also divide"),
    (ex.check_x0_from_noise, lambda xt, e, a: (xt - (1 - a) ** 0.5 * e) / a, "not alpha_bar_t"),
    (
        ex.check_linear_betas,
        lambda T, s, e: torch.linspace(s, e, T + 1, dtype=torch.float64)[1:],
        "off by one",
    ),
    (ex.check_linear_betas, lambda T, s, e: torch.arange(T), "values are off"),
    (ex.check_cosine_alpha_bar, lambda T, s: ex._cosine_ratio(T, s, normalise=False), "f(0)"),
    (ex.check_cosine_alpha_bar, lambda T, s: ex._cosine_ratio(T, s, square=False), "squared"),
    (ex.check_cosine_alpha_bar, lambda T, s: ex._cosine_ratio(T, s, offset=0), "off by one"),
    (ex.check_cosine_alpha_bar, lambda T, s: ex._cosine_ratio(T, 0.0), "offset s"),
    (ex.check_log_snr, lambda a: a / (1 - a), "take its logarithm"),
    (ex.check_log_snr, lambda a: torch.log10(a / (1 - a)), "log10"),
    (ex.check_log_snr, lambda a: torch.log((1 - a) / a), "upside down"),
    (ex.check_heat_step, lambda u, r: u + r * (2 * torch.roll(u, 1) - 2 * u), "same side"),
    (
        ex.check_heat_step,
        lambda u, r: (
            u
            + r
            * (
                torch.nn.functional.pad(u, (1, 1))[:-2]
                + torch.nn.functional.pad(u, (1, 1))[2:]
                - 2 * u
            )
        ),
        "wraps around",
    ),
    (ex.check_forward_step, lambda x, n, b: (1 - b) * x + b**0.5 * n, "image weight"),
    (ex.check_forward_step, lambda x, n, b: (1 - b) ** 0.5 * x + b * n, "noise weight"),
    (ex.check_add_noise, lambda x, n, a: a**0.5 * x + (1 - a**0.5) * n, "not 1 - sqrt"),
    (
        ex.check_alpha_bar_from_betas,
        lambda b: torch.cat([torch.ones(1, dtype=b.dtype), torch.cumprod(1 - b, 0)]),
        "T + 1 values",
    ),
    (
        ex.check_cosine_alpha_bar,
        lambda T, s: ex._cosine_ratio_at(torch.linspace(0, 1, T), s),
        "linspace(0, 1, T)",
    ),
    (ex.check_mix_keep_variance, lambda x, n, w: torch.sqrt(1 - w) * x, "math.sqrt"),
    (ex.check_first_timestep_below, lambda a, lv: int(torch.nonzero(a < lv)[0]) - 1, "off by one"),
    (ex.check_first_timestep_below, lambda a, lv: 3, "expected t="),
    (
        ex.check_posterior_mean,
        lambda x0, xt, a, ap, b: (
            (1 - b) ** 0.5 * (1 - ap) / (1 - a) * x0 + ap**0.5 * b / (1 - a) * xt
        ),
        "swapped",
    ),
    (
        ex.check_posterior_mean,
        lambda x0, xt, a, ap, b: ap**0.5 * b / (1 - a) * x0 + a**0.5 * (1 - ap) / (1 - a) * xt,
        "not sqrt(alpha_bar_t)",
    ),
    (ex.check_ddpm_mean, lambda xt, e, a, b: xt - b / (1 - a) ** 0.5 * e, "divide by sqrt"),
    (
        ex.check_ddpm_mean,
        lambda xt, e, a, b: (xt - (1 - a) ** 0.5 * e) / (1 - b) ** 0.5,
        "all the noise at once",
    ),
    (
        ex.check_ddpm_mean,
        lambda xt, e, a, b: (xt - b / (1 - a) ** 0.5 * e) / a**0.5,
        "not by sqrt(alpha_bar_t)",
    ),
    (
        ex.check_posterior_mean,
        lambda x0, xt, a, ap, b: ap**0.5 * b / (1 - ap) * x0 + (1 - b) ** 0.5 * xt,
        "not 1 - alpha_bar_prev",
    ),
    (ex.check_timestep_embedding, lambda t, d: ex._embedding(t, d, endpoint=True), "endpoint"),
    (ex.check_timestep_embedding, lambda t, d: ex._embedding(t, d, interleave=True), "sin, cos"),
    (ex.check_timestep_embedding, lambda t, d: ex._embedding(t, d, swap=True), "sines first"),
    (ex.check_timestep_embedding, lambda t, d: ex._embedding(t, d, linear=True), "geometrically"),
    (
        ex.check_training_loss,
        lambda m, x0, ab, t, n: (
            (
                x0
                - m(
                    ab[t].view(-1, 1, 1, 1) ** 0.5 * x0 + (1 - ab[t].view(-1, 1, 1, 1)) ** 0.5 * n,
                    t,
                )
            )
            ** 2
        ).mean(),
        "not with the clean image",
    ),
    (ex.check_v_target, lambda x0, e, a: (1 - a) ** 0.5 * x0 - a**0.5 * e, "sign"),
    (ex.check_v_target, lambda x0, e, a: a**0.5 * x0 + (1 - a) ** 0.5 * e, "that is x_t"),
    (ex.check_ema_update, lambda avg, v, d: (1 - d) * avg + d * v, "swapped"),
    (ex.check_first_timestep_below, lambda a, lv: "many", "expected one int"),
    (ex.check_eps_from_v, lambda xt, v, a: a**0.5 * xt - (1 - a) ** 0.5 * v, "that is x0"),
    (ex.check_eps_from_v, lambda xt, v, a: a**0.5 * v - (1 - a) ** 0.5 * xt, "plus sign"),
    (ex.check_reverse_loop, _loop_without_noise, "no fresh noise"),
    (ex.check_reverse_loop, _loop_upwards, "wrong way"),
    (
        ex.check_mean_pairwise_distance,
        lambda x: torch.cdist(x.flatten(1), x.flatten(1)).mean(),
        "diagonal",
    ),
    (ex.check_ddim_step, lambda xt, e, a, ap: (xt - (1 - a) ** 0.5 * e) / a**0.5, "just x0_hat"),
    (ex.check_ddim_step, _ddim_with_a_t, "alpha_bar_prev"),
    (
        ex.check_trailing_timesteps,
        lambda n, T: torch.linspace(T - 1, 0, n).round().long(),
        "linspace",
    ),
    (ex.check_trailing_timesteps, lambda n, T: torch.arange(n - 1, -1, -1) * (T // n), "leading"),
    (ex.check_slerp, lambda a, b, w: (1 - w) * a + w * b, "straight blend"),
    (ex.check_slerp, _slerp_without_arccos, "arccos"),
    (ex.check_cfg_combine, lambda u, c, w: (1 + w) * c - w * u, "paper's convention"),
    (ex.check_cfg_combine, lambda u, c, w: c + w * (u - c), "swapped"),
    (ex.check_cfg_combine, lambda u, c, w: u + w * c, "along the difference"),
    (ex.check_drop_labels, _drop_keeping_p, "1 - p_uncond"),
    (ex.check_drop_labels, _drop_in_place, "changed the labels"),
    (ex.check_drop_labels, _drop_to_zero, "null_label"),
    (ex.check_guided_prediction, _guided_swapped, "swapped"),
    (ex.check_guided_prediction, _guided_labels_twice, "both halves got the labels"),
    (ex.check_cfg_combine, lambda u, c, w: u + w * (u - c), "wrong way"),
    (
        ex.check_drop_labels,
        lambda y, p, n, g: torch.where(torch.rand(len(y), generator=g) < p, 10.0, y.float()),
        "integers",
    ),
    (ex.check_tokenize, lambda s, v, n: ex._tokenize(s, v, n, bos=False), "<bos>"),
    (
        ex.check_generator_loss,
        lambda lg: torch.nn.functional.softplus(lg).mean() * -1,
        "saturating",
    ),
    (ex.check_generator_loss, lambda lg: torch.nn.functional.softplus(-lg).sum(), "mean"),
    (ex.check_energy_distance, lambda a, b: ex._energy(a, b, factor=1.0), "counts twice"),
    (ex.check_energy_distance, lambda a, b: ex._energy(a, b, within=False), "spreads within"),
    (
        ex.check_generator_loss,
        lambda lg: -torch.log(torch.sigmoid(lg)).mean(),
        "softplus",
    ),
    (
        ex.check_count_modes,
        lambda s, c, r, m: int(
            (
                torch.bincount(
                    torch.cdist(s, c).min(1).indices[torch.cdist(s, c).min(1).values <= r],
                    minlength=len(c),
                )
                > m * len(s)
            ).sum()
        ),
        ">=, not >",
    ),
    (
        ex.check_count_modes,
        lambda s, c, r, m: ex._count_modes(s, c, r, m, share=False),
        "one stray sample",
    ),
    (ex.check_tokenize, lambda s, v, n: ex._tokenize(s, v, n, offset=0), "start at 2"),
    (ex.check_contrastive_loss, lambda lg: ex._contrastive(lg, both=False), "one direction"),
    (ex.check_contrastive_loss, lambda lg: 2 * ex._contrastive(lg), "summed"),
    (ex.check_cross_attention, lambda q, k, v: ex._attention(q, k, v, scale=False), "sqrt(d)"),
    (
        ex.check_cross_attention,
        lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / 8**0.5, -1) @ v,
        "not a fixed number",
    ),
    (
        ex.check_contrastive_loss,
        lambda lg: ex._contrastive(torch.softmax(lg, dim=1)),
        "raw logits",
    ),
    (
        ex.check_tokenize,
        lambda s, v, n: ex._tokenize(s, v, n).int(),
        "LongTensor",
    ),
    (ex.check_cross_attention, lambda q, k, v: ex._attention(q, k, v, dim=1), "over the tokens"),
    (ex.check_guided_prediction, _guided_without_repeating_t, "repeat t"),
    (ex.check_mean_pairwise_distance, _pairwise_without_flatten, "flatten each image"),
    (ex.check_reverse_loop, _loop_skipping_the_last_step, "stops too early"),
    (ex.check_inpaint_combine, lambda xm, x0, m, a, n: m * x0 + (1 - m) * xm, "noised to"),
    (
        ex.check_inpaint_combine,
        lambda xm, x0, m, a, n: (1 - m) * (a**0.5 * x0 + (1 - a) ** 0.5 * n) + m * xm,
        "1 where a pixel is KNOWN",
    ),
    (ex.check_renoise, lambda x, at, ap, n: at**0.5 * x + (1 - at) ** 0.5 * n, "use the ratio"),
    (ex.check_renoise, lambda x, at, ap, n: (at / ap) * x + (1 - at / ap) * n, "square roots"),
    (
        ex.check_psnr,
        lambda a, b: 10 * torch.log10(1 / ((a - b) ** 2).flatten(1).mean(1)),
        "span a range of 2",
    ),
    (
        ex.check_psnr,
        lambda a, b: (10 * torch.log10(4 / ((a - b) ** 2).mean())).expand(len(a)),
        "one value per image",
    ),
    (ex.check_latent_scale, lambda z: z.std(), "1 / std"),
    (ex.check_to_latent, lambda ae, x, s: ae.encode(x) / s, "you divided"),
    (ex.check_ddim_step, _ddim_returning_a_tuple, "return only x_s"),
    (
        ex.check_trailing_timesteps,
        lambda n, T: (torch.arange(T, 0, -T / n) + 0.5).floor().long() - 1,
        "torch.round",
    ),
    (ex.check_spectral_flatness, lambda p: 1 / ex._flatness(p), "the inverse"),
    (ex.check_spectral_flatness, lambda p: p.log().mean().exp() / p.mean(), "one number for all"),
    (ex.check_spectral_flatness, lambda p: ex._flatness(p, geometric=False), "median"),
    (ex.check_chamfer_distance, lambda a, b: ex._chamfer(a, b, both=False), "only one direction"),
    (ex.check_chamfer_distance, lambda a, b: ex._chamfer(a, b, average=False), "averages them"),
    (ex.check_chamfer_distance, lambda a, b: ex._chamfer(a, b, squared=True), "squared"),
    (ex.check_eps_to_score, lambda e, a: e / (1 - a) ** 0.5, "sign is flipped"),
    (ex.check_eps_to_score, lambda e, a: -e / (1 - a), "not the variance"),
    (ex.check_flow_path, lambda x0, e, s: (s * x0 + (1 - s) * e, e - x0), "ends are swapped"),
    (ex.check_flow_path, lambda x0, e, s: ((1 - s) * x0 + s * e, x0 - e), "wrong way"),
    (ex.check_flow_path, lambda x0, e, s: ((1 - s) * x0 + s * e, e), "the noise alone"),
    (ex.check_flow_path, lambda x0, e, s: (1 - s) * x0 + s * e, "return two tensors"),
]


@pytest.mark.parametrize("check, wrong, message", WRONG)
def test_typical_mistakes_get_specific_messages(check, wrong, message):
    result = check(wrong)
    assert not result.passed
    assert message in result.message, result.message
    assert repr(result).startswith("[Not yet]")


def test_gaussian_noise_accepts_a_right_answer_that_ignores_the_generator_with_a_note():
    result = ex.check_gaussian_noise(lambda shape, m, s, g: m + s * torch.randn(shape))
    assert result.passed, result.message
    assert "not come from `generator`" in result.message
