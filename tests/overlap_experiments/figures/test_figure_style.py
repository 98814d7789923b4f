"""What every figure shares: one naming scheme, a caption line naming what was computed, titles inside the canvas."""
import re

import pytest

from overlap_experiments.figures import comparison, proxies, sketch_only, style, synthetic

RES = {"problem": {"title": "16×16 MNIST", "model_name": "tanh-MLP (Martens & Grosse, 2015)"}, "n_params": 7030,
       "data_source": {"name": "digits"}, "hessian_samples": {"train": {"n": 500}, "test": {"n": 500}},
       "config": {"quick": False}}


def test_one_naming_scheme_across_subcommands():
    names = [*comparison.FIGURES, *sketch_only.FIGURES, *proxies.FIGURES, *synthetic.FIGURES]
    assert len(names) == len(set(names)) == 6 + 2 + 2 + 7
    for name in names:
        assert re.fullmatch(r"fig\d\d_(left_|right_)?[a-z0-9]+(_[a-z0-9]+)*\.png", name), name
        assert not re.search(r"k\d", name), name  # no run parameter in a file name
    # the paper's figure number leads: Figs. 1, 14-17 / 3-4 / 6-7 / 2, 8-13
    assert sorted({int(n[3:5]) for n in names}) == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert synthetic.figure_name("O-O", "rho") == "fig09_oo_metrics_vs_rho.png"
    assert all(text.startswith("Paper Fig.") for text in {**comparison.FIGURES, **sketch_only.FIGURES,
                                                          **proxies.FIGURES, **synthetic.FIGURES}.values())


def test_caption_names_problem_data_splits_k_and_steps():
    text = style.caption(RES, splits=["train", "test"], k=350, steps=[0, 10, 1000])
    assert text == ("16×16 MNIST, tanh-MLP (D = 7,030), digits data · H_train, H_test (N = 500) · k = 350 · "
                    "steps 0–1000 (3 analysed)")
    quick = dict(RES, config={"quick": True}, synthetic=True)
    assert style.caption(quick, steps=[100]).endswith("SYNTHETIC data · step 100 · quick run (--quick)")


def test_long_captions_are_broken_at_their_separators():
    text = " · ".join(f"part number {i}" for i in range(8))
    lines = style._wrap(text, 40)
    assert all(len(line) <= 40 for line in lines) and len(lines) > 1
    assert " · ".join(lines) == text  # nothing lost, breaks only between parts


def test_steps_axis_ticks_every_analysed_step_in_plain_numbers(tmp_path):
    plt = style.pyplot()
    fig, ax = plt.subplots(layout="constrained")
    steps = [0, 10, 50, 100, 250, 500, 1000]
    ax.plot(steps, range(7))
    style.steps_axis(ax, steps)
    style.finish(fig, "Fig. X: a title", style.caption(RES, steps=steps))
    fig.canvas.draw()
    assert list(ax.get_xticks()) == steps
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(s) for s in steps]
    # the title is inside the canvas
    box = fig._suptitle.get_window_extent()  # (matplotlib has no public getter of the Text)
    assert box.x0 >= 0 and box.y1 <= fig.bbox.height
    path = style.save_figure(fig, tmp_path / "fig99_test.png", plt)
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("steps, text", [([5], "step 5"), ([0, 4, 2], "steps 0–4 (3 analysed)")])
def test_steps_text(steps, text):
    assert style.steps_text(steps) == text
