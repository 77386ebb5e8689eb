"""Transmit queues: fetch descriptors and packet data from host rings, weighted round robin.

Formats and index conventions: :mod:`amnic.dma.queues`.

Scheduling
----------
A FIFO in block RAM holds the numbers of the *active* queues (each at most once). A doorbell
or a configuration write that leaves an enabled, inactive queue with posted descriptors
(``producer != consumer``) appends it. The scheduler pops a queue and serves up to ``weight``
packets from it (0 counts as 1), then appends it again if it still has descriptors, so
queues share the link in proportion to their weights, in packets.

Fetching
--------
Descriptors are read in *batches* of up to ``batch`` descriptors (one DMA read, two when the
batch wraps around the ring end). Only whole packets are taken from a batch: a packet is the
run of descriptors up to the first one without MORE. A packet whose last descriptor is not yet
posted waits, and the queue goes inactive until the next doorbell. A packet of more than
``batch`` descriptors cannot be taken: its first ``batch`` descriptors complete as
BAD_DESCRIPTOR and the descriptors after them count as new packets. The consumer index
advances when a packet's reads are issued (it counts descriptors fetched; the completion ring
says when packets have left).

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
:attr:`~amnic.dma.queues.QueueError.DESCRIPTOR_DMA` and no completion is written.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream import PacketSignature
from amnic.stream.join import SegmentJoiner

from .commands import DmaError, DmaStatus
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
    consumer: 16  #: descriptors fetched
    error: QueueError
    active: 1  #: in the scheduler FIFO or being served


class QueueStats(data.Struct):
    """Per queue statistics (one block RAM word)."""

    packets: 64
    bytes: 64
    drops: 64


class _JobKind(enum.Enum, shape=2):
    DESCRIPTORS = 0  #: a batch of descriptors
    SEGMENT = 1  #: one segment's data
    SKIP = 2  #: a bad packet: completion only


class _Job(data.Struct):
    """What the data side does with the next DMA read (or with no read, for SKIP)."""

    kind: _JobKind
    final: 1
    queue: 16
    cq: 16
    index: 16
    length: 32
    descriptors: 9  #: SEGMENT and SKIP: descriptors of the packet


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
        Descriptors per fetch, and most descriptors per packet.
    outstanding : int
        DMA reads in flight.

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

    def __init__(self, width, count=256, *, max_packet=9600, batch=16, outstanding=16):
        check_width(width)
        if not 1 <= count <= 4096:
            raise ValueError(f"count must be 1..4096, not {count}")
        if not 1 <= max_packet <= 16383:
            raise ValueError(f"max_packet must be 1..16383, not {max_packet}")
        if batch < 2:
            raise ValueError(f"batch must be at least 2, not {batch}")
        self.width = width
        self.count = count
        self.max_packet = max_packet
        self.batch = batch
        self.outstanding = outstanding
        super().__init__({
            "host": In(QueueHostSignature()),
            "read": Out(DmaReadPortSignature(width)),
            "tx": Out(PacketSignature(width, user_width=16)),
            "tx_bad": Out(1),
            "completions": Out(stream.Signature(CompletionRequest)),
        })

    def elaborate(self, platform):
        m = Module()
        B = self.batch
        qbits = max(1, ceil_log2(self.count))

        m.submodules.state = state_mem = Memory(shape=TxState, depth=self.count, init=[])
        m.submodules.stats = stats_mem = Memory(shape=QueueStats, depth=self.count, init=[])
        st_wr = state_mem.write_port()
        st_rd = state_mem.read_port()
        sx_wr = stats_mem.write_port()
        sx_rd = stats_mem.read_port()
        sx_host = stats_mem.read_port()
        st = data.View(TxState, st_rd.data)

        m.submodules.active = active = fifo.SyncFIFOBuffered(width=qbits, depth=self.count)
        m.submodules.jobs = jobs = fifo.SyncFIFOBuffered(width=_Job.as_shape().size,
                                                         depth=self.outstanding)
        m.submodules.statuses = statuses = fifo.SyncFIFOBuffered(
            width=DmaStatus.as_shape().size, depth=self.outstanding + 2)
        m.submodules.joiner = joiner = SegmentJoiner(self.width, user_width=16)

        m.d.comb += [
            statuses.w_data.eq(self.read.status.payload),
            statuses.w_en.eq(self.read.status.valid),
            self.read.status.ready.eq(statuses.w_rdy),
        ]
        status = data.View(DmaStatus, statuses.r_data)

        # Descriptor buffer, filled by the data side, read by the fetcher.
        d_addr = [Signal(64, name=f"d_addr{b}") for b in range(B)]
        d_len = [Signal(32, name=f"d_len{b}") for b in range(B)]
        d_more = [Signal(name=f"d_more{b}") for b in range(B)]
        d_count = Signal(range(B + 1))  # descriptors received
        d_done = Signal(2)  # descriptor reads finished
        d_error = Signal()
        d_clear = Signal()

        self._fetcher(m, st_wr, st_rd, st, sx_host, active, jobs,
                      (d_addr, d_len, d_more, d_count, d_done, d_error, d_clear))
        # A packet's last beat waits until the status of its final segment's read is known.
        release = Signal()
        release_bad = Signal()
        self._data_side(m, jobs, statuses, status, joiner, sx_wr, sx_rd,
                        (d_addr, d_len, d_more, d_count, d_done, d_error, d_clear),
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

    def _fetcher(self, m, st_wr, st_rd, st, sx_host, active, jobs, dbuf):
        B = self.batch
        host = self.host
        d_addr, d_len, d_more, d_count, d_done, d_error, d_clear = dbuf
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
        cur = Signal(TxState)  # the queue being served
        size = Signal(17)
        m.d.comb += size.eq(1 << cur.log_size)
        served = Signal(8)
        limit = Signal(8)
        m.d.comb += limit.eq(Mux(cur.weight == 0, 1, cur.weight))

        n = Signal(range(B + 1))  # descriptors in the batch
        first = Signal(range(B + 1))  # of which before the ring end
        start = Signal(range(B + 1))  # first descriptor of the packet being scanned
        pos = Signal(range(B + 1))  # descriptor being scanned / issued
        end = Signal(range(B + 1))  # last descriptor of the packet
        plen = Signal(33)
        pbad = Signal()
        stall = Signal()  # an incomplete packet waits for its last descriptor

        def sel(signals, index):
            value = Signal.like(signals[0])
            for b, s in enumerate(signals):
                with m.If(index == b):
                    m.d.comb += value.eq(s)
            return value

        cmd = self.read.cmd
        job = Signal(_Job)
        m.d.comb += [jobs.w_data.eq(job), job.queue.eq(queue), job.cq.eq(cur.cq),
                     job.index.eq(cur.consumer), job.length.eq(plen),
                     job.descriptors.eq(end + 1 - start)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [st_rd.en.eq(1), sx_host.en.eq(1)]
                with m.If(host.control.valid):
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
                with m.Elif(active.r_rdy):
                    m.d.comb += [active.r_en.eq(1), st_rd.addr.eq(active.r_data)]
                    m.d.sync += queue.eq(active.r_data)
                    m.next = "SERVE"

            with m.State("CONTROL"):
                serve_host_command(m, host, st, new, control, in_range,
                                   stats=data.View(QueueStats, sx_host.data))
                work = control.enable & (control.producer != control.consumer)
                m.d.comb += new.active.eq(st.active | work)
                with m.If(host.info.ready):
                    with m.If(control.write & in_range):
                        m.d.comb += [st_wr.en.eq(1), active.w_en.eq(work & ~st.active)]
                    m.next = "IDLE"

            with m.State("DOORBELL"):
                with m.If(in_range & st.enable):
                    m.d.comb += st_wr.en.eq(1)
                    with m.If(bad_index(doorbell.index, st.consumer, st.log_size)):
                        m.d.comb += [new.enable.eq(0), new.error.eq(QueueError.BAD_INDEX)]
                        m.d.sync += host.bad_doorbells.eq(host.bad_doorbells + 1)
                    with m.Else():
                        work = doorbell.index != st.consumer
                        m.d.comb += [new.producer.eq(doorbell.index),
                                     new.active.eq(st.active | work),
                                     active.w_en.eq(work & ~st.active)]
                m.next = "IDLE"

            with m.State("SERVE"):
                m.d.sync += [cur.eq(st), served.eq(0), stall.eq(0)]
                with m.If(st.enable & (st.producer != st.consumer)):
                    m.next = "FETCH"
                with m.Else():
                    m.d.comb += [st_wr.en.eq(1), new.active.eq(0)]
                    m.next = "IDLE"

            with m.State("FETCH"):
                avail = (cur.producer - cur.consumer)[:16]
                to_end = Signal(17)
                m.d.comb += to_end.eq(size - (cur.consumer[:15] & (size - 1)[:15]))
                count = Mux(avail > B, B, avail)
                m.d.comb += d_clear.eq(1)
                m.d.sync += [n.eq(count), first.eq(Mux(to_end < count, to_end, count)),
                             start.eq(0), pos.eq(0), plen.eq(0), pbad.eq(0)]
                m.next = "FETCH1"

            with m.State("FETCH1"):
                m.d.comb += [
                    cmd.valid.eq(jobs.w_rdy),
                    cmd.payload.address.eq(ring_address(cur.base, cur.consumer, cur.log_size)),
                    cmd.payload.length.eq(first * DESCRIPTOR_BYTES),
                    cmd.payload.id.eq(queue),
                    job.kind.eq(_JobKind.DESCRIPTORS),
                    jobs.w_en.eq(cmd.ready & jobs.w_rdy),
                ]
                with m.If(cmd.ready & jobs.w_rdy):
                    m.next = "FETCH2"

            with m.State("FETCH2"):
                with m.If(first == n):
                    m.next = "WAIT"
                with m.Else():
                    m.d.comb += [
                        cmd.valid.eq(jobs.w_rdy),
                        cmd.payload.address.eq(cur.base),
                        cmd.payload.length.eq((n - first) * DESCRIPTOR_BYTES),
                        cmd.payload.id.eq(queue),
                        job.kind.eq(_JobKind.DESCRIPTORS),
                        jobs.w_en.eq(cmd.ready & jobs.w_rdy),
                    ]
                    with m.If(cmd.ready & jobs.w_rdy):
                        m.next = "WAIT"

            with m.State("WAIT"):
                with m.If(d_done == Mux(first == n, 1, 2)):
                    with m.If(d_error):
                        m.d.sync += [cur.enable.eq(0), cur.error.eq(QueueError.DESCRIPTOR_DMA)]
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "SCAN"

            with m.State("SCAN"):
                length = sel(d_len, pos)
                more = sel(d_more, pos)
                total = plen + length
                bad = pbad | (length == 0) | (length > self.max_packet)
                m.d.sync += [plen.eq(total), pbad.eq(bad), end.eq(pos)]
                with m.If(~more):
                    m.d.sync += pbad.eq(bad | (total > self.max_packet))
                    m.d.sync += pos.eq(start)
                    m.next = "ISSUE"
                with m.Elif(pos == n - 1):
                    with m.If((start == 0) & (n == B)):
                        m.d.sync += [pbad.eq(1), pos.eq(start)]
                        m.next = "ISSUE"
                    with m.Elif(start == 0):
                        m.d.sync += stall.eq(1)
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "NEXT"
                with m.Else():
                    m.d.sync += pos.eq(pos + 1)

            with m.State("ISSUE"):
                with m.If(pbad):
                    m.d.comb += [job.kind.eq(_JobKind.SKIP), job.final.eq(1),
                                 jobs.w_en.eq(jobs.w_rdy)]
                    with m.If(jobs.w_rdy):
                        m.next = "ADVANCE"
                with m.Else():
                    last_segment = pos == end
                    m.d.comb += [
                        cmd.valid.eq(jobs.w_rdy),
                        cmd.payload.address.eq(sel(d_addr, pos)),
                        cmd.payload.length.eq(sel(d_len, pos)),
                        cmd.payload.id.eq(queue),
                        job.kind.eq(_JobKind.SEGMENT),
                        job.final.eq(last_segment),
                        jobs.w_en.eq(cmd.ready & jobs.w_rdy),
                    ]
                    with m.If(cmd.ready & jobs.w_rdy):
                        m.d.sync += pos.eq(pos + 1)
                        with m.If(last_segment):
                            m.next = "ADVANCE"

            with m.State("ADVANCE"):
                nxt = end + 1
                m.d.sync += [
                    cur.consumer.eq(cur.consumer + nxt - start),
                    served.eq(served + 1),
                    start.eq(nxt), pos.eq(nxt), plen.eq(0), pbad.eq(0),
                ]
                with m.If(served + 1 == limit):
                    m.next = "FINISH"
                with m.Elif(nxt == n):
                    m.next = "NEXT"
                with m.Else():
                    m.next = "SCAN"

            with m.State("NEXT"):
                with m.If(cur.producer != cur.consumer):
                    m.next = "FETCH"
                with m.Else():
                    m.next = "FINISH"

            with m.State("FINISH"):
                again = cur.enable & (cur.producer != cur.consumer) & ~stall
                m.d.comb += [st_wr.en.eq(1), new.eq(cur), new.active.eq(again),
                             active.w_en.eq(again)]
                m.next = "IDLE"

    def _data_side(self, m, jobs, statuses, status, joiner, sx_wr, sx_rd, dbuf, release,
                   release_bad):
        """Take the read data in command order: descriptors into the buffer, segments into the
        joiner; hand finished packets to the completion stage."""
        d_addr, d_len, d_more, d_count, d_done, d_error, d_clear = dbuf
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

        half = Signal()  # 64-bit bus: the address half of a descriptor has been taken
        low = Signal(64)
        with m.If(d_clear):
            m.d.sync += [d_count.eq(0), d_done.eq(0), d_error.eq(0), half.eq(0)]

        m.d.comb += [
            joiner.i.payload.data.eq(rdata.payload.data),
            joiner.i.payload.keep.eq(rdata.payload.keep),
            joiner.i.payload.last.eq(rdata.payload.last),
            joiner.i.payload.user.eq(Cat(job.final, job.queue)),
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

        with m.FSM():
            with m.State("IDLE"):
                with m.If(jobs.r_rdy):
                    with m.Switch(head.kind):
                        with m.Case(_JobKind.DESCRIPTORS):
                            m.d.comb += jobs.r_en.eq(1)
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
                    self._store_descriptors(m, rdata.payload, d_addr, d_len, d_more, d_count,
                                            half, low)
                    with m.If(rdata.payload.last):
                        m.next = "DESCRIPTOR_STATUS"

            with m.State("DESCRIPTOR_STATUS"):
                with m.If(statuses.r_rdy):
                    m.d.comb += statuses.r_en.eq(1)
                    m.d.sync += [d_done.eq(d_done + 1), d_error.eq(d_error | ~ok)]
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
        with m.FSM():
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

    def _store_descriptors(self, m, beat, d_addr, d_len, d_more, d_count, half, low):
        """Write the descriptors of one read data beat into the buffer."""
        B = self.batch
        if self.width == 64:
            with m.If(~half):
                m.d.sync += [low.eq(beat.data), half.eq(1)]
            with m.Else():
                m.d.sync += half.eq(0)
                for b in range(B):
                    with m.If(d_count == b):
                        m.d.sync += [d_addr[b].eq(low), d_len[b].eq(beat.data[:32]),
                                     d_more[b].eq(beat.data[32])]
                with m.If(d_count < B):
                    m.d.sync += d_count.eq(d_count + 1)
            return
        per_beat = self.width // 128
        for j in range(per_beat):
            word = beat.data[128 * j:128 * (j + 1)]
            valid = beat.keep[16 * j]
            for b in range(B):
                with m.If(valid & (d_count + j == b)):
                    m.d.sync += [d_addr[b].eq(word[:64]), d_len[b].eq(word[64:96]),
                                 d_more[b].eq(word[96])]
        m.d.sync += d_count.eq(d_count + sum(beat.keep[16 * j] for j in range(per_beat)))
