# amaranth: UnusedElaboratable=no
"""TlpArbiter: whole TLPs, each source in order, round robin, no idle cycle between TLPs."""

import random

from amaranth.sim import Simulator

from amnic.dma.axis import Bus, TlpStreamSignature
from amnic.dma.tlp_mux import TlpArbiter


def run(n, tlps_per_source, gap, ready, seed):
    rng = random.Random(seed)
    dut = TlpArbiter(TlpStreamSignature(Bus.RQ, 256), n)
    sources = [[(k, t, rng.randrange(1, 5)) for t in range(tlps_per_source)] for k in range(n)]
    out = []  # (source, tlp, beat, last, cycle)
    cycle = [0]

    def feeder(k):
        async def bench(ctx):
            port = dut.inputs[k]
            for src, t, beats in sources[k]:
                for b in range(beats):
                    ctx.set(port.payload, {"data": src << 16 | t << 4 | b, "keep": 0xFF,
                                           "last": b == beats - 1})
                    ctx.set(port.valid, 1)
                    await ctx.tick().until(port.ready)
                    ctx.set(port.valid, 0)
                    while rng.random() < gap:
                        await ctx.tick()
        return bench

    async def sink(ctx):
        while True:
            r = rng.random() < ready
            ctx.set(dut.o.ready, r)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            cycle[0] += 1
            if valid and r:
                out.append((payload.data >> 16, payload.data >> 4 & 0xFFF, payload.data & 15,
                            payload.last, cycle[0]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for k in range(n):
        sim.add_testbench(feeder(k))
    sim.add_testbench(sink, background=True)
    sim.run()
    return sources, out


def tlps_of(out):
    """Group output beats into TLPs, asserting no interleaving."""
    tlps, current = [], []
    for src, t, b, last, _ in out:
        if current:
            assert (src, t) == current[0][:2], "TLPs interleaved"
        current.append((src, t, b))
        if last:
            tlps.append(current)
            current = []
    assert not current
    return tlps


def test_whole_tlps_in_order_per_source():
    for seed in range(3):
        sources, out = run(3, 40, gap=0.4, ready=0.7, seed=seed)
        tlps = tlps_of(out)
        for k in range(3):
            mine = [t for t in tlps if t[0][0] == k]
            assert [(t[0][1], len(t)) for t in mine] == [(tl, beats) for _, tl, beats in
                                                        sources[k]]
            for t in mine:
                assert [b for _, _, b in t] == list(range(len(t)))


def test_round_robin_and_no_bubbles():
    sources, out = run(2, 30, gap=0.0, ready=1.0, seed=9)
    tlps = tlps_of(out)
    order = [t[0][0] for t in tlps]
    assert order[:40] == [0, 1] * 20  # both always waiting: strict alternation
    cycles = [c for *_, c in out]
    assert cycles[-1] - cycles[0] == len(cycles) - 1  # one beat in every cycle
