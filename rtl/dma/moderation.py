"""Interrupt moderation: coalesce events of many sources into few interrupt requests.

A *source* is one completion queue. Each completion the engine writes is an *event* of its
source; interrupting the host for each one would cost more than the completions themselves, so
a source signals only after ``threshold`` events, or ``timer`` after its first unsignalled event,
and only while the driver has *armed* it. Firing disarms the source; the driver re-arms it after
servicing the queue (the scheme of NAPI-style drivers: interrupt, poll until empty, re-enable).
The interrupt itself is a request for the source's MSI-X vector to
:class:`~amnic.dma.msix.MsixController`, which applies the PCIe masking rules.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream.axil import RegisterBusSignature

__all__ = ["InterruptModerator", "SourceConfig", "SourceState", "MAX_SOURCES", "TIME_BITS",
           "COUNT_MAX", "SOURCE_BYTES", "CONFIG", "TIMER", "CONTROL", "ARM", "CLEAR", "DISARM"]

#: Largest number of sources.
MAX_SOURCES = 4096
#: Width of the timer-unit clock and of the stored first-event time; one more bit than the
#: timer so that an expired timer stays visibly expired for at least 2**16 units.
TIME_BITS = 17
#: Pending event counts saturate here.
COUNT_MAX = 0xFFFF
#: Bytes of register window per source.
SOURCE_BYTES = 16
#: Register offsets inside a source's window.
CONFIG, TIMER, CONTROL = 0x0, 0x4, 0x8
#: CONTROL write bits.
ARM, CLEAR, DISARM = 1 << 0, 1 << 1, 1 << 2

_OUT_DEPTH = 4


class SourceConfig(data.Struct):
    """Per-source configuration (written by the host; 6 bytes so each byte is writable)."""

    vector: 16
    threshold: 16
    timer: 16


class SourceState(data.Struct):
    """Per-source state (updated by the event pipeline and the host's CONTROL writes)."""

    armed: 1
    expired: 1  # the timer ran out for the pending events (kept until they are signalled)
    count: 16  # events not yet signalled
    start: TIME_BITS  # timer-unit time of the first of them


class InterruptModerator(wiring.Component):
    """Per-source interrupt coalescing with count threshold, timer and arming.

    Behaviour of one source
    -----------------------
    * An event adds one to the source's pending count (saturating at :data:`COUNT_MAX`); the
      first pending event also records the time ``start`` (in timer units).
    * The pending events are *due* when ``count >= threshold`` (so thresholds 0 and 1 mean every
      event) or when the timer has expired: ``timer != 0`` and more than ``timer`` units have
      passed since ``start`` (so never before ``timer`` units after the first event).
      ``timer == 0`` disables the timer (only the count fires then).
    * A source fires when it is armed and has due pending events: one request for its
      ``vector`` goes out on ``irq``, the source is disarmed and its count cleared. Events keep
      being counted while disarmed; arming a source whose events are due fires it at once (in
      the cycle after the CONTROL write), otherwise it fires when they become due.

    Nothing fires for a source that is not armed, and no event is lost: an event is either
    signalled by a later request or still counted in ``count``.

    Register window (byte offsets, ``16*s`` + ...; ``size`` bytes, a power of two)
    --------------------------------------------------------------------------------
    ======== ======= ===========================================================================
    Offset   Name    Contents
    ======== ======= ===========================================================================
    ``0x0``  CONFIG  RW. [15:0] ``vector`` (only the low ``ceil(log2(vectors))`` bits are kept
                     and read back; a vector ``>= vectors`` is requested as it is, and
                     :class:`~amnic.dma.msix.MsixController` drops it), [31:16] ``threshold``
    ``0x4``  TIMER   RW. [15:0] ``timer`` in timer units (0: no timer); [31:16] read 0
    ``0x8``  CONTROL Read: [0] armed, [1] expired (the timer ran out; the events fire on arming),
                     [31:16] pending event count. Write (when ``wstrb`` bit 0 is set): bit 0
                     ARM, bit 1 CLEAR (forget the pending events), bit 2 DISARM; CLEAR applies
                     before ARM, and DISARM wins over ARM
    ``0xC``  --      reserved: 0 with ``error``
    ======== ======= ===========================================================================

    Offsets of sources ``>= sources`` answer 0 with ``error``. ``wstrb`` selects the bytes
    written to CONFIG and TIMER. Every access is answered the cycle after it is taken; one is
    taken every other cycle. After reset the block clears every source's configuration and
    state (one source per cycle, ``sources`` cycles, during which it takes neither events nor
    bus accesses): vector 0, threshold 0, timer 0, disarmed, no pending events.

    Implementation and figures
    --------------------------
    Configuration and state are in two :class:`~amaranth.lib.memory.Memory` (48 and 35 bits x
    ``sources``, each with one write and two read ports: block RAM). One read-modify-write
    pipeline (address, then update and write back, with a write-first read port for
    back-to-back operations on one source) handles one operation per cycle: an event, a
    CONTROL write, or a timer *nomination*. ``event`` is accepted every cycle except a cycle in
    which a CONTROL write or a nomination takes the pipeline (one per timer expiry) and while
    ``irq`` is backed up (its 4-entry queue holds 3 or more requests). With ``irq`` always
    ready (as :class:`~amnic.dma.msix.MsixController` is) and no CONTROL writes the sustained
    rate is one event per cycle, minus one cycle per timer expiry.

    Timers: ``now`` advances by one every ``timer_unit_cycles`` cycles. A scanner reads one
    source per cycle (round robin over all sources, pausing for a cycle on each host read) and
    nominates a source with pending, not yet expired events whose timer has run out; the
    pipeline marks it expired and fires it if armed. So a source armed before its timer runs
    out fires between ``timer * timer_unit_cycles + 1`` and ``(timer + 1) *
    timer_unit_cycles + sources + 4`` cycles after its first pending event (plus one cycle per
    host read and per nomination of other sources meanwhile): granularity one timer unit plus
    one scan period. The scanner must see every source within ``2**16`` units, which it does
    whenever ``sources < 2**16 * timer_unit_cycles``.

    Parameters
    ----------
    sources : int
        Number of sources, 1..4096.
    vectors : int
        Range of the interrupt vectors (the MSI-X table size), 1..2048.
    timer_unit_cycles : int
        Clock cycles per timer unit (250 at 250 MHz: 1 us).

    Attributes
    ----------
    bus : In(RegisterBusSignature(log2(size), 32))
    event : In(stream.Signature(range(sources)))
    irq : Out(stream.Signature(range(vectors)))
    now : Out(TIME_BITS)
        The timer-unit clock.
    events, interrupts : Out(32)
        Events taken and interrupt requests made (wrapping counters).
    ready : Out(1)
        The reset sweep is over.
    """

    def __init__(self, sources=256, *, vectors=64, timer_unit_cycles=250):
        sources, vectors = int(sources), int(vectors)
        if not 1 <= sources <= MAX_SOURCES:
            raise ValueError(f"sources must be 1..{MAX_SOURCES}, not {sources}")
        if not 1 <= vectors <= 2048:
            raise ValueError(f"vectors must be 1..2048, not {vectors}")
        if timer_unit_cycles < 1:
            raise ValueError(f"timer_unit_cycles must be positive, not {timer_unit_cycles}")
        self.sources = sources
        self.vectors = vectors
        self.timer_unit_cycles = int(timer_unit_cycles)
        self.vector_bits = max(1, ceil_log2(vectors))
        self.size = 1 << ceil_log2(SOURCE_BYTES * sources)
        self.addr_width = ceil_log2(self.size)
        super().__init__({
            "bus": In(RegisterBusSignature(self.addr_width, 32)),
            "event": In(stream.Signature(range(sources))),
            "irq": Out(stream.Signature(range(vectors))),
            "now": Out(TIME_BITS),
            "events": Out(32),
            "interrupts": Out(32),
            "ready": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.sources
        sbits = max(1, ceil_log2(n))
        vbits = self.vector_bits

        # ---- timer-unit clock --------------------------------------------------------------
        if self.timer_unit_cycles == 1:
            m.d.sync += self.now.eq(self.now + 1)
        else:
            prescale = Signal(range(self.timer_unit_cycles))
            m.d.sync += prescale.eq(prescale + 1)
            with m.If(prescale == self.timer_unit_cycles - 1):
                m.d.sync += [prescale.eq(0), self.now.eq(self.now + 1)]

        # ---- storage -----------------------------------------------------------------------
        m.submodules.config = cfg_mem = Memory(shape=SourceConfig.as_shape().size, depth=n,
                                             init=[])
        m.submodules.state = st_mem = Memory(shape=SourceState, depth=n, init=[])
        cfg_wr = cfg_mem.write_port(granularity=8)
        cfg_rd = cfg_mem.read_port()  # pipeline
        cfg_sc = cfg_mem.read_port()  # scanner and host reads
        st_wr = st_mem.write_port()
        st_rd = st_mem.read_port(transparent_for=(st_wr,))  # pipeline
        st_sc = st_mem.read_port()  # scanner and host reads

        # ---- reset sweep -------------------------------------------------------------------
        sweeping = Signal(init=1)
        sweep = Signal(range(n))
        m.d.comb += self.ready.eq(~sweeping)
        with m.If(sweeping):
            m.d.comb += [
                cfg_wr.addr.eq(sweep), cfg_wr.data.eq(0), cfg_wr.en.eq(0b111111),
                st_wr.addr.eq(sweep), st_wr.data.eq(0), st_wr.en.eq(1),
            ]
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == n - 1):
                m.d.sync += sweeping.eq(0)

        # ---- output queue ------------------------------------------------------------------
        m.submodules.out = out = SyncFIFO(width=vbits, depth=_OUT_DEPTH)
        m.d.comb += [
            self.irq.valid.eq(out.r_rdy),
            self.irq.payload.eq(out.r_data),
            out.r_en.eq(self.irq.ready),
        ]
        # An operation issued now may fire in the next cycle, after the one in flight.
        room = Signal()
        m.d.comb += room.eq(out.level <= _OUT_DEPTH - 2)
        can_issue = Signal()
        m.d.comb += can_issue.eq(~sweeping & room)

        # ---- register bus ------------------------------------------------------------------
        bus = self.bus
        busy = Signal()
        src = bus.addr[4:] if self.addr_width > 4 else Const(0, 1)
        word = bus.addr[2:4]
        src_ok = src < n
        control_write = Signal()
        m.d.comb += control_write.eq(bus.write & (word == 2) & src_ok)

        nom_valid = Signal()
        nom_src = Signal(sbits)
        take = Signal()
        m.d.comb += [
            bus.ready.eq(~busy & ~sweeping & (~control_write | (can_issue & ~nom_valid))),
            take.eq(bus.valid & bus.ready),
        ]
        m.d.sync += busy.eq(take)
        host_read = Signal()
        m.d.comb += host_read.eq(take & ~bus.write & src_ok)

        r_word = Signal(2)
        r_error = Signal()
        m.d.sync += [
            r_word.eq(word),
            r_error.eq(~src_ok | (word == 3)),
        ]
        with m.If(~sweeping):
            m.d.comb += [
                cfg_wr.addr.eq(src),
                cfg_wr.data.eq(Cat(bus.wdata, bus.wdata[:16])),
            ]
            with m.If(take & bus.write & src_ok):
                with m.Switch(word):
                    with m.Case(0):
                        m.d.comb += cfg_wr.en.eq(bus.wstrb)
                    with m.Case(1):
                        m.d.comb += cfg_wr.en.eq(bus.wstrb[:2] << 4)

        sc_cfg = SourceConfig(cfg_sc.data)
        sc_st = st_sc.data
        m.d.comb += [
            bus.done.eq(busy),
            bus.error.eq(busy & r_error),
        ]
        with m.If(busy & ~r_error):
            with m.Switch(r_word):
                with m.Case(0):
                    m.d.comb += bus.rdata.eq(Cat(sc_cfg.vector[:vbits].as_unsigned(),
                                                 Const(0, 16 - vbits), sc_cfg.threshold))
                with m.Case(1):
                    m.d.comb += bus.rdata.eq(sc_cfg.timer)
                with m.Case(2):
                    m.d.comb += bus.rdata.eq(Cat(sc_st.armed, sc_st.expired, Const(0, 14),
                                                 sc_st.count))

        # ---- pipeline stage 1: choose an operation and address the memories ----------------
        u_valid = Signal()
        u_src = Signal(sbits)
        u_event = Signal()
        u_arm = Signal()
        u_clear = Signal()
        u_disarm = Signal()

        issue_src = Signal(sbits)
        issue = Signal()
        nom_take = Signal()
        m.d.comb += self.event.ready.eq(can_issue & ~nom_valid & ~(take & control_write))
        with m.If(can_issue & nom_valid):
            m.d.comb += [issue.eq(1), issue_src.eq(nom_src), nom_take.eq(1)]
        with m.Elif(take & control_write):
            m.d.comb += [issue.eq(1), issue_src.eq(src)]
        with m.Elif(self.event.valid & self.event.ready):
            m.d.comb += [issue.eq(1), issue_src.eq(self.event.payload)]
        m.d.comb += [cfg_rd.addr.eq(issue_src), st_rd.addr.eq(issue_src)]
        control = bus.wdata[:3] & bus.wstrb[0].replicate(3)
        m.d.sync += [
            u_valid.eq(issue),
            u_src.eq(issue_src),
            u_event.eq(self.event.valid & self.event.ready),
            u_arm.eq(~nom_take & take & control_write & control[0]),
            u_clear.eq(~nom_take & take & control_write & control[1]),
            u_disarm.eq(~nom_take & take & control_write & control[2]),
        ]
        with m.If(self.event.valid & self.event.ready):
            m.d.sync += self.events.eq(self.events + 1)

        # ---- pipeline stage 2: update the state, fire --------------------------------------
        cfg = SourceConfig(cfg_rd.data)
        st = st_rd.data
        first = Signal()
        count1 = Signal(16)
        start1 = Signal(TIME_BITS)
        elapsed = Signal(TIME_BITS)
        expired1 = Signal()
        armed1 = Signal()
        fire = Signal()
        new = Signal(SourceState)
        m.d.comb += [
            first.eq(u_event & (st.count == 0)),
            count1.eq(Mux(u_clear, 0,
                          Mux(u_event & (st.count != COUNT_MAX), st.count + 1, st.count))),
            start1.eq(Mux(first, self.now, st.start)),
            elapsed.eq(self.now - start1),
            expired1.eq((count1 != 0) & (cfg.timer != 0)
                        & ((st.expired & ~first & ~u_clear) | (elapsed > cfg.timer))),
            armed1.eq((st.armed | u_arm) & ~u_disarm),
            fire.eq(armed1 & (count1 != 0) & ((count1 >= cfg.threshold) | expired1)),
            new.start.eq(start1),
        ]
        with m.If(~fire):
            m.d.comb += [
                new.armed.eq(armed1),
                new.expired.eq(expired1),
                new.count.eq(count1),
            ]
        with m.If(u_valid):
            m.d.comb += [
                st_wr.addr.eq(u_src),
                st_wr.data.eq(new),
                st_wr.en.eq(1),
            ]
        m.d.comb += [
            out.w_en.eq(u_valid & fire),
            out.w_data.eq(cfg.vector[:vbits]),
        ]
        with m.If(u_valid & fire):
            m.d.sync += self.interrupts.eq(self.interrupts + 1)

        # ---- timer scanner -----------------------------------------------------------------
        scan = Signal(range(n))
        sc_valid = Signal()
        sc_src = Signal(sbits)
        scan_issue = Signal()
        m.d.comb += scan_issue.eq(~sweeping & ~nom_valid & ~host_read)
        m.d.comb += [
            cfg_sc.addr.eq(Mux(host_read, src, scan)),
            st_sc.addr.eq(Mux(host_read, src, scan)),
        ]
        m.d.sync += [sc_valid.eq(scan_issue), sc_src.eq(scan)]
        with m.If(scan_issue):
            m.d.sync += scan.eq(Mux(scan == n - 1, 0, scan + 1))

        sc_elapsed = Signal(TIME_BITS)
        due = Signal()
        m.d.comb += [
            sc_elapsed.eq(self.now - sc_st.start),
            due.eq(sc_valid & (sc_st.count != 0) & ~sc_st.expired & (sc_cfg.timer != 0)
                   & (sc_elapsed > sc_cfg.timer)),
        ]
        with m.If(due):
            with m.If(~nom_valid | nom_take):
                m.d.sync += [nom_valid.eq(1), nom_src.eq(sc_src)]
            with m.Else():
                m.d.sync += scan.eq(sc_src)  # look again once the nomination is taken
        with m.Elif(nom_take):
            m.d.sync += nom_valid.eq(0)
        return m
