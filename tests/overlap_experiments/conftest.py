"""Shared fixtures of the overlap_experiments tests (CPU, small and fast).

Modules that need the experiments extra skip themselves with
``pytest.importorskip`` (torch, curvlinops, torchvision); the synthetic study
and the pure-NumPy parts need only the core dependencies.

The folders here mirror the package but are not packages (no ``__init__.py``):
as packages they would be imported as ``overlap_experiments.…`` and shadow the
package under test. So every test file has a unique name, and a helper module
(``_synthetic_grids``) is imported by its plain name from its folder, which
pytest puts on ``sys.path``; helpers several folders need are fixtures here.
"""
import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as the 16×16 MNIST data set (three in-memory splits)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from overlap_experiments.data import mnist

    return mnist.load()


@pytest.fixture
def tiny_model():
    """An MLP with D = 5·4+4 + 4·3+3 = 39 parameters (float64) for dense references."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()


@pytest.fixture
def tiny_sample():
    """12 samples (float64, 5 features) with labels in 0..2 for :func:`tiny_model`."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(1)
    X = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    return X, y


def _functional(model):
    """``(theta, f)``: the model's flat trainable parameters θ (D,) and ``f(t, X)``, its output on
    inputs X at flat parameters ``t`` (``model.parameters()`` order; torch.func)."""
    import torch

    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def f(t, X):
        params = {n: v.reshape(s) for n, v, s in zip(names, torch.split(t, sizes), shapes)}
        return torch.func.functional_call(model, params, (X,))

    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]), f


@pytest.fixture
def functional():
    """:func:`_functional`: a network as a function of its flat parameters."""
    pytest.importorskip("torch")
    return _functional


@pytest.fixture
def dense_hessian():
    """``dense_hessian(model, X, y)``: the reference D × D Hessian (NumPy) of the mean cross-entropy,
    by torch.autograd, that the Hessian operators are checked against."""
    torch = pytest.importorskip("torch")

    def hessian(model, X, y):
        theta, f = _functional(model)
        loss = lambda t: torch.nn.functional.cross_entropy(f(t, X), y)  # noqa: E731
        return torch.autograd.functional.hessian(loss, theta, vectorize=True).numpy()

    return hessian


class _ReportParser:
    """What a report.html holds: images (src), figure ids, and the value cells (data-key -> data-value)."""

    def __init__(self, text):
        from html.parser import HTMLParser

        self.images, self.figures, self.values, self.headings = [], [], {}, []
        parts = self

        class P(HTMLParser):
            heading = None

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "img":
                    parts.images.append(a["src"])
                elif tag == "figure":
                    parts.figures.append(a["id"])
                elif tag == "td" and "data-key" in a:
                    parts.values[a["data-key"]] = float(a["data-value"]) if a["data-value"] else None
                elif tag in ("h2", "h3"):
                    self.heading = ""

            def handle_data(self, data):
                if self.heading is not None:
                    self.heading += data

            def handle_endtag(self, tag):
                if tag in ("h2", "h3") and self.heading is not None:
                    parts.headings.append(self.heading)
                    self.heading = None

        P().feed(text)


@pytest.fixture
def read_report():
    """``read_report(folder)``: the parsed ``folder/report.html``, after checking that it is self-contained
    (no external assets) and embeds every ``fig*.png`` of the folder byte for byte."""
    import base64
    import re

    def read(folder):
        text = (folder / "report.html").read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(?!data:|#)', text), "report.html refers to an external asset"
        r = _ReportParser(text)
        embedded = {fid: base64.b64decode(src.split(",", 1)[1]) for fid, src in zip(r.figures, r.images)}
        assert all(src.startswith("data:image/png;base64,") for src in r.images)
        pngs = {p.stem: p.read_bytes() for p in folder.glob("fig*.png")}
        assert pngs and embedded == pngs
        return r

    return read


@pytest.fixture
def check_png():
    """``check_png(path)``: the file name follows the figures' scheme and nothing touches the image's edge
    (a title or label cut off by the canvas would)."""
    import re

    def check(path):
        import matplotlib.image

        assert re.fullmatch(r"fig\d\d_[a-z0-9_]+\.png", path.name), path.name
        img = matplotlib.image.imread(path)[..., :3]
        frame = (img[:3].reshape(-1, 3), img[-3:].reshape(-1, 3), img[:, :3].reshape(-1, 3),
                 img[:, -3:].reshape(-1, 3))
        for edge in frame:
            assert (edge > 0.98).all(), f"{path.name}: something is drawn at the edge of the canvas"

    return check
