"""Transmit queues: fetch descriptors and packet data from host rings, weighted round robin.

Formats and index conventions: :mod:`amnic.dma.queues`.

Scheduling
----------
A FIFO in block RAM holds the numbers of the *active* queues (each at most once). A doorbell
or a configuration write that leaves an enabled, inactive queue with posted descriptors
(``producer != consumer``) appends it. The scheduler pops a queue, fetches its descriptors
and serves up to ``weight`` packets from it (0 counts as 1) in one *turn*, then appends it
again if it still has descriptors, so queues share the link in proportion to their weights,
in packets. From the pop until its turn has been written back a queue is out of the FIFO but
still marked active (a doorbell does not append it), so at most one turn at a time fetches or
serves a queue.

Pipeline
--------
Up to ``fetches`` turns are under way at once, each in a *fetch slot* (taken and freed in
order). Four parts share the work:

* the **control side** is the only user of the per-queue state (block RAM): it answers host
  commands and doorbells, writes finished turns back, and, while a slot is free, pops the next
  active queue, copies its state into the slot and issues its descriptor read (one DMA read,
  two when the batch wraps around the ring end), without waiting for the reads of the slots
  before it;
* the DMA read port returns data and statuses in command order, so the **data side** takes
  each read in the order it was issued: a slot's descriptors go into that slot's part of a
  descriptor RAM (``fetches * batch`` entries, one beat per cycle), packet data into the
  segment joiner;
* the **server** serves the slots in the order they were taken: it waits for a slot's
  descriptors, scans them for whole packets, issues the packets' data reads (behind the
  descriptor reads of the later slots, so several queues' round trips overlap) and ends the
  turn, then hands the queue's new consumer index to the control side and moves to the next
  slot. Descriptor reads of the control side take the command port before the server's;
* the **completion stage** writes completions and statistics behind the data side.

Fetching
--------
A turn fetches a *batch* of up to ``batch`` descriptors from the consumer index. Only whole
packets are taken from a batch: a packet is the run of descriptors up to the first one without
MORE. A packet whose last descriptor is not yet posted waits, and the queue goes inactive until
the next doorbell (a doorbell that came while the turn was under way counts). A packet of more
than ``batch`` descriptors cannot be taken: its first ``batch`` descriptors complete as
BAD_DESCRIPTOR and the descriptors after them count as new packets. When the batch runs out
before the turn has served ``weight`` packets and more descriptors were posted when the turn's
fetch was issued, the server fetches the next batch into the same slot and waits for it. The
consumer index advances when a packet's reads are issued (it counts descriptors fetched; the
completion ring says when packets have left); the state RAM holds it from the turn's
write-back on, and host reads and doorbell checks see the turn's own value before that.

For each packet either:

* any descriptor has length 0 or above ``max_packet``, or the lengths add up to more than
  ``max_packet``: nothing is sent; completion BAD_DESCRIPTOR; the queue's ``drops`` count;
* else each segment is read with its own DMA read (several packets' reads in flight), the
  segments are joined by :class:`~amnic.stream.join.SegmentJoiner` into one packed packet on
  ``tx`` (``user`` = queue number on every beat), and the completion is OK, or DMA_ERROR if
  any read reported an error: the packet is still sent (with the bytes the engine returned)
  and ``tx_bad`` is 1 with its last beat, so the MAC can abort it. ``packets`` and ``bytes``
  count every sent packet.

A descriptor read that reports an error stops the queue: it is disabled with error
:attr:`~amnic.dma.queues.QueueError.DESCRIPTOR_DMA` and no completion is written; the other
slots' turns go on.

Host commands during a turn
---------------------------
Doorbells and configuration commands are served while turns are under way. A doorbell for a
queue in a turn only moves its producer index (the turn goes on with the descriptors it
fetched; its write-back sees the new index and appends the queue again). A *configuration
write* (``command.write``) to a queue in a turn, or a *bad-index doorbell* that disables it,
ends the turn at the next packet boundary: packets whose data reads were issued before the
command are sent and completed; no packet is started after it, whatever the turn fetched
(descriptors that may no longer be valid, or that belong to a ring that was moved). After a
configuration write the written state stands (configuration and both indices: the turn's
consumer index is dropped, a failed descriptor read of the turn is ignored) and the queue is
appended again if the new state has posted descriptors; after a bad doorbell the turn's
consumer index is written back and the queue stays disabled with BAD_INDEX.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from amnic.stream import PacketSignature
from amnic.stream.join import SegmentJoiner

from .commands import DmaCommand, DmaError, DmaStatus
from .completions import check_width
from .ports import DmaReadPortSignature
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

__all__ = ["TxQueues", "TxState", "QueueStats"]


class TxState(data.Struct):
    """Per TX queue state (one block RAM word)."""

    base: 64
    log_size: 4
    enable: 1
    cq: 16
    weight: 8
    producer: 16
    consumer: 16  #: descriptors fetched (while the queue is served: where its turn began)
    error: QueueError
    active: 1  #: in the scheduler FIFO, being fetched or served, or its write-back pending


class QueueStats(data.Struct):
    """Per queue statistics (one block RAM word)."""

    packets: 64
    bytes: 64
    drops: 64


class _JobKind(enum.Enum, shape=2):
    DESCRIPTORS = 0  #: a batch of descriptors (or its first or second part)
    SEGMENT = 1  #: one segment's data
    SKIP = 2  #: a bad packet: completion only


class _Job(data.Struct):
    """What the data side does with the next DMA read (or with no read, for SKIP).

    ``final``: SEGMENT, the packet's last segment; DESCRIPTORS, the batch's last read.
    ``index``: SEGMENT and SKIP, ring index of the packet's first descriptor; DESCRIPTORS,
    position in the fetch slot of the read's first descriptor.
    """

    kind: _JobKind
    final: 1
    slot: 4  #: DESCRIPTORS: the fetch slot the descriptors go to
    queue: 16
    cq: 16
    index: 16
    length: 32
    descriptors: 9  #: SEGMENT and SKIP: descriptors of the packet


class _Descriptor(data.Struct):
    """One descriptor as kept in a fetch slot."""

    addr: 64
    length: 32
    more: 1


class _Fetch(data.Struct):
    """A fetch slot's record: the queue, its state when the fetch was issued and the number of
    descriptors fetched."""

    queue: 16
    base: 64
    log_size: 4
    cq: 16
    weight: 8
    producer: 16
    consumer: 16
    count: 16


class TxQueues(wiring.Component):
    """Transmit descriptor rings in host memory (see the module notes).

    Parameters
    ----------
    width : int
        Data width in bits (64, 128, 256 or 512).
    count : int
        Number of TX queues (1..4096).
    max_packet : int
        Longest packet in bytes (and longest descriptor); at most 16383.
    batch : int
        Descriptors per fetch, and most descriptors per packet (2..256).
    outstanding : int
        DMA reads in flight besides the fetch slots' descriptor reads (the job FIFO holds
        ``outstanding + 2 * fetches`` reads).
    fetches : int
        Descriptor fetches (queues) in flight at once, including the queue being served
        (1..16).

    Attributes
    ----------
    host : In(QueueHostSignature())
    read : Out(DmaReadPortSignature(width))
    tx : Out(PacketSignature(width, user_width=16))
        Packets; ``user`` is the queue number.
    tx_bad : Out(1)
        With the last beat of a ``tx`` packet: a DMA read of the packet failed.
    completions : Out(stream.Signature(CompletionRequest))
    """

    def __init__(self, width, count=256, *, max_packet=9600, batch=16, outstanding=16,
                 fetches=8):
        check_width(width)
        if not 1 <= count <= 4096:
            raise ValueError(f"count must be 1..4096, not {count}")
        if not 1 <= max_packet <= 16383:
            raise ValueError(f"max_packet must be 1..16383, not {max_packet}")
        if not 2 <= batch <= 256:
            raise ValueError(f"batch must be 2..256, not {batch}")
        if outstanding < 1:
            raise ValueError(f"outstanding must be at least 1, not {outstanding}")
        if not 1 <= fetches <= 16:
            raise ValueError(f"fetches must be 1..16, not {fetches}")
        self.width = width
        self.count = count
        self.max_packet = max_packet
        self.batch = batch
        self.outstanding = outstanding
        self.fetches = fetches
        super().__init__({
            "host": In(QueueHostSignature()),
            "read": Out(DmaReadPortSignature(width)),
            "tx": Out(PacketSignature(width, user_width=16)),
            "tx_bad": Out(1),
            "completions": Out(stream.Signature(CompletionRequest)),
        })

    def elaborate(self, platform):
        m = Module()
        S = self.fetches
        qbits = max(1, ceil_log2(self.count))

        m.submodules.state = state_mem = Memory(shape=TxState, depth=self.count, init=[])
        m.submodules.stats = stats_mem = Memory(shape=QueueStats, depth=self.count, init=[])
        st_wr = state_mem.write_port()
        st_rd = state_mem.read_port()
        sx_wr = stats_mem.write_port()
        sx_rd = stats_mem.read_port()
        sx_host = stats_mem.read_port()
        st = data.View(TxState, st_rd.data)

        # Fetch slots: a record per slot (LUT RAM), flags (registers) and the descriptors
        # (`_DescriptorBuffer`).
        m.submodules.records = records = Memory(shape=_Fetch, depth=S, init=[])
        rec_wr = records.write_port()
        rec_rd = records.read_port(domain="comb")
        slots = _Slots(S, qbits)

        reads = self.outstanding + 2 * S
        m.submodules.active = active = fifo.SyncFIFOBuffered(width=qbits, depth=self.count)
        m.submodules.jobs = jobs = fifo.SyncFIFOBuffered(width=_Job.as_shape().size,
                                                         depth=reads)
        m.submodules.statuses = statuses = fifo.SyncFIFOBuffered(
            width=DmaStatus.as_shape().size, depth=reads + 2)
        m.submodules.joiner = joiner = SegmentJoiner(self.width, user_width=16)

        m.d.comb += [
            statuses.w_data.eq(self.read.status.payload),
            statuses.w_en.eq(self.read.status.valid),
            self.read.status.ready.eq(statuses.w_rdy),
        ]
        status = data.View(DmaStatus, statuses.r_data)

        # The read command port: the control side's descriptor reads go first.
        port = _CommandPort(m, self.read.cmd, jobs)
        dbuf = _DescriptorBuffer(m, self.width, self.batch, S)
        wb = _WriteBack()
        serve = self._server(m, slots, rec_rd, port, dbuf, wb)
        self._control(m, st_wr, st_rd, st, sx_host, active, slots, rec_wr, port, wb, serve)
        # A packet's last beat waits until the status of its final segment's read is known.
        release = Signal()
        release_bad = Signal()
        self._data_side(m, jobs, statuses, status, joiner, sx_wr, sx_rd, slots, dbuf,
                        release, release_bad)

        o = joiner.o
        can = ~o.payload.last | release
        m.d.comb += [
            self.tx.payload.eq(o.payload),
            self.tx_bad.eq(release_bad & o.payload.last),
            self.tx.valid.eq(o.valid & can),
            o.ready.eq(self.tx.ready & can),
        ]
        with m.If(o.valid & o.ready & o.payload.last):
            m.d.sync += release.eq(0)
        return m

    def _plan(self, m, producer, consumer, log_size):
        """Descriptors to fetch from ``consumer`` (at most ``batch``, at most the posted ones)
        and how many of them lie before the ring end (combinational)."""
        B = self.batch
        avail = Signal(16)
        size = Signal(17)
        to_end = Signal(17)
        count = Signal(range(B + 1))
        first = Signal(range(B + 1))
        m.d.comb += [
            avail.eq(producer - consumer),
            size.eq(1 << log_size),
            to_end.eq(size - (consumer[:15] & (size - 1)[:15])),
            count.eq(Mux(avail > B, B, avail)),
            first.eq(Mux(to_end < count, to_end, count)),
        ]
        return count, first

    @staticmethod
    def _descriptor_read(m, f, first, slot, second, req):
        """Ask ``req`` (a :class:`_CommandPort` requester) for one descriptor read of the batch
        of fetch record ``f``: the part before the ring end, or (``second``) the part from the
        ring start. Returns whether it is the batch's last read."""
        if not second:
            address = ring_address(f.base, f.consumer, f.log_size)
            length = first * DESCRIPTOR_BYTES
            index = 0
            final = first == f.count
        else:
            address = f.base
            length = (f.count - first) * DESCRIPTOR_BYTES
            index = first
            final = 1
        m.d.comb += [
            req.valid.eq(1),
            req.cmd.address.eq(address), req.cmd.length.eq(length), req.cmd.id.eq(f.queue),
            req.job.kind.eq(_JobKind.DESCRIPTORS), req.job.final.eq(final),
            req.job.slot.eq(slot), req.job.queue.eq(f.queue), req.job.index.eq(index),
        ]
        return final

    def _control(self, m, st_wr, st_rd, st, sx_host, active, slots, rec_wr, port, wb, serve):
        """The one user of the state RAM: host commands, doorbells, write-backs of finished
        turns, and fetches (pop an active queue, take a free slot, issue its descriptor
        reads)."""
        host = self.host
        control = Signal.like(host.control.payload)
        doorbell = Signal.like(host.doorbell.payload)
        queue = Signal(16)
        in_range = queue < self.count
        new = Signal(TxState)
        m.d.comb += [
            st_rd.addr.eq(queue), st_wr.addr.eq(queue), st_wr.data.eq(new), new.eq(st),
            sx_host.addr.eq(queue),
            active.w_data.eq(queue),
        ]

        # Where the queue really is: its consumer in the server or in a pending write-back
        # (both ahead of the RAM) unless a configuration write replaced it.
        live = Signal(16)
        m.d.comb += live.eq(st.consumer)
        with m.If(serve.busy & ~slots.pick(slots.stale, serve.slot) & (serve.cur.queue == queue)):
            m.d.comb += live.eq(serve.cur.consumer)
        with m.If(wb.pending & ~wb.stale & (wb.queue == queue)):
            m.d.comb += live.eq(wb.consumer)

        slots.logic(m, queue)

        fetch = Signal(_Fetch)  # the fetch being issued
        first = Signal(range(self.batch + 1))
        slot = Signal(range(self.fetches))

        with m.FSM(name="control"):
            with m.State("IDLE"):
                m.d.comb += [st_rd.en.eq(1), sx_host.en.eq(1)]
                with m.If(wb.pending):
                    m.d.comb += st_rd.addr.eq(wb.queue)
                    m.d.sync += queue.eq(wb.queue)
                    m.next = "WRITE_BACK"
                with m.Elif(host.control.valid):
                    m.d.comb += [host.control.ready.eq(1),
                                 st_rd.addr.eq(host.control.payload.queue),
                                 sx_host.addr.eq(host.control.payload.queue)]
                    m.d.sync += [control.eq(host.control.payload),
                                 queue.eq(host.control.payload.queue)]
                    m.next = "CONTROL"
                with m.Elif(host.doorbell.valid):
                    m.d.comb += [host.doorbell.ready.eq(1),
                                 st_rd.addr.eq(host.doorbell.payload.queue)]
                    m.d.sync += [doorbell.eq(host.doorbell.payload),
                                 queue.eq(host.doorbell.payload.queue)]
                    m.next = "DOORBELL"
                with m.Elif(active.r_rdy & ~slots.pick(slots.valid, slots.wr)):
                    m.d.comb += [active.r_en.eq(1), st_rd.addr.eq(active.r_data)]
                    m.d.sync += queue.eq(active.r_data)
                    m.next = "POP"

            with m.State("CONTROL"):
                serve_host_command(m, host, st, new, control, in_range,
                                   stats=data.View(QueueStats, sx_host.data))
                with m.If(in_range):
                    m.d.comb += host.info.payload.consumer.eq(live)
                work = control.enable & (control.producer != control.consumer)
                m.d.comb += new.active.eq(st.active | work)
                with m.If(host.info.ready):
                    with m.If(control.write & in_range):
                        m.d.comb += [st_wr.en.eq(1), active.w_en.eq(work & ~st.active),
                                     slots.mark_stale.eq(1)]
                        with m.If(wb.pending & (wb.queue == queue)):
                            m.d.sync += wb.stale.eq(1)
                    m.next = "IDLE"

            with m.State("DOORBELL"):
                with m.If(in_range & st.enable):
                    m.d.comb += st_wr.en.eq(1)
                    with m.If(bad_index(doorbell.index, live, st.log_size)):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.BAD_INDEX),
                                     slots.mark_halt.eq(1)]
                        m.d.sync += host.bad_doorbells.eq(host.bad_doorbells + 1)
                    with m.Else():
                        work = doorbell.index != live
                        m.d.comb += [new.producer.eq(doorbell.index),
                                     new.active.eq(st.active | work),
                                     active.w_en.eq(work & ~st.active)]
                m.next = "IDLE"

            with m.State("WRITE_BACK"):
                with m.If(~wb.stale):
                    m.d.comb += new.consumer.eq(wb.consumer)
                    with m.If(wb.error & st.enable):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.DESCRIPTOR_DMA)]
                # A turn that stopped at an incomplete packet waits for a doorbell, which may
                # already have come while the queue was in flight.
                again = (new.enable & (new.producer != new.consumer)
                         & (~wb.stall | wb.stale | (st.producer != wb.producer)))
                m.d.comb += [new.active.eq(again), st_wr.en.eq(1), active.w_en.eq(again)]
                m.d.sync += wb.pending.eq(0)
                m.next = "IDLE"

            with m.State("POP"):
                count, first_part = self._plan(m, st.producer, st.consumer, st.log_size)
                record = Signal(_Fetch)
                m.d.comb += [
                    record.queue.eq(queue), record.base.eq(st.base),
                    record.log_size.eq(st.log_size), record.cq.eq(st.cq),
                    record.weight.eq(st.weight), record.producer.eq(st.producer),
                    record.consumer.eq(st.consumer), record.count.eq(count),
                    rec_wr.addr.eq(slots.wr), rec_wr.data.eq(record),
                ]
                with m.If(st.enable & (st.producer != st.consumer)):
                    m.d.comb += [rec_wr.en.eq(1), slots.take.eq(1)]
                    m.d.sync += [fetch.eq(record), first.eq(first_part), slot.eq(slots.wr)]
                    m.next = "FETCH1"
                with m.Else():
                    m.d.comb += [st_wr.en.eq(1), new.active.eq(0)]
                    m.next = "IDLE"

            with m.State("FETCH1"):
                final = self._descriptor_read(m, fetch, first, slot, False, port.control)
                with m.If(port.control.ready):
                    with m.If(final):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FETCH2"

            with m.State("FETCH2"):
                self._descriptor_read(m, fetch, first, slot, True, port.control)
                with m.If(port.control.ready):
                    m.next = "IDLE"

    def _server(self, m, slots, rec_rd, port, dbuf, wb):
        """Serve the fetch slots in order: wait for the batch, scan it for whole packets, issue
        their data reads (a SKIP job for a bad one) until the turn ends, fetching the next batch
        of the same queue when one runs out, then hand the queue to the write-back."""
        B = self.batch
        req = port.server
        slot = slots.rd
        cur = Signal(_Fetch)  # the queue being served; consumer advances with each packet
        busy = Signal()  # `cur` holds the queue of slot `slot`
        m.d.comb += rec_rd.addr.eq(slot)
        served = Signal(8)
        limit = Signal(8)
        m.d.comb += limit.eq(Mux(cur.weight == 0, 1, cur.weight))
        n = cur.count  # descriptors in the batch

        start = Signal(range(B + 1))  # first descriptor of the packet being scanned
        pos = Signal(range(B + 1))  # descriptor being scanned / issued
        pos_next = Signal(range(B + 1))
        end = Signal(range(B + 1))  # last descriptor of the packet
        first = Signal(range(B + 1))  # of the next batch, before the ring end
        plen = Signal(33)
        pbad = Signal()
        stall = Signal()  # an incomplete packet waits for its last descriptor
        failed = Signal()  # the batch's descriptor read failed
        m.d.comb += [pos_next.eq(pos), dbuf.pos_next.eq(pos_next), dbuf.slot.eq(slot)]
        m.d.sync += pos.eq(pos_next)
        desc = dbuf.data  # descriptor `pos` of the slot
        cut = slots.pick([a | b for a, b in zip(slots.stale, slots.halt)], slot)

        m.d.comb += [req.job.queue.eq(cur.queue), req.job.cq.eq(cur.cq),
                     req.job.index.eq(cur.consumer), req.job.length.eq(plen),
                     req.job.descriptors.eq(end + 1 - start)]

        def new_packet(at):
            m.d.comb += pos_next.eq(at)
            m.d.sync += [start.eq(at), plen.eq(0), pbad.eq(0)]

        with m.FSM(name="serve"):
            with m.State("SLOT"):
                with m.If(slots.pick(slots.valid, slot)):
                    m.d.sync += [cur.eq(rec_rd.data), busy.eq(1), served.eq(0), stall.eq(0),
                                 failed.eq(0)]
                    new_packet(0)
                    m.next = "WAIT"

            with m.State("WAIT"):
                with m.If(slots.pick(slots.done, slot)):
                    with m.If(cut):
                        m.next = "FINISH"
                    with m.Elif(slots.pick(slots.error, slot)):
                        m.d.sync += failed.eq(1)
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "SCAN"

            with m.State("SCAN"):
                total = plen + desc.length
                bad = pbad | (desc.length == 0) | (desc.length > self.max_packet)
                m.d.sync += [plen.eq(total), pbad.eq(bad), end.eq(pos)]
                with m.If(~desc.more):
                    m.d.sync += pbad.eq(bad | (total > self.max_packet))
                    m.d.comb += pos_next.eq(start)
                    m.next = "ISSUE"
                with m.Elif(pos == n - 1):
                    with m.If((start == 0) & (n == B)):
                        m.d.sync += pbad.eq(1)
                        m.d.comb += pos_next.eq(start)
                        m.next = "ISSUE"
                    with m.Elif(start == 0):
                        m.d.sync += stall.eq(1)
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "NEXT"
                with m.Else():
                    m.d.comb += pos_next.eq(pos + 1)

            with m.State("ISSUE"):
                nxt = end + 1

                def taken():
                    m.d.sync += [cur.consumer.eq(cur.consumer + nxt - start),
                                 served.eq(served + 1)]
                    new_packet(nxt)
                    with m.If(served + 1 == limit):
                        m.next = "FINISH"
                    with m.Elif(nxt == n):
                        m.next = "NEXT"
                    with m.Else():
                        m.next = "SCAN"

                # The packet boundary: a queue configured or disabled since its fetch was
                # issued sends nothing more.
                with m.If(cut & (pos == start)):
                    m.next = "FINISH"
                with m.Elif(pbad):
                    m.d.comb += [req.valid.eq(1), req.skip.eq(1),
                                 req.job.kind.eq(_JobKind.SKIP), req.job.final.eq(1)]
                    with m.If(req.ready):
                        taken()
                with m.Else():
                    last_segment = pos == end
                    m.d.comb += [
                        req.valid.eq(1),
                        req.cmd.address.eq(desc.addr), req.cmd.length.eq(desc.length),
                        req.cmd.id.eq(cur.queue),
                        req.job.kind.eq(_JobKind.SEGMENT), req.job.final.eq(last_segment),
                    ]
                    with m.If(req.ready):
                        m.d.comb += pos_next.eq(pos + 1)
                        with m.If(last_segment):
                            taken()

            with m.State("NEXT"):
                # The batch is used up within the turn: fetch the next one into the same slot.
                count, first_part = self._plan(m, cur.producer, cur.consumer, cur.log_size)
                with m.If(cut | (cur.producer == cur.consumer)):
                    m.next = "FINISH"
                with m.Else():
                    m.d.sync += [cur.count.eq(count), first.eq(first_part)]
                    m.d.comb += slots.restart.eq(1)
                    new_packet(0)
                    m.next = "REFETCH1"

            with m.State("REFETCH1"):
                final = self._descriptor_read(m, cur, first, slot, False, req)
                with m.If(req.ready):
                    with m.If(final):
                        m.next = "WAIT"
                    with m.Else():
                        m.next = "REFETCH2"

            with m.State("REFETCH2"):
                self._descriptor_read(m, cur, first, slot, True, req)
                with m.If(req.ready):
                    m.next = "WAIT"

            with m.State("FINISH"):
                with m.If(~wb.pending):
                    m.d.sync += [
                        wb.pending.eq(1), wb.queue.eq(cur.queue),
                        wb.consumer.eq(cur.consumer), wb.producer.eq(cur.producer),
                        wb.stall.eq(stall), wb.error.eq(failed),
                        wb.stale.eq(slots.pick(slots.stale_now, slot)),
                        busy.eq(0),
                    ]
                    m.d.comb += slots.release.eq(1)
                    m.next = "SLOT"
        return _Serving(busy, cur, slot)

    def _data_side(self, m, jobs, statuses, status, joiner, sx_wr, sx_rd, slots, dbuf,
                   release, release_bad):
        """Take the read data in command order: descriptors into their fetch slot, segments
        into the joiner; hand finished packets to the completion stage."""
        head = data.View(_Job, jobs.r_data)
        job = Signal(_Job)
        err = Signal()  # a read of the current packet failed
        rdata = self.read.data
        ok = status.error == DmaError.OK

        # Finished packets (and bad ones): completion and statistics, off the data path.
        m.submodules.done = done = fifo.SyncFIFOBuffered(width=_Job.as_shape().size + 2,
                                                         depth=4)
        done_job = Signal(_Job)
        done_status = Signal(CompletionStatus)
        m.d.comb += done.w_data.eq(Cat(done_job, done_status.as_value()[:2]))

        wpos = Signal(range(self.batch + 1))  # slot position of the next descriptor
        half = Signal()  # 64-bit bus: the address half of a descriptor has been taken
        low = Signal(64)

        m.d.comb += [
            joiner.i.payload.data.eq(rdata.payload.data),
            joiner.i.payload.keep.eq(rdata.payload.keep),
            joiner.i.payload.last.eq(rdata.payload.last),
            joiner.i.payload.user.eq(Cat(job.final, job.queue)),
            slots.done_slot.eq(job.slot), slots.done_error.eq(~ok),
            slots.done_final.eq(job.final),
        ]

        def finish_segment(m):
            """The status of the segment just read is at the head of ``statuses``: take it."""
            bad = err | ~ok
            m.d.comb += statuses.r_en.eq(1)
            m.d.sync += err.eq(0)
            with m.If(job.final):
                m.d.comb += [
                    done_job.eq(job),
                    done_status.eq(Mux(bad, CompletionStatus.DMA_ERROR, CompletionStatus.OK)),
                    done.w_en.eq(1),
                ]
                m.d.sync += [release.eq(1), release_bad.eq(bad)]
            with m.Else():
                m.d.sync += err.eq(bad)

        with m.FSM(name="data"):
            with m.State("IDLE"):
                with m.If(jobs.r_rdy):
                    with m.Switch(head.kind):
                        with m.Case(_JobKind.DESCRIPTORS):
                            m.d.comb += jobs.r_en.eq(1)
                            m.d.sync += [wpos.eq(head.index), half.eq(0)]
                            m.next = "DESCRIPTORS"
                        with m.Case(_JobKind.SEGMENT):
                            m.d.comb += jobs.r_en.eq(1)
                            m.next = "SEGMENT"
                        with m.Default():
                            m.d.comb += [
                                done_job.eq(head),
                                done_status.eq(CompletionStatus.BAD_DESCRIPTOR),
                                done.w_en.eq(1),
                                jobs.r_en.eq(done.w_rdy),
                            ]
                    m.d.sync += job.eq(head)

            with m.State("DESCRIPTORS"):
                m.d.comb += rdata.ready.eq(1)
                with m.If(rdata.valid):
                    self._store_descriptors(m, rdata.payload, dbuf, job.slot, wpos, half, low)
                    with m.If(rdata.payload.last):
                        m.next = "DESCRIPTOR_STATUS"

            with m.State("DESCRIPTOR_STATUS"):
                with m.If(statuses.r_rdy):
                    m.d.comb += [statuses.r_en.eq(1), slots.done_valid.eq(1)]
                    m.next = "IDLE"

            with m.State("SEGMENT"):
                # The last beat waits for room in `done` (which drains by itself), never for the
                # status: the engine may send a status only after its data.
                can = ~rdata.payload.last | ~job.final | done.w_rdy
                m.d.comb += [joiner.i.valid.eq(rdata.valid & can),
                             rdata.ready.eq(joiner.i.ready & can)]
                with m.If(rdata.valid & rdata.ready & rdata.payload.last):
                    with m.If(statuses.r_rdy):
                        finish_segment(m)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "SEGMENT_STATUS"

            with m.State("SEGMENT_STATUS"):
                with m.If(statuses.r_rdy):
                    finish_segment(m)
                    m.next = "IDLE"

        # Completion stage.
        entry = Signal(_Job)
        entry_status = Signal(CompletionStatus)
        stats = data.View(QueueStats, sx_rd.data)
        sx_new = Signal(QueueStats)
        m.d.comb += [sx_rd.addr.eq(entry.queue), sx_wr.addr.eq(entry.queue),
                     sx_wr.data.eq(sx_new), sx_new.eq(stats)]
        comp = self.completions.payload
        m.d.comb += [comp.cq.eq(entry.cq), comp.queue.eq(entry.queue),
                     comp.kind.eq(QueueKind.TX), comp.index.eq(entry.index),
                     comp.length.eq(entry.length), comp.status.eq(entry_status),
                     comp.descriptors.eq(entry.descriptors)]
        with m.FSM(name="complete"):
            with m.State("IDLE"):
                with m.If(done.r_rdy):
                    m.d.comb += done.r_en.eq(1)
                    m.d.sync += [entry.eq(done.r_data[:-2]),
                                 entry_status.eq(done.r_data[-2:])]
                    m.next = "STATS"
            with m.State("STATS"):
                m.d.comb += sx_rd.en.eq(1)
                m.next = "COMPLETE"
            with m.State("COMPLETE"):
                m.d.comb += self.completions.valid.eq(1)
                with m.If(entry_status == CompletionStatus.BAD_DESCRIPTOR):
                    m.d.comb += sx_new.drops.eq(stats.drops + 1)
                with m.Else():
                    m.d.comb += [sx_new.packets.eq(stats.packets + 1),
                                 sx_new.bytes.eq(stats.bytes + entry.length)]
                with m.If(self.completions.ready):
                    m.d.comb += sx_wr.en.eq(1)
                    m.next = "IDLE"

    def _store_descriptors(self, m, beat, dbuf, slot, wpos, half, low):
        """Write the descriptors of one read data beat into fetch slot ``slot`` from position
        ``wpos`` on."""
        if self.width == 64:
            with m.If(~half):
                m.d.sync += [low.eq(beat.data), half.eq(1)]
            with m.Else():
                m.d.sync += [half.eq(0), wpos.eq(wpos + 1)]
                dbuf.store(m, slot, wpos, [Cat(low, beat.data[:33])], [1])
            return
        lanes = self.width // 128
        words = [beat.data[128 * j:128 * j + 97] for j in range(lanes)]
        valid = [beat.keep[16 * j] for j in range(lanes)]
        dbuf.store(m, slot, wpos, words, valid)
        m.d.sync += wpos.eq(wpos + sum(valid))


class _Serving:
    """What the control side sees of the server."""

    def __init__(self, busy, cur, slot):
        self.busy, self.cur, self.slot = busy, cur, slot


class _WriteBack:
    """A finished turn waiting for the control side to write the queue's state back."""

    def __init__(self):
        self.pending = Signal(name="wb_pending")
        self.queue = Signal(16, name="wb_queue")
        self.consumer = Signal(16, name="wb_consumer")  #: after the turn's packets
        self.producer = Signal(16, name="wb_producer")  #: as the fetch saw it
        self.stall = Signal(name="wb_stall")  #: stopped at an incomplete packet
        self.error = Signal(name="wb_error")  #: a descriptor read failed
        self.stale = Signal(name="wb_stale")  #: configured since the fetch: keep the RAM's


class _CommandPort:
    """The read command port and the job FIFO, shared by two requesters: ``control`` (fetches,
    first) and ``server`` (packet reads, SKIP jobs without a read, and next batches). A
    requester drives ``valid``, ``cmd``, ``job`` and ``skip``; ``ready`` says it was taken."""

    class Requester:
        def __init__(self, name):
            self.valid = Signal(name=f"{name}_valid")
            self.skip = Signal(name=f"{name}_skip")
            self.cmd = Signal(DmaCommand, name=f"{name}_cmd")
            self.job = Signal(_Job, name=f"{name}_job")
            self.ready = Signal(name=f"{name}_ready")

    def __init__(self, m, cmd, jobs):
        self.control = control = self.Requester("control_read")
        self.server = server = self.Requester("server_read")
        for req, chosen in ((control, control.valid), (server, ~control.valid)):
            with m.If(chosen):
                taken = jobs.w_rdy & (req.skip | cmd.ready)
                m.d.comb += [
                    cmd.valid.eq(req.valid & ~req.skip & jobs.w_rdy),
                    cmd.payload.eq(req.cmd),
                    jobs.w_data.eq(req.job),
                    jobs.w_en.eq(req.valid & taken),
                    req.ready.eq(taken),
                ]


class _Slots:
    """Per fetch slot flags, kept in registers (a handful of slots): taken in order at ``wr``
    by the control side, served and released in order at ``rd``."""

    def __init__(self, count, qbits):
        self.count = count
        self.wr = Signal(range(count), name="slot_wr")
        self.rd = Signal(range(count), name="slot_rd")
        self.valid = [Signal(name=f"slot{s}_valid") for s in range(count)]
        self.queue = [Signal(qbits, name=f"slot{s}_queue") for s in range(count)]
        self.stale = [Signal(name=f"slot{s}_stale") for s in range(count)]  # configured
        self.halt = [Signal(name=f"slot{s}_halt") for s in range(count)]  # bad doorbell
        self.done = [Signal(name=f"slot{s}_done") for s in range(count)]  # batch arrived
        self.error = [Signal(name=f"slot{s}_error") for s in range(count)]  # ... with an error
        self.stale_now = [Signal(name=f"slot{s}_stale_now") for s in range(count)]
        # Requests (combinational).
        self.take = Signal()  # control: slot `wr` for the control side's queue
        self.release = Signal()  # server: slot `rd` is finished
        self.restart = Signal()  # server: slot `rd` fetches its next batch
        self.mark_stale = Signal()  # control: the control side's queue was configured
        self.mark_halt = Signal()  # control: ... disabled by a bad doorbell
        self.done_valid = Signal()  # data side: a descriptor read of slot `done_slot` ended
        self.done_slot = Signal(4)
        self.done_error = Signal()
        self.done_final = Signal()

    def pick(self, values, index):
        """Flag ``values[index]`` (an expression: no statements, so usable in conditions)."""
        return Cat(values).bit_select(index, 1) if self.count > 1 else values[0]

    def logic(self, m, queue):
        """The flag registers' updates; ``queue`` is the control side's queue (taken, marked)."""
        def step(pointer):
            return Mux(pointer == self.count - 1, 0, pointer + 1)

        for s in range(self.count):
            hit = self.valid[s] & (self.queue[s] == queue)
            m.d.comb += self.stale_now[s].eq(self.stale[s] | (self.mark_stale & hit))
            with m.If(self.mark_stale & hit):
                m.d.sync += self.stale[s].eq(1)
            with m.If(self.mark_halt & hit):
                m.d.sync += self.halt[s].eq(1)
            with m.If(self.done_valid & (self.done_slot == s)):
                with m.If(self.done_error):
                    m.d.sync += self.error[s].eq(1)
                with m.If(self.done_final):
                    m.d.sync += self.done[s].eq(1)
            with m.If(self.restart & (self.rd == s)):
                m.d.sync += [self.done[s].eq(0), self.error[s].eq(0)]
            with m.If(self.release & (self.rd == s)):
                m.d.sync += self.valid[s].eq(0)
            with m.If(self.take & (self.wr == s)):
                m.d.sync += [self.valid[s].eq(1), self.queue[s].eq(queue),
                             self.stale[s].eq(0), self.halt[s].eq(0), self.done[s].eq(0),
                             self.error[s].eq(0)]
        with m.If(self.take):
            m.d.sync += self.wr.eq(step(self.wr))
        with m.If(self.release):
            m.d.sync += self.rd.eq(step(self.rd))


class _DescriptorBuffer:
    """The fetch slots' descriptors: ``batch`` positions per slot (rounded up to a power of
    two), in as many RAM banks as descriptors arrive per beat (bank = position mod banks), so
    a beat is stored in one cycle. The server reads one descriptor per cycle: ``data`` is the
    descriptor that ``slot`` and ``pos_next`` named in the previous cycle."""

    def __init__(self, m, width, batch, slots):
        self.banks = banks = max(1, width // 128)
        self.lb = exact_log2(banks)
        positions = max(1 << ceil_log2(batch), banks)
        self.pb = exact_log2(positions)
        self.slot = Signal(range(slots), name="dbuf_slot")
        self.pos_next = Signal(range(batch + 1), name="dbuf_pos_next")
        self.write_ports = []
        pos = Signal(range(batch + 1), name="dbuf_pos")
        m.d.sync += pos.eq(self.pos_next)
        outputs = []
        for b in range(banks):
            mem = Memory(shape=_Descriptor, depth=slots * positions // banks, init=[])
            m.submodules[f"descriptors{b}"] = mem
            self.write_ports.append(mem.write_port())
            rd = mem.read_port()
            m.d.comb += rd.addr.eq(Cat(self.pos_next[self.lb:self.pb], self.slot))
            outputs.append(rd.data)
        self.data = Signal(_Descriptor, name="dbuf_data")
        if banks == 1:
            m.d.comb += self.data.eq(outputs[0])
        else:
            with m.Switch(pos[:self.lb]):
                for b in range(banks):
                    with m.Case(b):
                        m.d.comb += self.data.eq(outputs[b])

    def store(self, m, slot, pos, words, valid):
        """Write ``words[j]`` (where ``valid[j]``) at position ``pos + j`` of slot ``slot``."""
        for b, port in enumerate(self.write_ports):
            for j, (word, ok) in enumerate(zip(words, valid)):
                at = Signal(self.pb, name=f"dbuf_at{b}_{j}")
                m.d.comb += at.eq(pos + j)
                with m.If((at[:self.lb] == b) if self.banks > 1 else 1):
                    m.d.comb += [port.addr.eq(Cat(at[self.lb:], slot)), port.data.eq(word),
                                 port.en.eq(ok)]
