"""Completion queues: write completion entries into host rings and announce each one.

Entry format, phase rule and index conventions: :mod:`amnic.dma.queues`.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .commands import DmaError
from .ports import DmaWritePortSignature
from .queues import (
    ENTRY_BYTES,
    CompletionRequest,
    QueueError,
    QueueHostSignature,
    bad_index,
    phase_of,
    ring_address,
    serve_host_command,
)

__all__ = ["CompletionQueues", "CqState", "completion_entry"]


class CqState(data.Struct):
    """Per completion queue state (one block RAM word)."""

    base: 64
    log_size: 4
    enable: 1
    vector: 16
    producer: 16  #: entries written by the device
    consumer: 16  #: entries consumed by the host (its doorbell)
    error: QueueError
    packets: 64  #: entries written
    drops: 64  #: entries dropped (disabled or full)


def completion_entry(request, producer, log_size):
    """The 128 bits of a completion entry (HDL), byte 0 in bits 7:0."""
    return Cat(request.queue, request.status, request.kind, Const(0, 6), request.index,
               request.descriptors, request.length, Const(0, 31), phase_of(producer, log_size))


def check_width(width):
    if width not in (64, 128, 256, 512):
        raise ValueError(f"data width must be 64, 128, 256 or 512 bits, not {width}")


class CompletionQueues(wiring.Component):
    """Completion rings in host memory.

    Each :class:`~amnic.dma.queues.CompletionRequest` on ``entries`` becomes one 16-byte entry
    at the ring's producer index, written through ``write``; the producer advances and, once
    the write's status is back (OK), ``events`` carries the queue number (to interrupt
    moderation). An entry for a disabled or full queue (``producer - consumer == size``) is
    dropped and counted in that queue's ``drops``; one for a queue number beyond ``count`` is
    counted in ``host.unqueued_drops``. Nothing waits for the host, so one stuck ring never
    stalls the others. A write that returns a DMA error produces no event and is counted in
    ``write_errors``.

    One request takes four cycles (state read, decision and write command, 16 bytes of data),
    plus the wait for the port's command and data hand-offs; control commands and doorbells
    take priority over entries.

    Parameters
    ----------
    width : int
        DMA data width in bits (64, 128, 256 or 512).
    count : int
        Number of completion queues (1..4096); state lives in block RAM.
    outstanding : int
        Entry writes whose status may be awaited at once. Statuses come back a DMA round trip
        after the write; at four cycles per entry, 32 keeps a round trip of 125 cycles busy.

    Attributes
    ----------
    host : In(QueueHostSignature())
        Commands and doorbells from :class:`~amnic.dma.queues.QueueRegisters`.
    entries : In(stream.Signature(CompletionRequest))
    write : Out(DmaWritePortSignature(width))
    events : Out(stream.Signature(range(count)))
        One per entry written.
    write_errors : Out(32)
    """

    def __init__(self, width, count=256, *, outstanding=32):
        check_width(width)
        if not 1 <= count <= 4096:
            raise ValueError(f"count must be 1..4096, not {count}")
        self.width = width
        self.count = count
        self.outstanding = outstanding
        super().__init__({
            "host": In(QueueHostSignature()),
            "entries": In(stream.Signature(CompletionRequest)),
            "write": Out(DmaWritePortSignature(width)),
            "events": Out(stream.Signature(range(count))),
            "write_errors": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        host = self.host
        m.submodules.state = mem = Memory(shape=CqState, depth=self.count, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        st = data.View(CqState, rd.data)
        new = Signal(CqState)
        m.d.comb += [new.eq(st), wr.data.eq(new)]

        # Queue numbers of written entries whose status is still to come.
        m.submodules.pending = pending = fifo.SyncFIFOBuffered(
            width=max(1, ceil_log2(self.count)), depth=self.outstanding)
        status = self.write.status
        ok = status.payload.error == DmaError.OK
        m.d.comb += [
            self.events.payload.eq(pending.r_data),
            self.events.valid.eq(status.valid & pending.r_rdy & ok),
            status.ready.eq(pending.r_rdy & (self.events.ready | ~ok)),
            pending.r_en.eq(status.valid & status.ready),
        ]
        with m.If(status.valid & status.ready & ~ok):
            m.d.sync += self.write_errors.eq(self.write_errors + 1)

        control = Signal.like(host.control.payload)
        doorbell = Signal.like(host.doorbell.payload)
        request = Signal.like(self.entries.payload)
        queue = Signal(16)
        in_range = queue < self.count
        m.d.comb += [rd.addr.eq(queue), wr.addr.eq(queue)]
        size = (Const(1, 17) << st.log_size)[:17]

        entry = Signal(128)
        beats = max(1, 128 // self.width)
        beat = Signal(range(beats + 1))
        lanes = min(self.width, 128) // 8
        m.d.comb += [
            self.write.data.payload.data.eq(entry.word_select(beat, min(self.width, 128))
                                            if beats > 1 else entry),
            self.write.data.payload.keep.eq((1 << lanes) - 1),
            self.write.data.payload.last.eq(beat == beats - 1),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += rd.en.eq(1)
                with m.If(host.control.valid):
                    m.d.comb += [host.control.ready.eq(1), rd.addr.eq(host.control.payload.queue)]
                    m.d.sync += [control.eq(host.control.payload),
                                 queue.eq(host.control.payload.queue)]
                    m.next = "CONTROL"
                with m.Elif(host.doorbell.valid):
                    m.d.comb += [host.doorbell.ready.eq(1),
                                 rd.addr.eq(host.doorbell.payload.queue)]
                    m.d.sync += [doorbell.eq(host.doorbell.payload),
                                 queue.eq(host.doorbell.payload.queue)]
                    m.next = "DOORBELL"
                with m.Elif(self.entries.valid & pending.w_rdy):
                    m.d.comb += [self.entries.ready.eq(1), rd.addr.eq(self.entries.payload.cq)]
                    m.d.sync += [request.eq(self.entries.payload),
                                 queue.eq(self.entries.payload.cq)]
                    m.next = "ENTRY"

            with m.State("CONTROL"):
                serve_host_command(m, host, st, new, control, in_range, cq_field="vector")
                m.d.comb += wr.en.eq(host.info.ready & control.write & in_range)
                with m.If(host.info.ready):
                    m.next = "IDLE"

            with m.State("DOORBELL"):
                with m.If(in_range & st.enable):
                    m.d.comb += wr.en.eq(1)
                    with m.If(bad_index(st.producer, doorbell.index, st.log_size)):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.BAD_INDEX)]
                        m.d.sync += host.bad_doorbells.eq(host.bad_doorbells + 1)
                    with m.Else():
                        m.d.comb += new.consumer.eq(doorbell.index)
                m.next = "IDLE"

            with m.State("ENTRY"):
                full = (st.producer - st.consumer)[:16] >= size
                m.d.sync += [entry.eq(completion_entry(request, st.producer, st.log_size)),
                             beat.eq(0)]
                with m.If(~in_range):
                    m.d.sync += host.unqueued_drops.eq(host.unqueued_drops + 1)
                    m.next = "IDLE"
                with m.Elif(~st.enable | full):
                    m.d.comb += [wr.en.eq(1), new.drops.eq(st.drops + 1)]
                    m.next = "IDLE"
                with m.Else():
                    cmd = self.write.cmd
                    m.d.comb += [
                        cmd.valid.eq(1),
                        cmd.payload.address.eq(ring_address(st.base, st.producer, st.log_size)),
                        cmd.payload.length.eq(ENTRY_BYTES),
                        cmd.payload.id.eq(queue),
                    ]
                    with m.If(cmd.ready):
                        m.d.comb += [
                            wr.en.eq(1),
                            new.producer.eq(st.producer + 1),
                            new.packets.eq(st.packets + 1),
                            pending.w_en.eq(1),
                            pending.w_data.eq(queue),
                        ]
                        m.next = "DATA"

            with m.State("DATA"):
                m.d.comb += self.write.data.valid.eq(1)
                with m.If(self.write.data.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == beats - 1):
                        m.next = "IDLE"
        return m
