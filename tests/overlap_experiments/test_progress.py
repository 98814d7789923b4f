"""Progress of long stages: log lines instead of bars off a terminal, heartbeats, one flag for all subcommands."""
import logging
import threading
import time

import pytest

from overlap_experiments import cli, progress


@pytest.fixture
def log_lines(caplog, monkeypatch):
    """Progress in a log file (not a terminal), every line logged at once."""
    monkeypatch.setattr(progress, "interactive", lambda: False)
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="overlap_experiments.progress")
    return caplog


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "overlap_experiments.progress"]


def test_track_logs_counts_and_time_left_instead_of_a_bar(log_lines, capsys):
    bar = progress.track(range(4), desc="train x", unit="steps")
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    assert seen == [0, 1, 2, 3]
    msgs = _messages(log_lines)
    assert msgs[0] == "train x: started (4 steps)"
    assert msgs[1].startswith("train x: 1/4 steps (25%), ") and "left" in msgs[1]
    assert [m.split(",")[0] for m in msgs[1:4]] == ["train x: 1/4 steps (25%)", "train x: 2/4 steps (50%)",
                                                    "train x: 3/4 steps (75%)"]
    assert msgs[-1].startswith("train x: done, 4 steps in ") and msgs[-1].endswith("(loss 0.25)")
    assert len(msgs) == 5
    out = capsys.readouterr()
    assert "\r" not in out.out + out.err  # no bar was drawn


def test_track_lines_are_rate_limited(caplog, monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    caplog.set_level(logging.INFO, logger="overlap_experiments.progress")
    list(progress.track(range(1000), desc="fast", unit="blocks"))  # LOG_EVERY_S = 30: start and end only
    assert [m.split(":")[1].split()[0] for m in _messages(caplog)] == ["started", "done,"]


def test_disabled_progress_shows_nothing(log_lines, capsys):
    bar = progress.track(range(3), desc="quiet", enabled=False)
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(loss=1)
    bar.close()
    assert _messages(log_lines) == []
    out = capsys.readouterr()
    assert out.out == out.err == ""


def test_stage_heartbeat_and_end_line(caplog):
    caplog.set_level(logging.INFO, logger="overlap_experiments.progress")
    with progress.stage("eigh of H", every=0.02) as st:
        time.sleep(0.15)
    msgs = _messages(caplog)
    assert msgs[0] == "eigh of H: started"
    beats = [m for m in msgs if m.startswith("eigh of H: running, ")]
    assert len(beats) >= 2 and all(m.endswith(" s elapsed") for m in beats)
    assert msgs[-1].startswith("eigh of H: done in ") and 0.15 <= st["seconds"] < 5
    assert not any(t.name.startswith("heartbeat") for t in threading.enumerate())  # the thread ended


def test_stage_without_progress_logs_start_and_end_only(caplog):
    caplog.set_level(logging.INFO, logger="overlap_experiments.progress")
    with progress.stage("silent", enabled=False, every=0.01):
        time.sleep(0.05)
    assert [m.split(": ")[1].split()[0] for m in _messages(caplog)] == ["started", "done"]


def test_stage_says_when_it_failed(caplog):
    caplog.set_level(logging.INFO, logger="overlap_experiments.progress")
    with pytest.raises(RuntimeError), progress.stage("breaks", every=10):
        raise RuntimeError("boom")
    assert _messages(caplog)[-1].startswith("breaks: failed after ")


def test_dask_computation_as_log_lines(log_lines, capsys):
    import dask

    tasks = [dask.delayed(lambda x: x * 2)(i) for i in range(5)]
    with progress.dask_bar("study"):
        assert dask.compute(*tasks, scheduler="sync") == (0, 2, 4, 6, 8)
    msgs = _messages(log_lines)
    assert msgs[0] == "study: started (5 tasks)"
    assert msgs[-1].startswith("study: done, 5 tasks in ")
    assert "[#" not in capsys.readouterr().out  # not Dask's bar


@pytest.mark.parametrize("seconds, text", [(0.25, "0.2 s"), (42.4, "42 s"), (185, "3 min 05 s"),
                                           (7260, "2 h 01 min")])
def test_format_seconds(seconds, text):
    assert progress.format_seconds(seconds) == text


def test_one_progress_flag_for_every_subcommand():
    parser = cli.build_parser()
    for argv in (["run", "mnist16", "--out", "x"], ["proxies", "--out", "x"], ["synthetic", "--out", "x"]):
        assert parser.parse_args(argv).progress is True, argv
        assert parser.parse_args(argv + ["--no-progress"]).progress is False, argv
        assert parser.parse_args(argv + ["--progress"]).progress is True, argv
