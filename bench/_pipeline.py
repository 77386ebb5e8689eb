"""Cycle-exact throughput and latency of the match-action pipeline (shared by ``amnic bench flow``
and the tests).

:func:`measure` fills the flow table to a given load through the host driver, then offers
minimum-size packets back to back (input valid every cycle, outputs always ready) while the host
keeps rewriting flow entries through the register bus, and counts cycles.
"""

import random
from dataclasses import dataclass

from amaranth.hdl import Fragment
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from amnic.flow.action import action_value
from amnic.flow.pipeline import MatchActionPipeline
from amnic.sim.csr_bus import SimulatorBackend
from amnic.sim.flow_model import PipelineModel
from amnic.sim.parse_model import parse_reference
from amnic.sim.pipeline_driver import MatchActionDriver
from amnic.sim.stream_tb import StreamMonitor, packet_to_beats, simulate

__all__ = ["LineRate", "measure", "min_frames"]


@dataclass
class LineRate:
    """What :func:`measure` found."""

    width: int
    frame_bytes: int
    packets: int
    table_entries: int
    table_load: float
    host_updates: int
    input_cycles: int  #: cycles from the first to the last input beat, inclusive
    output_cycles: int  #: cycles from the first to the last output beat, inclusive
    latency_min: int  #: cycles from a packet's last input beat to its first output beat
    latency_max: int
    mismatches: int  #: delivered packets that differ from the reference model
    stage_latency: dict  #: cycles from a block's first input to its first output, per block

    @property
    def packets_per_cycle(self):
        return self.packets / max(self.input_cycles, self.output_cycles)

    @property
    def line_rate(self):
        """Fraction of the packet rate the data path could carry at this width: one beat per
        cycle, so ``ceil(frame / lanes)`` cycles per packet."""
        lanes = self.width // 8
        ideal = self.packets * -(-self.frame_bytes // lanes)
        return ideal / max(self.input_cycles, self.output_cycles)


def min_frames(count, rng, size=64):
    """``count`` distinct IPv4 TCP/UDP frames of ``size`` bytes (no FCS)."""
    out = []
    for n in range(count):
        l4 = TCP(sport=n & 0xFFFF, dport=80) if n % 2 else UDP(sport=n & 0xFFFF, dport=53)
        pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
            src=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", dst="192.0.2.1") / l4
        out.append(bytes(pkt / rng.randbytes(size - len(pkt))))
    return out


def measure(width, *, packets=400, entries=1024, load=0.9, size=64, hit_ratio=0.75,
            host_updates=True, seed=1):
    """Run the measurement and return a :class:`LineRate`.

    ``entries`` flow-table slots are filled to ``load`` with flows that deliver to a queue and
    rewrite DSCP (an edit that does not change the length); a fraction ``hit_ratio`` of the
    packets hit a flow, the rest miss and take RSS. With ``host_updates`` the driver rewrites
    random entries (same action, so the expected output stays fixed) for the whole run.
    """
    rng = random.Random(seed)
    dut = MatchActionPipeline(width, flow_entries=entries, acl_rules=16, max_packet=2048,
                              meters=4, templates=4)
    fragment = Fragment.get(dut, None)  # elaborated once, so the parts below are simulated
    part_mons = {}
    for name, part in dut.parts.items():
        for port in ("i", "meta", "o"):
            if hasattr(part, port):
                part_mons[(name, port)] = StreamMonitor(getattr(part, port), name=name)
    flows_wanted = int(entries * load)
    frames = min_frames(flows_wanted + packets, rng, size)
    keys = [PipelineModel.key(parse_reference(f), 0)[0] for f in frames]
    actions = {k: action_value(queue=n % 64, set_dscp=1, dscp=n % 64)
               for n, k in enumerate(keys[:flows_wanted])}
    installed = list(actions)
    traffic = [rng.randrange(flows_wanted) if rng.random() < hit_ratio
               else flows_wanted + n for n in range(packets)]
    mon_i, mon_o = StreamMonitor(dut.i, name="i"), StreamMonitor(dut.o, name="o")
    state = {"updates": 0, "done": False, "traffic": False}
    beats = [b for n in traffic for b in packet_to_beats(frames[n], width)]

    async def host(ctx):
        driver = await MatchActionDriver.open(SimulatorBackend(ctx, dut.bus), dut.windows)
        state["driver"] = driver
        for key in installed:
            await driver.flows.insert(key, actions[key])
        state["traffic"] = True
        while host_updates and not state["done"]:
            key = rng.choice(installed)
            await driver.flows.modify(key, actions[key])
            state["updates"] += 1

    async def source(ctx):
        while not state["traffic"]:
            await ctx.tick()
        ctx.set(dut.o.ready, 1)
        for beat in beats:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, beat.as_dict())
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        expected = sum(1 for n in traffic)
        while sum(1 for _, p in mon_o.transfers if p.last) < expected:
            await ctx.tick()
        state["done"] = True

    async def drain_dest(ctx):
        ctx.set(dut.dest.ready, 1)
        ctx.set(dut.mirror.ready, 1)
        ctx.set(dut.mirror_dest.ready, 1)

    simulate(fragment, [host, source, drain_dest],
             background=[mon_i.run, mon_o.run] + [m.run for m in part_mons.values()],
             max_cycles=50 * flows_wanted + 40 * packets + 20_000)
    firsts = {key: mon.transfers[0][0] for key, mon in part_mons.items() if mon.transfers}
    stage_latency = {}
    for name in dut.parts:
        out = firsts.get((name, "meta"), firsts.get((name, "o")))
        if (name, "i") in firsts and out is not None:
            stage_latency[name] = out - firsts[(name, "i")]

    model = PipelineModel(width=width, max_packet=2048,
                          flow_lookup=lambda k: (0, actions[k]) if k in actions else None)
    got = mon_o.packets()
    mismatches = sum(g[0] != model.process(frames[n]).frame
                     for g, n in zip(got, traffic, strict=True))
    i_spans, o_spans = mon_i.packet_spans(), mon_o.packet_spans()
    latencies = [o_first - i_last for (_, _, i_last), (_, o_first, _)
                 in zip(i_spans, o_spans, strict=True)]
    return LineRate(
        width=width, frame_bytes=size, packets=packets, table_entries=entries,
        table_load=len(installed) / entries, host_updates=state["updates"],
        input_cycles=i_spans[-1][2] - i_spans[0][1] + 1,
        output_cycles=o_spans[-1][2] - o_spans[0][1] + 1,
        latency_min=min(latencies), latency_max=max(latencies), mismatches=mismatches,
        stage_latency=stage_latency)
