"""Receive queues: write received packets into host buffers posted on descriptor rings.

Formats and index conventions: :mod:`amnic.dma.queues`.

Packets from ``rx`` (``user`` bits 16:1 on the first beat: the RX queue; ``user`` bit 0 on the
last beat: the packet is bad, e.g. a MAC's FCS error or a TX read error in the loopback) are
stored whole in a store-and-forward :class:`~amnic.stream.PacketFifo` of ``fifo_bytes``. A bad
packet is dropped there (``bad_drops``). With ``drop_when_full`` (for a source that cannot wait,
such as a MAC without a FIFO) a packet that does not fit is dropped at once
(``host.unqueued_drops``) and ``rx`` is never back-pressured; without it ``rx`` waits for room
(the internal loopback, or a MAC port with its own FIFO). Each stored packet is then placed, in
arrival order and without waiting for the host:

* queue number beyond ``count``: dropped, counted in ``host.unqueued_drops``;
* queue disabled, no buffer posted (``producer == consumer``), or an empty packet: dropped,
  counted in the queue's ``drops`` (no completion: there is no descriptor to complete); the
  packets behind it, of any queue, go on being placed;
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
  - DMA_ERROR when a descriptor read or a data write failed (a descriptor whose read failed
    is used up: the packet ends there, having used it);
  - OK otherwise. ``packets`` and ``bytes`` (bytes handed to DMA) count all but
    BAD_DESCRIPTOR.

The completion is sent once the statuses of all of the packet's writes are back, so the data is
in host memory before the host can see the entry.

Pipelining: the prefetcher, the placer, the writer and the completer run concurrently around a
descriptor cache.

* The *prefetcher* looks at each stored packet (its queue and length are known once its last
  beat is in), up to ``lookahead`` packets before it is placed, and makes sure the descriptor
  cache holds, or is reading, a descriptor for it: it counts one descriptor per packet against
  the newest cache entry of the packet's queue and, once all of that entry's descriptors are
  counted (or the queue has none), reads the queue's next batch of up to
  :data:`DESCRIPTOR_BATCH` descriptors with one DMA read: from the end of that entry, or from
  the queue's ``consumer``, up to the ring end and to the posted ones (``producer``). Nothing
  is read for a packet of a queue that is disabled, beyond ``count``, without posted buffers,
  or for an empty packet. So reads for the queues of the coming packets are in flight while
  earlier packets are placed, up to ``cache_entries`` of them (the read port answers in
  command order, so the batches come back in the order they were asked for; their data and
  statuses are always taken at once).
* The *descriptor cache* has ``cache_entries`` entries, each one batch of one queue (its
  queue, first index and count; whether its read failed). An entry is allocated in turn (the
  next one after the last allocated) among the free entries and the filled ones whose counted
  packets have all been placed (and that the placer is not reading from); an entry whose read
  is in flight is never reused. A packet may take descriptors from any entry of its queue that
  holds them; counting only decides what to read ahead, and which entries are kept.
* The *placer* reads the queue state, takes each descriptor of the packet from a filled cache
  entry of its queue that holds that index (waiting while the read of an entry that holds it
  is in flight), cuts the packet into buffer segments and updates the queue state. When no
  entry holds the index (a packet spans more buffers than counted, an entry was given to
  another queue, or the doorbell came after the prefetch) the prefetcher reads the batch from
  that index next, before anything else; that read may take a filled entry that waiting
  packets were counted against. After a packet, the entries of its queue that lie wholly
  before the new ``consumer`` are freed; an entry whose read failed is freed when the packet
  that reached it has used up its first descriptor (the queue's next packet reads again from
  the next index).
* The *writer* turns segments into DMA writes fed from the FIFO (and discards what is not
  written); the *completer* waits for the writes' statuses and emits the completions.

The cache only serves a descriptor for the queue and index it was read for, from the ring as
configured when it was read. Control commands and doorbells are taken between packets by the
placer. A configuration write to a queue (``command.write``: a new ring, new indices, or the
queue disabled), or a doorbell that disables it (bad index), drops every cache entry of that
queue: filled entries at once; an entry whose read is in flight when its data is back (the data
is taken and thrown away), so a packet never gets a descriptor read before the change. The
queue's later packets, if it is enabled, read their descriptors afresh. A doorbell that posts
buffers leaves the cache as it is (posted descriptors do not change).

Per-queue state lives in one block RAM word (:class:`RxState`) behind one read port, which the
placer and the prefetcher share: the placer copies the word when it starts a packet or a
command (and writes the copy back, changed); the prefetcher uses a word it read only if no
state word was written in the cycle of its read nor in the next.
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream import PacketFifo, PacketSignature, keep_bytes

from .commands import MAX_TRANSFER, DmaError
from .completions import check_width
from .ports import DmaReadPortSignature, DmaWritePortSignature, round_robin_grant
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

__all__ = ["RxQueues", "RxState", "DESCRIPTOR_BATCH", "SCATTER_BLOCK", "CACHE_ENTRIES",
           "LOOKAHEAD"]

#: Descriptors fetched by one DMA read at most (one descriptor cache entry).
DESCRIPTOR_BATCH = 8
#: A buffer a packet continues beyond is filled in multiples of this many bytes.
SCATTER_BLOCK = 64
#: Default descriptor cache entries (also the descriptor reads in flight at most).
CACHE_ENTRIES = 8
#: Default number of stored packets whose descriptors are fetched ahead of their placement.
LOOKAHEAD = 16
#: Packets written and waiting for their completion at most.
_RESULTS = 16
_DESCRIPTOR_BITS = DESCRIPTOR_BYTES * 8


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


class _Entry(enum.Enum, shape=2):
    """State of a descriptor cache entry."""

    FREE = 0
    PENDING = 1  #: its read is in flight
    VALID = 2  #: filled (or its read failed: ``failed``)


def _batch_count(m, producer, start, log_size, name):
    """Descriptors one read takes from index ``start`` on (HDL): at most
    :data:`DESCRIPTOR_BATCH`, only posted ones (before ``producer``), none past the ring end."""
    batch = DESCRIPTOR_BATCH
    available = (producer - start)[:16]
    mask = ((Const(1, 16) << log_size) - 1)[:16]
    to_wrap = ((Const(1, 17) << log_size) - (start & mask))[:17]
    ahead = Mux(available < batch, available, batch)
    count = Signal(range(batch + 1), name=name)
    m.d.comb += count.eq(Mux(to_wrap < ahead, to_wrap, ahead))
    return count


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
    cache_entries : int
        Descriptor cache entries (2..32), each one batch of :data:`DESCRIPTOR_BATCH`
        descriptors of one queue; also the descriptor reads in flight at most (a read buffer
        in front of ``read`` must hold that many batches for all of them to be in flight).
    lookahead : int
        Stored packets (1..64) whose descriptors are fetched before the packet ahead of them
        is placed.

    Attributes
    ----------
    host : In(QueueHostSignature())
    rx : In(PacketSignature(width, user_width=17))
        ``user``: bit 0 bad (last beat), bits 16:1 the RX queue (first beat).
    read : Out(DmaReadPortSignature(width))
        Descriptor reads (``id``: the queue); data and statuses are always taken at once.
    write : Out(DmaWritePortSignature(width))
        Packet data.
    completions : Out(stream.Signature(CompletionRequest))
    bad_drops : Out(32)
        Packets dropped because ``rx`` marked them bad (wraps).
    """

    def __init__(self, width, count=256, *, fifo_bytes=16384, drop_when_full=True,
                 cache_entries=CACHE_ENTRIES, lookahead=LOOKAHEAD):
        check_width(width)
        if not 1 <= count <= 4096:
            raise ValueError(f"count must be 1..4096, not {count}")
        depth = fifo_bytes // (width // 8)
        if depth < 2 or depth & (depth - 1) or fifo_bytes > 1 << 15:
            raise ValueError(f"fifo_bytes must be a power of two of at least two beats and at "
                             f"most 32768, not {fifo_bytes}")
        if not 2 <= cache_entries <= 32:
            raise ValueError(f"cache_entries must be 2..32, not {cache_entries}")
        if not 1 <= lookahead <= 64:
            raise ValueError(f"lookahead must be 1..64, not {lookahead}")
        self.width = width
        self.count = count
        self.fifo_bytes = fifo_bytes
        self.depth = depth
        self.drop_when_full = drop_when_full
        self.cache_entries = cache_entries
        self.lookahead = lookahead
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
        entries = self.cache_entries
        # Packets the prefetcher has seen, with the cache entry it counted them against.
        ahead_layout = data.StructLayout({
            "queue": 16, "length": 16, "entry": range(entries), "cached": 1})
        m.submodules.ahead = ahead = fifo.SyncFIFOBuffered(
            width=ahead_layout.size, depth=self.lookahead)
        m.submodules.segments = segments = fifo.SyncFIFOBuffered(
            width=_Segment.as_shape().size, depth=16)
        m.submodules.finished = finished = fifo.SyncFIFOBuffered(
            width=_Finished.as_shape().size, depth=16)

        m.submodules.state = mem = Memory(shape=RxState, depth=self.count, init=[])
        c = SimpleNamespace(
            rd=mem.read_port(), wr=mem.write_port(), ahead=ahead, ahead_layout=ahead_layout,
            placer_port=Signal(),  # the placer addresses the state port this cycle
            demand=Signal(),  # the placer needs a batch from `d_start` of `d_queue`
            d_queue=Signal(16), d_start=Signal(16),
            for_placer=Signal(),  # the prefetcher serves the placer's read
            busy_entry=Signal(range(entries)),  # the entry the placer's packet reads from
            busy=Signal(),
        )
        self._cache(m, c)
        self._prefetch(m, c, arrivals)
        self._place(m, c, overflow, segments, finished)
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

    def _cache(self, m, c):
        """The descriptor cache: entry bookkeeping, descriptor storage, the read command (from
        the placer or the prefetcher) and the reception of the batches read.

        Sets on ``c``: ``entries`` (per entry: ``state``, ``stale`` (dropped while its read is
        in flight), ``failed``, ``queue``, ``start``, ``count``, ``claimed`` (packets the
        prefetcher counted against it), ``newest`` (the last entry allocated for its queue),
        ``refs`` (packets waiting for placement that were counted against it) and the
        combinational input ``kill``), the request inputs (``claim_en``/``claim_idx``,
        ``ref_en``/``ref_idx``, ``release_en``/``release_idx``; the read to issue ``f_queue``,
        ``f_start``, ``f_count``, ``f_address`` with ``want`` and ``for_placer``), the outputs
        ``issued`` and ``victim`` (the entry it fills), and the descriptor read port
        ``read_en``/``read_entry``/``read_offset`` -> ``descriptor`` (one cycle later, held
        while ``read_en`` is low).
        """
        width = self.width
        batch = DESCRIPTOR_BATCH
        n = self.cache_entries
        bits = max(1, ceil_log2(n))
        refs_range = range(self.lookahead + 2)

        c.entries = []
        for e in range(n):
            c.entries.append(SimpleNamespace(
                state=Signal(_Entry, name=f"entry{e}_state"),
                stale=Signal(name=f"entry{e}_stale"),
                data_done=Signal(name=f"entry{e}_data_done"),
                status_done=Signal(name=f"entry{e}_status_done"),
                failed=Signal(name=f"entry{e}_failed"),
                queue=Signal(range(self.count), name=f"entry{e}_queue"),
                start=Signal(16, name=f"entry{e}_start"),
                count=Signal(range(batch + 1), name=f"entry{e}_count"),
                claimed=Signal(range(batch + 1), name=f"entry{e}_claimed"),
                newest=Signal(name=f"entry{e}_newest"),
                refs=Signal(refs_range, name=f"entry{e}_refs"),
                kill=Signal(name=f"entry{e}_kill"),
            ))
        for name in ("claim", "ref", "release"):
            setattr(c, f"{name}_en", Signal(name=f"{name}_en"))
            setattr(c, f"{name}_idx", Signal(range(n), name=f"{name}_idx"))
        c.f_queue, c.f_start = Signal(16), Signal(16)
        c.f_count, c.f_address = Signal(range(batch + 1)), Signal(64)
        c.want = Signal()
        c.issued = Signal()
        c.victim = Signal(range(n))
        for ent in c.entries:
            ent.live = (ent.state != _Entry.FREE) & ~ent.stale

        # Allocation: in turn among the free entries and the filled ones that no waiting
        # packet was counted against (and that the placer is not reading from); the placer's
        # own reads may also take a filled entry that waiting packets were counted against.
        spare = Signal(n)
        usable = Signal(n)
        for e, ent in enumerate(c.entries):
            in_use = c.busy & (c.busy_entry == e)
            m.d.comb += [
                spare[e].eq((ent.state == _Entry.FREE) |
                            ((ent.state == _Entry.VALID) & (ent.refs == 0) & ~in_use)),
                usable[e].eq(ent.state != _Entry.PENDING),
            ]
        candidates = Signal(n)
        m.d.comb += candidates.eq(Mux(c.for_placer & ~spare.any(), usable, spare))
        last = Signal(range(n), init=n - 1)
        grant, any_candidate = round_robin_grant(m, candidates, last, "victim")
        m.d.comb += c.victim.eq(grant)

        cmd = self.read.cmd
        m.d.comb += [
            cmd.payload.address.eq(c.f_address),
            cmd.payload.length.eq(c.f_count * DESCRIPTOR_BYTES),
            cmd.payload.id.eq(c.f_queue),
            cmd.valid.eq(c.want & any_candidate),
            c.issued.eq(cmd.valid & cmd.ready),
        ]
        with m.If(c.issued):
            m.d.sync += last.eq(grant)

        # Reception: data and statuses come in command order, each at its own pace; an entry
        # is filled once both are in.
        m.submodules.data_order = data_order = fifo.SyncFIFO(width=bits, depth=n)
        m.submodules.status_order = status_order = fifo.SyncFIFO(width=bits, depth=n)
        rdata, rstatus = self.read.data, self.read.status
        m.d.comb += [
            data_order.w_data.eq(c.victim), data_order.w_en.eq(c.issued),
            status_order.w_data.eq(c.victim), status_order.w_en.eq(c.issued),
            rdata.ready.eq(data_order.r_rdy),
            rstatus.ready.eq(status_order.r_rdy),
        ]
        beat = Signal(range(batch * _DESCRIPTOR_BITS // width + 1))
        beat_taken = rdata.valid & rdata.ready
        data_end = beat_taken & rdata.payload.last
        status_taken = rstatus.valid & rstatus.ready
        with m.If(beat_taken):
            m.d.sync += beat.eq(Mux(rdata.payload.last, 0, beat + 1))
        m.d.comb += [data_order.r_en.eq(data_end), status_order.r_en.eq(status_taken)]

        # Descriptor storage: descriptor k of entry e in bank k % banks, word
        # e * words + k // banks (a beat of 256 or 512 bits carries 2 or 4 descriptors; at
        # 64 bits a descriptor takes two beats, written as two halves of its word).
        banks = max(1, width // _DESCRIPTOR_BITS)
        words = batch // banks
        granularity = width if width < _DESCRIPTOR_BITS else None
        c.read_en = Signal()
        c.read_entry = Signal(range(n))
        c.read_offset = Signal(range(batch))
        c.descriptor = Signal(_DESCRIPTOR_BITS)
        bank_data = []
        select = Signal(range(banks))  # bank of the descriptor read
        if banks > 1:
            with m.If(c.read_en):
                m.d.sync += select.eq(c.read_offset % banks)
        for b in range(banks):
            store = Memory(shape=_DESCRIPTOR_BITS, depth=n * words, init=[])
            m.submodules[f"descriptors{b}"] = store
            wp = store.write_port(granularity=granularity)
            rp = store.read_port()
            m.d.comb += [
                rp.en.eq(c.read_en),
                rp.addr.eq(c.read_entry * words + c.read_offset // banks),
            ]
            if granularity is None:
                m.d.comb += [
                    wp.addr.eq(data_order.r_data * words + beat),
                    wp.data.eq(rdata.payload.data[b * _DESCRIPTOR_BITS:
                                                  (b + 1) * _DESCRIPTOR_BITS]),
                    wp.en.eq(beat_taken),
                ]
            else:
                halves = _DESCRIPTOR_BITS // width
                m.d.comb += [
                    wp.addr.eq(data_order.r_data * words + beat // halves),
                    wp.data.eq(Cat(rdata.payload.data for _ in range(halves))),
                ]
                for h in range(halves):
                    m.d.comb += wp.en[h].eq(beat_taken & (beat % halves == h))
            bank_data.append(rp.data)
        m.d.comb += c.descriptor.eq(Array(bank_data)[select] if banks > 1 else bank_data[0])

        # Entry bookkeeping.
        for e, ent in enumerate(c.entries):
            completing = (ent.state == _Entry.PENDING) & ent.data_done & ent.status_done
            with m.If(data_end & (data_order.r_data == e)):
                m.d.sync += ent.data_done.eq(1)
            with m.If(status_taken & (status_order.r_data == e)):
                m.d.sync += [ent.status_done.eq(1),
                             ent.failed.eq(rstatus.payload.error != DmaError.OK)]
            with m.If(completing):
                m.d.sync += [ent.state.eq(Mux(ent.stale, _Entry.FREE, _Entry.VALID)),
                             ent.stale.eq(0), ent.data_done.eq(0), ent.status_done.eq(0)]
            with m.If(ent.kill):
                with m.If((ent.state == _Entry.VALID) | completing):
                    m.d.sync += ent.state.eq(_Entry.FREE)
                with m.Elif(ent.state == _Entry.PENDING):
                    m.d.sync += ent.stale.eq(1)
            with m.If(c.claim_en & (c.claim_idx == e)):
                m.d.sync += ent.claimed.eq(ent.claimed + 1)
            with m.If(c.issued & (ent.queue == c.f_queue)):
                m.d.sync += ent.newest.eq(0)
            with m.If(c.issued & (c.victim == e)):
                m.d.sync += [
                    ent.state.eq(_Entry.PENDING), ent.stale.eq(0), ent.data_done.eq(0),
                    ent.status_done.eq(0), ent.failed.eq(0), ent.queue.eq(c.f_queue),
                    ent.start.eq(c.f_start), ent.count.eq(c.f_count),
                    ent.claimed.eq(~c.for_placer), ent.newest.eq(1),
                ]
            m.d.sync += ent.refs.eq(ent.refs + (c.ref_en & (c.ref_idx == e))
                                    - (c.release_en & (c.release_idx == e)))

    def _prefetch(self, m, c, arrivals):
        """The prefetcher: each stored packet, in order, into ``ahead`` with the cache entry it
        was counted against, after fetching its queue's next batch when none is left over; and
        the placer's own batch reads (``demand``), which come first.

        It reads the queue state through the placer's port when the placer leaves it free, and
        uses what it read only if no state word was written in the cycle of the read nor in the
        cycle after (so the consumer index and the configuration it fetches with are current;
        for the placer's read, the placer's ``cur`` stands for the consumer index).
        """
        n = self.cache_entries
        rd, wr, ahead = c.rd, c.wr, c.ahead
        head = data.View(_Arrival, arrivals.r_data)
        queue = head.queue
        st = data.View(RxState, rd.data)
        serving = c.for_placer  # the read under way is the placer's
        m.d.comb += rd.addr.eq(Mux(serving, c.d_queue, queue))  # unless the placer takes it

        # The newest entry of the packet's queue, and whether a descriptor of it is left over.
        found = Signal()
        newest = Signal(range(n))
        for e in reversed(range(n)):
            ent = c.entries[e]
            with m.If(ent.live & ent.newest & (ent.queue == queue)):
                m.d.comb += [found.eq(1), newest.eq(e)]

        def pick(field):
            return Array(getattr(ent, field) for ent in c.entries)[newest]

        room = found & (pick("claimed") < pick("count"))
        start = Signal(16)
        with m.If(serving):
            m.d.comb += start.eq(c.d_start)
        with m.Elif(found):
            m.d.comb += start.eq(pick("start") + pick("count"))
        with m.Else():
            m.d.comb += start.eq(st.consumer)
        m.d.comb += [
            c.f_queue.eq(Mux(serving, c.d_queue, queue)), c.f_start.eq(start),
            c.f_count.eq(_batch_count(m, st.producer, start, st.log_size, "batch")),
            c.f_address.eq(ring_address(st.base, start, st.log_size)),
        ]

        out = data.View(c.ahead_layout, ahead.w_data)
        m.d.comb += [out.queue.eq(head.queue), out.length.eq(head.length)]

        def push(entry=None, *, claim=False):
            m.d.comb += [ahead.w_en.eq(1), arrivals.r_en.eq(1)]
            if entry is not None:
                m.d.comb += [out.entry.eq(entry), out.cached.eq(1),
                             c.ref_en.eq(1), c.ref_idx.eq(entry)]
            if claim:
                m.d.comb += [c.claim_en.eq(1), c.claim_idx.eq(newest)]

        with m.FSM(name="prefetch"):
            with m.State("SCAN"):
                m.d.sync += serving.eq(c.demand)
                with m.If(c.demand):
                    m.next = "READ"
                with m.Elif(arrivals.r_rdy & ahead.w_rdy):
                    with m.If((queue >= self.count) | (head.length == 0)):
                        push()
                    with m.Elif(room):
                        push(newest, claim=True)
                    with m.Else():
                        m.next = "READ"
            with m.State("READ"):
                with m.If(~serving & c.demand):
                    m.next = "SCAN"  # the placer's read first
                with m.Elif(~c.placer_port & ~wr.en):
                    m.next = "STATE"
            with m.State("STATE"):
                with m.If(serving ^ c.demand):
                    # The placer needs a read (put this prefetch off), or no longer does.
                    m.next = "SCAN"
                with m.Elif(wr.en):
                    m.next = "READ"
                with m.Elif(~serving & room):
                    push(newest, claim=True)
                    m.next = "SCAN"
                with m.Elif(~serving & (~st.enable | (st.producer == start) |
                                        bad_index(st.producer, start, st.log_size))):
                    push()
                    m.next = "SCAN"
                with m.Else():
                    m.d.comb += c.want.eq(1)
                    with m.If(c.issued):
                        with m.If(~serving):
                            push(c.victim)
                        m.next = "SCAN"
                    with m.Else():
                        m.next = "READ"

    def _place(self, m, c, overflow, segments, finished):
        """The placer: queue state, descriptors from the cache, segments and completions."""
        host = self.host
        n = self.cache_entries
        rd, wr = c.rd, c.wr

        unqueued = Signal(32)
        unqueued_now = Signal()
        m.d.sync += unqueued.eq(unqueued + overflow + unqueued_now)
        m.d.comb += host.unqueued_drops.eq(unqueued)

        # The state word read for a command or a packet (the port is held until it is copied
        # into `pst`, which frees the port for the prefetcher; every write is `pst` changed).
        st = data.View(RxState, rd.data)
        pst = Signal(RxState)
        new = Signal(RxState)
        is_control = Signal()
        queue = Signal(16)
        in_range = queue < self.count
        m.d.comb += [wr.addr.eq(queue), wr.data.eq(new), new.eq(pst)]

        def hold_port(address=queue):
            m.d.comb += [c.placer_port.eq(1), rd.addr.eq(address)]

        control = Signal.like(host.control.payload)
        doorbell = Signal.like(host.doorbell.payload)
        arrival = Signal(c.ahead_layout)
        head = data.View(c.ahead_layout, c.ahead.r_data)

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
        desc = c.descriptor
        d_addr, d_len = desc[:64], desc[64:96]
        cur = (pst.consumer + used)[:16]
        available = (pst.producer - cur)[:16]

        # Cache lookup of descriptor `cur` of the queue: a filled entry holding it, or one
        # whose read is in flight. (Entries of the queue wholly before `cur` are freed once the
        # packet is done.)
        valid_hits = Signal(n)
        pending_hits = Signal(n)
        behind = Signal(n)
        same_queue = Signal(n)
        offsets = []
        for e, ent in enumerate(c.entries):
            offset = (cur - ent.start)[:16]
            holds = ent.live & (ent.queue == queue) & (offset < ent.count)
            offsets.append(offset[:ceil_log2(DESCRIPTOR_BATCH)])
            m.d.comb += [
                same_queue[e].eq(ent.queue == queue),
                valid_hits[e].eq(holds & (ent.state == _Entry.VALID)),
                pending_hits[e].eq(holds & (ent.state == _Entry.PENDING)),
                behind[e].eq((offset >= ent.count) & ~offset[15]),
            ]
        hit = Signal(range(n))
        for e in reversed(range(n)):
            with m.If(valid_hits[e]):
                m.d.comb += hit.eq(e)
        hit_failed = Array(ent.failed for ent in c.entries)[hit]
        m.d.comb += [c.read_entry.eq(hit), c.read_offset.eq(Array(offsets)[hit])]
        kill_queue = Signal()  # drop every entry of the queue
        kill_behind = Signal()  # drop the queue's entries before `cur`
        kill_hit = Signal()  # drop the entry hit
        for e, ent in enumerate(c.entries):
            m.d.comb += ent.kill.eq((same_queue[e] & (kill_queue | (kill_behind & behind[e])))
                                    | (kill_hit & (hit == e)))

        # The placer's own batch read, from `cur` (the prefetcher issues it).
        m.d.comb += [c.d_queue.eq(queue), c.d_start.eq(cur), c.release_idx.eq(arrival.entry)]

        def release():
            """The packet is done: it no longer holds its entry."""
            m.d.comb += c.release_en.eq(arrival.cached)

        segment = Signal(_Segment)
        m.d.comb += [segments.w_data.eq(held), segment.end.eq(0)]
        done = Signal(_Finished)
        m.d.comb += [
            done.request.cq.eq(pst.cq), done.request.queue.eq(queue),
            done.request.kind.eq(QueueKind.RX), done.request.status.eq(result),
            done.request.index.eq(pst.consumer), done.request.length.eq(arrival.length),
            done.request.descriptors.eq(used), done.writes.eq(writes),
            finished.w_data.eq(done),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += c.busy.eq(0)
                with m.If(host.control.valid):
                    hold_port(host.control.payload.queue)
                    m.d.comb += host.control.ready.eq(1)
                    m.d.sync += [control.eq(host.control.payload), is_control.eq(1),
                                 queue.eq(host.control.payload.queue)]
                    m.next = "LOAD"
                with m.Elif(host.doorbell.valid):
                    hold_port(host.doorbell.payload.queue)
                    m.d.comb += host.doorbell.ready.eq(1)
                    m.d.sync += [doorbell.eq(host.doorbell.payload), is_control.eq(0),
                                 queue.eq(host.doorbell.payload.queue)]
                    m.next = "LOAD"
                with m.Elif(c.ahead.r_rdy):
                    hold_port(head.queue)
                    m.d.comb += c.ahead.r_en.eq(1)
                    m.d.sync += [arrival.eq(head), queue.eq(head.queue), used.eq(0),
                                 remaining.eq(head.length), placed.eq(0), writes.eq(0),
                                 result.eq(CompletionStatus.OK), held_valid.eq(0)]
                    m.next = "PACKET"

            with m.State("LOAD"):
                m.d.sync += pst.eq(st)
                with m.If(is_control):
                    m.next = "CONTROL"
                with m.Else():
                    m.next = "DOORBELL"

            with m.State("CONTROL"):
                serve_host_command(m, host, pst, new, control, in_range)
                m.d.comb += wr.en.eq(host.info.ready & control.write & in_range)
                with m.If(host.info.ready):
                    m.d.comb += kill_queue.eq(control.write & in_range)
                    m.next = "IDLE"

            with m.State("DOORBELL"):
                with m.If(in_range & pst.enable):
                    m.d.comb += wr.en.eq(1)
                    with m.If(bad_index(doorbell.index, pst.consumer, pst.log_size)):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.BAD_INDEX),
                                     kill_queue.eq(1)]
                        m.d.sync += host.bad_doorbells.eq(host.bad_doorbells + 1)
                    with m.Else():
                        m.d.comb += new.producer.eq(doorbell.index)
                m.next = "IDLE"

            with m.State("PACKET"):
                hold_port()
                m.d.sync += pst.eq(st)
                # A dropped packet is one segment of nothing: the writer discards it.
                m.d.comb += segments.w_data.eq(_Segment.const({"end": 1}))
                with m.If(segments.w_rdy):
                    with m.If(~in_range):
                        m.d.comb += [unqueued_now.eq(1), segments.w_en.eq(1)]
                        release()
                        m.next = "IDLE"
                    with m.Elif(~st.enable | (st.producer == st.consumer) |
                                (arrival.length == 0)):
                        m.d.comb += segments.w_en.eq(1)
                        m.next = "DROP"
                    with m.Else():
                        m.d.sync += c.busy.eq(1)
                        m.next = "NEXT"

            with m.State("DROP"):
                m.d.comb += [wr.en.eq(1), new.drops.eq(pst.drops + 1)]
                release()
                m.next = "IDLE"

            with m.State("NEXT"):
                # Take the next descriptor from the cache, wait for it, or read a batch from
                # it on. (TAKE ends the packet at the last posted descriptor, so one is always
                # available here.)
                with m.If(valid_hits.any()):
                    with m.If(hit_failed):
                        m.d.comb += kill_hit.eq(1)
                        m.d.sync += [used.eq(used + 1), result.eq(CompletionStatus.DMA_ERROR)]
                        m.next = "FINISH"
                    with m.Else():
                        m.d.comb += c.read_en.eq(1)
                        m.d.sync += c.busy_entry.eq(hit)
                        m.next = "TAKE"
                with m.Elif(pending_hits.any()):
                    pass
                with m.Elif(available != 0):
                    m.d.comb += c.demand.eq(1)
                with m.Else():
                    m.d.sync += result.eq(CompletionStatus.TRUNCATED)
                    m.next = "FINISH"

            with m.State("TAKE"):
                fits = remaining <= d_len
                last_buffer = pst.producer == (cur + 1)[:16]
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
                # the state and statistics are written back, the queue's entries before the
                # new consumer index freed.
                ending = Signal(_Segment)
                m.d.comb += [ending.eq(Mux(held_valid, held, 0)), ending.end.eq(1),
                             segments.w_data.eq(ending)]
                with m.If(segments.w_rdy & finished.w_rdy):
                    m.d.comb += [segments.w_en.eq(1), finished.w_en.eq(1), wr.en.eq(1),
                                 new.consumer.eq(cur), kill_behind.eq(1)]
                    release()
                    with m.If(result == CompletionStatus.BAD_DESCRIPTOR):
                        m.d.comb += new.drops.eq(pst.drops + 1)
                    with m.Else():
                        m.d.comb += [new.packets.eq(pst.packets + 1),
                                     new.bytes.eq(pst.bytes + placed)]
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
