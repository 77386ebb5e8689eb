"""Skid buffer: a registered ready/valid pipeline stage that keeps full throughput.

A plain output register (``with m.If(~o.valid | o.ready)``) registers ``valid`` and ``payload``
but leaves a combinational path from ``o.ready`` back to ``i.ready``. A skid buffer breaks that
path too: ``i.ready`` comes from a flip-flop, and a second entry catches the one beat that the
source may send in the cycle in which the sink stops taking beats.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import PacketLayout

__all__ = ["StreamSkidBuffer", "SkidBuffer"]


class StreamSkidBuffer(wiring.Component):
    """Two-entry registered pipeline stage for a stream of any payload shape.

    Every port of the stage is driven by a flip-flop: ``o.valid``, ``o.payload`` and ``i.ready``.
    One transfer per cycle passes while ``o.ready`` is high; latency is one cycle. The stage never
    reorders, drops or duplicates transfers.

    Parameters
    ----------
    shape : ShapeLike
        Payload shape of both streams.

    Attributes
    ----------
    i : In(stream.Signature(shape))
        Input. ``i.ready`` is low only while the spare entry is occupied.
    o : Out(stream.Signature(shape))
        Output, registered.
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        spare_valid = Signal()
        spare = Signal(self._shape)

        m.d.comb += self.i.ready.eq(~spare_valid)
        with m.If(~self.o.valid | self.o.ready):
            # The output register frees up: refill it from the spare entry first.
            with m.If(spare_valid):
                m.d.sync += [
                    self.o.payload.eq(spare),
                    self.o.valid.eq(1),
                    spare_valid.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    self.o.payload.eq(self.i.payload),
                    self.o.valid.eq(self.i.valid),
                ]
        with m.Elif(self.i.valid & self.i.ready):
            # The output is stalled but the source still sent a beat: park it.
            m.d.sync += [
                spare.eq(self.i.payload),
                spare_valid.eq(1),
            ]
        return m


class SkidBuffer(StreamSkidBuffer):
    """Skid buffer for packet beats (:class:`amnic.stream.PacketLayout`).

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the ``user`` sideband.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
    o : Out(PacketSignature(width, user_width))
        Same contract as :class:`StreamSkidBuffer`.
    """

    def __init__(self, width, user_width=1):
        super().__init__(PacketLayout(width, user_width))
