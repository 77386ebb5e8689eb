# amaranth: UnusedElaboratable=no
"""``amnic bench flow``: the measurements on small designs, the result checker, the capacity
arithmetic and the command's JSON and exit status."""

import json

import pytest

from amnic.bench import flow
from amnic.flow.action import ACTION_BITS
from amnic.flow.key import FLOW_KEY_BITS
from amnic.flow.rss import Rss
from amnic.flow.table import LATENCY, FlowCountersLayout

# -- flow table under host updates --------------------------------------------------------------


def test_flow_table_lookups_under_host_updates():
    row = flow.measure_flow_table(64, 600, seed=5)
    assert row["ok"] and row["mismatches"] == 0
    assert row["lookups"] == 600
    assert row["lookups_per_cycle"] == 1.0  # one lookup taken in every offered cycle
    assert row["latency_min"] == row["latency_max"] == LATENCY
    assert 85 <= row["load_pct"] <= 90
    assert 20 < row["hit_pct"] < 90  # both hits and misses were looked up
    assert row["host_updates"] == row["inserts"] + row["modifies"] + row["deletes"] > 3
    assert row["updates_per_1000_cycles"] > 0
    assert row["bus_accesses_per_update"] > 5
    assert row["fill_cycles"] > 0


KEY_A, KEY_B = 0x1234, 0x5678


def _lookup(cycle, key, tag, hit, action=0, index=0):
    """A request and its result LATENCY cycles later."""
    return (cycle, key, tag), (cycle + LATENCY, hit, action, index, tag)


def test_lookup_checker_accepts_states_the_key_had():
    initial = {KEY_A: (5, 0xA)}
    history = {KEY_B: [(100, 140, None, (7, 0xB))],  # inserted between cycles 100 and 140
               KEY_A: [(300, 320, (5, 0xA), (5, 0xC))]}  # modified
    pairs = [
        _lookup(10, KEY_A, 0, 1, 0xA, 5),
        _lookup(11, KEY_B, 1, 0),  # not inserted yet
        _lookup(120, KEY_B, 2, 0),  # during the insertion: old ...
        _lookup(121, KEY_B, 3, 1, 0xB, 7),  # ... or new
        _lookup(200, KEY_B, 4, 1, 0xB, 7),
        _lookup(310, KEY_A, 5, 1, 0xA, 5),
        _lookup(311, KEY_A, 6, 1, 0xC, 5),
        _lookup(400, KEY_A, 7, 1, 0xC, 5),
    ]
    requests, results = map(list, zip(*pairs, strict=True))
    assert flow.lookup_mismatches(requests, results, initial, history) == []


@pytest.mark.parametrize("bad", [
    _lookup(10, KEY_A, 9, 1, 0xB, 5),  # wrong action
    _lookup(10, KEY_A, 9, 1, 0xA, 6),  # wrong index
    _lookup(10, KEY_A, 9, 0),  # a present key missed
    _lookup(20, KEY_B, 9, 1, 0xB, 7),  # hit before the insertion
    _lookup(200, KEY_B, 9, 0),  # missed after it
    _lookup(400, KEY_A, 9, 1, 0xA, 5),  # the action from before the modify
])
def test_lookup_checker_rejects_other_results(bad):
    initial = {KEY_A: (5, 0xA)}
    history = {KEY_B: [(100, 140, None, (7, 0xB))],
               KEY_A: [(300, 320, (5, 0xA), (5, 0xC))]}
    good = _lookup(10, KEY_A, 8, 1, 0xA, 5)
    requests, results = [good[0], bad[0]], [good[1], bad[1]]
    assert flow.lookup_mismatches(requests, results, initial, history) == [bad]


def test_lookup_checker_rejects_a_reordered_result():
    requests = [(10, KEY_A, 0), (11, KEY_A, 1)]
    results = [(14, 1, 0xA, 5, 1), (15, 1, 0xA, 5, 0)]
    bad = flow.lookup_mismatches(requests, results, {KEY_A: (5, 0xA)}, {})
    assert len(bad) == 2


# -- ACL, RSS, meters -------------------------------------------------------------------------


@pytest.mark.parametrize("measure, latency", [
    (lambda: flow.measure_acl(8, 150, installed=6), None),
    (lambda: flow.measure_rss(150), Rss.latency),
    (lambda: flow.measure_meters(16, 150, configured=4), None),
])
def test_block_measurements(measure, latency):
    row = measure()
    assert row["ok"] and row["mismatches"] == 0
    assert row["requests"] == 150
    assert row["requests_per_cycle"] == 1.0
    assert row["latency_min"] == row["latency_max"] > 0  # a fixed pipeline
    if latency is not None:  # documented as a constant
        assert row["latency_min"] == latency


def test_acl_traffic_mixes_hits_and_misses():
    row = flow.measure_acl(16, 200, installed=8)
    assert 20 < row["hit_pct"] < 95


# -- capacity arithmetic ------------------------------------------------------------------------


def test_capacity_row_and_extrapolation():
    stats = {"BRAM36_eq": 40.0, "URAM": 0, "LUT": 900, "FF": 800, "LUTRAM": 0,
             "synthesis_s": 1.0}
    row = flow._capacity_row(4096, stats, ACTION_BITS, "measured")
    bits = 1 + FLOW_KEY_BITS + ACTION_BITS + FlowCountersLayout().size
    assert row["entry_bits"] == bits
    assert row["entries_per_BRAM36"] == round(4096 / 40, 1)
    assert row["ram_bits_per_entry"] == round(40 * flow.BRAM36_BITS / 4096, 1)
    big = flow.extrapolate_capacity(row, 65536)
    assert big["BRAM36_eq"] == 640 and big["entries"] == 65536
    assert big["source"] == "extrapolated from 4096"
    assert big["LUT"] is None and big["FF"] is None
    assert big["ram_bits_per_entry"] == row["ram_bits_per_entry"]
    odd = flow.extrapolate_capacity({**row, "BRAM36_eq": 40.5}, 8192)
    assert odd["BRAM36_eq"] == 81  # whole blocks, rounded up


# -- the command --------------------------------------------------------------------------------


def test_main_writes_json_and_tables(tmp_path, capsys):
    path = tmp_path / "flow.json"
    status = flow.main(["--json", str(path), "--quick", "--section", "blocks"])
    assert status == 0
    results = json.loads(path.read_text())
    assert results["quick"] is True
    assert set(results) == {"quick", "elapsed_s", "blocks"}
    assert [r["block"] for r in results["blocks"]] == ["ACL", "RSS", "meters"]
    for row in results["blocks"]:
        assert row["requests_per_cycle"] > 0 and row["latency_min"] > 0 and row["ok"]
    out = capsys.readouterr().out
    assert "## ACL, RSS and meters" in out
    assert "| ACL | 64 rules" in out


@pytest.mark.parametrize("rows, text", [
    (lambda quick: [{"x": 1, "ok": True}, {"x": 2, "ok": False}], "| 2 | NO |"),
    (lambda quick: 1 / 0, "FAILED: ZeroDivisionError"),
])
def test_main_fails_on_a_mismatch_or_an_error(tmp_path, capsys, monkeypatch, rows, text):
    section = flow.Section("probe", "Probe", rows, (flow.Column("x", "x"),
                                                   flow.Column("ok", "ok")))
    good = flow.Section("fine", "Fine", lambda quick: [{"x": 3, "ok": quick}],
                        (flow.Column("x", "x"),))
    monkeypatch.setattr(flow, "SECTIONS", (good, section))
    path = tmp_path / "out.json"
    assert flow.main(["--json", str(path), "--quick"]) == 1
    out = capsys.readouterr().out
    assert text in out and "| 3 |" in out
    assert set(json.loads(path.read_text())) == {"quick", "elapsed_s", "fine", "probe"}


def test_quick_skips_full_only_sections(tmp_path, capsys, monkeypatch):
    ran = []
    slow = flow.Section("slow", "Slow", lambda quick: ran.append(quick) or [{"x": 1}],
                        (flow.Column("x", "x"),), full_only=True)
    monkeypatch.setattr(flow, "SECTIONS", (slow,))
    path = tmp_path / "out.json"
    assert flow.main(["--json", str(path), "--quick"]) == 0
    assert ran == [] and "Skipped with --quick." in capsys.readouterr().out
    assert flow.main(["--json", str(path)]) == 0
    assert ran == [False] and json.loads(path.read_text())["slow"] == [{"x": 1}]
