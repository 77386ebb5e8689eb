"""``amnic bench flow``: throughput, latency and resources of the match-action pipeline.

Throughput and latency come from cycle-exact simulation (the Amaranth simulator) of the whole
pipeline (:mod:`amnic.bench._pipeline`): the flow table is filled to 90 % through the host
driver, then packets are offered back to back (input valid every cycle, outputs always ready)
while the host keeps rewriting flow entries over the register bus; 75 % of the packets hit a flow
(deliver to a queue, rewrite DSCP), the rest miss and go through RSS. Every output packet is
compared with the reference model.

* Packets per cycle and % of line rate: the data path carries one beat per cycle, so a packet of
  ``n`` bytes needs ``ceil(n / lanes)`` cycles; 100 % means no cycle was lost anywhere.
* Latency in cycles: a packet's last beat on the input to its first beat on the output (the
  pipeline stores each packet until its decision is made), and per block.

Resources come from Yosys (pyosys, ``synth_xilinx -family xcup -flatten -noiopad``) for each
block, and flow-table capacity against block RAM for several entry counts. ``--pipeline``
also synthesizes the whole pipeline (about half an hour).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from amnic.bench._pipeline import measure

FRAME_SIZES = (64, 256, 1500)


def pipeline_rows(quick, progress):
    """Line rate and latency per width and frame size."""
    rows = []
    for width in (64, 512):
        for size in FRAME_SIZES[:1] if quick else FRAME_SIZES:
            packets = 120 if quick else (400 if size == 64 else 150)
            entries = 256 if quick else 1024
            r = measure(width, packets=packets, entries=entries, load=0.9, size=size)
            rows.append({
                "width": width, "frame_bytes": size, "packets": r.packets,
                "packets_per_cycle": round(r.packets_per_cycle, 4),
                "line_rate_pct": round(100 * r.line_rate, 2),
                "latency_cycles_min": r.latency_min, "latency_cycles_max": r.latency_max,
                "table_entries": r.table_entries, "table_load_pct": round(100 * r.table_load, 1),
                "host_updates": r.host_updates, "mismatches": r.mismatches,
                "stage_latency_cycles": r.stage_latency,
            })
            progress(f"width {width}, {size}-byte packets: {rows[-1]['line_rate_pct']} % of "
                     f"line rate, {r.host_updates} host updates")
    return rows


def _verilog(component, top):
    from amnic.cli.export import export_verilog

    return export_verilog(component, top)[0]


def _blocks(quick):
    """Designs whose resources are measured: label -> factory."""
    from amnic.flow.acl import Acl
    from amnic.flow.meter import MeterBank
    from amnic.flow.rss import Rss
    from amnic.flow.vxlan import EncapHeaderBuilder
    from amnic.net.checksum import ChecksumInserter
    from amnic.net.editor import PacketEditor
    from amnic.net.parser import PacketParser

    blocks = {
        "parser, 64 bit": lambda: PacketParser(64),
        "parser, 512 bit": lambda: PacketParser(512),
        "ACL, 64 rules": lambda: Acl(64),
        "RSS, 128 entries": lambda: Rss(),
        "meters, 256": lambda: MeterBank(256),
        "VXLAN header builder": lambda: EncapHeaderBuilder(),
        "packet editor, 64 bit": lambda: PacketEditor(64, max_insert=70, max_remove=255),
        "packet editor, 512 bit": lambda: PacketEditor(512, max_insert=70, max_remove=255),
        "checksum inserter, 64 bit": lambda: ChecksumInserter(64),
    }
    if quick:
        blocks = dict(list(blocks.items())[4:6])
    return blocks


def resources(quick, progress, with_pipeline=False):
    from amnic.bench.synth import synthesize

    out = {}
    designs = dict(_blocks(quick))
    if with_pipeline:
        from amnic.flow.core import MatchActionCore

        designs["match-action pipeline, 64 bit, 4K flows, 64 ACL rules"] = (
            lambda: MatchActionCore(64, flow_entries=4096))
    for label, factory in designs.items():
        start = time.time()
        stats = synthesize(_verilog(factory(), "top"), "top", timeout=7200)
        out[label] = {k: stats.get(k, 0) for k in
                      ("LUT", "FF", "CARRY", "MUXF", "BRAM", "BRAM36", "BRAM18", "URAM",
                       "LUTRAM", "DSP")}
        out[label]["synthesis_s"] = round(time.time() - start, 1)
        progress(f"synthesized {label}: {out[label]['LUT']} LUT, {out[label]['FF']} FF")
    return out


def capacity(quick, progress):
    """Flow-table block RAM against entry count (the action is a FlowAction)."""
    from amnic.bench.synth import synthesize
    from amnic.flow.action import ACTION_BITS
    from amnic.flow.table import FlowTable

    rows = []
    for entries in (1024,) if quick else (1024, 4096, 16384):
        start = time.time()
        stats = synthesize(_verilog(FlowTable(entries, ACTION_BITS), "top"), "top",
                           timeout=7200)
        bram36 = stats.get("BRAM36", 0) + stats.get("BRAM18", 0) / 2
        rows.append({"entries": entries, "BRAM36_equivalent": bram36,
                     "URAM": stats.get("URAM", 0), "LUT": stats.get("LUT", 0),
                     "FF": stats.get("FF", 0), "LUTRAM": stats.get("LUTRAM", 0),
                     "entries_per_BRAM36": round(entries / bram36, 1) if bram36 else None,
                     "synthesis_s": round(time.time() - start, 1)})
        progress(f"flow table with {entries} entries: {bram36} BRAM36")
    return rows


def render(results):
    lines = ["## Match-action pipeline line rate (table 90 % full, host updates running)", "",
             "| width | frame (B) | packets / cycle | % of line rate | latency (cycles) | "
             "table load | host updates | output = model |",
             "|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in results["pipeline"]:
        lat = (f"{r['latency_cycles_min']}" if r["latency_cycles_min"] == r["latency_cycles_max"]
               else f"{r['latency_cycles_min']}-{r['latency_cycles_max']}")
        lines.append(f"| {r['width']} | {r['frame_bytes']} | {r['packets_per_cycle']} | "
                     f"{r['line_rate_pct']} | {lat} | {r['table_load_pct']} % of "
                     f"{r['table_entries']} | {r['host_updates']} | "
                     f"{'yes' if r['mismatches'] == 0 else 'NO'} |")
    stages = results["pipeline"][0]["stage_latency_cycles"]
    lines += ["", "## Latency per block (cycles, first input transfer to first output)", "",
              "| " + " | ".join(stages) + " |", "|" + "---:|" * len(stages),
              "| " + " | ".join(str(v) for v in stages.values()) + " |"]
    if "capacity" in results:
        lines += ["", "## Flow-table capacity against block RAM (Yosys synth_xilinx)", "",
                  "| entries | BRAM36 (equivalent) | entries / BRAM36 | LUT | FF |",
                  "|---:|---:|---:|---:|---:|"]
        for r in results["capacity"]:
            lines.append(f"| {r['entries']} | {r['BRAM36_equivalent']} | "
                         f"{r['entries_per_BRAM36']} | {r['LUT']} | {r['FF']} |")
    if "resources" in results:
        lines += ["", "## Resources (pyosys 0.70, synth_xilinx -family xcup -flatten -noiopad)",
                  "", "| design | LUT | FF | CARRY | BRAM (18 Kb) | LUTRAM | DSP |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, s in results["resources"].items():
            lines.append(f"| {name} | {s['LUT']} | {s['FF']} | {s['CARRY']} | {s['BRAM']} | "
                         f"{s['LUTRAM']} | {s['DSP']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="amnic bench flow", description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="build/bench/flow.json", help="JSON output path")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--quick", action="store_true",
                        help="64-byte packets, small table, two small syntheses")
    parser.add_argument("--pipeline", action="store_true",
                        help="also synthesize the whole pipeline (about 30 minutes)")
    args = parser.parse_args(argv)

    def progress(msg):
        print(f"[bench flow] {msg}", file=sys.stderr, flush=True)

    start = time.time()
    results = {"pipeline": pipeline_rows(args.quick, progress)}
    results["capacity"] = capacity(args.quick, progress)
    results["resources"] = resources(args.quick, progress, args.pipeline)
    results["elapsed_s"] = round(time.time() - start, 1)
    table = render(results)
    print(table)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(f"JSON written to {path}", file=sys.stderr)
    return 0 if all(r["mismatches"] == 0 for r in results["pipeline"]) else 1


if __name__ == "__main__":
    sys.exit(main())
