"""Receive queues: write received packets into host buffers posted on descriptor rings.

Formats and index conventions: :mod:`amnic.dma.queues`.

Packets from ``rx`` (``user`` bits 16:1 on the first beat: the RX queue; ``user`` bit 0 on the
last beat: the packet is bad, e.g. a MAC's FCS error or a TX read error in the loopback) are
stored whole in a store-and-forward :class:`~amnic.stream.PacketFifo` of ``fifo_bytes``. A bad
packet is dropped there (``bad_drops``). With ``drop_when_full`` (for a source that cannot wait,
such as a MAC without a FIFO) a packet that does not fit is dropped at once
(``host.unqueued_drops``) and ``rx`` is never back-pressured; without it ``rx`` waits for room
(the internal loopback, or a MAC port with its own FIFO). Each stored packet is then placed
without waiting for the host:

* queue number beyond ``count``: dropped, counted in ``host.unqueued_drops``;
* queue disabled, no buffer posted (``producer == consumer``), or an empty packet: dropped,
  counted in the queue's ``drops`` (no completion: there is no descriptor to complete);
* otherwise the packet fills the buffers of the descriptors from ``consumer`` on, in order
  (scatter): a buffer the packet continues beyond takes a whole number of 64-byte blocks,
  ``length`` rounded down to a multiple of 64 (buffers are normally 2 KB or a page, so nothing
  is lost; this keeps every buffer's data aligned to the data beats); the buffer where the
  packet ends takes what is left, and the last posted buffer is filled whole if the packet does
  not fit. ``consumer`` advances past every descriptor used, and the packet gets one completion
  (``index``: its first descriptor, ``descriptors``: how many it used, ``length``: the packet's
  length as received) with status

  - TRUNCATED when the posted buffers ran out first (what fitted was written);
  - BAD_DESCRIPTOR when a descriptor's buffer was empty, or too short (under 64 bytes) to
    continue into (the rest of the packet is dropped; ``drops`` counted);
  - DMA_ERROR when a descriptor read or a data write failed (a failed descriptor read uses up
    one descriptor);
  - OK otherwise. ``packets`` and ``bytes`` (bytes handed to DMA) count all but
    BAD_DESCRIPTOR.

The completion is sent once the statuses of all of the packet's writes are back, so the data is
in host memory before the host can see the entry.

Pipelining: three stages run concurrently. The *placer* reads the queue state, fetches
descriptors in batches of up to :data:`DESCRIPTOR_BATCH` (one DMA read, kept in a one-queue
descriptor cache, so a busy queue needs one descriptor read per batch of packets), cuts the
packet into buffer segments and updates the queue state; the *writer* turns segments into DMA
writes fed from the FIFO (and discards what is not written); the *completer* waits for the
writes' statuses and emits the completions. Control commands and doorbells are taken between
packets by the placer; a configuration write empties the descriptor cache of that queue.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from amnic.stream import PacketFifo, PacketSignature, keep_bytes

from .commands import MAX_TRANSFER, DmaError
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

__all__ = ["RxQueues", "RxState", "DESCRIPTOR_BATCH", "SCATTER_BLOCK"]

#: Descriptors fetched by one DMA read at most.
DESCRIPTOR_BATCH = 8
#: A buffer a packet continues beyond is filled in multiples of this many bytes.
SCATTER_BLOCK = 64
#: Packets written and waiting for their completion at most.
_RESULTS = 16


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


class _Segment(data.Struct):
    """Placer to writer: write ``length`` bytes of the packet at ``address`` (none when 0);
    ``end``: the packet's last segment, discard the rest of it."""

    address: 64
    length: range(MAX_TRANSFER + 1)
    end: 1


class _Finished(data.Struct):
    """Placer to completer: a placed packet, complete once its ``writes`` writes are done."""

    request: CompletionRequest
    writes: 16


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
    rx : In(PacketSignature(width, user_width=17))
        ``user``: bit 0 bad (last beat), bits 16:1 the RX queue (first beat).
    read : Out(DmaReadPortSignature(width))
        Descriptor reads.
    write : Out(DmaWritePortSignature(width))
        Packet data.
    completions : Out(stream.Signature(CompletionRequest))
    bad_drops : Out(32)
        Packets dropped because ``rx`` marked them bad (wraps).
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
            "rx": In(PacketSignature(width, user_width=17)),
            "read": Out(DmaReadPortSignature(width)),
            "write": Out(DmaWritePortSignature(width)),
            "completions": Out(stream.Signature(CompletionRequest)),
            "bad_drops": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        packets, arrivals, overflow = self._receive(m)
        m.submodules.segments = segments = fifo.SyncFIFOBuffered(
            width=_Segment.as_shape().size, depth=16)
        m.submodules.finished = finished = fifo.SyncFIFOBuffered(
            width=_Finished.as_shape().size, depth=16)
        self._place(m, arrivals, overflow, segments, finished)
        # One mark per write in flight: the write engine's multiplexer allows 32 at most.
        m.submodules.marks = marks = fifo.SyncFIFOBuffered(width=1, depth=32)
        # Packets that have had a write and are not yet completed.
        open_packets = Signal(range(_RESULTS + 1))
        opening, closing = Signal(), Signal()
        m.d.sync += open_packets.eq(open_packets + opening - closing)
        self._write(m, packets.o, segments, marks, open_packets, opening)
        self._complete(m, finished, marks, closing)
        return m

    def _receive(self, m):
        """Packets into the FIFO, (queue, length) of each stored one into ``arrivals``."""
        lanes = self.width // 8
        rx = self.rx
        m.submodules.packets = packets = PacketFifo(self.width, user_width=1, depth=self.depth,
                                                    drop_bad=True,
                                                    drop_when_full=self.drop_when_full)
        m.submodules.arrivals = arrivals = fifo.SyncFIFOBuffered(
            width=_Arrival.as_shape().size, depth=self.depth)
        m.d.comb += [
            packets.i.payload.data.eq(rx.payload.data),
            packets.i.payload.keep.eq(rx.payload.keep),
            packets.i.payload.last.eq(rx.payload.last),
            packets.i.payload.user.eq(rx.payload.user[0]),
            packets.i.valid.eq(rx.valid),
            rx.ready.eq(packets.i.ready),
        ]
        in_packet = Signal()
        rx_queue = Signal(16)
        rx_length = Signal(17)
        pending = Signal(_Arrival)
        pending_valid = Signal()
        beat_bytes = sum(rx.payload.keep[n] for n in range(lanes))
        queue_now = Mux(in_packet, rx_queue, rx.payload.user[1:])
        length_now = Mux(in_packet, rx_length, 0) + beat_bytes
        m.d.sync += pending_valid.eq(0)
        with m.If(rx.valid & rx.ready):
            m.d.sync += [rx_queue.eq(queue_now), rx_length.eq(length_now),
                         in_packet.eq(~rx.payload.last)]
            with m.If(rx.payload.last):
                m.d.sync += [pending.queue.eq(queue_now), pending.length.eq(length_now),
                             pending_valid.eq(1)]
        # The FIFO reports a dropped packet in the cycle after its last beat.
        dropped = packets.drop.overflow | packets.drop.bad
        m.d.comb += [arrivals.w_data.eq(pending), arrivals.w_en.eq(pending_valid & ~dropped)]
        m.d.comb += self.bad_drops.eq(packets.bad_drops)
        return packets, arrivals, pending_valid & packets.drop.overflow

    def _place(self, m, arrivals, overflow, segments, finished):
        """The placer: queue state, descriptor cache, segments and completions to come."""
        host = self.host
        width = self.width

        unqueued = Signal(32)
        unqueued_now = Signal()
        m.d.sync += unqueued.eq(unqueued + overflow + unqueued_now)
        m.d.comb += host.unqueued_drops.eq(unqueued)

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

        # Descriptor cache: descriptors `start` .. `start + count - 1` of `cache_queue`, the
        # next unused one at `start + taken`.
        batch = DESCRIPTOR_BATCH
        cache = Signal(batch * 128)
        cache_valid = Signal()
        cache_queue = Signal(16)
        cache_start = Signal(16)
        cache_count = Signal(range(batch + 1))
        cache_taken = Signal(range(batch + 1))
        fetch_beats = Signal(range(batch * 128 // width + 2))
        got = Signal(range(batch * 128 // width + 2))
        status_got = Signal()
        status_bad = Signal()

        # The packet being placed.
        used = Signal(16)  # descriptors used
        remaining = Signal(17)  # bytes not yet placed
        placed = Signal(17)  # bytes handed to DMA
        writes = Signal(16)
        result = Signal(CompletionStatus)
        # A segment is queued only once the next one (or the end of the packet) is known, so
        # the last write of a packet always carries `end`.
        held = Signal(_Segment)
        held_valid = Signal()
        desc = Signal(128)
        d_addr, d_len = desc[:64], desc[64:96]
        cur = (st.consumer + used)[:16]
        mask = ((Const(1, 16) << st.log_size) - 1)[:16]
        available = (st.producer - cur)[:16]
        to_wrap = ((Const(1, 17) << st.log_size) - (cur & mask))[:17]
        hit = (cache_valid & (cache_queue == queue) &
               ((cache_start + cache_taken)[:16] == cur) & (cache_taken != cache_count))

        segment = Signal(_Segment)
        m.d.comb += [segments.w_data.eq(held), segment.end.eq(0)]
        done = Signal(_Finished)
        m.d.comb += [
            done.request.cq.eq(st.cq), done.request.queue.eq(queue),
            done.request.kind.eq(QueueKind.RX), done.request.status.eq(result),
            done.request.index.eq(st.consumer), done.request.length.eq(arrival.length),
            done.request.descriptors.eq(used), done.writes.eq(writes),
            finished.w_data.eq(done),
        ]

        with m.FSM():
            with m.State("IDLE"):
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
                    m.d.sync += [arrival.eq(head), queue.eq(head.queue), used.eq(0),
                                 remaining.eq(head.length), placed.eq(0), writes.eq(0),
                                 result.eq(CompletionStatus.OK), held_valid.eq(0)]
                    m.next = "PACKET"

            with m.State("CONTROL"):
                serve_host_command(m, host, st, new, control, in_range)
                m.d.comb += wr.en.eq(host.info.ready & control.write & in_range)
                with m.If(host.info.ready):
                    with m.If(control.write & (cache_queue == queue)):
                        m.d.sync += cache_valid.eq(0)
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
                # A dropped packet is one segment of nothing: the writer discards it.
                m.d.comb += segments.w_data.eq(_Segment.const({"end": 1}))
                with m.If(segments.w_rdy):
                    with m.If(~in_range):
                        m.d.comb += [unqueued_now.eq(1), segments.w_en.eq(1)]
                        m.next = "IDLE"
                    with m.Elif(~st.enable | (st.producer == st.consumer) |
                                (arrival.length == 0)):
                        m.d.comb += [wr.en.eq(1), new.drops.eq(st.drops + 1),
                                     segments.w_en.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "NEXT"

            with m.State("NEXT"):
                # Take the next descriptor from the cache, or fetch a batch. (TAKE ends the
                # packet at the last posted descriptor, so one is always available here.)
                cmd = self.read.cmd
                ahead = Signal(range(batch + 1))
                count = Signal(range(batch + 1))
                m.d.comb += [ahead.eq(Mux(available < batch, available, batch)),
                             count.eq(Mux(to_wrap < ahead, to_wrap, ahead))]
                m.d.comb += [
                    cmd.payload.address.eq(ring_address(st.base, cur, st.log_size)),
                    cmd.payload.length.eq(count * DESCRIPTOR_BYTES),
                    cmd.payload.id.eq(queue),
                ]
                with m.If(hit):
                    m.d.sync += [desc.eq(cache.word_select(cache_taken, 128)),
                                 cache_taken.eq(cache_taken + 1)]
                    m.next = "TAKE"
                with m.Elif(available != 0):
                    m.d.comb += cmd.valid.eq(1)
                    with m.If(cmd.ready):
                        m.d.sync += [cache_valid.eq(0), cache_queue.eq(queue),
                                     cache_start.eq(cur), cache_count.eq(count),
                                     cache_taken.eq(0), got.eq(0), status_got.eq(0),
                                     status_bad.eq(0),
                                     fetch_beats.eq((count * 128 + width - 1)
                                                    >> exact_log2(width))]
                        m.next = "FETCH"
                with m.Else():
                    m.d.sync += result.eq(CompletionStatus.TRUNCATED)
                    m.next = "FINISH"

            with m.State("FETCH"):
                # Data and status are taken in whatever order they come.
                rbeat = self.read.data
                m.d.comb += [rbeat.ready.eq(got != fetch_beats),
                             self.read.status.ready.eq(~status_got)]
                with m.If(rbeat.valid & rbeat.ready):
                    m.d.sync += [got.eq(got + 1),
                                 cache.word_select(got, min(width, batch * 128))
                                 .eq(rbeat.payload.data)]
                with m.If(self.read.status.valid & ~status_got):
                    m.d.sync += [status_got.eq(1),
                                 status_bad.eq(self.read.status.payload.error != DmaError.OK)]
                with m.If((got == fetch_beats) & status_got):
                    with m.If(status_bad):
                        m.d.sync += [used.eq(used + 1),
                                     result.eq(CompletionStatus.DMA_ERROR)]
                        m.next = "FINISH"
                    with m.Else():
                        m.d.sync += cache_valid.eq(1)
                        m.next = "NEXT"

            with m.State("TAKE"):
                fits = remaining <= d_len
                last_buffer = st.producer == (cur + 1)[:16]
                last = fits | last_buffer
                usable = Mux(fits, remaining,
                             Mux(last_buffer, d_len, Cat(Const(0, 6), d_len[6:17])))
                m.d.comb += [segment.address.eq(d_addr), segment.length.eq(usable)]
                with m.If(usable == 0):
                    m.d.sync += [used.eq(used + 1), result.eq(CompletionStatus.BAD_DESCRIPTOR)]
                    m.next = "FINISH"
                with m.Elif(~held_valid | segments.w_rdy):
                    m.d.comb += segments.w_en.eq(held_valid)
                    m.d.sync += [held.eq(segment), held_valid.eq(1),
                                 used.eq(used + 1), remaining.eq(remaining - usable),
                                 placed.eq(placed + usable), writes.eq(writes + 1)]
                    m.next = "NEXT"
                    with m.If(last):
                        with m.If(~fits):
                            m.d.sync += result.eq(CompletionStatus.TRUNCATED)
                        m.next = "FINISH"

            with m.State("FINISH"):
                # The held segment goes with `end` (the writer discards what was not placed);
                # the state and statistics are written back.
                ending = Signal(_Segment)
                m.d.comb += [ending.eq(Mux(held_valid, held, 0)), ending.end.eq(1),
                             segments.w_data.eq(ending)]
                with m.If(segments.w_rdy & finished.w_rdy):
                    m.d.comb += [segments.w_en.eq(1), finished.w_en.eq(1), wr.en.eq(1),
                                 new.consumer.eq(cur)]
                    with m.If(result == CompletionStatus.BAD_DESCRIPTOR):
                        m.d.comb += new.drops.eq(st.drops + 1)
                    with m.Else():
                        m.d.comb += [new.packets.eq(st.packets + 1),
                                     new.bytes.eq(st.bytes + placed)]
                    m.next = "IDLE"

    def _write(self, m, out, segments, marks, open_packets, opening):
        """The writer: one DMA write per segment, fed from the FIFO; the rest discarded.

        Each write leaves a mark (whether it is its packet's last) for the completer. A packet's
        first write waits until fewer than ``RESULTS`` packets are open (written and not yet
        completed), so the completer can always take every write status."""
        lanes = self.width // 8
        seg = data.View(_Segment, segments.r_data)
        wcmd, wdata = self.write.cmd, self.write.data
        sent = Signal(range(MAX_TRANSFER + 1))  # bytes of the segment passed on
        started = Signal()  # the packet has had a write
        remaining = (seg.length - sent)[:17]
        m.d.comb += [
            wcmd.payload.address.eq(seg.address),
            wcmd.payload.length.eq(seg.length),
            wdata.payload.data.eq(out.payload.data),
            wdata.payload.last.eq(remaining <= lanes),
            wdata.payload.keep.eq(keep_bytes(remaining, lanes)),
            marks.w_data.eq(seg.end),
        ]
        with m.FSM(name="writer"):
            with m.State("SEGMENT"):
                with m.If(segments.r_rdy):
                    with m.If(seg.length == 0):
                        m.next = "DISCARD"
                    with m.Elif(marks.w_rdy & (started | (open_packets < _RESULTS))):
                        m.d.comb += wcmd.valid.eq(1)
                        with m.If(wcmd.ready):
                            m.d.comb += [marks.w_en.eq(1), opening.eq(~started)]
                            m.d.sync += [sent.eq(0), started.eq(1)]
                            m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [wdata.valid.eq(out.valid), out.ready.eq(wdata.ready)]
                with m.If(wdata.valid & wdata.ready):
                    m.d.sync += sent.eq(sent + lanes)
                    with m.If(wdata.payload.last):
                        # Segments other than the packet's last end on a beat boundary; the
                        # last one ends with the packet unless the packet was truncated.
                        with m.If(~seg.end | out.payload.last):
                            m.d.comb += segments.r_en.eq(1)
                            m.next = "SEGMENT"
                        with m.Else():
                            m.next = "DISCARD"
                        with m.If(seg.end):
                            m.d.sync += started.eq(0)
            with m.State("DISCARD"):
                m.d.comb += out.ready.eq(1)
                with m.If(out.valid & out.payload.last):
                    m.d.comb += segments.r_en.eq(1)
                    m.d.sync += started.eq(0)
                    m.next = "SEGMENT"

    def _complete(self, m, finished, marks, closing):
        """The completer: write statuses are always taken (their marks say where each packet's
        writes end); a completion per placed packet once its writes are done."""
        m.submodules.results = results = fifo.SyncFIFOBuffered(width=1, depth=_RESULTS)
        status = self.write.status
        failed = Signal()  # a write of the packet whose statuses are arriving failed
        error = status.payload.error != DmaError.OK
        m.d.comb += [status.ready.eq(marks.r_rdy), results.w_data.eq(failed | error)]
        with m.If(status.valid & status.ready):
            m.d.comb += marks.r_en.eq(1)
            m.d.sync += failed.eq(failed | error)
            with m.If(marks.r_data):
                m.d.comb += results.w_en.eq(1)
                m.d.sync += failed.eq(0)

        head = data.View(_Finished, finished.r_data)
        comp = self.completions
        writes = head.writes != 0
        m.d.comb += [
            comp.payload.eq(head.request),
            comp.valid.eq(finished.r_rdy & (~writes | results.r_rdy)),
        ]
        with m.If(writes & results.r_data):
            m.d.comb += comp.payload.status.eq(CompletionStatus.DMA_ERROR)
        with m.If(comp.valid & comp.ready):
            m.d.comb += [finished.r_en.eq(1), results.r_en.eq(writes),
                         closing.eq(writes)]
