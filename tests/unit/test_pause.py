"""PAUSE / PFC receiver and transmitter (IEEE 802.3 annex 31B, annex 31D / 802.1Qbb).

Frames are built and parsed with scapy's MAC Control layers, and the expected timer, drop and
event behaviour comes from small Python models of the clauses, compared cycle by cycle.
"""

import random

import pytest
from scapy.contrib.mac_control import MACControlClassBasedFlowControl, MACControlPause
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from amnic.mac.pause_rx import PauseReceiver, PauseTimer
from amnic.mac.pause_tx import PauseTransmitter
from amnic.mac.status import FlowControlKind
from amnic.sim.stream_tb import (
    Beat,
    StreamMonitor,
    beats_to_packet,
    packet_to_beats,
    simulate,
)

PAUSE_DST = "01:80:c2:00:00:01"
PEER = "02:11:22:33:44:55"
STATION = 0x02AABBCCDDEE
ALL = 0xFF


# -- frames ------------------------------------------------------------------------------------

def pause_frame(time, dst=PAUSE_DST, src=PEER):
    frame = raw(Ether(dst=dst, src=src) / MACControlPause(pause_time=time))
    assert len(frame) == 60
    return frame


def pfc_frame(times, dst=PAUSE_DST, src=PEER, reserved=0):
    """A PFC frame enabling the priorities in ``times`` (priority -> quanta)."""
    fields = {}
    for p, t in times.items():
        fields[f"c{p}_enabled"] = 1
        fields[f"c{p}_pause_time"] = t
    frame = raw(Ether(dst=dst, src=src) / MACControlClassBasedFlowControl(
        _reserved=reserved, **fields))
    assert len(frame) == 60
    return frame


def data_frame(rng, length):
    """A non-control frame of ``length`` octets (EtherType 0x0800 where it fits)."""
    body = bytes(rng.randrange(256) for _ in range(length))
    if length >= 14:
        body = body[:12] + b"\x08\x00" + body[14:]
    return body


def is_control(frame):
    return len(frame) >= 14 and frame[12:14] == b"\x88\x08"


def classify(frame, bad, station=0):
    """What a receiver should do with ``frame``: a reference model of annex 31B.3 / 31D.3.

    Returns None (not a MAC Control frame it acts on), "malformed", "unknown", or a parsed
    ("pause", time) / ("pfc", class_enable, times) tuple.
    """
    if bad or not is_control(frame):
        return None
    if len(frame) != 60:
        return "malformed"
    pkt = Ether(frame)
    if MACControlPause in pkt:
        op = ("pause", pkt[MACControlPause].pause_time)
    elif MACControlClassBasedFlowControl in pkt:
        layer = pkt[MACControlClassBasedFlowControl]
        cev = sum(getattr(layer, f"c{p}_enabled") << p for p in range(8))
        op = ("pfc", cev, [getattr(layer, f"c{p}_pause_time") for p in range(8)])
    else:
        return "unknown"
    dst = int.from_bytes(frame[:6], "big")
    if dst != 0x0180C2000001 and not (station and dst == station):
        return "malformed"
    return op


def beats_of(frame, width, bad=False):
    """The beats of ``frame`` as payload dicts, ``user`` bit 0 set on the last if ``bad``."""
    return [beat.as_dict() for beat in packet_to_beats(frame, width, int(bad))]


def join_beats(beats, width):
    """Sampled payloads -> list of (frame, user), checking the packet convention."""
    frames, current = [], []
    for payload in beats:
        current.append(Beat.from_payload(payload))
        if current[-1].last:
            frames.append(beats_to_packet(current, width))
            current = []
    return frames


def beat_tuple(beat):
    if isinstance(beat, dict):
        return beat["data"], beat["keep"], beat["last"], beat["user"]
    return beat.data, beat.keep, beat.last, beat.user


# -- receiver ----------------------------------------------------------------------------------

def run_receiver(items, *, width=64, quantum_cycles=8, drop_control=True, gap_rng=None,
                 tail=0, station=0, enables=None):
    """Feed ``items`` (frame, bad) to a PauseReceiver; returns the per-cycle trace.

    ``gap_rng`` inserts random idle cycles inside and between frames. ``enables`` maps a cycle
    to {"rx_pause_enable": v, ...}. Each trace entry records the cycle's inputs and outputs.
    """
    dut = PauseReceiver(width, quantum_cycles=quantum_cycles, drop_control=drop_control)
    schedule = []
    for frame, bad in items:
        for beat in beats_of(frame, width, bad):
            while gap_rng is not None and gap_rng.random() < 0.2:
                schedule.append(None)
            schedule.append((beat, frame, bad))
    schedule += [None] * tail
    trace = []

    async def testbench(ctx):
        ctx.set(dut.station_addr, station)
        for cycle, item in enumerate(schedule):
            for name, value in (enables or {}).get(cycle, {}).items():
                ctx.set(getattr(dut, name), value)
            ctx.set(dut.i.valid, item is not None)
            if item is not None:
                ctx.set(dut.i.payload, item[0])
            assert ctx.get(dut.i.ready) == 1
            trace.append({
                "in": item,
                "o_valid": ctx.get(dut.o.valid),
                "o": ctx.get(dut.o.payload),
                "paused": ctx.get(dut.paused),
                "pfc_paused": ctx.get(dut.pfc_paused),
                "event": ctx.get(dut.event.payload) if ctx.get(dut.event.valid) else None,
                "unknown": ctx.get(dut.unknown_opcode_count),
                "malformed": ctx.get(dut.malformed_count),
            })
            await ctx.tick()

    simulate(dut, [testbench], max_cycles=len(schedule) + 10)
    return trace


def frame_ends(trace):
    """(cycle, frame, bad) for every cycle in which a frame's last beat is on ``i``."""
    return [(c, t["in"][1], t["in"][2]) for c, t in enumerate(trace)
            if t["in"] is not None and t["in"][0]["last"]]


def model_timers(trace, quantum_cycles, station=0, enables=None):
    """Expected (paused, pfc_paused) per cycle: annex 31B.3.1 / 31D.3 timers in cycles."""
    ends = {c: classify(f, b, station) for c, f, b in frame_ends(trace)}
    link, prio = 0, [0] * 8
    pause_en, pfc_en = 1, 1
    expected = []
    for cycle in range(len(trace)):
        en = (enables or {}).get(cycle, {})
        pause_en = en.get("rx_pause_enable", pause_en)
        pfc_en = en.get("rx_pfc_enable", pfc_en)
        expected.append((int(link > 0), sum(int(t > 0) << p for p, t in enumerate(prio))))
        op = ends.get(cycle)
        link = max(link - 1, 0)
        prio = [max(t - 1, 0) for t in prio]
        if isinstance(op, tuple) and op[0] == "pause":
            link = op[1] * quantum_cycles
        if isinstance(op, tuple) and op[0] == "pfc":
            for p in range(8):
                if op[1] >> p & 1:
                    prio[p] = op[2][p] * quantum_cycles
        if not pause_en:
            link = 0
        if not pfc_en:
            prio = [0] * 8
    return expected


def check_timers(trace, quantum_cycles, **kw):
    expected = model_timers(trace, quantum_cycles, **kw)
    actual = [(t["paused"], t["pfc_paused"]) for t in trace]
    for cycle, (exp, act) in enumerate(zip(expected, actual, strict=True)):
        assert act == exp, f"cycle {cycle}: (paused, pfc_paused) {act} != expected {exp}"


def check_events(trace, station=0):
    expected = []
    for c, f, b in frame_ends(trace):
        op = classify(f, b, station)
        if isinstance(op, tuple):
            kind = FlowControlKind.PAUSE if op[0] == "pause" else FlowControlKind.PFC
            expected.append((c + 1, kind, ALL if op[0] == "pause" else op[1]))
    actual = [(c, t["event"].kind, t["event"].priorities)
              for c, t in enumerate(trace) if t["event"] is not None]
    assert actual == expected


def output_frames(trace, width):
    return join_beats([t["o"] for t in trace if t["o_valid"]], width)


@pytest.mark.parametrize("quantum_cycles", [8, 64])
def test_rx_pause_start_reload_expire_xon(quantum_cycles):
    items = [
        (pause_frame(5), False),        # starts the timer
        (data_frame(random.Random(1), 100), False),
        (pause_frame(3), False),        # reloads it (shorter) before it runs out
    ]
    trace = run_receiver(items, quantum_cycles=quantum_cycles, tail=5 * quantum_cycles)
    ends = [c for c, _, _ in frame_ends(trace)]
    paused = [t["paused"] for t in trace]
    # Exactly quanta * quantum_cycles cycles from the cycle after the last beat of the reload.
    assert paused[: ends[0] + 1] == [0] * (ends[0] + 1)
    assert all(paused[ends[0] + 1 : ends[2] + 1])
    stop = ends[2] + 1 + 3 * quantum_cycles
    assert paused[ends[2] + 1 : stop] == [1] * (3 * quantum_cycles)
    assert paused[stop:] == [0] * (len(paused) - stop)
    check_timers(trace, quantum_cycles)
    check_events(trace)

    # A long pause ended early by XON (time 0).
    trace = run_receiver([(pause_frame(0xFFFF), False), (pause_frame(0), False)], tail=20,
                         quantum_cycles=quantum_cycles)
    ends = [c for c, _, _ in frame_ends(trace)]
    paused = [t["paused"] for t in trace]
    assert paused[ends[0] + 1 : ends[1] + 1] == [1] * (ends[1] - ends[0])
    assert paused[ends[1] + 1 :] == [0] * (len(paused) - ends[1] - 1)
    check_events(trace)


def test_pause_timer_full_range():
    """0xFFFF quanta (the largest pause_time) lasts 0xFFFF * quantum_cycles cycles."""
    dut = PauseTimer(quantum_cycles=2)

    async def testbench(ctx):
        ctx.set(dut.quanta, 0xFFFF)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        cycles = 0
        while ctx.get(dut.active):
            cycles += 1
            await ctx.tick()
        assert cycles == 0xFFFF * 2

    simulate(dut, [testbench], max_cycles=0xFFFF * 2 + 10)


def test_rx_pfc_per_priority():
    rng = random.Random(2)
    items = []
    for _ in range(12):
        times = {p: rng.choice([0, 1, 2, 5, 9]) for p in range(8) if rng.random() < 0.5}
        items.append((pfc_frame(times, reserved=rng.choice([0, 0xA5])), False))
        for _ in range(rng.randrange(3)):
            items.append((data_frame(rng, rng.randrange(14, 120)), False))
    trace = run_receiver(items, gap_rng=random.Random(3), tail=100)
    check_timers(trace, 8)
    check_events(trace)
    assert any(t["pfc_paused"] not in (0, ALL) for t in trace)
    assert not any(t["paused"] for t in trace)


def test_rx_ignores_bad_and_malformed():
    good = pause_frame(7)
    unknown = bytearray(good)
    unknown[14:16] = b"\x00\x02"  # an opcode other than PAUSE/PFC (annex 31A)
    items = [
        (good, True),  # bad FCS
        (pfc_frame({0: 9, 3: 9}), True),
        (good[:59], False),  # one octet short
        (good + b"\x00", False),  # one octet long
        (good + bytes(4), False),
        (good[:15], False),
        (pause_frame(7, dst="01:80:c2:00:00:02"), False),
        (pfc_frame({1: 4}, dst="ff:ff:ff:ff:ff:ff"), False),
        (pause_frame(7, dst="02:aa:bb:cc:dd:ee"), False),  # station address not configured
        (pause_frame(7, dst="00:00:00:00:00:00"), False),  # ... so 0 must not match either
        (bytes(unknown), False),
        (bytes(unknown[:40]), False),
        (data_frame(random.Random(4), 5), False),  # a runt after a control frame's EtherType
    ]
    trace = run_receiver(items, tail=10)
    assert not any(t["paused"] or t["pfc_paused"] or t["event"] is not None for t in trace)
    kinds = [classify(f, b) for f, b in items]
    assert trace[-1]["unknown"] == kinds.count("unknown") == 1
    assert trace[-1]["malformed"] == kinds.count("malformed") == 9
    # The same frames addressed to the configured station address are obeyed.
    trace = run_receiver(items[8:9], tail=60, station=STATION)
    check_timers(trace, 8, station=STATION)
    assert sum(t["paused"] for t in trace) == 7 * 8
    check_events(trace, station=STATION)


def test_rx_enables():
    items = [(pause_frame(20), False), (pfc_frame({2: 20}), False),
             (data_frame(random.Random(5), 200), False), (pause_frame(20), False)]
    enables = {0: {"rx_pause_enable": 0}, 40: {"rx_pause_enable": 1, "rx_pfc_enable": 0}}
    trace = run_receiver(items, tail=200, enables=enables)
    check_timers(trace, 8, enables=enables)
    check_events(trace)  # events are reported whether or not they are obeyed
    assert any(t["paused"] for t in trace)
    assert not any(t["pfc_paused"] for t in trace[41:])


def random_traffic(rng, count):
    items = []
    for _ in range(count):
        choice = rng.random()
        if choice < 0.2:
            items.append((pause_frame(rng.randrange(1, 4)), rng.random() < 0.2))
        elif choice < 0.3:
            items.append((pfc_frame({rng.randrange(8): rng.randrange(4)}), False))
        elif choice < 0.35:
            items.append((pause_frame(2)[: rng.randrange(14, 70)], False))
        else:
            length = rng.choice([rng.randrange(1, 20), rng.randrange(20, 300)])
            items.append((data_frame(rng, length), rng.random() < 0.1))
    return items


def model_drop_timing(trace, width):
    """Cycles in which the passed beats should appear on ``o`` (minimal added latency).

    A beat can leave once it has arrived, its frame's octet 13 (or last beat) has arrived, and
    the beat before it (passed or dropped) has left: leave = max(arrival, decision, previous+1).
    """
    decision_beat = 13 // (width // 8)
    arrivals = []  # (arrival cycle, frame serial, index in frame, passed)
    serial, index = 0, 0
    for cycle, t in enumerate(trace):
        if t["in"] is not None:
            beat, frame, _ = t["in"]
            arrivals.append((cycle, serial, index, not is_control(frame)))
            index += 1
            if beat["last"]:
                serial, index = serial + 1, 0
    # Decided by the beat with octet 13, or by the last beat of a shorter frame.
    decision = {}
    for cycle, serial, index, _ in arrivals:
        if index <= decision_beat:
            decision[serial] = cycle
    leaves, previous = [], -1
    for cycle, serial, _, passed in arrivals:
        leave = max(cycle, decision[serial], previous + 1)
        previous = leave
        if passed:
            leaves.append(leave)
    return leaves


@pytest.mark.parametrize("width", [8, 32, 64, 128])
def test_rx_drop_control_frames(width):
    rng = random.Random(width)
    items = random_traffic(rng, 60 if width > 8 else 25)
    trace = run_receiver(items, width=width, gap_rng=random.Random(width + 1), tail=20)
    expected = [(f, int(b)) for f, b in items if not is_control(f)]
    assert output_frames(trace, width) == expected
    assert [c for c, t in enumerate(trace) if t["o_valid"]] == model_drop_timing(trace, width)
    assert len(expected) < len(items)
    check_timers(trace, 8)
    check_events(trace)


def test_rx_drop_latency_and_passthrough():
    rng = random.Random(7)
    items = random_traffic(rng, 40)
    # Back to back at 64 bits: every passed beat appears exactly one cycle later.
    trace = run_receiver(items, tail=4)
    for cycle, t in enumerate(trace[:-1]):
        if t["in"] is not None and not is_control(t["in"][1]):
            after = trace[cycle + 1]
            assert after["o_valid"], f"cycle {cycle + 1}: beat missing"
            assert beat_tuple(after["o"]) == beat_tuple(t["in"][0])
    # Without drop_control: ``o`` is ``i`` in the same cycle, control frames included.
    trace = run_receiver(items, drop_control=False, gap_rng=random.Random(8))
    for t in trace:
        assert t["o_valid"] == (t["in"] is not None)
        if t["in"] is not None:
            assert beat_tuple(t["o"]) == beat_tuple(t["in"][0])
    assert output_frames(trace, 64) == [(f, int(b)) for f, b in items]
    check_events(trace)


# -- transmitter -------------------------------------------------------------------------------

def run_transmitter(user_frames, cycles, *, width=64, schedule=None, ready_rng=None,
                    gap_rng=None, station=STATION):
    """Drive a PauseTransmitter for ``cycles`` cycles.

    ``user_frames`` is a list of (frame, user) sent on ``i`` in order (a beat is held until
    accepted; ``gap_rng`` idles between beats). ``schedule`` maps a cycle to input settings.
    Returns the per-cycle trace and the frames sent on ``o`` as (cycle of the first beat's
    transfer, frame, user); the monitor on ``o`` checks that a stalled beat is held unchanged.
    """
    dut = PauseTransmitter(width)
    pending = [(beat, k == 0) for frame, bad in user_frames
               for k, beat in enumerate(beats_of(frame, width, bad))]
    monitor = StreamMonitor(dut.o, name="o")
    trace = []

    async def testbench(ctx):
        ctx.set(dut.station_addr, station)
        presenting = False
        for cycle in range(cycles):
            for name, value in (schedule or {}).get(cycle, {}).items():
                ctx.set(getattr(dut, name), value)
            if not presenting and pending and (gap_rng is None or gap_rng.random() >= 0.3):
                presenting = True
            ctx.set(dut.i.valid, presenting)
            if presenting:
                ctx.set(dut.i.payload, pending[0][0])
            ctx.set(dut.o.ready, 1 if ready_rng is None else int(ready_rng.random() < 0.7))
            taken = presenting and ctx.get(dut.i.ready)
            trace.append({
                "paused": ctx.get(dut.paused),
                "starts_user_frame": bool(taken and pending[0][1]),
                "event": ctx.get(dut.event.payload) if ctx.get(dut.event.valid) else None,
            })
            if taken:
                pending.pop(0)
                presenting = False
            await ctx.tick()
        assert not pending, "user frames left unsent"

    simulate(dut, [testbench], background=[monitor.run], max_cycles=cycles + 10)
    sent = [(first, frame, user) for (frame, user), first, _ in monitor.packet_spans()]
    return trace, sent


def parse_control(frame, station=STATION):
    """Check a generated control frame with scapy; returns ("pause", time) or ("pfc", cev, times).
    """
    assert len(frame) == 60
    pkt = Ether(frame)
    assert pkt.dst == PAUSE_DST
    assert pkt.src == ":".join(f"{b:02x}" for b in station.to_bytes(6, "big"))
    assert pkt.type == 0x8808
    if MACControlPause in pkt:
        assert frame[18:] == bytes(42)
        return ("pause", pkt[MACControlPause].pause_time)
    layer = pkt[MACControlClassBasedFlowControl]
    assert layer._reserved == 0 and frame[34:] == bytes(26)
    assert Raw not in pkt or bytes(pkt[Raw]) == bytes(26)
    cev = sum(getattr(layer, f"c{p}_enabled") << p for p in range(8))
    times = [getattr(layer, f"c{p}_pause_time") for p in range(8)]
    return ("pfc", cev, times)


def split_sent(frames):
    control = [(c, parse_control(f)) for c, f, _ in frames if is_control(f)]
    user = [(f, u) for _, f, u in frames if not is_control(f)]
    return control, user


def check_tx_events(trace, control):
    events = [(t["event"].kind, t["event"].priorities) for t in trace if t["event"] is not None]
    expected = [(FlowControlKind.PAUSE, ALL) if op[0] == "pause" else (FlowControlKind.PFC, op[1])
                for _, op in control]
    assert events == expected


def test_tx_xoff_refresh_xon_timing():
    schedule = {0: {"refresh_cycles": 50, "pause_quanta": 0x1234},
                5: {"pause_req": 1}, 180: {"pause_req": 0}}
    trace, sent = run_transmitter([], 220, schedule=schedule)
    control, user = split_sent(sent)
    assert user == []
    assert control == [(6, ("pause", 0x1234)), (56, ("pause", 0x1234)),
                       (106, ("pause", 0x1234)), (156, ("pause", 0x1234)), (181, ("pause", 0))]
    check_tx_events(trace, control)
    # The event follows the last of the 8 beats.
    assert [c for c, t in enumerate(trace) if t["event"] is not None] == [c + 8 for c, _ in control]


def test_tx_pfc_sequence():
    q = 0x0456
    schedule = {0: {"refresh_cycles": 50, "pause_quanta": q},
                5: {"pfc_req": 0b101}, 30: {"pfc_req": 0b100}, 100: {"pfc_req": 0}}
    trace, sent = run_transmitter([], 140, schedule=schedule)
    control, _ = split_sent(sent)
    assert control == [
        (6, ("pfc", 0b101, [q, 0, q, 0, 0, 0, 0, 0])),
        (31, ("pfc", 0b101, [0, 0, q, 0, 0, 0, 0, 0])),   # priority 0 released, 2 kept
        (81, ("pfc", 0b100, [0, 0, q, 0, 0, 0, 0, 0])),   # refresh
        (101, ("pfc", 0b100, [0] * 8)),                   # XON
    ]
    check_tx_events(trace, control)


def test_tx_enables_and_short_requests():
    rng = random.Random(11)
    long_frame = data_frame(rng, 400)
    schedule = {
        0: {"tx_pause_enable": 0, "tx_pfc_enable": 0, "pause_req": 1, "pfc_req": 0xFF},
        20: {"pause_req": 0, "pfc_req": 0, "tx_pause_enable": 1, "tx_pfc_enable": 1},
        # Raised and dropped while a user frame is being sent: nothing to tell the partner.
        30: {"pause_req": 1}, 35: {"pause_req": 0},
        120: {"pfc_req": 0x80}, 140: {"tx_pfc_enable": 0},  # disabling releases the partner
    }
    trace, sent = run_transmitter([(long_frame, 0)], 200, schedule=schedule)
    control, user = split_sent(sent)
    assert user == [(long_frame, 0)]
    assert control == [(121, ("pfc", 0x80, [0] * 7 + [0xFFFF])), (141, ("pfc", 0x80, [0] * 8))]


def test_tx_paused_holds_user_frames():
    rng = random.Random(12)
    frames = [(data_frame(rng, 400), 0), (data_frame(rng, 64), 1), (data_frame(rng, 70), 0)]
    schedule = {10: {"paused": 1}, 80: {"pause_req": 1}, 150: {"paused": 0}}
    trace, sent = run_transmitter(frames, 220, schedule=schedule)
    control, user = split_sent(sent)
    assert user == frames
    # The frame in progress when ``paused`` rose completed; the next waited for it to fall,
    # and the XOFF went out while paused.
    starts = [c for c, f, _ in sent if not is_control(f)]
    assert starts[0] == 1 and starts[1] > 150
    assert control[0] == (81, ("pause", 0xFFFF))
    assert not any(t["starts_user_frame"] for t in trace if t["paused"])


@pytest.mark.parametrize("width", [8, 64])
def test_tx_random_traffic(width):
    rng = random.Random(100 + width)
    count = 10 if width == 8 else 50
    frames = [(data_frame(rng, rng.choice([rng.randrange(1, 64), rng.randrange(64, 300)])),
               int(rng.random() < 0.1)) for _ in range(count)]
    cycles = 2600 if width == 64 else 5000
    quiet = cycles - 400  # all requests released from here on
    schedule = {0: {"refresh_cycles": 150}}

    def at(cycle, **settings):
        schedule.setdefault(cycle, {}).update(settings)

    for _ in range(10):
        start = rng.randrange(quiet - 300)
        at(start, paused=1)
        at(start + rng.randrange(10, 200), paused=0)
    for _ in range(20):
        cycle = rng.randrange(quiet)
        at(cycle, **rng.choice([{"pause_req": rng.randrange(2)}, {"pfc_req": rng.randrange(256)},
                                {"pause_quanta": rng.randrange(1, 1 << 16)}]))
    at(rng.randrange(quiet // 2), pause_req=1)
    at(rng.randrange(quiet // 2), pfc_req=rng.randrange(1, 256))
    at(quiet, pause_req=0, pfc_req=0)
    trace, sent = run_transmitter(frames, cycles, width=width, schedule=schedule,
                            ready_rng=random.Random(1), gap_rng=random.Random(2))
    control, user = split_sent(sent)
    assert user == frames
    assert any(op[0] == "pfc" for _, op in control) and any(op[0] == "pause" for _, op in control)
    check_tx_events(trace, control)
    assert not any(t["starts_user_frame"] for t in trace if t["paused"])
    # The link partner, following the frames in order, ends up released on every priority.
    link, prio = False, [False] * 8
    for _, op in control:
        if op[0] == "pause":
            link = op[1] > 0
        else:
            for p in range(8):
                if op[1] >> p & 1:
                    prio[p] = op[2][p] > 0
    assert not link and not any(prio)
