# amaranth: UnusedElaboratable=no
"""The measuring functions of ``amnic bench dma`` on small cases, and its JSON and exit
status."""

import json

import pytest

from amnic.bench import _dma_loopback, dma
from amnic.bench._pcie_link import LINKS
from amnic.bench._sections import Column, Section


def test_link_arithmetic():
    link = LINKS[256]
    # 256-byte aligned TLPs: the same figure as Link.write_ceiling_gbps.
    tlps = [(4096 * k, 256) for k in range(5)]
    assert dma.tlp_wire_bytes(tlps, 16) == 5 * (256 + 16 + 8)
    assert dma.tlp_ceiling_gbps(link, tlps, 16) == pytest.approx(link.write_ceiling_gbps(256))
    assert dma.tlp_ceiling_gbps(link, [(0, 64)], 12) == pytest.approx(
        link.read_ceiling_gbps(64))
    # An unaligned 5-byte TLP occupies two DWORDs of payload on the wire.
    assert dma.tlp_wire_bytes([(3, 5)], 16) == 8 + 16 + 8
    # 8 bytes per cycle at 250 MHz.
    assert dma.interface_gbps(link, 800, 100) == pytest.approx(16.0)


def test_completion_split_at_the_boundary():
    assert dma.completion_split(0x1000, 256, 64) == [
        (0x1000, 64), (0x1040, 64), (0x1080, 64), (0x10C0, 64)]
    assert dma.completion_split(0x1030, 100, 64) == [(0x1030, 16), (0x1040, 64), (0x1080, 20)]
    assert dma.completion_split(0x1000, 512, 256) == [(0x1000, 256), (0x1100, 256)]


def test_steady_rate():
    assert dma._steady_rate(list(range(0, 1000, 10))) == pytest.approx(100.0)
    assert dma._steady_rate([5, 5]) is None


@pytest.mark.parametrize("width", [256, 512])
def test_write_measures_the_ideal_beat_count(width):
    r = dma.measure_write(width, 512, 256, 4)
    # 512 bytes at MPS 256: two TLPs of 64 DWORDs, each behind a 4-DWORD descriptor: 9 beats
    # of 8 DWORDs at 256 bit; 4.5 beats of 16 DWORDs at 512 bit, where they straddle.
    assert (r["tlps"], r["ideal_beats"]) == (8, 8 * 9 if width == 256 else 8 * 9 // 2)
    assert r["beats"] == r["cycles"] == r["ideal_beats"], "idle cycle on rq"
    assert r["ok"]
    assert r["latency"] == 3  # the engine's two cycles and the framer's one
    link = LINKS[width]
    assert r["interface_gbps"] == pytest.approx(2048 * 8 * 0.25 / r["cycles"], abs=0.01)
    assert r["ceiling_gbps"] == pytest.approx(link.write_ceiling_gbps(256), abs=0.01)
    assert r["achieved_gbps"] == min(r["interface_gbps"], r["ceiling_gbps"])
    assert r["pct_of_ceiling"] == pytest.approx(
        100 * r["achieved_gbps"] / r["ceiling_gbps"], abs=0.1)


def test_read_model_small_transfer():
    r = dma.measure_read(256, 128, 2, completion=64, latency=40)
    assert r["ok"]
    assert (r["requests"], r["completions"]) == (2, 4)
    assert r["rc_beats"] == 4 * 3  # 12-byte descriptor + 64 bytes = 3 beats of 32 bytes
    assert r["data_beats"] == 8
    # The first data cannot come before the host answered and the completion arrived.
    assert r["first_data"] >= 40 + 3
    assert r["ceiling_gbps"] == pytest.approx(LINKS[256].read_ceiling_gbps(64), abs=0.01)


def test_read_model_mps_completions():
    r = dma.measure_read(512, 1024, 2, completion=256, latency=30)
    assert r["ok"]
    assert (r["requests"], r["completions"]) == (4, 8)
    # 12 + 256 bytes = 67 DWORDs: straddled, two completions share a beat (9 beats per two).
    assert r["rc_beats"] == 8 * 9 // 2
    assert r["pct_of_ceiling"] <= 100.0


def test_mmio_read_latency_through_the_completer():
    r = dma.measure_mmio_latency(256, reads=2)
    assert r["ok"]
    assert r["latencies"] == [4, 4]  # as measured with cocotb on the hard-IP model


def test_steady_rate_leaves_out_ramp_and_drain():
    steady = list(range(100, 900, 10))
    fast = list(range(10))
    cycles = fast + steady + [900 + c for c in fast]  # 100 events, the middle 80 10 apart
    assert _dma_loopback.steady_rate(cycles) == pytest.approx(100.0)
    assert dma._steady_rate(cycles) > 105  # the drain counts there
    assert _dma_loopback.steady_rate([5] * 12) is None
    assert _dma_loopback.steady_rate([0]) is None


def test_active_queues_spread_over_the_queue_numbers():
    assert _dma_loopback.active_queues(4, 4) == [0, 1, 2, 3]
    assert _dma_loopback.active_queues(256, 16) == list(range(0, 256, 16))
    assert _dma_loopback.active_queues(16, 12) == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]
    for count in (0, 5):
        with pytest.raises(ValueError):
            _dma_loopback.active_queues(4, count)


def test_loopback_small_case():
    latency = 40
    r = _dma_loopback.measure_loopback(256, 64, 4, 12, latency=latency)
    assert r["ok"], r
    assert (r["queues"], r["active_queues"], r["packets"]) == (4, 4, 12)
    assert r["measured_packets"] == 12
    rate = r["per_1000_cycles"]
    # At most one beat per cycle (two beats per 64-byte packet at 256 bit); at least one
    # packet per ten DMA latencies (a packet needs a few DMA round trips, not a stall).
    assert 1000 / (10 * latency) < rate <= 1000 / 2
    assert r["line_rate_pct"] == pytest.approx(100 * rate * 64 / (1000 * 32), abs=0.1)
    # The last completion cannot come before the packets' DMA round trips and beats.
    assert r["cycles"] > 3 * latency + 12 * 2


def test_loopback_phases_share_one_simulation():
    rows = _dma_loopback.measure_loopback_phases(256, 8, [(200, 12), (64, 4, 2)], latency=30)
    assert [(r["size"], r["packets"], r["active_queues"], r["per_queue"]) for r in rows] == [
        (200, 12, 8, 1.5), (64, 4, 2, 2)]
    assert all(r["ok"] for r in rows), rows
    assert rows[0]["per_1000_cycles"] is not None
    assert rows[1]["per_1000_cycles"] is None  # too few packets for a rate
    assert rows[1]["measured_packets"] == 4 and rows[1]["cycles"] > 2 * 30


def test_loopback_section_follows_queues():
    names = [s.name for s in dma.SECTIONS]
    assert names.index("loopback") == names.index("queues") + 1
    assert all(len(_dma_loopback.CASES[mode]) == 6 for mode in ("quick", "full"))


def test_main_writes_json_for_chosen_sections(tmp_path, capsys):
    path = tmp_path / "dma.json"
    status = dma.main(["--json", str(path), "--quick", "--section", "latency"])
    assert status == 0
    results = json.loads(path.read_text())
    assert set(results) == {"quick", "elapsed_s", "latency"}
    assert results["quick"] is True
    rows = results["latency"]
    assert {r["width"] for r in rows} == {256, 512}
    assert all(r["ok"] for r in rows)
    mmio = [r for r in rows if r["path"].startswith("MMIO")]
    assert [r["cycles"] for r in mmio] == [4, 4]
    out = capsys.readouterr().out
    assert "## Latency" in out and "| MMIO read" in out


def test_main_exit_status_on_failure(tmp_path, monkeypatch):
    def bad_rows(quick):
        return [{"x": 1, "ok": False}]

    def broken_rows(quick):
        raise RuntimeError("boom")

    columns = (Column("x", "x"), Column("ok", "ok"))
    for rows in (bad_rows, broken_rows):
        monkeypatch.setattr(dma, "SECTIONS", (Section("write", "t", rows, columns),))
        path = tmp_path / f"{rows.__name__}.json"
        assert dma.main(["--json", str(path), "--quick"]) == 1
        result = json.loads(path.read_text())["write"]
        if rows is broken_rows:
            assert result == {"error": "RuntimeError: boom"}
        else:
            assert result == [{"x": 1, "ok": False}]
