"""AxiLiteToRegisterBus: every access exactly once, in order, with the right response.

The AXI4-Lite master is five independent testbenches (one per channel) with random delays, so
write address and data arrive in every order and reads overlap writes. The register-bus target
is a Python register file that stalls ``ready`` and delays ``done`` at random and reports
``error`` for an unmapped address range.
"""

import gc
import random
import warnings

import pytest
from amaranth.sim import Simulator

from amnic.cli.export import axi_ports
from amnic.sim.stream_tb import simulate
from amnic.stream.axil import AxiLiteToRegisterBus, AxiResp, RegisterBusToAxiLite

ERROR_BASE = 0xF000  # the target reports an error at and above this address


async def channel_put(ctx, valid, ready, fields, *, idle_prob, rng):
    """Drive one AXI channel transfer of ``fields`` (``(signal, value)`` pairs) until ``ready``."""
    while rng.random() < idle_prob:
        await ctx.tick()
    for sig, value in fields:
        ctx.set(sig, value)
    ctx.set(valid, 1)
    while True:
        _, _, r = await ctx.tick().sample(ready)
        if r:
            break
    ctx.set(valid, 0)


async def channel_get(ctx, valid, ready, fields, *, ready_prob, rng):
    """Take one AXI channel transfer with random ``ready``; return the sampled ``fields``."""
    while True:
        r = rng.random() < ready_prob
        ctx.set(ready, r)
        _, _, v, *values = await ctx.tick().sample(valid, *fields)
        if r and v:
            ctx.set(ready, 0)
            return values


class RegisterFile:
    """Register-bus target model; logs every access it performs, in order."""

    def __init__(self, bus, data_width, rng, *, ready_prob=0.6, latencies=(0, 0, 1, 2, 4)):
        self.bus = bus
        self.data_width = data_width
        self.rng = rng
        self.ready_prob = ready_prob
        self.latencies = latencies
        self.words = {}
        self.log = []  # ("w", addr, data, strb, error) or ("r", addr, data, error)

    def perform(self, write, addr, wdata, wstrb):
        error = addr >= ERROR_BASE
        word = self.words.get(addr, 0)
        if write:
            if not error:
                for k in range(self.data_width // 8):
                    if wstrb >> k & 1:
                        mask = 0xFF << (8 * k)
                        word = (word & ~mask) | (wdata & mask)
                self.words[addr] = word
            self.log.append(("w", addr, wdata, wstrb, error))
            return 0, error
        rdata = self.rng.getrandbits(self.data_width) if error else word
        self.log.append(("r", addr, rdata, error))
        return rdata, error

    async def run(self, ctx):
        bus = self.bus
        pending = None  # [cycles left, rdata, error]
        held = None  # request seen with valid but not yet taken
        while True:
            ctx.set(bus.ready, 0)
            ctx.set(bus.done, 0)
            valid = ctx.get(bus.valid)
            req = (ctx.get(bus.write), ctx.get(bus.addr), ctx.get(bus.wdata), ctx.get(bus.wstrb))
            if pending is not None:
                assert not valid, "new request before the previous one was done"
                pending[0] -= 1
                if pending[0] == 0:
                    self.respond(ctx, pending[1], pending[2])
                    pending = None
            elif valid:
                if held is not None:
                    assert req == held, "request changed while waiting for ready"
                held = req
                if self.rng.random() < self.ready_prob:
                    ctx.set(bus.ready, 1)
                    held = None
                    rdata, error = self.perform(*req)
                    latency = self.rng.choice(self.latencies)
                    if latency == 0:
                        self.respond(ctx, rdata, error)
                    else:
                        pending = [latency, rdata, error]
            await ctx.tick()

    def respond(self, ctx, rdata, error):
        ctx.set(self.bus.done, 1)
        ctx.set(self.bus.rdata, rdata)
        ctx.set(self.bus.error, error)


def random_addr(rng, addr_width, word_bytes):
    if rng.random() < 0.15:
        return ERROR_BASE + word_bytes * rng.randrange(((1 << addr_width) - ERROR_BASE)
                                                       // word_bytes)
    return word_bytes * rng.randrange(64)


def run_random(seed, data_width, n_writes, n_reads, *, idle, ready, target_ready=0.6,
               latencies=(0, 0, 1, 2, 4)):
    rng = random.Random(seed)
    addr_width = 16
    word_bytes = data_width // 8
    dut = AxiLiteToRegisterBus(addr_width, data_width)
    axi = dut.s_axil
    writes = [(random_addr(rng, addr_width, word_bytes), rng.getrandbits(data_width),
               rng.randrange(1, 1 << word_bytes)) for _ in range(n_writes)]
    reads = [random_addr(rng, addr_width, word_bytes) for _ in range(n_reads)]
    target = RegisterFile(dut.bus, data_width, random.Random(seed + 1), ready_prob=target_ready,
                          latencies=latencies)
    b_resps, r_resps = [], []
    handshake = {"aw": [], "w": []}

    cycle = [0]  # edges so far; the counter runs after the channel testbenches at each edge

    def put_channel(name, valid, ready_sig, items):
        async def tb(ctx):
            r = random.Random(seed * 8 + len(name) + (name == "ar"))
            for fields in items:
                # Mix short and long pauses so that either channel of a write can come first.
                pause = r.choice((0.0, idle, 0.95)) if idle else 0.0
                await channel_put(ctx, valid, ready_sig, fields, idle_prob=pause, rng=r)
                handshake.setdefault(name, []).append(cycle[0])
        return tb

    async def clock_counter(ctx):
        while True:
            await ctx.tick()
            cycle[0] += 1

    aw_items = [[(axi.awaddr, a), (axi.awprot, rng.getrandbits(3))] for a, _, _ in writes]
    w_items = [[(axi.wdata, d), (axi.wstrb, s)] for _, d, s in writes]
    ar_items = [[(axi.araddr, a), (axi.arprot, rng.getrandbits(3))] for a in reads]

    async def b_sink(ctx):
        r = random.Random(seed + 2)
        for _ in writes:
            b_resps.append(*await channel_get(ctx, axi.bvalid, axi.bready, [axi.bresp],
                                              ready_prob=ready, rng=r))

    async def r_sink(ctx):
        r = random.Random(seed + 3)
        for _ in reads:
            r_resps.append(tuple(await channel_get(ctx, axi.rvalid, axi.rready,
                                                   [axi.rdata, axi.rresp], ready_prob=ready,
                                                   rng=r)))

    simulate(dut, [put_channel("aw", axi.awvalid, axi.awready, aw_items),
                   put_channel("w", axi.wvalid, axi.wready, w_items),
                   put_channel("ar", axi.arvalid, axi.arready, ar_items), b_sink, r_sink],
             background=[target.run, clock_counter])

    done_writes = [(a, d, s) for kind, a, d, s, *_ in (e for e in target.log if e[0] == "w")]
    done_reads = [e for e in target.log if e[0] == "r"]
    assert done_writes == writes, "writes performed differ from writes issued"
    assert [e[1] for e in done_reads] == reads, "reads performed differ from reads issued"
    assert b_resps == [AxiResp.SLVERR.value if a >= ERROR_BASE else AxiResp.OKAY.value
                       for a, _, _ in writes]
    for n, ((rdata, rresp), (_, addr, data, error)) in enumerate(
            zip(r_resps, done_reads, strict=True)):
        assert rresp == (AxiResp.SLVERR.value if error else AxiResp.OKAY.value), f"read {n}"
        assert error == (addr >= ERROR_BASE)
        assert rdata == data, f"read {n} of {addr:#x}: got {rdata:#x}, target gave {data:#x}"
    return target, handshake


@pytest.mark.parametrize("data_width", [32, 64])
def test_random_ordering(data_width):
    _, handshake = run_random(1 + data_width, data_width, 120, 120, idle=0.5, ready=0.5)
    pairs = list(zip(handshake["aw"], handshake["w"], strict=True))
    assert any(a < w for a, w in pairs), "address before data never happened"
    assert any(a > w for a, w in pairs), "data before address never happened"
    assert any(a == w for a, w in pairs), "address and data together never happened"


def test_back_to_back_no_starvation():
    """Masters that never pause: reads and writes both make progress (they alternate)."""
    target, _ = run_random(7, 32, 40, 40, idle=0.0, ready=1.0, target_ready=1.0,
                           latencies=(0,))
    kinds = [e[0] for e in target.log]
    assert kinds[:20].count("r") >= 8 and kinds[:20].count("w") >= 8, kinds[:20]


def test_read_after_write_data():
    """Reads issued after a write's response see the written bytes (wstrb honoured)."""
    dut = AxiLiteToRegisterBus(16, 32)
    axi = dut.s_axil
    target = RegisterFile(dut.bus, 32, random.Random(3))
    rng = random.Random(4)
    model = {}
    results = []

    async def master(ctx):
        for _ in range(40):
            addr = 4 * rng.randrange(8)
            data, strb = rng.getrandbits(32), rng.randrange(16)
            await channel_put(ctx, axi.awvalid, axi.awready, [(axi.awaddr, addr)], idle_prob=0,
                              rng=rng)
            await channel_put(ctx, axi.wvalid, axi.wready, [(axi.wdata, data), (axi.wstrb, strb)],
                              idle_prob=0, rng=rng)
            (bresp,) = await channel_get(ctx, axi.bvalid, axi.bready, [axi.bresp],
                                         ready_prob=0.7, rng=rng)
            assert bresp == AxiResp.OKAY.value
            word = model.get(addr, 0)
            for k in range(4):
                if strb >> k & 1:
                    word = (word & ~(0xFF << 8 * k)) | (data & (0xFF << 8 * k))
            model[addr] = word
            raddr = 4 * rng.randrange(8)
            await channel_put(ctx, axi.arvalid, axi.arready, [(axi.araddr, raddr)], idle_prob=0,
                              rng=rng)
            rdata, rresp = await channel_get(ctx, axi.rvalid, axi.rready,
                                             [axi.rdata, axi.rresp], ready_prob=0.7, rng=rng)
            results.append((rdata, model.get(raddr, 0)))
            assert rresp == AxiResp.OKAY.value

    simulate(dut, [master], background=[target.run])
    assert all(got == want for got, want in results)
    assert any(want for _, want in results)


def _port_directions():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # axi_ports() builds a wrapper it does not elaborate
        names = {p.name: p.direction for p in axi_ports(AxiLiteToRegisterBus(16, 32))}
        gc.collect()
    return names


SLAVE_INPUTS = ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr",
                "arprot", "arvalid", "rready")
SLAVE_OUTPUTS = ("awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid")
BUS_OUTPUTS = ("addr", "write", "wdata", "wstrb", "valid")
BUS_INPUTS = ("ready", "rdata", "error", "done")


def test_port_names():
    names = _port_directions()
    expected = {f"s_axil_{sig}" for sig in SLAVE_INPUTS + SLAVE_OUTPUTS}
    expected |= {f"bus_{sig}" for sig in BUS_OUTPUTS + BUS_INPUTS}
    assert expected <= set(names)


def test_port_directions():
    names = _port_directions()
    for sig in SLAVE_INPUTS:
        assert names[f"s_axil_{sig}"] == "input", sig
    for sig in SLAVE_OUTPUTS:
        assert names[f"s_axil_{sig}"] == "output", sig
    for sig in BUS_OUTPUTS:
        assert names[f"bus_{sig}"] == "output", sig
    for sig in BUS_INPUTS:
        assert names[f"bus_{sig}"] == "input", sig


@pytest.mark.parametrize("data_width", [32, 64])
def test_register_bus_to_axi_lite_master(data_width):
    """Random register-bus requests through RegisterBusToAxiLite to an AXI4-Lite slave model
    with random channel delays: every access arrives once, in order, with its strobes, and
    every response (data, SLVERR/DECERR as error) comes back on the register bus."""
    rng = random.Random(data_width)
    dut = RegisterBusToAxiLite(16, data_width)
    axi, bus = dut.m_axil, dut.bus
    requests = [(rng.random() < 0.5, rng.randrange(0, 1 << 16, data_width // 8),
                 rng.getrandbits(data_width), rng.getrandbits(data_width // 8))
                for _ in range(150)]
    memory, slave_log, responses = {}, [], []

    async def slave(ctx):
        while True:
            # Take AW and W in either order, or AR; one access at a time.
            ctx.set(axi.awready, rng.random() < 0.5)
            ctx.set(axi.wready, rng.random() < 0.5)
            ctx.set(axi.arready, rng.random() < 0.5)
            _, _, awv, awr, wv, wr, arv, arr = await ctx.tick().sample(
                axi.awvalid, axi.awready, axi.wvalid, axi.wready, axi.arvalid, axi.arready)
            if awv and awr or wv and wr:
                assert not arv
                got_aw, got_w = bool(awv and awr), bool(wv and wr)
                addr, data, strb = (ctx.get(axi.awaddr), ctx.get(axi.wdata),
                                    ctx.get(axi.wstrb))
                ctx.set(axi.arready, 0)
                while not (got_aw and got_w):
                    ctx.set(axi.awready, not got_aw)
                    ctx.set(axi.wready, not got_w)
                    _, _, awv, wv = await ctx.tick().sample(axi.awvalid, axi.wvalid)
                    got_aw, got_w = got_aw or awv, got_w or wv
                ctx.set(axi.awready, 0)
                ctx.set(axi.wready, 0)
                slave_log.append(("w", addr, data, strb))
                memory[addr] = data
                resp = AxiResp.SLVERR if addr >= ERROR_BASE else AxiResp.OKAY
                await channel_put(ctx, axi.bvalid, axi.bready, [(axi.bresp, resp.value)],
                                  idle_prob=0.5, rng=rng)
            elif arv and arr:
                addr = ctx.get(axi.araddr)
                ctx.set(axi.awready, 0)
                ctx.set(axi.wready, 0)
                ctx.set(axi.arready, 0)
                slave_log.append(("r", addr))
                resp = AxiResp.DECERR if addr >= ERROR_BASE else AxiResp.OKAY
                await channel_put(ctx, axi.rvalid, axi.rready,
                                  [(axi.rdata, memory.get(addr, addr)), (axi.rresp, resp.value)],
                                  idle_prob=0.5, rng=rng)

    async def initiator(ctx):
        for write, addr, data, strb in requests:
            ctx.set(bus.addr, addr)
            ctx.set(bus.write, write)
            ctx.set(bus.wdata, data)
            ctx.set(bus.wstrb, strb)
            ctx.set(bus.valid, 1)
            await ctx.tick().until(bus.ready)
            ctx.set(bus.valid, 0)
            while True:
                _, _, done, rdata, error = await ctx.tick().sample(bus.done, bus.rdata,
                                                                   bus.error)
                if done:
                    responses.append((rdata, error))
                    break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(slave, background=True)
    sim.add_testbench(initiator)
    sim.run()

    model = {}
    for (write, addr, data, strb), entry, (rdata, error) in zip(
            requests, slave_log, responses, strict=True):
        assert error == (addr >= ERROR_BASE)
        if write:
            assert entry == ("w", addr, data, strb)
            model[addr] = data
        else:
            assert entry == ("r", addr)
            assert rdata == model.get(addr, addr)
