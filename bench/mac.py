"""``amnic bench mac``: throughput, latency, resources and simulation speed of the 10G MAC.

Throughput and latency come from cycle-exact simulation (the Amaranth simulator) of the MAC
with its XGMII transmit output looped back into its receiver, so the receiver sees exactly what
the transmitter sends at full line rate:

* TX line rate: back-to-back frames from a source that never stalls; the wire time of ``n``
  frames is the distance between the first and the ``n``-th /S/, in bytes; the theoretical time
  counts frame + preamble/SFD (8) + mean inter-packet gap (12) bytes per frame.
* RX line rate: the same distance between the first beats of the first and ``n``-th received
  frames, with every frame delivered intact (checked byte for byte).
* Latency in cycles: first-beat handshake on the TX stream to /S/ on ``txd``; /S/ on ``rxd`` to
  the first valid beat on the RX stream.

Resources come from Yosys (pyosys, ``synth_xilinx -family xcup -flatten -noiopad``), and
simulation speed from running the cocotb line-rate test on the generated Verilog under
Verilator and Icarus.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from amnic.sim.stream_tb import put_packets

FRAME_SIZES = [64, 65, 128, 256, 512, 1024, 1518, 9000]
OVERHEAD = 8 + 12  # preamble + SFD, mean inter-packet gap
JUMBO_MAX = 9600


class _Loopback(wiring.Component):
    """A Mac10G whose transmit XGMII feeds its receiver (both domains on one clock)."""

    def __init__(self, flow_control=True):
        from amnic.mac.mac_10g import Mac10G

        self.mac = Mac10G(flow_control=flow_control)
        super().__init__({
            "tx": wiring.In(self.mac.signature.members["tx"].signature.flip()),
        })

    def elaborate(self, platform):
        from amaranth.hdl import ClockDomain, ClockSignal, ResetSignal

        m = Module()
        m.submodules.mac = self.mac
        m.domains.tx = ClockDomain("tx", local=True)
        m.domains.rx = ClockDomain("rx", local=True)
        m.d.comb += [
            ClockSignal("tx").eq(ClockSignal("sync")), ResetSignal("tx").eq(ResetSignal("sync")),
            ClockSignal("rx").eq(ClockSignal("sync")), ResetSignal("rx").eq(ResetSignal("sync")),
            self.mac.xgmii.rxd.eq(self.mac.xgmii.txd),
            self.mac.xgmii.rxc.eq(self.mac.xgmii.txc),
            self.mac.max_frame.eq(JUMBO_MAX),  # 9000-byte frames are measured too
        ]
        wiring.connect(m, wiring.flipped(self.tx), self.mac.tx)
        return m


def measure_line_rate(size, nframes, rng, flow_control=True):
    """Simulate ``nframes`` back-to-back frames of ``size`` bytes (including FCS).

    Every signal is sampled at clock edges, so a latency of 1 means "seen by the next flop one
    edge after the handshake".
    """
    dut = _Loopback(flow_control)
    mac = dut.mac
    payloads = [bytes(rng.getrandbits(8) for _ in range(size - 4)) for _ in range(nframes)]
    tx_starts, rx_firsts, rx_frames = [], [], []
    events = {}
    cycles = nframes * (size + OVERHEAD) // 8 + 200

    async def source(ctx):
        await put_packets(ctx, dut.tx, [(payload, 0) for payload in payloads])

    async def monitor(ctx):
        frame = b""
        watched = (dut.tx.valid, dut.tx.ready, mac.xgmii.txd, mac.xgmii.txc, mac.rx_start,
                   mac.rx.valid, mac.rx.payload)
        for edge in range(1, cycles):
            _, _, valid, ready, txd, txc, rx_start, rx_valid, rx = \
                await ctx.tick().sample(*watched)
            if valid and ready:
                events.setdefault("handshake", edge)
            for lane in (0, 4):
                if txc >> lane & 1 and (txd >> (8 * lane)) & 0xFF == 0xFB:
                    tx_starts.append(edge * 8 + lane)
                    events.setdefault("tx_start", edge)
            if rx_start:
                events.setdefault("rx_start", edge)
            if rx_valid:
                if not frame:
                    rx_firsts.append(edge)
                frame += rx.data.to_bytes(8, "little")[: bin(rx.keep).count("1")]
                if rx.last:
                    rx_frames.append((frame, rx.user))
                    frame = b""

    sim = Simulator(dut)
    sim.add_clock(6.4e-9)
    sim.add_testbench(source, background=True)
    sim.add_testbench(monitor)
    sim.run()

    intact = len(rx_frames) == nframes and all(
        f == p and u == 0 for (f, u), p in zip(rx_frames, payloads, strict=True))
    # Distances span nframes-1 whole periods; an even count of periods evens out the
    # alternation of lane-0 and lane-4 starts.
    ideal = (nframes - 1) * (size + OVERHEAD)
    tx_span = tx_starts[nframes - 1] - tx_starts[0]
    rx_span = (rx_firsts[nframes - 1] - rx_firsts[0]) * 8
    return {
        "frame_size": size,
        "frames": nframes,
        "tx_line_rate_pct": round(100.0 * ideal / tx_span, 3),
        "rx_line_rate_pct": round(100.0 * ideal / rx_span, 3),
        "rx_frames_intact": intact,
        "tx_latency_cycles": events["tx_start"] - events["handshake"],
        "rx_latency_cycles": rx_firsts[0] - events["rx_start"],
    }


def _frames_for(size):
    # An odd count of frames spans an even number of gaps, so lane-0/lane-4 patterns even out.
    return 33 if size < 1024 else 9 if size <= 1518 else 5


def throughput_table(progress=None):
    rng = random.Random(1)
    rows = []
    for size in FRAME_SIZES:
        rows.append(measure_line_rate(size, _frames_for(size), rng))
        if progress:
            progress(f"line rate at {size} B")
    return rows


#: The synthesized designs: table label -> (core name, generator parameters).
RESOURCE_VARIANTS = {
    "mac_10g without PAUSE/PFC": ("mac_10g", {"flow_control": False}),
    "mac_10g with PAUSE/PFC": ("mac_10g", {"flow_control": True}),
    "mac_10g_ptp (tod96) without PAUSE/PFC": ("mac_10g_ptp", {"flow_control": False}),
    "mac_10g_ptp (tod96) with PAUSE/PFC": ("mac_10g_ptp", {"flow_control": True}),
    "mac_port_10g (MAC + FIFOs + statistics)": ("mac_port_10g", {}),
}


def _generate(core_name, given):
    """Verilog and top-level name of a registered core with parameters ``given``."""
    from amnic.cli import cores
    from amnic.cli.export import export_verilog

    spec = cores.get(core_name)
    values = spec.resolve(given)
    top = spec.top_name(values)
    verilog, _ = export_verilog(spec.build(values), top, domains=spec.clock_domains(values))
    return verilog, top


def resources(progress=None):
    """LUT/FF/CARRY/BRAM of the MAC variants from Yosys synth_xilinx (UltraScale+)."""
    from amnic.bench.synth import synthesize

    out = {}
    for label, (core_name, given) in RESOURCE_VARIANTS.items():
        verilog, top = _generate(core_name, given)
        stats = synthesize(verilog, top, target="xcup")
        out[label] = {k: stats[k] for k in ("LUT", "FF", "CARRY", "MUXF", "BRAM", "LUTRAM")
                      if k in stats}
        if progress:
            progress(f"synthesized {label}")
    return out


#: Designs placed and routed on ECP5 (LFE5U-45F, CABGA381): label -> (core, parameters, MHz).
ECP5_VARIANTS = {
    "mac_1g (GMII)": ("mac_1g", {"phy": "gmii"}, 125.0),
    "mac_1g (RGMII)": ("mac_1g", {"phy": "rgmii"}, 125.0),
    "mac_10g without PAUSE/PFC": ("mac_10g", {"flow_control": False}, 156.25),
}


def ecp5_timing(progress=None):
    """LUT4/FF and routed Fmax per clock on ECP5 (Yosys synth_ecp5 + nextpnr-ecp5)."""
    import tempfile

    from amnic.bench.synth import place_and_route_ecp5, synthesize

    out = {}
    for label, (core_name, given, mhz) in ECP5_VARIANTS.items():
        verilog, top = _generate(core_name, given)
        with tempfile.TemporaryDirectory(prefix="amnic-ecp5-") as tmp:
            netlist = Path(tmp) / f"{top}.json"
            stats = synthesize(verilog, top, target="ecp5", json_netlist=netlist)
            routed = place_and_route_ecp5(netlist, device="45k", package="CABGA381",
                                          freq_mhz=mhz)
        out[label] = {"LUT4": stats["LUT"], "FF": stats["FF"], "target_mhz": mhz,
                      "fmax_mhz": routed["fmax_mhz"]}
        if progress:
            progress(f"placed and routed {label} on ECP5")
    return out


def simulation_speed(progress=None):
    """Simulated ns per wall second of the cocotb line-rate test, per simulator."""
    import xml.etree.ElementTree as ET

    from amnic.cli.export import export_verilog
    from amnic.mac.mac_10g import Mac10G
    from amnic.sim import cocotb_runner

    verilog, _ = export_verilog(Mac10G(), "amnic_mac_10g", domains=(("tx", "tx"), ("rx", "rx")))
    out = {}
    for sim in ("verilator", "icarus"):
        model = cocotb_runner.build("amnic_mac_10g", verilog, sim=sim, waves=False)
        result = cocotb_runner.run(model, "tb_mac_10g", "tx_line_rate_speed")
        if not result.passed:
            raise RuntimeError(result.report)
        case = ET.parse(result.results_xml).getroot().find(".//testcase")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        ratio = float(props["sim_time_ratio"])  # simulated ns per wall-clock second
        out[sim] = {
            "sim_ns_per_s": round(ratio),
            "cycles_per_s": round(ratio / 6.4),
            "test": "tb_mac_10g.tx_line_rate_speed",
        }
        if progress:
            progress(f"simulation speed under {sim}")
    return out


def render(results):
    lines = ["## 10G MAC line rate (loopback with PAUSE/PFC, back-to-back frames, cycle-exact)",
             "",
             "| frame size (B) | TX % of line rate | RX % of line rate | RX frames intact |",
             "|---:|---:|---:|:---:|"]
    for r in results["throughput"]:
        lines.append(f"| {r['frame_size']} | {r['tx_line_rate_pct']:.1f} | "
                     f"{r['rx_line_rate_pct']:.1f} | {'yes' if r['rx_frames_intact'] else 'NO'} |")
    lat = results["latency_cycles"]
    lines += ["", "## Latency (cycles)", "",
              "| path | with PAUSE/PFC | without |", "|---|---:|---:|",
              f"| TX: first-beat handshake to /S/ on txd | {lat['tx']} | "
              f"{lat['tx_without_flow_control']} |",
              f"| RX: /S/ on rxd to first valid beat | {lat['rx']} | "
              f"{lat['rx_without_flow_control']} |"]
    if "resources" in results:
        lines += ["", "## Resources (pyosys 0.70, synth_xilinx -family xcup -flatten -noiopad)",
                  "", "| design | LUT | FF | CARRY | MUXF | BRAM (18 Kb) | LUTRAM |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, s in results["resources"].items():
            lines.append(f"| {name} | {s.get('LUT', 0)} | {s.get('FF', 0)} | "
                         f"{s.get('CARRY', 0)} | {s.get('MUXF', 0)} | {s.get('BRAM', 0)} | "
                         f"{s.get('LUTRAM', 0)} |")
    if "ecp5" in results:
        lines += ["", "## ECP5 (LFE5U-45F, pyosys synth_ecp5 + nextpnr-ecp5, out of context)", "",
                  "| design | LUT4 | FF | target MHz | routed Fmax MHz per clock |",
                  "|---|---:|---:|---:|---|"]
        for name, s in results["ecp5"].items():
            fmax = ", ".join(f"{c} {f:.1f}" for c, f in sorted(s["fmax_mhz"].items()))
            lines.append(f"| {name} | {s['LUT4']} | {s['FF']} | {s['target_mhz']:g} | {fmax} |")
    if "simulation_speed" in results:
        lines += ["", "## Simulation speed (cocotb line-rate test on the generated Verilog)", "",
                  "| simulator | simulated ns / s | cycles / s |", "|---|---:|---:|"]
        for sim, s in results["simulation_speed"].items():
            lines.append(f"| {sim} | {s['sim_ns_per_s']} | {s['cycles_per_s']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="amnic bench mac", description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="build/bench/mac.json", help="JSON output path")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--quick", action="store_true",
                        help="line rate and latency only (no synthesis, no simulator runs)")
    args = parser.parse_args(argv)

    def progress(msg):
        print(f"[bench mac] {msg}", file=sys.stderr, flush=True)

    start = time.time()
    results = {"throughput": throughput_table(progress)}
    first = results["throughput"][0]
    bare = measure_line_rate(64, 5, random.Random(2), flow_control=False)
    results["latency_cycles"] = {
        "tx": first["tx_latency_cycles"], "rx": first["rx_latency_cycles"],
        "tx_without_flow_control": bare["tx_latency_cycles"],
        "rx_without_flow_control": bare["rx_latency_cycles"],
    }
    if not args.quick:
        results["resources"] = resources(progress)
        results["ecp5"] = ecp5_timing(progress)
        results["simulation_speed"] = simulation_speed(progress)
    results["elapsed_s"] = round(time.time() - start, 1)
    table = render(results)
    print(table)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(f"JSON written to {path}", file=sys.stderr)
    ok = all(r["rx_frames_intact"] for r in results["throughput"])
    return 0 if ok else 1



if __name__ == "__main__":
    sys.exit(main())
