"""Shared setup of the large-problem tests (paper §6.2): CPU only, tiny synthetic data."""
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("curvlinops")
