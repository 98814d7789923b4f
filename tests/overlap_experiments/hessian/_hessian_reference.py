"""The dense loss Hessian by torch.autograd: the reference the Hessian operators are checked against."""
import torch


def dense_hessian(model, X, y):
    """Dense Hessian (D × D NumPy array) of the mean cross-entropy of ``model`` on ``(X, y)``
    w.r.t. the flat parameters, in ``model.parameters()`` order."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (X,)), y)

    return torch.autograd.functional.hessian(loss, theta, vectorize=True).numpy()
