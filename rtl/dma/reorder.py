"""Reorder buffer of the DMA read engine: bytes written at any byte position, read a beat at a time.

Completions of memory reads arrive in any order across requests (PCIe Base Specification
2.4.1) and with payload aligned to host DWORDs, not to where the bytes belong in the transfer.
:class:`ReorderBuffer` stores them where they belong: each write is one beat of bytes plus the
buffer byte position of its lane 0, and the buffer rotates the beat and writes the selected lanes
into the (at most two) buffer beats it straddles. The buffer is split into two banks of even and
odd beats, so a straddling write is one write per bank and a beat is written every cycle with
one write port per bank, leaving the other port of each block RAM for reading.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

__all__ = ["ReorderBuffer", "ReorderWrite", "lane_range", "rotate_left"]


def rotate_left(m, value, amount, unit=1, name="rotated"):
    """``value`` rotated towards its high end by ``amount * unit`` bits (a barrel rotator).

    ``unit`` is the size of one lane in bits; ``len(value)`` must be a power-of-two multiple of
    it. One 2:1 multiplexer level per bit of ``amount``, each level a signal of ``m``.
    """
    lanes = len(value) // unit
    for stage in range(ceil_log2(lanes)):
        step = (1 << stage) * unit
        level = Signal(len(value), name=f"{name}_{stage}")
        m.d.comb += level.eq(Mux(amount[stage],
                                 Cat(value[len(value) - step:], value[:len(value) - step]),
                                 value))
        value = level
    return value


def lane_range(lo, hi, lanes):
    """One bit per lane, set for ``lo <= lane < hi`` (empty when ``hi <= lo``)."""
    return Cat(*((lo <= lane) & (lane < hi) for lane in range(lanes)))


class ReorderWrite(data.StructLayout):
    """One write into a :class:`ReorderBuffer`.

    Members
    -------
    pos : unsigned(log2(size))
        Buffer byte position of ``data``'s lane 0 (any alignment; wraps around the buffer).
    lo, hi : unsigned(range(lanes + 1))
        Lanes ``lo <= lane < hi`` of ``data`` are written; none when ``hi <= lo``.
    data : unsigned(width)
        Lane ``l`` (bits ``8l+7:8l``) goes to buffer byte ``pos + l``.
    marked : unsigned(1)
        Report ``mark`` on :attr:`ReorderBuffer.written` when this write is committed.
    mark : mark_shape
    """

    def __init__(self, width, size, mark_shape):
        lanes = width // 8
        super().__init__({
            "pos": exact_log2(size), "lo": range(lanes + 1), "hi": range(lanes + 1),
            "data": width, "marked": 1, "mark": mark_shape,
        })


class ReorderBuffer(wiring.Component):
    """A byte-addressed circular buffer of ``size`` bytes, written one shifted beat per cycle.

    Contract
    --------
    * ``write`` (always ready) takes one :class:`ReorderWrite` per cycle. Its bytes are in the
      memory, and readable, from the second clock edge after the cycle it was offered. A marked
      write shows its ``mark`` on ``written`` (valid for one cycle) in the cycle whose clock edge
      commits it, so logic that acts on ``written`` at that edge and then reads sees the bytes.
    * ``read_addr`` selects a beat (buffer bytes ``lanes * read_addr`` and up, byte 0 in lane
      0); with ``read_en`` high, ``read_data`` shows it after the clock edge and holds while
      ``read_en`` is low. Reading a beat written in the same cycle returns the old bytes.

    Parameters
    ----------
    width : int
        Beat width in bits (a power-of-two multiple of 8).
    size : int
        Buffer size in bytes: a power of two, at least two beats.
    mark_shape : shape-like
        What a marked write reports when it commits.

    Attributes
    ----------
    write : In(stream.Signature(ReorderWrite(width, size, mark_shape), always_ready=True))
    written : Out(stream.Signature(mark_shape, always_ready=True))
    read_addr : In(range(size // (width // 8)))
    read_en : In(1)
    read_data : Out(width)
    """

    def __init__(self, width, size, mark_shape=1):
        lanes = width // 8
        exact_log2(lanes)
        if exact_log2(size) < exact_log2(lanes) + 1:
            raise ValueError(f"buffer of {size} bytes holds fewer than two {width}-bit beats")
        self.width, self.size, self.lanes = width, size, lanes
        self.beats = size // lanes
        super().__init__({
            "write": In(stream.Signature(ReorderWrite(width, size, mark_shape),
                                         always_ready=True)),
            "written": Out(stream.Signature(mark_shape, always_ready=True)),
            "read_addr": In(range(self.beats)),
            "read_en": In(1),
            "read_data": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, lane_bits = self.lanes, exact_log2(self.lanes)
        beat_bits = exact_log2(self.beats)
        banks = [Memory(shape=self.width, depth=self.beats // 2, init=[]) for _ in range(2)]
        m.submodules.bank0, m.submodules.bank1 = banks
        wports = [bank.write_port(granularity=8) for bank in banks]
        rports = [bank.read_port() for bank in banks]

        # Stage 1: rotate the beat so lane l lands on lane (pos + l) mod lanes, and split the
        # selected lanes between buffer beat X = pos // lanes (lanes >= shift) and X + 1.
        w = self.write.payload
        shift = w.pos[:lane_bits]
        beat = w.pos[lane_bits:]
        rotated = rotate_left(m, w.data, shift, 8, "data_rot")
        lanes_sel = rotate_left(m, lane_range(w.lo, w.hi, lanes), shift, 1, "lanes_rot")
        at_or_above = Cat(*(shift <= lane for lane in range(lanes)))
        first_en = Signal(lanes)  # for beat X
        second_en = Signal(lanes)  # for beat X + 1
        m.d.comb += [
            first_en.eq(Mux(self.write.valid, lanes_sel & at_or_above, 0)),
            second_en.eq(Mux(self.write.valid, lanes_sel & ~at_or_above, 0)),
        ]
        next_beat = Signal(beat_bits)
        m.d.comb += next_beat.eq(beat + 1)

        # Stage 2 (registered): one write per bank. X and X + 1 are in different banks.
        addr = [Signal(beat_bits - 1, name=f"addr{b}") for b in range(2)]
        en = [Signal(lanes, name=f"en{b}") for b in range(2)]
        wdata = Signal(self.width)
        marked = Signal()
        mark = Signal.like(self.written.payload)
        m.d.sync += [wdata.eq(rotated), marked.eq(self.write.valid & w.marked),
                     mark.eq(w.mark)]
        with m.If(beat[0]):
            m.d.sync += [addr[1].eq(beat[1:]), en[1].eq(first_en),
                         addr[0].eq(next_beat[1:]), en[0].eq(second_en)]
        with m.Else():
            m.d.sync += [addr[0].eq(beat[1:]), en[0].eq(first_en),
                         addr[1].eq(next_beat[1:]), en[1].eq(second_en)]
        for b in range(2):
            m.d.comb += [wports[b].addr.eq(addr[b]), wports[b].data.eq(wdata),
                         wports[b].en.eq(en[b])]
        m.d.comb += [self.written.valid.eq(marked), self.written.payload.eq(mark)]

        # Reads: both banks at the same row; the registered bank bit picks the right one.
        bank_sel = Signal()
        for b in range(2):
            m.d.comb += [rports[b].addr.eq(self.read_addr[1:]), rports[b].en.eq(self.read_en)]
        with m.If(self.read_en):
            m.d.sync += bank_sel.eq(self.read_addr[0])
        m.d.comb += self.read_data.eq(Mux(bank_sel, rports[1].data, rports[0].data))
        return m
