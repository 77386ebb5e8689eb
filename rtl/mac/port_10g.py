"""A complete 10G/25G Ethernet port for a user clock domain: MAC, packet FIFOs, statistics.

:class:`Mac10G` lives in the XGMII clocks and can wait for nobody: its transmit source must not
stall inside a frame and its receiver has no back-pressure. :class:`MacPort10G` puts it behind
store-and-forward packet FIFOs that cross into the user's clock (``sync``), so the user side is
ordinary AXI4-Stream with back-pressure in both directions, and adds the statistics block
(:class:`~amnic.mac.stats.MacStatistics`) on an AXI4-Lite register port.
"""

from amaranth.hdl import Module
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketSignature
from amnic.stream.axil import AxiLiteSignature, AxiLiteToRegisterBus
from amnic.stream.fifo import AsyncPacketFifo

from .mac_10g import Mac10G, forward_ports
from .stats import REGISTERS, MacStatistics

__all__ = ["MacPort10G"]

#: Status records wait at most this many in each clock-crossing queue. A record arrives at
#: most once per 8 MAC cycles, so the queues never fill while the user clock runs at least at
#: an eighth of the MAC clock.
STATUS_CDC_DEPTH = 8
#: Ports of the MAC that belong to the user side of this block instead of being forwarded.
_OWN = ("tx", "rx", "tx_status", "rx_status", "tx_flow", "rx_flow")


class MacPort10G(wiring.Component):
    """10G/25G Ethernet port: :class:`Mac10G` + clock-crossing packet FIFOs + statistics.

    Clock domains: ``sync`` (user clock: ``tx``, ``rx``, ``s_axil``), ``tx`` and ``rx``
    (XGMII clocks: ``xgmii`` and the configuration ports forwarded from :class:`Mac10G`,
    each in the domain :class:`Mac10G` documents).

    Parameters
    ----------
    tx_fifo_depth, rx_fifo_depth : int
        FIFO capacity in 64-bit beats (powers of two). A frame longer than the FIFO can never
        be stored and is dropped and counted; the defaults (2048) hold a 9600-byte jumbo frame.
    rx_drop_bad : bool
        Discard received frames flagged bad (FCS, runt, oversize, framing) in the receive FIFO
        instead of delivering them with ``user[0]`` set. They are counted either way.
    flow_control : bool
        Include PAUSE/PFC in the MAC.

    Attributes
    ----------
    tx : In(PacketSignature(64))
        Frames to send (user clock). Store-and-forward: a frame leaves only when complete, so
        the source may pause anywhere; ``user[0]`` on the last beat sends it deliberately bad.
    rx : Out(PacketSignature(64))
        Received frames without FCS (user clock), with back-pressure. When the FIFO is full a
        whole arriving frame is dropped and counted in ``rx_overflow_drops``.
    s_axil : In(AxiLiteSignature(addr_width=REGISTERS.addr_width))
        The statistics registers (user clock); see ``docs/registers/mac_stats.md``.
    tx_overflow_drops, rx_overflow_drops, rx_bad_drops : Out(32)
        Frames discarded by the FIFOs, by reason (wrapping; tx counts in the user clock, rx in
        the rx clock).
    xgmii, ifg, max_frame, ... :
        Every other port of :class:`Mac10G`, forwarded unchanged.
    """

    def __init__(self, *, tx_fifo_depth=2048, rx_fifo_depth=2048, rx_drop_bad=True,
                 flow_control=True):
        self._mac = Mac10G(flow_control=flow_control)
        self._depths = (tx_fifo_depth, rx_fifo_depth)
        self._rx_drop_bad = rx_drop_bad
        members = {
            name: member for name, member in self._mac.signature.members.items()
            if name not in _OWN
        }
        members.update({
            "tx": In(PacketSignature(64)),
            "rx": Out(PacketSignature(64)),
            "s_axil": In(AxiLiteSignature(REGISTERS.addr_width)),
            "tx_overflow_drops": Out(32),
            "rx_overflow_drops": Out(32),
            "rx_bad_drops": Out(32),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        forward_ports(m, self, mac, skip=_OWN)

        tx_depth, rx_depth = self._depths
        m.submodules.tx_fifo = tx_fifo = AsyncPacketFifo(
            64, depth=tx_depth, w_domain="sync", r_domain="tx", store_and_forward=True)
        wiring.connect(m, wiring.flipped(self.tx), tx_fifo.i)
        wiring.connect(m, tx_fifo.o, mac.tx)

        m.submodules.rx_fifo = rx_fifo = AsyncPacketFifo(
            64, depth=rx_depth, w_domain="rx", r_domain="sync", store_and_forward=True,
            drop_bad=self._rx_drop_bad, drop_when_full=True)
        m.d.comb += [
            rx_fifo.i.valid.eq(mac.rx.valid),
            rx_fifo.i.payload.eq(mac.rx.payload),
        ]
        wiring.connect(m, rx_fifo.o, wiring.flipped(self.rx))
        m.d.comb += [
            self.tx_overflow_drops.eq(tx_fifo.overflow_drops),
            self.rx_overflow_drops.eq(rx_fifo.overflow_drops),
            self.rx_bad_drops.eq(rx_fifo.bad_drops),
        ]

        m.submodules.stats = stats = MacStatistics()
        for name, domain in (("tx_status", "tx"), ("rx_status", "rx"),
                             ("tx_flow", "tx"), ("rx_flow", "rx")):
            source = getattr(mac, name, None)
            if source is None:  # no flow control: no flow events
                continue
            self._cross(m, name, source, getattr(stats, name), domain)

        m.submodules.axil = axil = AxiLiteToRegisterBus(REGISTERS.addr_width)
        wiring.connect(m, wiring.flipped(self.s_axil), axil.s_axil)
        wiring.connect(m, axil.bus, stats.bus)
        return m

    @staticmethod
    def _cross(m, name, source, sink, domain):
        """Carry a status stream from the MAC clock ``domain`` into ``sync``."""
        width = len(source.payload.as_value())
        cdc = fifo.AsyncFIFO(width=width, depth=STATUS_CDC_DEPTH, r_domain="sync",
                             w_domain=domain)
        m.submodules[f"{name}_cdc"] = cdc
        m.d.comb += [
            cdc.w_data.eq(source.payload),
            cdc.w_en.eq(source.valid),
            sink.payload.eq(cdc.r_data),
            sink.valid.eq(cdc.r_rdy),
            cdc.r_en.eq(1),
        ]


