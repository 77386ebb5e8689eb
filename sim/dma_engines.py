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


class _EngineOnHardIp(wiring.Component):
    """``engine``'s ports, its port ``port`` replaced by the hard IP's ``bus`` through
    ``adapter`` (a component with ``i`` and ``o``, in the port's direction)."""

    def __init__(self, engine, port, bus, adapter):
        self.engine, self._port, self._adapter = engine, port, adapter
        self.width = adapter.width
        members = dict(engine.signature.members)
        self._flow = members[port].flow
        members[port] = self._flow(HardIpStreamSignature(bus, adapter.width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.adapter = adapter = self._adapter
        inner, outer = getattr(engine, self._port), getattr(self, self._port)
        if self._flow == Out:
            wiring.connect(m, inner, adapter.i)
            wiring.connect(m, adapter.o, wiring.flipped(outer))
        else:
            wiring.connect(m, wiring.flipped(outer), adapter.i)
            wiring.connect(m, adapter.o, inner)
        _forward(m, self, engine, [n for n in self.signature.members if n != self._port])
        return m


class WriteEngineOnHardIp(_EngineOnHardIp):
    """The write engine's ports, ``rq`` being the hard IP's RQ bus (through a
    :class:`~amnic.dma.rq_framer.RequestFramer`).

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool or None
        RQ straddling (``None``: :func:`~amnic.dma.axis.default_straddle`).
    """

    def __init__(self, width, *, straddle=None):
        self.straddle = default_straddle(width) if straddle is None else straddle
        super().__init__(DmaWriteEngine(width), "rq", Bus.RQ,
                         RequestFramer(width, straddle=self.straddle))


class ReadEngineOnHardIp(_EngineOnHardIp):
    """The read engine's ports, ``rc`` being the hard IP's RC bus (through a
    :class:`~amnic.dma.rc_align.CompletionAligner`).

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
        self.straddle = default_straddle(width) if straddle is None else straddle
        engine = DmaReadEngine(width, **kwargs)
        self.tags, self.timeout_cycles = engine.tags, engine.timeout_cycles
        super().__init__(engine, "rc", Bus.RC,
                         CompletionAligner(width, straddle=self.straddle))
