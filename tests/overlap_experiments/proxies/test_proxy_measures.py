"""Proxies of appendix A.2 against brute-force references on a tiny network."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("curvlinops")

from torch import nn  # noqa: E402

from overlap_experiments import proxies as px  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))
    X = torch.randn(30, 6)
    y = torch.randint(0, 4, (30,))
    return model, X, y


def _flat_loss(functional, model, X, y):
    """``(f, θ)``: the mean cross-entropy on (X, y) as a function of the flat float64 parameters."""
    theta, out = functional(model)
    return (lambda t: nn.functional.cross_entropy(out(t, X.double()), y)), theta.double()


@pytest.mark.slow  # every Hessian column by autograd (~3 s)
def test_h2_diagonal_is_squared_hessian_column_norms(tiny, functional):
    model, X, y = tiny
    f, theta = _flat_loss(functional, model.double(), X, y)
    H = torch.autograd.functional.hessian(f, theta).numpy()
    model.float()
    got = px.h2_diagonal(model, X, y, block=7)
    np.testing.assert_allclose(got, np.diag(H @ H), rtol=1e-4, atol=1e-7)


def test_ggn_diagonal_matches_jacobian_formula(tiny, functional):
    """G = Jᵀ (∂²ℓ/∂z²) J summed over samples, for mean cross-entropy."""
    model, X, y = tiny
    theta, out = functional(model.double())

    def logits(t):
        return out(t, X.double())

    J = torch.autograd.functional.jacobian(logits, theta)  # (N, C, D)
    p = torch.softmax(logits(theta), 1)
    G = torch.zeros(theta.numel(), theta.numel(), dtype=torch.float64)
    for n in range(X.shape[0]):
        Hz = torch.diag(p[n]) - torch.outer(p[n], p[n])
        G += J[n].T @ Hz @ J[n]
    G /= X.shape[0]
    model.float()
    np.testing.assert_allclose(px.ggn_diagonal(model, X, y, block=10), torch.diag(G).numpy(), rtol=1e-4, atol=1e-8)


def test_sam_deltas_brute_force(tiny, functional):
    model, X, y = tiny
    f, theta = _flat_loss(functional, model.double(), X, y)
    t = theta.clone().requires_grad_(True)
    L0 = f(t)
    (g,) = torch.autograd.grad(L0, t)
    eps = g / g.norm()
    lam = 0.05
    ref = []
    with torch.no_grad():
        for i in range(theta.numel()):
            tp = theta.clone()
            tp[i] += lam * eps[i]
            ref.append(abs(float(L0) - float(f(tp))))
    model.float()
    got = px.sam_deltas(model, X, y, lam, block=9)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)
    assert next(model.parameters()).dtype == torch.float32  # model restored


def test_normalized_subtrace_and_curves(tiny):
    model, X, y = tiny
    order = px.magnitude_order(model)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).abs().numpy()
    assert np.all(np.diff(theta[order]) <= 0)
    v = np.arange(order.size, dtype=float) + 1
    curve = px.normalized_subtrace(v, order)
    assert curve[-1] == pytest.approx(1.0) and np.all(np.diff(curve) >= 0)
    np.testing.assert_allclose(curve[2], v[order[:3]].sum() / v.sum())
    out = px.proxy_curves(model, X, y, lams=(0.01, 0.1))
    for c in [out["ggn"], out["h2"], *out["sam"].values(), out["chance"]]:
        assert c.shape == (order.size,) and c[-1] == pytest.approx(1.0)


def test_bad_inputs(tiny):
    model, X, y = tiny
    with pytest.raises(ValueError, match="permutation"):
        px.normalized_subtrace([1.0, 2.0], [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        px.normalized_subtrace([1.0, -2.0], [0, 1])
    with pytest.raises(ValueError, match="sum to zero"):
        px.normalized_subtrace([0.0, 0.0], [0, 1])
    with pytest.raises(ValueError, match="lam"):
        px.sam_deltas(model, X, y, -1.0)
    with pytest.raises(ValueError, match="samples"):
        px.h2_diagonal(model, X, y[:3])
