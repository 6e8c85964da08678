"""tests/bench/floor_ratio.py: the medians of per-repetition ratios it prints are the right ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("floor_ratio", ROOT / "tests" / "bench" / "floor_ratio.py")
assert _spec and _spec.loader
floor_ratio = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor_ratio)

TSV = "\n".join(
    [
        "smcp\t5\t1\t1\t60.0\t0\t90",
        "smcp\t5\t1\t2\t10.0\t0\t0",
        "floor\t5\t1\t1\t50.0\t0\t46",
        "floor\t5\t1\t2\t20.0\t0\t0",
        "floor\t5\t2\t1\t100.0\t0\t46",  # a noisy repetition: its ratio, not its wall time, counts
        "floor\t5\t2\t2\t40.0\t0\t0",
        "smcp\t5\t2\t1\t105.0\t0\t90",
        "smcp\t5\t2\t2\t18.0\t0\t0",
        "smcp\t5\t3\t1\t44.0\t0\t90",
        "smcp\t5\t3\t2\t9.0\t0\t0",
        "floor\t5\t3\t1\t40.0\t0\t46",
        "floor\t5\t3\t2\t20.0\t0\t0",
        "smcp\t20\t1\t1\t200.0\t0\t300",
        "floor\t20\t1\t1\t160.0\t0\t180",
        "smcp\t20\t1\t2\t30.0\t2\t0",  # failed: left out, and its size/run has no pair
        "floor\t20\t1\t2\t70.0\t0\t0",
        "smcp\t20\t2\t1\t999.0\t0\t300",  # no floor row in this repetition: not paired
    ]
)


def test_median_of_per_repetition_ratios():
    walls, failed = floor_ratio.parse(TSV)
    assert failed == 1
    rows = {(r["hosts"], r["run"]): r for r in floor_ratio.ratios(walls)}
    assert set(rows) == {(5, 1), (5, 2), (20, 1)}
    first = rows[(5, 1)]
    # ratios 1.2, 1.05, 1.1 -> median 1.1 (the median of the walls would give 60/50 = 1.2)
    assert first["ratio_median"] == 1.1 and first["reps"] == 3
    assert first["smcp_median_s"] == 60.0 and first["floor_median_s"] == 50.0
    assert first["met"] is True
    rerun = rows[(5, 2)]
    # ratios 0.5, 0.45, 0.45 -> 0.45
    assert rerun["ratio_median"] == 0.45 and rerun["met"] is True
    big = rows[(20, 1)]
    assert big["reps"] == 1 and big["ratio_median"] == 1.25 and big["met"] is False


def test_a_later_row_replaces_an_earlier_one_and_headers_are_skipped():
    text = "tool\thosts\trep\trun\twall\trc\tchanged\nsmcp\t5\t1\t1\t70\t0\t1\nsmcp\t5\t1\t1\t55\t0\t1\n"
    walls, _ = floor_ratio.parse(text)
    assert walls == {("smcp", 5, 1, 1): 55.0}


def test_prints_the_table(tmp_path, capsys):
    path = tmp_path / "t.tsv"
    path.write_text(TSV)
    assert floor_ratio.main(["floor_ratio.py", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("hosts\trun\treps")
    assert "5\tfirst run\t3\t60.0\t50.0\t1.10\t1.1\tyes" in out
    assert "5\tre-run\t3\t10.0\t20.0\t0.45\t0.5\tyes" in out
    assert out[-1] == "1 row(s) with a non-zero exit code left out"
