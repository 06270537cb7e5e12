"""Paper 000 Table 1: the column reading is possible on every published row, and the text forces it.

Independent checks: for every row, an explicit configuration of points in R^7 whose recomputed relative
distances (numpy) are the printed ones; the earlier reading violates a plain triangle inequality on 8
rows; brute force over all 5040 column orders with section 3.3's statements leaves only our reading
up to swaps inside two pairs of near-equal columns."""
import itertools

import numpy as np
import pytest

from badminima.experiments.paper000.published import PAPER_000_TABLE1, PAPER_000_TABLE1_COLUMNS, table1_rho_bounds

PAIRS = ("W0R->W0A", "W0R->WSR", "W0R->WVR", "W0R->WVA", "W0R->WSA", "W0A->WVA", "W0A->WSA")
EARLIER = ("W0R->W0A", "W0R->WSR", "W0R->WVR", "W0R->WVA", "W0R->WSA", "W0A->WVA", "W0A->WSA")


def _third_point(p, q, to_p, to_q, axis, dim=7):
    """A point at distance to_p from p and to_q from q, off the line pq along the unused unit axis."""
    length = np.linalg.norm(q - p)
    u = (q - p) / length
    t = (to_p ** 2 - to_q ** 2 + length ** 2) / (2 * length)
    h2 = to_p ** 2 - t ** 2
    assert h2 >= -1e-12, "triangle inequality violated"
    return p + t * u + np.sqrt(max(h2, 0.0)) * np.eye(dim)[axis]


def _witness(d: dict, rho: float) -> dict:
    """Points 0, W0R (norm 1), W0A (norm rho), WVR, WSR, WVA, WSA with the row's distances."""
    e = np.eye(7)
    w0r = e[0]
    w0a = _third_point(np.zeros(7), w0r, rho, d["W0R->W0A"], axis=1)
    return {"W0R": w0r, "W0A": w0a,
            "WVA": _third_point(w0r, w0a, d["W0R->WVA"], rho * d["W0A->WVA"], axis=2),
            "WSA": _third_point(w0r, w0a, d["W0R->WSA"], rho * d["W0A->WSA"], axis=3),
            "WVR": w0r + d["W0R->WVR"] * e[4], "WSR": w0r + d["W0R->WSR"] * e[5]}


@pytest.mark.parametrize("row", list(PAPER_000_TABLE1), ids=lambda r: " / ".join(r))
def test_every_published_row_has_a_euclidean_configuration(row):
    d = dict(zip(PAPER_000_TABLE1_COLUMNS, PAPER_000_TABLE1[row]))
    low, high = table1_rho_bounds(d)
    assert 0 < low < high
    points = _witness(d, (low + high) / 2)
    for pair, printed in d.items():
        a, b = (points[k] for k in pair.split("->"))
        assert np.linalg.norm(b - a) / np.linalg.norm(a) == pytest.approx(printed, rel=1e-9), pair
    assert 0.02 < low and high < 0.48  # the module docstring's statement on rho


def _row_possible(order, values) -> bool:
    """Scan rho = ||W0A|| / ||W0R|| finely over (0, 2] for the three triangles (0, W0R, W0A), (W0R, W0A, WVA),
    (W0R, W0A, WSA), with ||W0R|| = 1 (independent of table1_rho_bounds, which solves the inequalities)."""
    d = dict(zip(order, values))
    rho = np.linspace(1e-4, 2.0, 200001)
    ra = d["W0R->W0A"]
    ok = (np.abs(1 - rho) <= ra) & (ra <= 1 + rho)
    for end in ("VA", "SA"):
        x, y = d["W0R->W" + end], rho * d["W0A->W" + end]
        ok &= (ra <= x + y) & (x <= ra + y) & (y <= ra + x)
    return bool(ok.any())


def _possible(order) -> bool:
    return all(_row_possible(order, values) for values in PAPER_000_TABLE1.values())


def test_the_earlier_reading_is_impossible_on_eight_rows():
    broken = [row for row, values in PAPER_000_TABLE1.items() if not _row_possible(EARLIER, values)]
    assert len(broken) == 8
    for row, values in PAPER_000_TABLE1.items():
        for order in (EARLIER, PAPER_000_TABLE1_COLUMNS):
            low, high = table1_rho_bounds(dict(zip(order, values)))
            assert (low <= high) == _row_possible(order, values)
    # the example, by two plain triangle inequalities (||W0R|| = 1): ||W0A|| >= 1 - 0.836 and
    # ||WSA - W0A|| <= 0.836 + 2.871, so d(W0A -> WSA) <= 3.707 / 0.164 < 23 under that reading, not 83.035
    d = dict(zip(EARLIER, PAPER_000_TABLE1["Restricted ImageNet", "VGG16"]))
    assert ("Restricted ImageNet", "VGG16") in broken
    assert d["W0A->WSA"] > (d["W0R->WSA"] + d["W0R->W0A"]) / (1 - d["W0R->W0A"])


def test_geometry_and_section_3_3_leave_our_reading_up_to_two_near_equal_pairs():
    columns = list(zip(*PAPER_000_TABLE1.values()))  # printed column k -> its 16 values
    survivors = []
    for perm in itertools.permutations(range(7)):
        order = [None] * 7
        for pair, col in zip(PAIRS, perm):
            order[col] = pair
        col = {pair: perm[i] for i, pair in enumerate(PAIRS)}
        near_09 = {k for k in range(7) if all(0.8 <= v <= 1.0 for v in columns[k])}  # "about 0.9"
        sota_a, sota_r = columns[col["W0A->WSA"]], columns[col["W0R->WSR"]]
        text = (col["W0R->W0A"] in near_09 and col["W0R->WVR"] in near_09
                and all(0.1 <= v <= 0.6 for v in columns[col["W0A->WVA"]])  # "approximately 0.2"
                and all(a > 2 * b for a, b in zip(sota_a, sota_r))  # "significantly larger ..."
                and sum(a >= 5 * b for a, b in zip(sota_a, sota_r)) > 8)  # "... in most cases by nearly 10x"
        if text and _possible(order):
            survivors.append(tuple(order))
    assert tuple(PAPER_000_TABLE1_COLUMNS) in survivors
    assert len(survivors) == 4
    for order in survivors:
        assert order[0] == "W0R->WVR" and order[5:] == ("W0A->WVA", "W0A->WSA")
        assert {order[2], order[3]} == {"W0R->W0A", "W0R->WVA"} and {order[1], order[4]} == {"W0R->WSR", "W0R->WSA"}
    spread = max(abs(a - b) / min(a, b) for row in PAPER_000_TABLE1.values() for a, b in ((row[2], row[3]), (row[1], row[4])))
    assert spread < 0.024  # "within each pair the two values differ by at most 2.4%"


def test_696_column_orders_are_possible_on_every_row():  # the module docstring's count
    def possible(order):
        return all(table1_rho_bounds(dict(zip(order, values)))[0] <= table1_rho_bounds(dict(zip(order, values)))[1]
                   for values in PAPER_000_TABLE1.values())
    assert sum(possible(order) for order in itertools.permutations(PAIRS)) == 696
