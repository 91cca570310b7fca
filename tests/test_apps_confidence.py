"""95 % intervals of the keyword spotter's figures (apps/kws_stream/confidence.py)."""

import math

import pytest

from lmuformer_apps.kws_stream import held_out
from lmuformer_apps.kws_stream.confidence import poisson_rate_interval, wilson_interval


def _wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize("k, n", [(9, 50), (25, 250), (1, 3), (49, 50)])
def test_wilson_matches_its_formula(k, n):
    low, high = wilson_interval(k, n)
    assert (low, high) == pytest.approx(_wilson_closed_form(k, n), abs=1e-12)
    assert low < k / n < high


def test_wilson_edges():
    assert wilson_interval(0, 50)[0] == 0.0 and 0.05 < wilson_interval(0, 50)[1] < 0.08
    assert wilson_interval(50, 50)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="need 0 <= hits <= n, got 6 of 5"):
        wilson_interval(6, 5)


def test_poisson_interval_known_values():
    # no event in one unit: the exact upper bound is -ln(0.025) = 3.689
    assert poisson_rate_interval(0, 1.0) == (0.0, pytest.approx(-math.log(0.025)))
    # one false detection in 5 minutes: 0.2/min, interval 0.005-1.11 per minute
    low, high = poisson_rate_interval(1, 5.0)
    assert low == pytest.approx(0.0050636, rel=1e-4)
    assert high == pytest.approx(1.1143287, rel=1e-4)
    # four times the exposure and the count: the same rate, a narrower interval
    low4, high4 = poisson_rate_interval(4, 20.0)
    assert low < low4 < 0.2 < high4 < high
    with pytest.raises(ValueError, match="exposure > 0, got 1 in 0"):
        poisson_rate_interval(1, 0)


def _report(hits, n, phrase_hits, speech_false, speech_minutes, noise_false):
    def stream(h, k, false, minutes):
        return {"hits": h, "keywords": k, "false_detections": false,
                "minutes": minutes, "false_per_minute": false / minutes,
                "recall": h / k if k else float("nan")}  # fmt: skip

    report = {
        "engine": "flite",
        "voices": ["kal"],
        "isolated": stream(hits, n, 0, 1.0),
        "phrases": stream(phrase_hits, n, 0, 1.0),
        "sentences": stream(0, 0, speech_false, speech_minutes),
        "noise": stream(0, 0, noise_false, 60.0),
    }
    report["summary"] = held_out.summarize(report)
    return report


def test_summary_and_table_carry_intervals():
    r = _report(9, 50, 1, 1, 5.0, 0)
    s = r["summary"]
    assert s["isolated_recall_ci95"] == pytest.approx(list(wilson_interval(9, 50)))
    assert s["speech_false_per_minute_ci95"] == pytest.approx(
        list(poisson_rate_interval(1, 5.0))
    )
    assert s["noise_false_per_hour_ci95"][0] == 0.0
    row = held_out.leave_one_out_table([r]).splitlines()[2]
    assert "| 18.0% (10%-31%) | 2.0% (0%-10%) | 0.20 (0.01-1.11) |" in row


def test_best_recall_within_budgets():
    grid = [
        {"recall": 0.9, "speech_false_per_minute": 40.0},
        {"recall": 0.3, "speech_false_per_minute": 0.9},
        {"recall": 0.2, "speech_false_per_minute": 0.4},
        {"recall": 0.1, "speech_false_per_minute": 0.45},
    ]
    assert held_out.best_recall_within(grid, (0.2, 0.5, 1.0, 50.0)) == [
        None, 0.2, 0.3, 0.9
    ]  # fmt: skip
    assert held_out.best_recall_within(grid) == [None, 0.2, 0.3, 0.3, 0.3]
