"""The DMA engines as :class:`~amnic.dma.core.PcieDmaCore` connects them to the hard IP, for
tests and benchmarks that drive the hard IP's requester buses directly.

:class:`WriteEngineOnHardIp` is a :class:`~amnic.dma.write.DmaWriteEngine` whose requests go
through a :class:`~amnic.dma.rq_framer.RequestFramer` onto an RQ bus;
:class:`ReadEngineOnHardIp` is a :class:`~amnic.dma.read.DmaReadEngine` whose completions come
off an RC bus through a :class:`~amnic.dma.rc_align.CompletionAligner` (its read requests stay
on the engine's request stream).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from amnic.dma.axis import Bus, HardIpStreamSignature, default_straddle
from amnic.dma.rc_align import CompletionAligner
from amnic.dma.read import DmaReadEngine
from amnic.dma.rq_framer import RequestFramer
from amnic.dma.write import DmaWriteEngine

__all__ = ["WriteEngineOnHardIp", "ReadEngineOnHardIp"]


def _forward(m, outer, inner, names):
    for name in names:
        member = outer.signature.members[name]
        if member.is_port:
            if member.flow == In:
                m.d.comb += getattr(inner, name).eq(getattr(outer, name))
            else:
                m.d.comb += getattr(outer, name).eq(getattr(inner, name))
        elif member.flow == In:
            wiring.connect(m, wiring.flipped(getattr(outer, name)), getattr(inner, name))
        else:
            wiring.connect(m, getattr(inner, name), wiring.flipped(getattr(outer, name)))


class WriteEngineOnHardIp(wiring.Component):
    """The write engine's ports, ``rq`` being the hard IP's RQ bus.

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool or None
        RQ straddling (``None``: :func:`~amnic.dma.axis.default_straddle`).
    """

    def __init__(self, width, *, straddle=None):
        self.width = width
        self.straddle = default_straddle(width) if straddle is None else straddle
        self.engine = DmaWriteEngine(width)
        members = dict(self.engine.signature.members)
        members["rq"] = Out(HardIpStreamSignature(Bus.RQ, width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.framer = framer = RequestFramer(self.width, straddle=self.straddle)
        wiring.connect(m, engine.rq, framer.i)
        wiring.connect(m, framer.o, wiring.flipped(self.rq))
        _forward(m, self, engine, [n for n in self.signature.members if n != "rq"])
        return m


class ReadEngineOnHardIp(wiring.Component):
    """The read engine's ports, ``rc`` being the hard IP's RC bus.

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool or None
        RC straddling (``None``: :func:`~amnic.dma.axis.default_straddle`).
    **kwargs
        For :class:`~amnic.dma.read.DmaReadEngine`.
    """

    def __init__(self, width, *, straddle=None, **kwargs):
        self.width = width
        self.straddle = default_straddle(width) if straddle is None else straddle
        self.engine = DmaReadEngine(width, **kwargs)
        self.tags, self.timeout_cycles = self.engine.tags, self.engine.timeout_cycles
        members = dict(self.engine.signature.members)
        members["rc"] = In(HardIpStreamSignature(Bus.RC, width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.aligner = aligner = CompletionAligner(self.width, straddle=self.straddle)
        wiring.connect(m, wiring.flipped(self.rc), aligner.i)
        wiring.connect(m, aligner.o, engine.rc)
        _forward(m, self, engine, [n for n in self.signature.members if n != "rc"])
        return m
