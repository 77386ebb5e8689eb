"""The match-action pipeline as a drop-in core: AXI4-Stream packet ports and AXI4-Lite registers.

:class:`MatchActionCore` is :class:`~amnic.flow.pipeline.MatchActionPipeline` with its register
bus behind an AXI4-Lite slave (:class:`~amnic.stream.axil.AxiLiteToRegisterBus`) and its ports
named for the generated Verilog (``amnic generate match_action``): ``s_axis_ingress_*``,
``m_axis_egress_*`` with ``egress_dest_*``, ``m_axis_mirror_*`` with ``mirror_dest_*`` and
``s_axil_*``.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketSignature
from amnic.stream.axil import AxiLiteSignature, AxiLiteToRegisterBus

from .pipeline import MatchActionPipeline
from .records import Destination

__all__ = ["MatchActionCore"]


class MatchActionCore(wiring.Component):
    """:class:`~amnic.flow.pipeline.MatchActionPipeline` with an AXI4-Lite register port.

    Parameters are those of :class:`~amnic.flow.pipeline.MatchActionPipeline`.

    Attributes
    ----------
    ingress : In(PacketSignature(width, 1 + port_width))
        The pipeline's ``i``.
    egress, egress_dest, mirror, mirror_dest
        The pipeline's ``o``, ``dest``, ``mirror`` and ``mirror_dest``.
    s_axil : In(AxiLiteSignature(addr_width))
        Registers; the block windows are :attr:`windows` (as the pipeline's).
    """

    def __init__(self, width=64, **params):
        self.pipeline = MatchActionPipeline(width, **params)
        self.windows = self.pipeline.windows
        self.addr_width = self.pipeline.addr_width
        super().__init__({
            "ingress": In(PacketSignature(width, 1 + self.pipeline.port_width)),
            "egress": Out(PacketSignature(width, 1)),
            "egress_dest": Out(stream.Signature(Destination)),
            "mirror": Out(PacketSignature(width, 1)),
            "mirror_dest": Out(stream.Signature(Destination)),
            "s_axil": In(AxiLiteSignature(self.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipeline = p = self.pipeline
        m.submodules.axil = axil = AxiLiteToRegisterBus(self.addr_width)
        wiring.connect(m, wiring.flipped(self.s_axil), axil.s_axil)
        wiring.connect(m, axil.bus, p.bus)
        wiring.connect(m, wiring.flipped(self.ingress), p.i)
        wiring.connect(m, p.o, wiring.flipped(self.egress))
        wiring.connect(m, p.dest, wiring.flipped(self.egress_dest))
        wiring.connect(m, p.mirror, wiring.flipped(self.mirror))
        wiring.connect(m, p.mirror_dest, wiring.flipped(self.mirror_dest))
        return m
