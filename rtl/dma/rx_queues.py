"""Receive queues: write received packets into host buffers posted on descriptor rings.

Formats and index conventions: :mod:`amnic.dma.queues`.

Packets from ``rx`` (``user`` on the first beat: RX queue number) are stored whole in a
store-and-forward :class:`~amnic.stream.PacketFifo` of ``fifo_bytes``. With ``drop_when_full``
(for a source that cannot wait, such as a MAC without a FIFO) a packet that does not fit is
dropped at once (``host.unqueued_drops``) and ``rx`` is never back-pressured; without it ``rx``
waits for room (the internal loopback, or a MAC port with its own FIFO). The head
packet is then handled without waiting for the host:

* queue number beyond ``count``: dropped, counted in ``host.unqueued_drops``;
* queue disabled, or no buffer posted (``producer == consumer``): dropped, counted in the
  queue's ``drops`` (no completion: there is no descriptor to complete);
* otherwise the descriptor at ``consumer`` is read (one descriptor per packet; MORE is
  ignored) and ``consumer`` advances, and:

  - descriptor read error: packet dropped, completion DMA_ERROR;
  - buffer length 0: packet dropped, completion BAD_DESCRIPTOR, ``drops`` counted;
  - else the packet is written to the buffer; if the buffer is shorter than the packet only
    its first ``length`` bytes are written and the completion is TRUNCATED; a write error
    gives DMA_ERROR. The completion's length is the packet's length as received. ``packets``
    and ``bytes`` (bytes written) count these.

The completion is sent once the write's status is back, so the data is in host memory before
the host can see the entry. Packets are handled one at a time (descriptor read, data write,
write status); control commands and doorbells are taken between packets.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketFifo, PacketSignature

from .commands import DmaError
from .completions import check_width
from .ports import DmaReadPortSignature, DmaWritePortSignature
from .queues import (
    DESCRIPTOR_BYTES,
    CompletionRequest,
    CompletionStatus,
    QueueError,
    QueueHostSignature,
    QueueKind,
    bad_index,
    ring_address,
    serve_host_command,
)

__all__ = ["RxQueues", "RxState"]


class RxState(data.Struct):
    """Per RX queue state and statistics (one block RAM word)."""

    base: 64
    log_size: 4
    enable: 1
    cq: 16
    producer: 16  #: buffers posted
    consumer: 16  #: buffers used
    error: QueueError
    packets: 64
    bytes: 64
    drops: 64


class _Arrival(data.Struct):
    queue: 16
    length: 16


class RxQueues(wiring.Component):
    """Receive buffer rings in host memory (see the module notes).

    Parameters
    ----------
    width : int
        Data width in bits (64, 128, 256 or 512).
    count : int
        Number of RX queues (1..4096).
    fifo_bytes : int
        Receive FIFO size in bytes (a power of two; the longest packet that can be received).
    drop_when_full : bool
        Drop a packet that finds the FIFO full instead of back-pressuring ``rx``.

    Attributes
    ----------
    host : In(QueueHostSignature())
    rx : In(PacketSignature(width, user_width=16))
    read : Out(DmaReadPortSignature(width))
        Descriptor reads.
    write : Out(DmaWritePortSignature(width))
        Packet data.
    completions : Out(stream.Signature(CompletionRequest))
    """

    def __init__(self, width, count=256, *, fifo_bytes=16384, drop_when_full=True):
        check_width(width)
        if not 1 <= count <= 4096:
            raise ValueError(f"count must be 1..4096, not {count}")
        depth = fifo_bytes // (width // 8)
        if depth < 2 or depth & (depth - 1) or fifo_bytes > 1 << 15:
            raise ValueError(f"fifo_bytes must be a power of two of at least two beats and at "
                             f"most 32768, not {fifo_bytes}")
        self.width = width
        self.count = count
        self.fifo_bytes = fifo_bytes
        self.depth = depth
        self.drop_when_full = drop_when_full
        super().__init__({
            "host": In(QueueHostSignature()),
            "rx": In(PacketSignature(width, user_width=16)),
            "read": Out(DmaReadPortSignature(width)),
            "write": Out(DmaWritePortSignature(width)),
            "completions": Out(stream.Signature(CompletionRequest)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.width // 8
        host = self.host

        # Receive side: packets into the FIFO, (queue, length) of each stored one alongside.
        m.submodules.packets = packets = PacketFifo(self.width, user_width=0, depth=self.depth,
                                                    store_and_forward=True,
                                                    drop_when_full=self.drop_when_full)
        m.submodules.arrivals = arrivals = fifo.SyncFIFOBuffered(
            width=_Arrival.as_shape().size, depth=self.depth)
        rx = self.rx
        m.d.comb += [
            packets.i.payload.data.eq(rx.payload.data),
            packets.i.payload.keep.eq(rx.payload.keep),
            packets.i.payload.last.eq(rx.payload.last),
            packets.i.valid.eq(rx.valid),
            rx.ready.eq(packets.i.ready),
        ]
        in_packet = Signal()
        rx_queue = Signal(16)
        rx_length = Signal(17)
        pending = Signal(_Arrival)
        pending_valid = Signal()
        beat_bytes = sum(rx.payload.keep[n] for n in range(lanes))
        queue_now = Mux(in_packet, rx_queue, rx.payload.user)
        length_now = Mux(in_packet, rx_length, 0) + beat_bytes
        m.d.sync += pending_valid.eq(0)
        with m.If(rx.valid & rx.ready):
            m.d.sync += [rx_queue.eq(queue_now), rx_length.eq(length_now),
                         in_packet.eq(~rx.payload.last)]
            with m.If(rx.payload.last):
                m.d.sync += [pending.queue.eq(queue_now), pending.length.eq(length_now),
                             pending_valid.eq(1)]
        # The FIFO reports a dropped packet in the cycle after its last beat.
        overflow = Signal()
        m.d.comb += [
            overflow.eq(pending_valid & packets.drop.overflow),
            arrivals.w_data.eq(pending),
            arrivals.w_en.eq(pending_valid & ~packets.drop.overflow),
        ]
        unqueued = Signal(32)
        unqueued_now = Signal()
        m.d.sync += unqueued.eq(unqueued + overflow + unqueued_now)
        m.d.comb += host.unqueued_drops.eq(unqueued)

        # Queue state.
        m.submodules.state = mem = Memory(shape=RxState, depth=self.count, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        st = data.View(RxState, rd.data)
        new = Signal(RxState)
        queue = Signal(16)
        in_range = queue < self.count
        m.d.comb += [rd.addr.eq(queue), wr.addr.eq(queue), wr.data.eq(new), new.eq(st)]

        control = Signal.like(host.control.payload)
        doorbell = Signal.like(host.doorbell.payload)
        arrival = Signal(_Arrival)
        head = data.View(_Arrival, arrivals.r_data)

        # Descriptor and transfer bookkeeping.
        desc = Signal(128)
        desc_beats = max(1, 128 // self.width)
        desc_got = Signal(range(desc_beats + 1))
        status_got = Signal()
        status_bad = Signal()
        d_addr, d_len = desc[:64], desc[64:96]
        wlen = Signal(17)  # bytes written
        result = Signal(CompletionStatus)
        sent = Signal(17)  # bytes of the packet passed on (or discarded)
        writing = Signal()  # write beats still to send
        drain = Signal()  # beats of the head packet still to discard after the completion

        comp = self.completions.payload
        m.d.comb += [comp.cq.eq(st.cq), comp.queue.eq(arrival.queue), comp.kind.eq(QueueKind.RX),
                     comp.status.eq(result), comp.index.eq(st.consumer),
                     comp.length.eq(arrival.length)]

        out = packets.o
        wdata = self.write.data
        remaining = (wlen - sent)[:17]
        m.d.comb += [
            wdata.payload.data.eq(out.payload.data),
            wdata.payload.last.eq(remaining <= lanes),
            wdata.payload.keep.eq(Mux(remaining >= lanes, (1 << lanes) - 1,
                                      ((Const(1, lanes + 1) << remaining[:lanes.bit_length()])
                                       - 1)[:lanes])),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += rd.en.eq(1)
                with m.If(host.control.valid):
                    m.d.comb += [host.control.ready.eq(1),
                                 rd.addr.eq(host.control.payload.queue)]
                    m.d.sync += [control.eq(host.control.payload),
                                 queue.eq(host.control.payload.queue)]
                    m.next = "CONTROL"
                with m.Elif(host.doorbell.valid):
                    m.d.comb += [host.doorbell.ready.eq(1),
                                 rd.addr.eq(host.doorbell.payload.queue)]
                    m.d.sync += [doorbell.eq(host.doorbell.payload),
                                 queue.eq(host.doorbell.payload.queue)]
                    m.next = "DOORBELL"
                with m.Elif(arrivals.r_rdy):
                    m.d.comb += [arrivals.r_en.eq(1), rd.addr.eq(head.queue)]
                    m.d.sync += [arrival.eq(head), queue.eq(head.queue), sent.eq(0),
                                 desc_got.eq(0), status_got.eq(0), status_bad.eq(0),
                                 drain.eq(1)]
                    m.next = "PACKET"

            with m.State("CONTROL"):
                serve_host_command(m, host, st, new, control, in_range)
                m.d.comb += wr.en.eq(host.info.ready & control.write & in_range)
                with m.If(host.info.ready):
                    m.next = "IDLE"

            with m.State("DOORBELL"):
                with m.If(in_range & st.enable):
                    m.d.comb += wr.en.eq(1)
                    with m.If(bad_index(doorbell.index, st.consumer, st.log_size)):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.BAD_INDEX)]
                        m.d.sync += host.bad_doorbells.eq(host.bad_doorbells + 1)
                    with m.Else():
                        m.d.comb += new.producer.eq(doorbell.index)
                m.next = "IDLE"

            with m.State("PACKET"):
                with m.If(~in_range):
                    m.d.comb += unqueued_now.eq(1)
                    m.next = "DRAIN"
                with m.Elif(~st.enable | (st.producer == st.consumer)):
                    m.d.comb += [wr.en.eq(1), new.drops.eq(st.drops + 1)]
                    m.next = "DRAIN"
                with m.Else():
                    cmd = self.read.cmd
                    m.d.comb += [
                        cmd.valid.eq(1),
                        cmd.payload.address.eq(ring_address(st.base, st.consumer, st.log_size)),
                        cmd.payload.length.eq(DESCRIPTOR_BYTES),
                        cmd.payload.id.eq(queue),
                    ]
                    with m.If(cmd.ready):
                        m.next = "DESCRIPTOR"

            with m.State("DESCRIPTOR"):
                # Data and status are taken in whatever order they come.
                m.d.comb += [self.read.data.ready.eq(desc_got != desc_beats),
                             self.read.status.ready.eq(~status_got)]
                rbeat = self.read.data
                with m.If(rbeat.valid & rbeat.ready):
                    m.d.sync += desc_got.eq(desc_got + 1)
                    if desc_beats == 1:
                        m.d.sync += desc.eq(rbeat.payload.data[:128])
                    else:
                        m.d.sync += desc.eq((desc >> self.width)
                                            | (rbeat.payload.data << (128 - self.width)))
                with m.If(self.read.status.valid & ~status_got):
                    m.d.sync += [status_got.eq(1),
                                 status_bad.eq(self.read.status.payload.error != DmaError.OK)]
                with m.If((desc_got == desc_beats) & status_got):
                    m.next = "DECIDE"

            with m.State("DECIDE"):
                fits = d_len >= arrival.length
                m.d.sync += [wlen.eq(Mux(fits, arrival.length, d_len)), status_got.eq(0),
                             status_bad.eq(0)]
                with m.If(status_bad):
                    m.d.sync += result.eq(CompletionStatus.DMA_ERROR)
                    m.next = "COMPLETE"
                with m.Elif(d_len == 0):
                    m.d.sync += result.eq(CompletionStatus.BAD_DESCRIPTOR)
                    m.next = "COMPLETE"
                with m.Else():
                    m.d.sync += [result.eq(Mux(fits, CompletionStatus.OK,
                                               CompletionStatus.TRUNCATED)),
                                 writing.eq(1)]
                    m.next = "WRITE_COMMAND"

            with m.State("WRITE_COMMAND"):
                cmd = self.write.cmd
                m.d.comb += [cmd.valid.eq(1), cmd.payload.address.eq(d_addr),
                             cmd.payload.length.eq(wlen), cmd.payload.id.eq(queue)]
                with m.If(cmd.ready):
                    m.next = "WRITE"

            with m.State("WRITE"):
                # Packet beats go to the write port until `wlen` bytes are out, the rest of a
                # truncated packet is discarded; the status is taken whenever it comes.
                m.d.comb += self.write.status.ready.eq(~status_got)
                with m.If(self.write.status.valid & ~status_got):
                    m.d.sync += [status_got.eq(1),
                                 status_bad.eq(self.write.status.payload.error != DmaError.OK)]
                with m.If(writing):
                    m.d.comb += [wdata.valid.eq(out.valid), out.ready.eq(wdata.ready)]
                    with m.If(wdata.valid & wdata.ready & wdata.payload.last):
                        m.d.sync += writing.eq(0)
                with m.Else():
                    m.d.comb += out.ready.eq(drain)
                with m.If(out.valid & out.ready):
                    m.d.sync += sent.eq(sent + lanes)
                    with m.If(out.payload.last):
                        m.d.sync += drain.eq(0)
                with m.If(~writing & ~drain & status_got):
                    with m.If(status_bad):
                        m.d.sync += result.eq(CompletionStatus.DMA_ERROR)
                    m.next = "COMPLETE"

            with m.State("COMPLETE"):
                m.d.comb += [self.completions.valid.eq(1),
                             new.consumer.eq(st.consumer + 1)]
                with m.If(result == CompletionStatus.BAD_DESCRIPTOR):
                    m.d.comb += new.drops.eq(st.drops + 1)
                with m.Elif(result == CompletionStatus.DMA_ERROR):
                    m.d.comb += new.packets.eq(st.packets + 1)
                with m.Else():
                    m.d.comb += [new.packets.eq(st.packets + 1),
                                 new.bytes.eq(st.bytes + wlen)]
                with m.If(self.completions.ready):
                    m.d.comb += wr.en.eq(1)
                    m.next = "DRAIN"

            with m.State("DRAIN"):
                m.d.comb += out.ready.eq(drain)
                with m.If(out.valid & out.ready & out.payload.last):
                    m.d.sync += drain.eq(0)
                with m.If(~drain | (out.valid & out.ready & out.payload.last)):
                    m.next = "IDLE"
        return m
