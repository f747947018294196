"""The calibration of the study's verdicts and flags, as rates: the simulated null studies of
tests/test_calibration.py (which asserts the bounds), printed with their Monte Carlo standard errors, for
docs/method.md. Run from the project root:  python benchmarks/calibration.py"""

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_calibration import (  # noqa: E402
    STUDIES,
    false_beats_across_conditions,
    false_beats_per_table,
    false_flags_per_curve,
    false_flags_per_method,
    power_at_the_quoted_difference,
    sparse_against_dense,
)


def show(what: str, rate: float, n: int) -> None:
    print(f"{what:<62} {rate:.4f}  (Monte Carlo SE {math.sqrt(max(rate * (1 - rate), 1e-12) / n):.4f}, n {n})")


start = time.time()
for methods in (5, 11):
    rate, tables = false_beats_per_table(STUDIES, methods)
    show(f"false 'beats' per table, {methods} equal methods, 3 seeds", rate, tables)
for conditions in (2, 4):
    rate, tables = false_beats_across_conditions(STUDIES, conditions)
    show(f"false 'beats' per row, {conditions} values of a condition that changes nothing", rate, tables)
bias, coverage, false_beats, count = sparse_against_dense(STUDIES)
print(f"{'read bias, dense (0.5..8) vs sparse (3, 9) grid, at 1 and 2 nats':<62} {bias['1']:+.4f} {bias['2']:+.4f}")
show("95% interval coverage of the difference (same case)", coverage, count)
show("false 'beats' (same case)", false_beats, count)
saturating = lambda kl: 0.6 * (1 - np.exp(-kl / 2))  # noqa: E731 - gold of another form than the reader's
bias, coverage, false_beats, count = sparse_against_dense(STUDIES, curve=saturating)
label = "the same, gold 0.6(1 - exp(-KL/2)) (not Gao et al.'s form)"
print(f"{label:<62} {bias['1']:+.4f} {bias['2']:+.4f}")
show("coverage there", coverage, count)
show("false 'beats' there", false_beats, count)
show("false flags per method, 5 settings, gold flat after KL 1", false_flags_per_method(STUDIES), STUDIES)
show(
    "false flags per method, 5 settings within 0.1 nats",
    false_flags_per_method(STUDIES, grid=(0.02, 0.04, 0.06, 0.08, 0.1)),
    STUDIES,
)
for checkpoints in (6, 11):
    show(
        f"false flags per training curve, {checkpoints} checkpoints",
        false_flags_per_curve(STUDIES, checkpoints),
        STUDIES,
    )
show(
    "power at the quoted detectable difference (claims 0.80), 5 seeds", power_at_the_quoted_difference(STUDIES), STUDIES
)
print(f"{time.time() - start:.0f} s")
