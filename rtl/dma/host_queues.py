"""The host queue subsystem: TX, RX and completion queues behind their register block.

:class:`HostQueues` puts together what :mod:`amnic.dma.queues` describes: the ``dma_queues``
register block (:class:`~amnic.dma.queues.QueueRegisters`), the three engines
(:class:`~amnic.dma.tx_queues.TxQueues`, :class:`~amnic.dma.rx_queues.RxQueues`,
:class:`~amnic.dma.completions.CompletionQueues`), a read buffer in front of the TX queues' reads
(so they never hold up the shared read engine's in-order data; the RX queues take their
descriptor data as it comes), the merge of TX and RX
completions into the completion queues, and the internal loopback. Its DMA ports go to the
read and write multiplexers of the DMA engines; its packet ports to a MAC or a flow table.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.csr.bus import RegisterBusSignature
from amnic.stream import PacketSignature

from .completions import CompletionQueues
from .ports import DmaReadPortSignature, DmaWritePortSignature, ReadBuffer, round_robin_grant
from .queues import REGISTERS, QueueRegisters
from .rx_queues import RxQueues
from .tx_queues import TxQueues

__all__ = ["HostQueues", "merge_streams"]


def merge_streams(m, name, sources, sink):
    """Round-robin merge of plain streams ``sources`` into ``sink`` (one item per cycle)."""
    last = Signal(range(len(sources)), init=len(sources) - 1, name=f"{name}_last")
    grant, _ = round_robin_grant(m, Cat(source.valid for source in sources), last, name)
    for k, source in enumerate(sources):
        with m.If(grant == k):
            m.d.comb += [sink.payload.eq(source.payload), sink.valid.eq(source.valid),
                         source.ready.eq(sink.ready)]
    with m.If(sink.valid & sink.ready):
        m.d.sync += last.eq(grant)


class HostQueues(wiring.Component):
    """TX, RX and completion queues with their registers, read buffers and loopback.

    Parameters
    ----------
    width : int
        Data width in bits.
    tx_queues, rx_queues, completion_queues : int
        Queue counts (1..4096 each).
    rx_fifo_bytes : int
        Receive FIFO in bytes (a power of two; the longest packet that can be received).

    Attributes
    ----------
    bus : In(RegisterBusSignature(REGISTERS.addr_width))
        The ``dma_queues`` register block.
    tx_read, rx_read : Out(DmaReadPortSignature(width))
        TX descriptor and buffer reads (through a 16 KB buffer), RX descriptor reads.
    rx_write, cq_write : Out(DmaWritePortSignature(width))
        Packet data into RX buffers, completion entries.
    events : Out(stream.Signature(range(completion_queues)))
        One per completion entry written: the completion queue's number (for interrupt
        moderation).
    m_axis_tx : Out(PacketSignature(width, 17))
        Packets from the TX queues (``user`` bit 0 on the last beat: a buffer read failed;
        bits 16:1: TX queue). Idle while ``loopback``.
    s_axis_rx : In(PacketSignature(width, 17))
        Packets for the RX queues (``user`` bit 0 on the last beat: bad, dropped; bits 16:1: RX
        queue). Held off while ``loopback``.
    loopback : In(1)
        TX packets return on the RX queue of the same number. Change it only while no packet
        is moving.
    """

    def __init__(self, width, tx_queues=256, rx_queues=256, completion_queues=256, *,
                 rx_fifo_bytes=16384):
        self.width = width
        self.counts = (tx_queues, rx_queues, completion_queues)
        lanes = width // 8
        #: The parts (reachable for simulation monitors).
        self.regs = QueueRegisters(*self.counts)
        self.txq = TxQueues(width, tx_queues)
        self.rxq = RxQueues(width, rx_queues, drop_when_full=False, fifo_bytes=rx_fifo_bytes)
        self.cqs = CompletionQueues(width, completion_queues)
        self.tx_buffer = ReadBuffer(width, 16384 // lanes)
        super().__init__({
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
            "tx_read": Out(DmaReadPortSignature(width)),
            "rx_read": Out(DmaReadPortSignature(width)),
            "rx_write": Out(DmaWritePortSignature(width)),
            "cq_write": Out(DmaWritePortSignature(width)),
            "events": Out(stream.Signature(range(completion_queues))),
            "m_axis_tx": Out(PacketSignature(width, 17)),
            "s_axis_rx": In(PacketSignature(width, 17)),
            "loopback": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        for name in ("regs", "txq", "rxq", "cqs", "tx_buffer"):
            m.submodules[name] = getattr(self, name)
        regs, txq, rxq, cqs = self.regs, self.txq, self.rxq, self.cqs
        tx_buffer = self.tx_buffer
        flip = wiring.flipped
        wiring.connect(m, flip(self.bus), regs.bus)
        wiring.connect(m, regs.tx, txq.host)
        wiring.connect(m, regs.rx, rxq.host)
        wiring.connect(m, regs.cq, cqs.host)
        m.d.comb += regs.rx_bad_drops.eq(rxq.bad_drops)
        wiring.connect(m, txq.read, tx_buffer.client)
        wiring.connect(m, tx_buffer.engine, flip(self.tx_read))
        # The RX queues take descriptor data as it comes: no buffer needed.
        wiring.connect(m, rxq.read, flip(self.rx_read))
        wiring.connect(m, rxq.write, flip(self.rx_write))
        wiring.connect(m, cqs.write, flip(self.cq_write))
        wiring.connect(m, cqs.events, flip(self.events))
        merge_streams(m, "completion", [txq.completions, rxq.completions], cqs.entries)

        # The TX packets with their bad flag in user bit 0.
        tx = PacketSignature(self.width, 17).create(path=("tx_packets",))
        m.d.comb += [
            tx.payload.data.eq(txq.tx.payload.data),
            tx.payload.keep.eq(txq.tx.payload.keep),
            tx.payload.last.eq(txq.tx.payload.last),
            tx.payload.user.eq(Cat(txq.tx_bad, txq.tx.payload.user)),
            tx.valid.eq(txq.tx.valid),
            txq.tx.ready.eq(tx.ready),
        ]
        with m.If(self.loopback):
            m.d.comb += [rxq.rx.payload.eq(tx.payload), rxq.rx.valid.eq(tx.valid),
                         tx.ready.eq(rxq.rx.ready)]
        with m.Else():
            m.d.comb += [
                self.m_axis_tx.payload.eq(tx.payload),
                self.m_axis_tx.valid.eq(tx.valid),
                tx.ready.eq(self.m_axis_tx.ready),
                rxq.rx.payload.eq(self.s_axis_rx.payload),
                rxq.rx.valid.eq(self.s_axis_rx.valid),
                self.s_axis_rx.ready.eq(rxq.rx.ready),
            ]
        return m
