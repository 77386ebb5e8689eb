"""Run packets through a :class:`~amnic.flow.pipeline.MatchActionPipeline` in the Amaranth
simulator: program it through the host driver, send packets, collect what comes out."""

from dataclasses import dataclass, field

from amnic.flow.records import Destination

from .csr_bus import SimulatorBackend
from .parse_model import decode
from .pipeline_driver import MatchActionDriver
from .stream_tb import get, get_packet, put_packet, simulate

__all__ = ["PipelineRun", "run_pipeline"]

_DEST = Destination.as_shape()


@dataclass
class PipelineRun:
    """What a run produced: delivered frames with their ``Destination`` fields (dicts), mirror
    copies likewise, and the pipeline's counters at the end."""

    outputs: list = field(default_factory=list)  # (bytes, user)
    dests: list = field(default_factory=list)
    mirrors: list = field(default_factory=list)
    mirror_dests: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)


def run_pipeline(dut, program, packets, *, max_cycles=200_000):
    """Program ``dut`` with ``await program(driver)``, then send ``packets`` (``(frame, port,
    bad)``) and wait until every packet is decided and every delivered one has left."""
    run = PipelineRun()

    def collector(stream, store, packet):
        async def collect(ctx):
            while True:
                if packet:
                    store.append(await get_packet(ctx, stream))
                else:
                    store.append(decode(_DEST, (await get(ctx, stream)).as_value().value))
        return collect

    async def main(ctx):
        driver = await MatchActionDriver.open(SimulatorBackend(ctx, dut.bus), dut.windows)
        await program(driver)
        for frame, port, bad in packets:
            await put_packet(ctx, dut.i, frame, int(bad) | port << 1)
        while True:
            await ctx.tick().repeat(32)
            counters = await driver.counters()
            if (counters["received_packets"] == len(packets)
                    and counters["delivered_packets"] == len(run.outputs)
                    and len(run.dests) == len(run.outputs)):
                run.counters = counters
                return

    background = [
        collector(dut.o, run.outputs, True),
        collector(dut.dest, run.dests, False),
        collector(dut.mirror, run.mirrors, True),
        collector(dut.mirror_dest, run.mirror_dests, False),
    ]
    simulate(dut, [main], background=background, max_cycles=max_cycles)
    return run
