"""A bank of wide event counters kept in RAM and updated by one read-modify-write engine.

Statistics need many 64-bit counters that change at most a few times per packet. Flip-flop
counters would cost 64 registers and an adder each; here the counters live in one
:class:`~amaranth.lib.memory.Memory` (small enough for distributed RAM) and share a single
adder. Each event names the set of counters it bumps; the engine serialises those increments,
one per cycle, behind a small FIFO that absorbs bursts.
"""

from amaranth.hdl import Const, MemoryData, Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["CounterEventLayout", "CounterBank"]


class CounterEventLayout(data.StructLayout):
    """One event for a :class:`CounterBank`.

    ``mask`` bit *i* set means counter *i* advances; a counter listed as *weighted* advances by
    ``amount`` (e.g. a frame length for an octet counter), any other by one.

    Parameters
    ----------
    count : int
        Number of counters in the bank.
    amount_width : int
        Width of ``amount``.
    """

    def __init__(self, count, amount_width):
        self.count = count
        self.amount_width = amount_width
        super().__init__({"mask": count, "amount": amount_width})

    def __repr__(self):
        return f"CounterEventLayout({self.count}, {self.amount_width})"


class CounterBank(wiring.Component):
    """``count`` free-running counters in RAM, with a serialising increment engine.

    Throughput: the engine applies one increment per cycle with no gap between events, so an
    event that sets *k* mask bits takes max(*k*, 1) cycles. Events arriving faster than that
    wait in a FIFO of ``fifo_depth`` entries; an event that finds the FIFO full is dropped and
    counted in ``lost`` — never dropped silently.

    Counters wrap modulo ``2**width``. Their RAM is not reset by the domain reset (so FPGA
    distributed RAM can hold it); it starts at zero from configuration, and ``clear`` zeroes it.

    Parameters
    ----------
    count : int
        Number of counters.
    width : int
        Counter width in bits.
    amount_width : int
        Width of the amount added to weighted counters.
    weighted : iterable of int
        Indices of the counters that add ``amount`` instead of one.
    fifo_depth : int
        Events the input FIFO holds.

    Attributes
    ----------
    event : In(stream.Signature(CounterEventLayout(count, amount_width), always_ready=True))
        Events to count. Each cycle with ``valid`` set is one event.
    lost : Out(32)
        Number of events dropped because the FIFO was full (wraps; zeroed by ``clear``).
    read_addr : In(range(count))
        Counter to read.
    read_data : Out(width)
        Value of counter ``read_addr``, combinationally (an asynchronous read of the RAM, which
        distributed RAM provides): every increment written before this cycle is included.
    clear : In(1)
        Pulse to zero every counter. The engine finishes the event it is applying (events are
        never split across a clear), then writes zero to each counter in ``count`` cycles;
        events arriving meanwhile queue in the FIFO and are counted after the clear.
    clearing : Out(1)
        Set from the cycle after ``clear`` until the cycle after the last counter is zeroed.
    idle : Out(1)
        Set when no event is queued or being applied: every accepted event is in the RAM.
    storage : MemoryData
        The counter RAM's contents, word *i* holding counter *i* (exposed so a simulation can
        preset counters near a wrap).
    """

    def __init__(self, count, *, width=64, amount_width=16, weighted=(), fifo_depth=8):
        if count <= 0:
            raise ValueError(f"a counter bank needs at least one counter, not {count}")
        weighted = frozenset(weighted)
        if any(not 0 <= i < count for i in weighted):
            raise ValueError("weighted counter index out of range")
        self.count = count
        self.width = width
        self.amount_width = amount_width
        self.weighted = weighted
        self.fifo_depth = fifo_depth
        self.storage = MemoryData(shape=width, depth=count, init=[])
        super().__init__({
            "event": In(stream.Signature(CounterEventLayout(count, amount_width),
                                         always_ready=True)),
            "lost": Out(32),
            "read_addr": In(range(count)),
            "read_data": Out(width),
            "clear": In(1),
            "clearing": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layout = CounterEventLayout(self.count, self.amount_width)

        m.submodules.storage = mem = Memory(data=self.storage)
        wr = mem.write_port()
        rmw_rd = mem.read_port(transparent_for=(wr,))
        host_rd = mem.read_port(domain="comb")

        # Input FIFO; an event that does not fit is counted as lost.
        m.submodules.queue = queue = fifo.SyncFIFO(width=layout.size, depth=self.fifo_depth)
        m.d.comb += [
            queue.w_data.eq(self.event.payload),
            queue.w_en.eq(self.event.valid),
        ]
        with m.If(self.clear):
            m.d.sync += self.lost.eq(0)
        with m.Elif(self.event.valid & ~queue.w_rdy):
            m.d.sync += self.lost.eq(self.lost + 1)
        head = data.View(layout, queue.r_data)

        # Sequencer: the increments of the event being applied that are still to issue.
        pending = Signal(self.count)
        amount = Signal(self.amount_width)
        index = Signal(range(self.count))
        for i in reversed(range(self.count)):  # the lowest set bit wins
            with m.If(pending[i]):
                m.d.comb += index.eq(i)
        rest = Signal(self.count)
        m.d.comb += rest.eq(pending & (pending - 1))

        clear_pending = Signal()
        sweeping = Signal()
        sweep = Signal(range(self.count))
        # Stage 2 of the read-modify-write: the counter read last cycle gets its increment.
        s2_valid = Signal()
        s2_addr = Signal(range(self.count))
        s2_inc = Signal(self.amount_width)
        weighted_mask = Const(sum(1 << i for i in self.weighted), self.count)

        m.d.sync += s2_valid.eq(0)
        with m.If(pending.any()):
            m.d.comb += [
                rmw_rd.addr.eq(index),
                rmw_rd.en.eq(1),
            ]
            m.d.sync += [
                s2_valid.eq(1),
                s2_addr.eq(index),
            ]
            with m.If(weighted_mask.bit_select(index, 1)):
                m.d.sync += s2_inc.eq(amount)
            with m.Else():
                m.d.sync += s2_inc.eq(1)

        # Take the next event in the cycle the current one issues its last increment, so
        # back-to-back events leave no idle cycle; hold off while a clear waits to start.
        with m.If(~pending.any() | ~rest.any()):
            m.d.comb += queue.r_en.eq(~clear_pending & ~sweeping)
            with m.If(queue.r_en & queue.r_rdy):
                m.d.sync += [
                    pending.eq(head.mask),
                    amount.eq(head.amount),
                ]
            with m.Else():
                m.d.sync += pending.eq(0)
        with m.Else():
            m.d.sync += pending.eq(rest)

        with m.If(s2_valid):
            m.d.comb += [
                wr.addr.eq(s2_addr),
                wr.data.eq(rmw_rd.data + s2_inc),
                wr.en.eq(1),
            ]
        with m.Elif(sweeping):
            m.d.comb += [
                wr.addr.eq(sweep),
                wr.data.eq(0),
                wr.en.eq(1),
            ]
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == self.count - 1):
                m.d.sync += [
                    sweeping.eq(0),
                    sweep.eq(0),
                ]

        # A clear starts once the current event has issued all its increments.
        with m.If(clear_pending & ~pending.any() & ~sweeping):
            m.d.sync += [
                clear_pending.eq(0),
                sweeping.eq(1),
                sweep.eq(0),
            ]
        with m.If(self.clear):  # after the start above: a clear during a clear runs again
            m.d.sync += clear_pending.eq(1)

        m.d.comb += [
            host_rd.addr.eq(self.read_addr),
            self.read_data.eq(host_rd.data),
            self.clearing.eq(clear_pending | sweeping),
            self.idle.eq(~queue.r_rdy & ~pending.any() & ~s2_valid & ~clear_pending
                         & ~sweeping),
        ]
        return m
