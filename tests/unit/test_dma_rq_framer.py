# amaranth: UnusedElaboratable=no
"""RequestFramer: requests (descriptor beside the payload) framed as TLPs on the RQ bus, at 256
and 512 bit, straddled and not.

Random requests go in; the hard-IP beats that come out are read the way the integrated block
reads them (:func:`amnic.sim.pcie_straddle.straddled_tlps` at 512 bit: ``is_sop``/``is_eop``
and their pointers; ``tlast`` and ``tkeep`` at 256 bit) and must give back every request as one
TLP, descriptor then payload, with its byte enables; the throughput is counted in cycles.
"""

import random

import pytest

from amnic.dma.axis import Bus, user_layout
from amnic.dma.descriptors import RequesterRequest
from amnic.dma.rq_framer import RequestFramer
from amnic.sim.pcie_straddle import StraddledTlp, straddled_tlps, tlast_tlps
from amnic.sim.stream_tb import put, simulate

DESCRIPTOR = RequesterRequest.as_shape()


def random_requests(rng, count, dwords):
    """``count`` requests: (descriptor DWORDs, payload DWORDs, first_be, last_be, discontinue)."""
    requests = []
    for _ in range(count):
        n = rng.choice([0, 0, rng.randint(1, 8), rng.randint(1, 3 * dwords), 4, 8, 12, 16, 64])
        requests.append(([rng.getrandbits(32) for _ in range(4)],
                         [rng.getrandbits(32) for _ in range(n)],
                         rng.getrandbits(4), rng.getrandbits(4), rng.random() < 0.05))
    return requests


def run(width, straddle, requests, *, idle_prob=0.0, ready_prob=1.0, seed=0):
    """Send ``requests``; return the TLPs read off the bus, the beats and the input cycles."""
    rng = random.Random(seed)
    dwords = width // 32
    dut = RequestFramer(width, straddle=straddle)
    beats, taken, sent = [], [], []

    async def source(ctx):
        for desc, payload, first_be, last_be, discontinue in requests:
            count = max(1, -(-len(payload) // dwords))
            for b in range(count):
                chunk = payload[b * dwords:(b + 1) * dwords]
                last = b == count - 1
                await put(ctx, dut.i, {
                    "descriptor": DESCRIPTOR.from_bits(
                        sum(w << 32 * k for k, w in enumerate(desc))),
                    # Junk in the top DWORD when it is not payload: it must not show.
                    "data": sum(w << 32 * k for k, w in enumerate(chunk)) |
                    (rng.getrandbits(32) << 32 * (dwords - 1) if len(chunk) < dwords else 0),
                    "keep": (1 << len(chunk)) - 1, "last": last,
                    "side": {"first_be": first_be, "last_be": last_be,
                             "discontinue": discontinue and last},
                }, idle_prob=idle_prob, rng=rng)
        sent.append(True)

    async def sink(ctx):
        cycle = 0
        while True:
            ctx.set(dut.o.tready, rng.random() < ready_prob)
            _, _, valid, ready, tdata, tkeep, tuser, tlast, iv, ir = await ctx.tick().sample(
                dut.o.tvalid, dut.o.tready, dut.o.tdata, dut.o.tkeep, dut.o.tuser, dut.o.tlast,
                dut.i.valid, dut.i.ready)
            if valid and ready:
                beats.append((cycle, tdata, tkeep, tuser.as_value().value, tlast))
            if iv and ir:
                taken.append(cycle)
            cycle += 1

    async def done(ctx):
        want = sum(4 + len(p) for _, p, *_ in requests)
        while sum(bin(b[2]).count("1") for b in beats) < want:
            await ctx.tick()
        await ctx.tick().repeat(8)

    simulate(dut, [done], background=[source, sink], max_cycles=40 * len(requests) + 200)
    if width == 512:
        tlps = straddled_tlps([b[1:4] for b in beats], Bus.RQ)
    else:
        tlps = tlast_tlps([b[1:] for b in beats], width, Bus.RQ)
    if straddle is False and width == 512:
        assert all(user_layout(Bus.RQ, 512).from_bits(b[3]).is_sop_ptr[0] == 0 for b in beats)
        assert all(user_layout(Bus.RQ, 512).from_bits(b[3]).is_sop in (0, 1) for b in beats)
    return tlps, [b[0] for b in beats], taken


def expected(requests):
    return [StraddledTlp(d + p, f, la, bool(x)) for d, p, f, la, x in requests]


CONFIGS = [(256, False), (512, False), (512, True)]


@pytest.mark.parametrize(("width", "straddle"), CONFIGS)
@pytest.mark.parametrize(("idle_prob", "ready_prob"), [(0.0, 1.0), (0.3, 1.0), (0.0, 0.6),
                                                       (0.4, 0.5)])
def test_requests_come_out_as_tlps(width, straddle, idle_prob, ready_prob):
    requests = random_requests(random.Random(width + straddle), 300, width // 32)
    tlps, _, _ = run(width, straddle, requests, idle_prob=idle_prob, ready_prob=ready_prob,
                     seed=11)
    assert tlps == expected(requests)


@pytest.mark.parametrize(("width", "straddle", "cycles_per_two"),
                         [(256, False, 18), (512, False, 10), (512, True, 9)])
def test_back_to_back_writes(width, straddle, cycles_per_two):
    """Aligned 256-byte writes (4 + 64 DWORDs) with the input always there: 9 beats each at
    256 bit, 5 at 512 bit, 4.5 straddled; no idle cycle on the bus."""
    rng = random.Random(3)
    requests = [([rng.getrandbits(32) for _ in range(4)],
                 [rng.getrandbits(32) for _ in range(64)], 0xF, 0xF, False) for _ in range(64)]
    tlps, cycles, _ = run(width, straddle, requests)
    assert tlps == expected(requests)
    assert len(cycles) == 32 * cycles_per_two
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))


@pytest.mark.parametrize(("width", "straddle", "per_beat"),
                         [(256, False, 1), (512, False, 1), (512, True, 2)])
def test_back_to_back_reads(width, straddle, per_beat):
    """Read requests (4 DWORDs, no payload): one taken per cycle; straddled, two to a beat."""
    requests = [([k, 0, 0, 0], [], 0xF, 0x0, False) for k in range(40)]
    tlps, cycles, taken = run(width, straddle, requests)
    assert tlps == expected(requests)
    assert len(cycles) == 40 // per_beat
    assert taken == list(range(taken[0], taken[0] + 40))


def test_straddle_needs_512_bit():
    with pytest.raises(ValueError):
        RequestFramer(256, straddle=True)
