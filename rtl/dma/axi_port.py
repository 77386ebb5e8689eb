"""AXI4 slave port onto host memory: another core reads and writes host memory with AXI4 bursts,
each burst carried out as one transfer by the DMA engines.

:class:`HostMemoryPort` sits between an AXI4 master (the RDMA engine, ARM IHI 0022) and the DMA
write and read engines, which speak :class:`~amnic.dma.commands.DmaCommand` /
:class:`~amnic.dma.commands.DmaStatus` plus packed byte streams (:mod:`amnic.dma.commands`).
The AXI address is the host (bus) address; the port adds no translation or window check (the
engines check their windows and answer with an error status).
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from amnic.stream.axi4 import Axi4Signature, AxiBurst, AxiResp
from amnic.stream.skid import SkidBuffer, StreamSkidBuffer

from .commands import DmaError
from .ports import DmaReadPortSignature, DmaWritePortSignature

__all__ = ["HostMemoryPort"]

#: Longest AXI4 INCR burst in beats (AxLEN is 8 bits, IHI 0022 A3.4.1).
MAX_BURST_BEATS = 256

# What the write response of a burst depends on.
_B_ENGINE = 0  # the write engine's status for the burst's command
_B_OKAY = 1  # nothing to write (all strobes low): OKAY at once
_B_SLVERR = 2  # refused without touching memory: SLVERR at once


def _fifo(m, name, layout, depth, *, buffered=False):
    """A FIFO of ``layout`` entries; returns it with views of its write and read data."""
    cls = SyncFIFOBuffered if buffered else SyncFIFO
    fifo = cls(width=data.Layout.cast(layout).size, depth=depth)
    m.submodules[name] = fifo
    return fifo, layout(fifo.w_data), layout(fifo.r_data)


class HostMemoryPort(wiring.Component):
    """AXI4 slave whose bursts become DMA engine transfers to and from host memory.

    **Supported bursts.** INCR bursts (IHI 0022 A3.4.1) of 1 to 256 beats whose ``AxSIZE`` is
    the full data width (``log2(width / 8)``). FIXED and WRAP bursts and narrow sizes are
    answered SLVERR without touching memory: a write's W beats are still taken up to ``wlast``,
    a read still returns ``arlen + 1`` beats (data zero, ``rlast`` on the last). A burst that
    crosses a 4 KB boundary is illegal in AXI (IHI 0022 A3.4.1) but is carried out anyway, as
    one transfer (the engines split transfers at 4 KB). ``AxLOCK`` (exclusive access, IHI 0022
    A7.2), ``AxCACHE`` and ``AxPROT`` are ignored: an exclusive access is performed as a normal
    one and answered OKAY, which is how a slave without exclusive-access support answers
    (IHI 0022 A7.2). Address and data channels of a write may come in any order (IHI 0022
    A3.3.1); W beats are taken before their AW arrives.

    **Writes.** The bytes written are those whose ``wstrb`` bit is set (IHI 0022 A3.4.3); the
    low address bits of ``awaddr`` are not used, the strobes say where the data starts. The
    strobed bytes of a burst must form *one contiguous run* in address order: the run may start
    at any lane of its first beat and end at any lane of its last beat, and every beat in between
    is fully strobed (beats wholly before or after the run, with no strobe, are allowed). The
    beats of the run are kept in a BRAM FIFO while the run is checked and its bytes counted. At
    ``wlast``, once the burst's AW has arrived too, one write command is issued with

    * ``address`` = ``awaddr`` aligned down to the beat + ``width / 8`` times the index of the
      run's first beat + the run's first lane,
    * ``length`` = number of strobed bytes, ``id`` = ``awid`` (zero-extended or truncated),

    and the stored beats leave on ``wr.data`` packed (the first strobed byte in lane 0, ``keep``
    all ones up to a partial last beat with ``last``), through a funnel shifter over two stored
    beats. The B response (with ``bid`` = ``awid``) waits for the engine's status of that
    command: OKAY for :attr:`DmaError.OK`, SLVERR for any other outcome. Without a command:

    * strobes that are not one contiguous run, a number of W beats other than ``awlen + 1``, or
      more than 256 W beats: SLVERR, nothing written;
    * all strobes low: OKAY, nothing written (AXI allows a write with no byte enabled; there is
      nothing to do, and a zero-length DMA transfer does not exist).

    B responses come in AW order.

    **Reads.** An accepted AR becomes one read command at ``araddr`` aligned down to the beat,
    of ``(arlen + 1) * width / 8`` bytes, so the returned data is already lane-aligned and each
    ``rd.data`` beat is one R beat (``rid`` = ``arid``, ``rlast`` on the last). Up to
    ``read_depth`` reads are outstanding; R beats come in AR order (the engine returns data in
    command order). Read status: the final R beat of a burst waits until the engine's status of
    its command has arrived and carries OKAY for :attr:`DmaError.OK` or SLVERR; an earlier beat
    carries SLVERR only if an error status was already there when it left (``rresp`` is per beat,
    IHI 0022 A3.4.4, so the final beat's response is the one that covers the whole burst). The
    low bits of ``araddr`` are not used: the first beat holds the whole aligned word.

    **Throughput.** W is taken at one beat per cycle while the buffer has room; stored beats
    leave at one per cycle whenever the engine takes them, bursts back to back. A run that spans
    several beats and does not start in lane 0 costs one extra cycle to prime the funnel shifter
    (16-beat bursts of that kind drain at 16 beats in 17 cycles, which W also sustains once the
    buffer has filled). A transfer
    starts only once its last beat is stored (the command carries the length), so the buffer
    holds at least one longest burst (``burst_buffer_beats`` >= 256). Because the buffer is a
    FIFO, the next burst's beats enter as the previous burst's beats leave: with the engine
    always ready, W sustains about one beat per cycle whatever the burst length, the only loss
    being a few cycles per burst when a burst of the full buffer size waits for its ``wlast``.
    AR is taken at up to one per cycle; R carries one beat per cycle.

    Parameters
    ----------
    width : int
        Data width of AXI and of the engine streams, in bits: a power of two from 32 to 1024.
    id_width : int
        Width of the AXI transaction IDs.
    burst_buffer_beats : int
        Depth of the write data buffer in beats; at least 256 (one longest burst).
    read_depth : int
        Most reads outstanding (AR taken, last R beat not yet given).
    write_depth : int
        Most writes between the decision at ``wlast`` and their B response.
    counter_width : int
        Width of the counters.

    Attributes
    ----------
    s_axi : In(Axi4Signature(64, width, id_width))
        AXI4 slave port; 64-bit host addresses.
    wr : Out(DmaWritePortSignature(width))
        To the write engine (:mod:`amnic.dma.ports`).
    wr.cmd
        Commands to the write engine.
    wr.data
        Data to the write engine: each command's ``length`` bytes, packed, ``last`` on the final
        beat; beats of a command leave only after its command has been offered.
    wr.status
        The write engine's status, one per command, in command order.
    rd : Out(DmaReadPortSignature(width))
        To the read engine.
    rd.cmd
        Commands to the read engine.
    rd.data
        Data from the read engine: each command's ``length`` bytes in command order.
    rd.status
        The read engine's status, one per command, in command order.
    write_bursts, write_errors : Out(counter_width)
        Write bursts answered on B, and those answered SLVERR.
    read_bursts, read_errors : Out(counter_width)
        Read bursts finished on R (``rlast`` taken), and those whose last beat had SLVERR.
    rejected_bursts : Out(counter_width)
        Bursts refused without a command (unsupported type or size, bad strobes or beat count);
        these are also counted in ``write_errors``/``read_errors``.
    """

    def __init__(self, width, *, id_width=8, burst_buffer_beats=256, read_depth=16,
                 write_depth=16, counter_width=32):
        if width < 32 or width > 1024 or width & (width - 1):
            raise ValueError(f"width must be a power of two from 32 to 1024, not {width}")
        if burst_buffer_beats < MAX_BURST_BEATS:
            raise ValueError(f"the write buffer must hold a {MAX_BURST_BEATS}-beat burst, "
                             f"not {burst_buffer_beats} beats")
        if read_depth < 1 or write_depth < 1:
            raise ValueError("read_depth and write_depth must be positive")
        self.width = width
        self.id_width = id_width
        self.burst_buffer_beats = burst_buffer_beats
        self.read_depth = read_depth
        self.write_depth = write_depth
        super().__init__({
            "s_axi": In(Axi4Signature(64, width, id_width)),
            "wr": Out(DmaWritePortSignature(width)),
            "rd": Out(DmaReadPortSignature(width)),
            "write_bursts": Out(counter_width),
            "write_errors": Out(counter_width),
            "read_bursts": Out(counter_width),
            "read_errors": Out(counter_width),
            "rejected_bursts": Out(counter_width),
        })

    def elaborate(self, platform):
        m = Module()
        self._write_path(m)
        self._read_path(m)
        return m

    # -- write path -------------------------------------------------------------------------

    def _write_path(self, m):
        axi = self.s_axi
        lanes = self.width // 8
        shift = exact_log2(lanes)
        max_bytes = MAX_BURST_BEATS * lanes

        # AW queue.
        aw_layout = data.StructLayout({
            "addr": 64, "len": 8, "size": 3, "burst": 2, "id": self.id_width})
        aw_fifo, aw_in, aw = _fifo(m, "aw_fifo", aw_layout, 4)
        m.d.comb += [
            aw_in.addr.eq(axi.awaddr), aw_in.len.eq(axi.awlen), aw_in.size.eq(axi.awsize),
            aw_in.burst.eq(axi.awburst), aw_in.id.eq(axi.awid),
            aw_fifo.w_en.eq(axi.awvalid),
            axi.awready.eq(aw_fifo.w_rdy),
        ]

        # W ingest: store the beats of the run, summarise each burst at wlast.
        summary_layout = data.StructLayout({
            "bad": 1,  # strobes not one run, or too many beats
            "beats": range(MAX_BURST_BEATS + 1),  # W beats seen
            "stored": range(MAX_BURST_BEATS + 1),  # beats of the run, in the data FIFO
            "first_beat": range(MAX_BURST_BEATS),  # index of the run's first beat
            "lo": range(lanes),  # first lane of the run
            "bytes": range(max_bytes + 1),
        })
        sum_fifo, sm_in, sm = _fifo(m, "summary_fifo", summary_layout, 4)
        dfifo = SyncFIFOBuffered(width=self.width, depth=self.burst_buffer_beats)
        m.submodules.data_fifo = dfifo

        w_fire = Signal()
        m.d.comb += [
            axi.wready.eq(dfifo.w_rdy & sum_fifo.w_rdy),
            w_fire.eq(axi.wvalid & axi.wready),
        ]

        strb = axi.wstrb
        nonzero = Signal()
        contiguous = Signal()  # strobes are one run within the beat
        lo, hi = Signal(range(lanes)), Signal(range(lanes))
        up = [Signal(name=f"strb_up{i}") for i in range(lanes)]  # a strobe at or below lane i
        down = [Signal(name=f"strb_down{i}") for i in range(lanes)]  # ... at or above lane i
        for i in range(lanes):
            m.d.comb += up[i].eq(strb[i] if i == 0 else up[i - 1] | strb[i])
        for i in reversed(range(lanes)):
            m.d.comb += down[i].eq(strb[i] if i == lanes - 1 else down[i + 1] | strb[i])
        m.d.comb += [
            nonzero.eq(strb.any()),
            contiguous.eq(nonzero & (strb == (Cat(*up) & Cat(*down)))),
        ]
        for i in reversed(range(lanes)):
            with m.If(strb[i]):
                m.d.comb += lo.eq(i)
        for i in range(lanes):
            with m.If(strb[i]):
                m.d.comb += hi.eq(i)

        # Burst state before this beat; the run is "open" while it has reached the top lane.
        beats = Signal(range(MAX_BURST_BEATS + 1))
        stored = Signal(range(MAX_BURST_BEATS + 1))
        first_beat = Signal(range(MAX_BURST_BEATS))
        run_lo = Signal(range(lanes))
        nbytes = Signal(range(max_bytes + 1))
        started = Signal()  # a strobed byte has been seen
        open_ = Signal()  # ... and the last one was in the top lane of the previous beat
        bad = Signal()
        # The same after this beat.
        n_beats = Signal.like(beats)
        n_stored = Signal.like(stored)
        n_first = Signal.like(first_beat)
        n_lo = Signal.like(run_lo)
        n_bytes = Signal.like(nbytes)
        n_started, n_open, n_bad = Signal(), Signal(), Signal()
        store = Signal()

        m.d.comb += [
            n_beats.eq(beats), n_stored.eq(stored), n_first.eq(first_beat), n_lo.eq(run_lo),
            n_bytes.eq(nbytes), n_started.eq(started), n_open.eq(open_), n_bad.eq(bad),
        ]
        with m.If(beats == MAX_BURST_BEATS):
            m.d.comb += n_bad.eq(1)  # a 257th beat: bad, and not stored
        with m.Elif(~bad & nonzero):
            m.d.comb += n_beats.eq(beats + 1)
            # This beat continues the run if none started yet, or the run is open and this beat
            # starts at lane 0.
            with m.If(contiguous & (~started | (open_ & strb[0]))):
                m.d.comb += [
                    store.eq(1),
                    n_stored.eq(stored + 1),
                    n_bytes.eq(nbytes + hi - lo + 1),
                    n_started.eq(1),
                    n_open.eq(strb[lanes - 1]),
                ]
                with m.If(~started):
                    m.d.comb += [n_first.eq(beats), n_lo.eq(lo)]
            with m.Else():
                m.d.comb += n_bad.eq(1)
        with m.Else():
            m.d.comb += n_beats.eq(beats + 1)
            with m.If(~nonzero):
                m.d.comb += n_open.eq(0)

        m.d.comb += [
            dfifo.w_data.eq(axi.wdata),
            dfifo.w_en.eq(w_fire & store),
            sm_in.bad.eq(n_bad), sm_in.beats.eq(n_beats), sm_in.stored.eq(n_stored),
            sm_in.first_beat.eq(n_first), sm_in.lo.eq(n_lo), sm_in.bytes.eq(n_bytes),
            sum_fifo.w_en.eq(w_fire & axi.wlast),
        ]
        with m.If(w_fire):
            with m.If(axi.wlast):
                m.d.sync += [
                    beats.eq(0), stored.eq(0), first_beat.eq(0), run_lo.eq(0), nbytes.eq(0),
                    started.eq(0), open_.eq(0), bad.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    beats.eq(n_beats), stored.eq(n_stored), first_beat.eq(n_first),
                    run_lo.eq(n_lo), nbytes.eq(n_bytes), started.eq(n_started),
                    open_.eq(n_open), bad.eq(n_bad),
                ]

        # Decision: pair an AW with its W summary, issue the command, queue the drain job and
        # the B response.
        job_layout = data.StructLayout({
            "discard": 1, "lo": range(lanes), "bytes": range(max_bytes + 1),
            "n_in": range(MAX_BURST_BEATS + 1), "n_out": range(MAX_BURST_BEATS + 1),
        })
        job_fifo, job_in, job = _fifo(m, "job_fifo", job_layout, 2)
        b_layout = data.StructLayout({"id": self.id_width, "kind": 2})
        bq, bq_in, bq_head = _fifo(m, "b_fifo", b_layout, self.write_depth)

        cmd_free = Signal()
        decide = Signal()
        reject = Signal()
        m.d.comb += [
            cmd_free.eq(~self.wr.cmd.valid | self.wr.cmd.ready),
            decide.eq(aw_fifo.r_rdy & sum_fifo.r_rdy & bq.w_rdy & job_fifo.w_rdy & cmd_free),
            reject.eq((aw.burst != AxiBurst.INCR) | (aw.size != shift) | sm.bad
                      | (sm.beats != aw.len + 1)),
        ]
        with m.If(self.wr.cmd.valid & self.wr.cmd.ready):
            m.d.sync += self.wr.cmd.valid.eq(0)
        m.d.comb += [
            aw_fifo.r_en.eq(decide),
            sum_fifo.r_en.eq(decide),
            bq.w_en.eq(decide),
            bq_in.id.eq(aw.id),
            job_in.discard.eq(reject),
            job_in.lo.eq(sm.lo),
            job_in.bytes.eq(sm.bytes),
            job_in.n_in.eq(sm.stored),
            job_in.n_out.eq((sm.bytes + lanes - 1) >> shift),
            job_fifo.w_en.eq(decide & (sm.stored != 0)),
        ]
        with m.If(reject):
            m.d.comb += bq_in.kind.eq(_B_SLVERR)
        with m.Elif(sm.stored == 0):
            m.d.comb += bq_in.kind.eq(_B_OKAY)
        with m.Else():
            m.d.comb += bq_in.kind.eq(_B_ENGINE)
            with m.If(decide):
                m.d.sync += [
                    self.wr.cmd.valid.eq(1),
                    self.wr.cmd.payload.address.eq(
                        Cat(Const(0, shift), aw.addr[shift:]) + (sm.first_beat << shift)
                        + sm.lo),
                    self.wr.cmd.payload.length.eq(sm.bytes),
                    self.wr.cmd.payload.id.eq(aw.id),
                ]
        write_rejected = Signal()
        m.d.comb += write_rejected.eq(decide & reject)

        # Drain: stored beats to wr.data, shifted so the run's first byte is in lane 0.
        out = SkidBuffer(self.width, user_width=0)
        m.submodules.wr_data_skid = out
        wiring.connect(m, out.o, wiring.flipped(self.wr.data))

        active = Signal()
        discard = Signal()
        d_lo = Signal(range(lanes))
        in_left = Signal(range(MAX_BURST_BEATS + 1))  # stored beats not yet popped
        out_left = Signal(range(MAX_BURST_BEATS + 1))  # output beats not yet sent
        primed = Signal()  # residue holds the stored beat of the next output
        residue = Signal(self.width)
        tail_keep = Signal(lanes)
        finishing = Signal()

        head_v = dfifo.r_rdy
        head = dfifo.r_data
        word_a = Signal(self.width)
        word_b = Signal(self.width)
        out_valid = Signal()
        pop = Signal()
        to_residue = Signal()  # prime: pop into the residue without output
        with m.If(active & discard):
            m.d.comb += pop.eq(head_v)
            with m.If(head_v):
                m.d.sync += in_left.eq(in_left - 1)
                m.d.comb += finishing.eq(in_left == 1)
        with m.Elif(active):
            with m.If(primed & (in_left != 0)):
                m.d.comb += [word_a.eq(residue), word_b.eq(head), out_valid.eq(head_v),
                             pop.eq(out.i.ready & head_v)]
            with m.Elif(primed):
                m.d.comb += [word_a.eq(residue), out_valid.eq(1)]
            with m.Elif((d_lo == 0) | (in_left == 1)):
                m.d.comb += [word_a.eq(head), out_valid.eq(head_v),
                             pop.eq(out.i.ready & head_v)]
            with m.Else():
                m.d.comb += [pop.eq(head_v), to_residue.eq(head_v)]
            with m.If(pop):
                m.d.sync += [in_left.eq(in_left - 1), residue.eq(head)]
            with m.If(to_residue):
                m.d.sync += primed.eq(1)
            with m.If(out_valid & out.i.ready):
                m.d.sync += out_left.eq(out_left - 1)
                m.d.comb += finishing.eq(out_left == 1)

        both = Cat(word_a, word_b)
        m.d.comb += [
            dfifo.r_en.eq(pop),
            out.i.valid.eq(out_valid),
            out.i.p.data.eq(Cat(both.word_select(d_lo + lane, 8) for lane in range(lanes))),
            out.i.p.keep.eq(Const(-1, lanes)),
            out.i.p.last.eq(out_left == 1),
        ]
        with m.If(out_left == 1):
            m.d.comb += out.i.p.keep.eq(tail_keep)

        with m.If(finishing):
            m.d.sync += [active.eq(0), primed.eq(0)]
        with m.If((~active | finishing) & job_fifo.r_rdy):
            m.d.comb += job_fifo.r_en.eq(1)
            tail = job.bytes[:shift]
            m.d.sync += [
                active.eq(1),
                discard.eq(job.discard),
                d_lo.eq(job.lo),
                in_left.eq(job.n_in),
                out_left.eq(job.n_out),
                primed.eq(0),
                tail_keep.eq(Cat((tail == 0) | (tail > i) for i in range(lanes))),
            ]

        # B responses, in AW order; an engine-bound one waits for the engine's status.
        b_free = Signal()
        m.d.comb += b_free.eq(~axi.bvalid | axi.bready)
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += axi.bvalid.eq(0)
        with m.If(b_free & bq.r_rdy):
            with m.If(bq_head.kind == _B_ENGINE):
                m.d.comb += [self.wr.status.ready.eq(1), bq.r_en.eq(self.wr.status.valid)]
                with m.If(self.wr.status.valid):
                    m.d.sync += [
                        axi.bvalid.eq(1),
                        axi.bid.eq(bq_head.id),
                        axi.bresp.eq(AxiResp.OKAY),
                    ]
                    with m.If(self.wr.status.payload.error != DmaError.OK):
                        m.d.sync += axi.bresp.eq(AxiResp.SLVERR)
            with m.Else():
                m.d.comb += bq.r_en.eq(1)
                m.d.sync += [axi.bvalid.eq(1), axi.bid.eq(bq_head.id)]
                with m.If(bq_head.kind == _B_OKAY):
                    m.d.sync += axi.bresp.eq(AxiResp.OKAY)
                with m.Else():
                    m.d.sync += axi.bresp.eq(AxiResp.SLVERR)

        with m.If(axi.bvalid & axi.bready):
            m.d.sync += self.write_bursts.eq(self.write_bursts + 1)
            with m.If(axi.bresp != AxiResp.OKAY):
                m.d.sync += self.write_errors.eq(self.write_errors + 1)
        self._write_rejected = write_rejected

    # -- read path --------------------------------------------------------------------------

    def _read_path(self, m):
        axi = self.s_axi
        lanes = self.width // 8
        shift = exact_log2(lanes)

        r_layout = data.StructLayout({"id": self.id_width, "len": 8, "engine": 1})
        rq, rq_in, rq_head = _fifo(m, "r_fifo", r_layout, self.read_depth)

        supported = Signal()
        ar_fire = Signal()
        m.d.comb += [
            supported.eq((axi.arburst == AxiBurst.INCR) & (axi.arsize == shift)),
            axi.arready.eq(rq.w_rdy & (~self.rd.cmd.valid | self.rd.cmd.ready)),
            ar_fire.eq(axi.arvalid & axi.arready),
            rq_in.id.eq(axi.arid),
            rq_in.len.eq(axi.arlen),
            rq_in.engine.eq(supported),
            rq.w_en.eq(ar_fire),
        ]
        with m.If(self.rd.cmd.valid & self.rd.cmd.ready):
            m.d.sync += self.rd.cmd.valid.eq(0)
        with m.If(ar_fire & supported):
            m.d.sync += [
                self.rd.cmd.valid.eq(1),
                self.rd.cmd.payload.address.eq(Cat(Const(0, shift), axi.araddr[shift:])),
                self.rd.cmd.payload.length.eq((axi.arlen + 1) << shift),
                self.rd.cmd.payload.id.eq(axi.arid),
            ]

        # R beats through a registered stage.
        beat_layout = data.StructLayout({
            "data": self.width, "id": self.id_width, "resp": 2, "last": 1})
        skid = StreamSkidBuffer(beat_layout)
        m.submodules.r_skid = skid
        m.d.comb += [
            axi.rvalid.eq(skid.o.valid),
            axi.rdata.eq(skid.o.p.data),
            axi.rid.eq(skid.o.p.id),
            axi.rresp.eq(skid.o.p.resp),
            axi.rlast.eq(skid.o.p.last),
            skid.o.ready.eq(axi.rready),
        ]

        rbeat = Signal(8)
        last = Signal()
        fire = Signal()
        m.d.comb += [
            last.eq(rbeat == rq_head.len),
            skid.i.p.id.eq(rq_head.id),
            skid.i.p.last.eq(last),
            fire.eq(skid.i.valid & skid.i.ready),
        ]
        # The engine may give a command's status only after its last data beat was taken: the
        # last beat waits in `held` for the status that decides its RRESP.
        held = Signal(self.width)
        held_valid = Signal()
        status = self.rd.status
        with m.If(rq_head.engine):
            m.d.comb += [
                skid.i.p.resp.eq(AxiResp.OKAY),
                status.ready.eq(fire & last),
            ]
            with m.If(status.valid & (status.payload.error != DmaError.OK)):
                m.d.comb += skid.i.p.resp.eq(AxiResp.SLVERR)
            with m.If(held_valid):
                m.d.comb += [
                    skid.i.valid.eq(rq.r_rdy & status.valid),
                    skid.i.p.data.eq(held),
                ]
                with m.If(fire):
                    m.d.sync += held_valid.eq(0)
            with m.Else():
                hold = rq.r_rdy & self.rd.data.valid & last & ~status.valid
                m.d.comb += [
                    skid.i.valid.eq(rq.r_rdy & self.rd.data.valid & (~last | status.valid)),
                    skid.i.p.data.eq(self.rd.data.payload.data),
                    self.rd.data.ready.eq(fire | hold),
                ]
                with m.If(hold):
                    m.d.sync += [held.eq(self.rd.data.payload.data), held_valid.eq(1)]
        with m.Else():
            m.d.comb += [
                skid.i.valid.eq(rq.r_rdy),
                skid.i.p.resp.eq(AxiResp.SLVERR),
            ]
        with m.If(fire):
            m.d.sync += rbeat.eq(rbeat + 1)
            with m.If(last):
                m.d.comb += rq.r_en.eq(1)
                m.d.sync += rbeat.eq(0)

        with m.If(axi.rvalid & axi.rready & axi.rlast):
            m.d.sync += self.read_bursts.eq(self.read_bursts + 1)
            with m.If(axi.rresp != AxiResp.OKAY):
                m.d.sync += self.read_errors.eq(self.read_errors + 1)

        read_rejected = ar_fire & ~supported
        m.d.sync += self.rejected_bursts.eq(
            self.rejected_bursts + self._write_rejected + read_rejected)
