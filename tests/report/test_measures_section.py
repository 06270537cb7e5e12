"""The report's measures section shows each registered measure's value under its current convention only: a
value stored under an older version of the measure (superseded) or an experiment's own cache is not shown as
a measure, and the section says how many superseded values it left out."""
from badminima.measures.registry import MEASURES
from badminima.report.html import measures_section
from badminima.store import Store


def test_superseded_and_cached_values_are_not_shown_as_measures(tmp_path):
    assert MEASURES["hessian"].key == "hessian.v2" and MEASURES["frobenius"].key == "frobenius"
    store = Store(tmp_path)
    store.record_measure("p1", "frobenius", 12.5, 0.1)
    store.record_measure("p1", "hessian", {"max_lanczos": 0.998876}, 1.0)  # the old Lanczos readout
    store.record_measure("p1", "hessian.v2", {"max_lanczos": 1.05}, 1.0)
    store.record_measure("p1", "landscape.v2(examples=all)", {"loss": 7.25}, 1.0)  # an experiment's cache
    page = measures_section(store)
    store.close()
    assert "12.5" in page and "max_lanczos: 1.05" in page
    assert "0.998876" not in page and "7.25" not in page
    assert "1 value stored under an older convention of its measure" in page
    assert page.count("<tr><td>") == 2  # frobenius and hessian (v2), each under its name
    assert "<td>hessian</td>" in page or ">hessian<" in page


def test_only_superseded_values_still_say_so(tmp_path):
    store = Store(tmp_path)
    store.record_measure("p1", "hessian", {"max_lanczos": 0.998876}, 1.0)
    page = measures_section(store)
    store.close()
    assert "0.998876" not in page and "1 value stored under an older convention" in page
