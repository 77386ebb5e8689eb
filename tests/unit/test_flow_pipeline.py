"""MatchActionPipeline against its reference model (amnic.sim.flow_model), packet by packet.

The configuration is programmed through the host driver (amnic.sim.pipeline_driver) over the
register bus; traffic is drawn from random tenants' packet shapes, some damaged on purpose.
Every delivered packet, its destination record and its mirror copy must equal the model's, and
the counters must add up: received = delivered + dropped by reason.
"""

import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from amnic.flow.pipeline import COUNTERS, MatchActionPipeline
from amnic.flow.records import Destination, DropReason
from amnic.sim.acl_model import queue_allowed
from amnic.sim.csr_bus import SimulatorBackend
from amnic.sim.flow_model import PipelineModel
from amnic.sim.flow_traffic import Scenario
from amnic.sim.parse_model import decode
from amnic.sim.pipeline_driver import MatchActionDriver
from amnic.sim.stream_tb import StreamMonitor, get, get_packet, put_packet, simulate

DEST = Destination.as_shape()


def make_dut(width, **kwargs):
    params = dict(flow_entries=256, acl_rules=16, max_packet=2048, meters=4, templates=4)
    params.update(kwargs)
    return MatchActionPipeline(width, **params)


class Run:
    """One simulation: program ``scenario``, send ``packets``, collect everything."""

    def __init__(self, dut, scenario, packets, *, idle=0.0, ready=1.0, seed=0, during=None,
                 max_cycles=400_000):
        self.dut, self.scenario, self.packets = dut, scenario, packets
        self.rng = random.Random(seed)
        self.outputs, self.dests, self.mirrors, self.mirror_dests = [], [], [], []
        self.counters = {}
        self.driver = None
        started = []
        finished = []
        self.mon_i = StreamMonitor(dut.i, name="i")
        self.mon_o = StreamMonitor(dut.o, name="o")

        async def source(ctx):
            self.driver = await MatchActionDriver.open(SimulatorBackend(ctx, dut.bus),
                                                       dut.windows)
            await scenario.program(self.driver)
            self.model = scenario.model(flow_lookup=self.driver.flows.lookup)
            self.expected = [self.model.process(f, port, bad) for f, port, bad in packets]
            started.append(ctx)
            if during:
                await during(ctx, self)
            for f, port, bad in packets:
                await put_packet(ctx, dut.i, f, int(bad) | port << 1, idle_prob=idle,
                                 rng=self.rng)
            while len(finished) < 4:
                await ctx.tick()
            await ctx.tick().repeat(64)
            self.counters = await self.driver.counters()

        def sink(name, stream, store, packet):
            async def run(ctx):
                while not started:
                    await ctx.tick()
                count = self.expected_count(name)
                for _ in range(count):
                    if packet:
                        store.append(await get_packet(ctx, stream, ready_prob=ready,
                                                      rng=self.rng))
                    else:
                        store.append(decode(DEST, (await get(ctx, stream, ready_prob=ready,
                                                             rng=self.rng)).as_value().value))
                finished.append(name)
            return run

        simulate(dut, [source, sink("o", dut.o, self.outputs, True),
                       sink("dest", dut.dest, self.dests, False),
                       sink("mirror", dut.mirror, self.mirrors, True),
                       sink("mirror_dest", dut.mirror_dest, self.mirror_dests, False)],
                 background=[self.mon_i.run, self.mon_o.run], max_cycles=max_cycles)

    def expected_count(self, name):
        delivered = [e for e in self.expected if e.drop == DropReason.NONE]
        if name in ("o", "dest"):
            return len(delivered)
        return sum(e.mirror_queue is not None for e in delivered)

    def check(self):
        """Compare everything with the model; return the expected outcomes."""
        delivered = [e for e in self.expected if e.drop == DropReason.NONE]
        assert len(self.outputs) == len(delivered)
        for n, (exp, (data, user), dest) in enumerate(
                zip(delivered, self.outputs, self.dests, strict=True)):
            assert user == 0, n
            assert data == exp.frame, (n, data.hex(), exp.frame.hex())
            assert dest == exp.dest, (n, dest, exp.dest)
        mirrored = [e for e in delivered if e.mirror_queue is not None]
        for exp, (data, _), dest in zip(mirrored, self.mirrors, self.mirror_dests, strict=True):
            assert data == exp.frame
            assert dest == dict(exp.dest, queue=exp.mirror_queue, mirror=1)
        self.check_counters()
        return self.expected

    def check_counters(self):
        c, exp = self.counters, self.expected
        delivered = [e for e in exp if e.drop == DropReason.NONE]
        drops = {r: sum(e.drop == r for e in exp) for r in DropReason if r != DropReason.NONE}
        assert c["received_packets"] == len(exp)
        assert c["received_bytes"] == sum(e.received_length for e in exp)
        assert c["delivered_packets"] == len(delivered)
        assert c["delivered_bytes"] == sum(len(e.frame) for e in delivered)
        for r, n in drops.items():
            assert c[f"dropped_{r.name.lower()}"] == n, (r, c)
        assert c["received_packets"] == c["delivered_packets"] + sum(
            c[f"dropped_{r.name.lower()}"] for r in drops)
        assert c["mirrored_packets"] == sum(e.mirror_queue is not None for e in delivered)
        assert c["mirror_blocked"] == sum(e.mirror_blocked for e in delivered)
        assert c["meter_marked"] == sum(e.meter_red for e in delivered)
        assert c["edit_errors"] == 0


def test_counter_names_are_registers():
    dut = make_dut(64)
    base, block = dut.windows["match_action"]
    assert base == 0 and all(name in block for name, _ in COUNTERS)


def test_default_configuration_delivers_everything_to_queue_zero():
    """After reset: RSS off, ACL allows, no flows: every good packet reaches queue 0 as it
    came; the MAC's bad flag, a giant and a cut-short header are dropped by reason."""
    scenario = Scenario(seed=1, tenants=1, shapes_per_tenant=1)
    scenario.acl_rules, scenario.flows = [], {}

    async def program(driver):
        pass

    scenario.program = program
    scenario.model = lambda flow_lookup=None: PipelineModel(width=64, max_packet=2048)
    rng = random.Random(2)
    good = [bytes(Ether() / IP(src="10.0.0.1") / UDP(sport=n, dport=99) / rng.randbytes(n))
            for n in range(0, 120, 7)]
    packets = [(f, 0, False) for f in good]
    packets += [(good[3], 0, True), (good[4] + bytes(3000), 0, False), (good[5][:30], 0, False)]
    run = Run(make_dut(64), scenario, packets)
    expected = run.check()
    assert [e.drop for e in expected[-3:]] == [DropReason.ERRORED, DropReason.GIANT,
                                               DropReason.MALFORMED]
    assert all(d["queue"] == 0 and not d["flow_hit"] for d in run.dests)


@pytest.mark.parametrize("width,count,seed", [
    (64, 200, 1), (512, 200, 2),
    pytest.param(64, 2000, 3, marks=pytest.mark.soak),
    pytest.param(512, 2000, 4, marks=pytest.mark.soak),
])
def test_random_tenants_flows_and_damage_match_model(width, count, seed):
    """Random tenants, ACL, flows (queues, groups, drops, mirrors, VLAN push/pop, VXLAN
    encap/decap, DSCP/ECN, meters) and damaged packets, with back-pressure."""
    scenario = Scenario(seed=seed, width=width)
    packets = scenario.packets(count)
    run = Run(make_dut(width), scenario, packets, idle=0.1, ready=0.8, seed=seed)
    expected = run.check()
    reasons = {e.drop for e in expected}
    assert reasons >= {DropReason.NONE, DropReason.ERRORED, DropReason.GIANT,
                       DropReason.MALFORMED, DropReason.ACL_DENY, DropReason.FLOW_DROP,
                       DropReason.TENANT, DropReason.METER_DROP}, reasons
    delivered = [e for e in expected if e.drop == DropReason.NONE]
    assert any(e.dest["decapsulated"] for e in delivered)
    assert any(e.mirror_queue is not None for e in delivered)
    assert any(e.meter_red for e in delivered)
    assert any(e.dest["flow_hit"] for e in delivered) and any(
        not e.dest["flow_hit"] for e in delivered)
    # Tenant isolation: every delivered packet and mirror copy stays in the queue range the
    # ACL gives its tenant, and flows that point elsewhere were dropped or their copy blocked.
    for e, dest in zip(delivered, run.dests, strict=True):
        acl = run.model.acl.lookup(e.key)
        assert queue_allowed(acl, dest["queue"]), (dest, acl)
    for e, dest in zip([e for e in delivered if e.mirror_queue is not None], run.mirror_dests,
                       strict=True):
        assert queue_allowed(run.model.acl.lookup(e.key), dest["queue"])
    assert run.counters["dropped_tenant"] > 0 and run.counters["mirror_blocked"] > 0


@pytest.mark.parametrize("width", [64, 512])
def test_line_rate_at_64_bytes_with_table_90_percent_full_and_host_updates(width):
    """Minimum-size packets back to back: one beat per cycle in and out (one packet per cycle
    at 512 bits) while the host rewrites flow entries; fixed latency; output as the model."""
    from amnic.bench._pipeline import measure

    r = measure(width, packets=160, entries=256, load=0.9)
    assert r.mismatches == 0
    assert r.table_load >= 0.89 and r.host_updates >= 5
    assert r.line_rate == 1.0, r
    assert r.latency_min == r.latency_max, r


class _Static:
    """A fixed configuration: flows ``{key: action}`` and a ``control`` word, ACL open."""

    def __init__(self, flows, control, width):
        self.flows, self.control, self.width = flows, control, width

    async def program(self, driver):
        await driver.set_control(self.control)
        for key, action in self.flows.items():
            await driver.flows.insert(key, action)

    def model(self, flow_lookup=None):
        return PipelineModel(width=self.width, max_packet=2048, flow_lookup=flow_lookup,
                             control=self.control)


def _bad_input_frames():
    """Every truncation of two VXLAN frames, and a catalogue of odd packets."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
    from scapy.layers.l2 import Dot1Q
    from scapy.layers.vxlan import VXLAN

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    inner6 = (e / Dot1Q(vlan=33) / IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0x45)
              / IPv6ExtHdrDestOpt() / TCP(sport=1, dport=2) / b"payload")
    vxlan4 = (e / Dot1Q(vlan=7) / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01" * 8)
              / UDP(sport=5, dport=4789) / VXLAN(flags=0x08, vni=42) / inner6)
    inner4 = e / IP(src="10.1.1.1", dst="10.1.1.2", tos=0x10) / UDP(sport=3, dport=4) / b"x"
    vxlan6 = (e / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5, dport=4789)
              / VXLAN(flags=0x08, vni=43) / inner4)
    full = [bytes(vxlan4), bytes(vxlan6)]
    frames = [f[:n] for f in full for n in range(1, len(f) + 1)]
    bad_inner = bytearray(bytes(vxlan6))
    bad_inner[14 + 40 + 16 + 14] = 0x75  # inner IP version 7
    odd = [
        bytes(e / IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=1, dport=2)),  # no payload
        bytes(Ether(dst="02:00:00:00:00:09", type=0x88B5) / b"local experimental ethertype"),
        bytes(e / IP(src="10.0.0.1", dst="10.0.0.3", flags="MF") / UDP() / b"frag"),
        bytes(e / IP(src="10.0.0.1", dst="10.0.0.3", frag=3) / b"later fragment"),
        bytes(bad_inner),
    ]
    for pkt in (e / IP(src="10.0.0.1") / TCP() / b"abc", e / IP(src="10.0.0.1") / b"ip"):
        b = bytearray(bytes(pkt))
        b[-1] ^= 0xFF  # TCP checksum bad / IPv4 header fine
        odd.append(bytes(b))
        b = bytearray(bytes(pkt))
        b[24] ^= 0x01  # IPv4 header checksum bad
        odd.append(bytes(b))
    return full, frames + odd + full


@pytest.mark.parametrize("control", [None, pytest.param(0, marks=pytest.mark.soak)])
def test_bad_input_every_truncation_and_odd_packets(control):
    """Every cut of two VXLAN frames, zero-length payloads, an unknown EtherType, fragments,
    a bad inner header and bad checksums, back to back at line rate, with a decapsulating
    flow and a DSCP rewrite in place: the model's outcome for each, counters that add up, and
    the full frames still decapsulated at the end. ``control`` 0 delivers what the default
    policy drops, so damaged packets are edited too."""
    from amnic.flow.action import TunnelOp, action_value
    from amnic.flow.records import CONTROL_RESET

    full, frames = _bad_input_frames()
    flows = {}
    for f in full:
        key = PipelineModel.key(decode_parse(f), 0)[0]
        flows[key] = action_value(queue=9, tunnel_op=TunnelOp.DECAP, set_dscp=1, dscp=12)
    config = _Static(flows, CONTROL_RESET if control is None else control, 512)
    run = Run(make_dut(512), config, [(f, 0, False) for f in frames])
    expected = run.check()
    assert [e.dest.get("decapsulated") for e in expected[-2:]] == [1, 1]
    drops = {e.drop for e in expected}
    if control is None:
        assert DropReason.MALFORMED in drops
    else:
        assert drops == {DropReason.NONE}


def decode_parse(frame):
    from amnic.sim.parse_model import parse_reference

    return parse_reference(frame)
