"""Packet FIFOs: plain beat FIFOs and store-and-forward FIFOs that drop bad packets.

Two modes, in one clock domain (:class:`PacketFifo`) or across two (:class:`AsyncPacketFifo`):

* *cut-through* (the default): a FIFO of beats. Beats leave in order as soon as they are stored;
  packet boundaries mean nothing to the FIFO.
* *store-and-forward*: a beat leaves only once the last beat of its packet has been stored, so
  the output never starts a packet that it cannot finish at full rate. With ``drop_bad`` the
  FIFO discards every packet whose last beat has ``user`` bit 0 set (the "bad packet" flag of
  :mod:`amnic.stream`), and in any case it discards packets that do not fit (see
  ``drop_when_full``). Each discarded packet is reported once, by reason, so
  ``packets in = packets out + bad drops + overflow drops`` holds.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFOBuffered, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from . import PacketLayout, PacketSignature

__all__ = ["PacketDropEvent", "PacketFifo", "AsyncPacketFifo"]


class PacketDropEvent(data.Struct):
    """One discarded packet, reported for one cycle (at most one flag set).

    ``bad`` means the last beat carried ``user`` bit 0 and ``drop_bad`` was on; ``overflow``
    means the packet did not fit in the FIFO. A bad packet that also overflowed counts as
    ``overflow``.
    """

    bad: 1
    overflow: 1


def _gray_encode(value):
    return value ^ (value >> 1)


def _gray_decode(m, gray):
    binary = Signal(len(gray))
    bits = [None] * len(gray)
    bits[-1] = gray[-1]
    for n in reversed(range(len(gray) - 1)):
        bits[n] = bits[n + 1] ^ gray[n]
    m.d.comb += binary.eq(Cat(*bits))
    return binary


def _counter_crossing(m, counter, *, i_domain, o_domain, stages, name):
    """``counter`` (which changes by at most one per cycle) as seen in ``o_domain``."""
    if stages is None:
        return counter
    gray = Signal(len(counter), name=f"{name}_gray")
    gray_o = Signal(len(counter), name=f"{name}_gray_{o_domain}")
    m.d[i_domain] += gray.eq(_gray_encode(counter))
    m.submodules[f"{name}_cdc"] = FFSynchronizer(gray, gray_o, o_domain=o_domain, stages=stages)
    return _gray_decode(m, gray_o)


def _check_width(width, user_width, depth):
    if depth < 1:
        raise ValueError(f"FIFO depth must be positive, not {depth}")
    PacketLayout(width, user_width)  # validates the widths


def _check_store_and_forward(depth, user_width, drop_bad):
    if depth < 2 or depth & (depth - 1):
        raise ValueError(f"store-and-forward FIFO depth must be a power of two >= 2, not {depth}")
    if drop_bad and user_width < 1:
        raise ValueError("drop_bad needs a user sideband (user_width >= 1) to read the bad flag")


def _store_and_forward(m, fifo, *, depth, drop_bad, drop_when_full, w_domain, r_domain, stages):
    """Elaborate the store-and-forward datapath of ``fifo`` into ``m``.

    Memory rows hold beats. The write side owns ``wr_ptr`` (next row to write) and ``commit``
    (first row of the packet being written); the read side owns ``rd_ptr``. Pointers carry one
    bit more than the row address so that full and empty differ. A packet that is discarded
    rewinds ``wr_ptr`` to ``commit``. The read side learns about complete packets from a packet
    counter (``committed``) that grows by one per stored packet, so it can cross clock domains
    in Gray code; the read pointer goes back the same way.
    """
    i, o = fifo.i, fifo.o
    ptr_bits = ceil_log2(depth) + 1
    mem = m.submodules.mem = Memory(shape=i.payload.shape(), depth=depth, init=[])
    wp = mem.write_port(domain=w_domain)
    rp = mem.read_port(domain=r_domain)

    wr_ptr = Signal(ptr_bits)
    commit = Signal(ptr_bits)
    committed = Signal(ptr_bits)  # packets stored, modulo 2**ptr_bits
    rd_ptr = Signal(ptr_bits)
    completed = Signal(ptr_bits)  # packets whose last beat has been read from memory

    rd_ptr_w = _counter_crossing(m, rd_ptr, i_domain=r_domain, o_domain=w_domain, stages=stages,
                                 name="rd_ptr")
    committed_r = _counter_crossing(m, committed, i_domain=w_domain, o_domain=r_domain,
                                    stages=stages, name="committed")

    # --- write side --------------------------------------------------------------------------
    w = m.d[w_domain]
    dropping = Signal()  # discarding the rest of a packet that overflowed
    used = Signal(ptr_bits)
    full = Signal()
    oversize = Signal()  # the packet being written fills the whole memory: it can never fit
    m.d.comb += [
        used.eq(wr_ptr - rd_ptr_w),
        full.eq(used == depth),
        oversize.eq(full & (commit == rd_ptr_w)),
    ]
    if drop_when_full:
        m.d.comb += i.ready.eq(1)
    else:
        m.d.comb += i.ready.eq(~full | dropping | oversize)

    bad = i.payload.user[0] if drop_bad else 0
    drop = fifo.drop
    w += drop.eq(0)
    with m.If(i.valid & i.ready):
        with m.If(dropping | full):
            w += wr_ptr.eq(commit)
            with m.If(i.payload.last):
                w += [
                    dropping.eq(0),
                    drop.overflow.eq(1),
                    fifo.overflow_drops.eq(fifo.overflow_drops + 1),
                ]
            with m.Else():
                w += dropping.eq(1)
        with m.Else():
            m.d.comb += [
                wp.en.eq(1),
                wp.addr.eq(wr_ptr),
                wp.data.eq(i.payload),
            ]
            with m.If(i.payload.last & bad):
                w += [
                    wr_ptr.eq(commit),
                    drop.bad.eq(1),
                    fifo.bad_drops.eq(fifo.bad_drops + 1),
                ]
            with m.Elif(i.payload.last):
                w += [
                    wr_ptr.eq(wr_ptr + 1),
                    commit.eq(wr_ptr + 1),
                    committed.eq(committed + 1),
                ]
            with m.Else():
                w += wr_ptr.eq(wr_ptr + 1)

    # --- read side ---------------------------------------------------------------------------
    # The read port's data register is the output register: it always holds the most recently
    # read beat, and o.valid says whether the sink still has to take it.
    r = m.d[r_domain]
    started = Signal()  # a beat has been read since reset
    fresh = Signal()  # rp.data was read in the previous cycle
    at_boundary = Signal()  # the most recently read beat ended its packet
    completed_now = Signal(ptr_bits)
    can_read = Signal()
    m.d.comb += [
        at_boundary.eq(~started | rp.data.last),
        completed_now.eq(completed + (fresh & rp.data.last)),
        # Mid-packet the rest of the packet is known to be stored; at a boundary wait for the
        # next complete packet.
        can_read.eq(~at_boundary | (committed_r != completed_now)),
        o.payload.eq(rp.data),
        rp.addr.eq(rd_ptr),
    ]
    r += [
        completed.eq(completed_now),
        fresh.eq(0),
    ]
    read = Signal()
    m.d.comb += [
        read.eq((~o.valid | o.ready) & can_read),
        rp.en.eq(read),  # the data register holds while the output is stalled
    ]
    with m.If(~o.valid | o.ready):
        r += o.valid.eq(can_read)
    with m.If(read):
        r += [
            rd_ptr.eq(rd_ptr + 1),
            started.eq(1),
            fresh.eq(1),
        ]


def _store_and_forward_members(store_and_forward):
    if not store_and_forward:
        return {}
    return {
        "drop": Out(PacketDropEvent),
        "bad_drops": Out(32),
        "overflow_drops": Out(32),
    }


def _configure(fifo, width, user_width, depth, store_and_forward, drop_bad, drop_when_full):
    """Check the options shared by :class:`PacketFifo` and :class:`AsyncPacketFifo`, record
    them on ``fifo`` and return its signature members."""
    _check_width(width, user_width, depth)
    store_and_forward = store_and_forward or drop_bad
    if store_and_forward:
        _check_store_and_forward(depth, user_width, drop_bad)
    elif drop_when_full:
        raise ValueError("drop_when_full needs store_and_forward")
    fifo.width = width
    fifo.user_width = user_width
    fifo.depth = depth
    fifo.store_and_forward = store_and_forward
    fifo.drop_bad = drop_bad
    fifo.drop_when_full = drop_when_full
    return {
        "i": In(PacketSignature(width, user_width)),
        "o": Out(PacketSignature(width, user_width)),
        **_store_and_forward_members(store_and_forward),
    }


class PacketFifo(wiring.Component):
    """Synchronous FIFO of packet beats, optionally store-and-forward with packet drop.

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the ``user`` sideband.
    depth : int
        Capacity in beats. Store-and-forward needs a power of two; a packet longer than
        ``depth`` beats can never be stored and is dropped as an overflow.
    store_and_forward : bool
        Release a packet only once its last beat is stored. Implied by ``drop_bad``.
    drop_bad : bool
        Discard packets whose last beat has ``user`` bit 0 set.
    drop_when_full : bool
        Store-and-forward only. If set, ``i.ready`` is always high and a packet that meets a full
        FIFO is discarded (for sources that cannot wait, like a receive MAC). If clear, the FIFO
        back-pressures when full and discards only packets longer than ``depth``.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
        Input beats.
    o : Out(PacketSignature(width, user_width))
        Output beats, registered. In store-and-forward mode a packet, once started, continues at
        one beat per cycle for as long as ``o.ready`` is high.
    drop : Out(PacketDropEvent)
        Store-and-forward only: pulses for one cycle when a packet is discarded, in the cycle
        after its last beat was accepted.
    bad_drops, overflow_drops : Out(32)
        Store-and-forward only: wrapping counts of discarded packets, by reason.
    """

    def __init__(self, width, user_width=1, depth=16, *, store_and_forward=False, drop_bad=False,
                 drop_when_full=False):
        super().__init__(_configure(self, width, user_width, depth, store_and_forward,
                                    drop_bad, drop_when_full))

    def elaborate(self, platform):
        m = Module()
        if self.store_and_forward:
            _store_and_forward(m, self, depth=self.depth, drop_bad=self.drop_bad,
                               drop_when_full=self.drop_when_full, w_domain="sync",
                               r_domain="sync", stages=None)
            return m
        fifo = m.submodules.fifo = SyncFIFOBuffered(width=len(self.i.payload.as_value()),
                                                    depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        return m


class AsyncPacketFifo(wiring.Component):
    """FIFO of packet beats from one clock domain to another.

    ``i`` (and the drop reports) belong to ``w_domain``, ``o`` to ``r_domain``. Pointers cross in
    Gray code through ``sync_stages`` flip-flops, as in :class:`amaranth.lib.fifo.AsyncFIFO`
    (which the cut-through mode uses directly). Reset both domains together, holding reset for
    at least ``sync_stages`` cycles of the slower clock.

    Parameters
    ----------
    width, user_width, depth, store_and_forward, drop_bad, drop_when_full
        As for :class:`PacketFifo`. Cut-through depth is rounded up to a power of two plus one
        (the output register) by :class:`~amaranth.lib.fifo.AsyncFIFOBuffered`.
    r_domain, w_domain : str
        Read (output) and write (input) clock domains.
    sync_stages : int
        Synchronizer length for store-and-forward pointers (at least 2).

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
        Input beats, in ``w_domain``.
    o : Out(PacketSignature(width, user_width))
        Output beats, in ``r_domain``.
    drop : Out(PacketDropEvent)
    bad_drops, overflow_drops : Out(32)
        Store-and-forward only, in ``w_domain``: as for :class:`PacketFifo`.
    """

    def __init__(self, width, user_width=1, depth=16, *, r_domain="read", w_domain="write",
                 store_and_forward=False, drop_bad=False, drop_when_full=False, sync_stages=2):
        if sync_stages < 2:
            raise ValueError(f"sync_stages must be at least 2, not {sync_stages}")
        self.r_domain = r_domain
        self.w_domain = w_domain
        self.sync_stages = sync_stages
        super().__init__(_configure(self, width, user_width, depth, store_and_forward,
                                    drop_bad, drop_when_full))

    def elaborate(self, platform):
        m = Module()
        if self.store_and_forward:
            _store_and_forward(m, self, depth=self.depth, drop_bad=self.drop_bad,
                               drop_when_full=self.drop_when_full, w_domain=self.w_domain,
                               r_domain=self.r_domain, stages=self.sync_stages)
            return m
        fifo = m.submodules.fifo = AsyncFIFOBuffered(
            width=len(self.i.payload.as_value()), depth=self.depth,
            r_domain=self.r_domain, w_domain=self.w_domain)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        return m
