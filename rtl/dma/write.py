"""The DMA write engine: user bytes become memory write TLPs on the requester request stream.

A write command (:class:`~amnic.dma.commands.DmaCommand`) names a host byte address of any
alignment and a length; its bytes arrive packed on a packet stream. The engine cuts the transfer
into memory write requests that obey the link's Max_Payload_Size and never cross a 4 KB
boundary (PCIe Base Specification 2.2.7), puts a
:class:`~amnic.dma.descriptors.RequesterRequest` descriptor in front of each and shifts the bytes
into the hard IP's DWORD-aligned payload position (PG213, "Requester Interface"). Memory writes
are posted (PCIe 2.4.1): a command is done when its last TLP has left on RQ.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from amnic.stream import PacketSignature

from .axis import WIDTHS
from .commands import MAX_TRANSFER, DmaCommand, DmaError, DmaStatus, MaxSize
from .descriptors import RequesterRequest, RequestType
from .rq_framer import RequestStreamSignature

__all__ = ["DmaWriteEngine", "split_write"]

# Largest TLP payload the engine ever builds: Max_Payload_Size 4096 (MaxSize.B4096).
_MAX_TLP = 4096
# Bytes of zeros below the first buffered beat, so the first-beat shift is never negative.
_PAD = 4


def split_write(address, length, mps):
    """The memory write TLPs of one write command, as ``(address, length)`` pairs in order.

    The rule :class:`DmaWriteEngine` implements: every TLP ends at the next multiple of ``mps``
    above its start address, or at the end of the transfer if that comes first::

        length_k = min(remaining, mps - address_k % mps)

    ``mps`` is the Max_Payload_Size in bytes, a power of two from 128 to 4096, so a TLP holds
    at most ``mps`` bytes (PCIe 2.2.2) and, 4096 being a multiple of ``mps``, never crosses a
    4 KB boundary (PCIe 2.2.7). Only the first TLP can start off an ``mps`` boundary; the
    following ones are aligned, as in most DMA engines.
    """
    if mps not in (128, 256, 512, 1024, 2048, 4096):
        raise ValueError(f"Max_Payload_Size must be a power of two from 128 to 4096, not {mps}")
    tlps = []
    while length > 0:
        size = min(length, mps - address % mps)
        tlps.append((address, size))
        address += size
        length -= size
    return tlps


class _Tlp(data.StructLayout):
    """One TLP to build (or a rejected command), from the splitter to the beat builder."""

    def __init__(self, width):
        lanes, dwords = width // 8, width // 32
        beats = (_MAX_TLP // 4 + dwords - 1) // dwords
        super().__init__({
            "bad": 1,  # BAD_LENGTH command: no TLP, no data, just a status
            "id": 16,
            "address": 64,
            "offset": range(MAX_TRANSFER + 1),  # transfer byte of the TLP's first payload byte
            "length": range(_MAX_TLP + 1),
            "dwords": range(_MAX_TLP // 4 + 1),
            "beats": range(beats + 1),
            "last_keep": dwords,  # keep of the TLP's last beat
            "first_be": 4,
            "last_be": 4,
            "last_of_command": 1,
            "last_beat": range(MAX_TRANSFER // lanes),  # index of the command's last data beat
            "last_lanes": lanes,  # keep the command's last data beat must have
        })


class DmaWriteEngine(wiring.Component):
    """Write host memory with posted memory write TLPs.

    Contract
    --------
    * **Commands.** ``cmd`` carries one :class:`~amnic.dma.commands.DmaCommand` per transfer:
      ``length`` bytes to host byte ``address`` (any alignment, 64 bit). Each command gets
      exactly one ``status``, in command order.
    * **Data.** The command's bytes arrive on ``data``: byte 0 in lane 0 of a new beat, packed
      (``keep`` all ones except on the last beat, whose lanes are contiguous from lane 0),
      ``last`` on the beat holding the final byte. Data of a command may arrive before or after
      the command.
    * **Splitting.** TLP ``k`` starts at ``address_k`` and holds
      ``min(remaining, mps - address_k % mps)`` bytes, ``mps = 128 << max_payload`` sampled
      when the TLP is planned (values above :attr:`MaxSize.B4096` count as 4096). This is
      :func:`split_write`: at most Max_Payload_Size bytes per TLP (PCIe 2.2.2), no TLP crosses
      a 4 KB boundary (PCIe 2.2.7), and all TLPs but the first start on an ``mps`` boundary.
    * **Requests.** Each TLP leaves on ``rq`` as a :class:`~amnic.dma.rq_framer.RequestBeat`
      stream (a :class:`~amnic.dma.rq_framer.RequestFramer` puts the descriptor in front):
      the :class:`~amnic.dma.descriptors.RequesterRequest` on the first beat (``MEM_WRITE``,
      ``address`` = byte address >> 2, ``dword_count``, tag 0, requester ID from the hard IP),
      the payload from DWORD 0, DWORD-aligned (PG213): the first payload DWORD is the host DWORD
      holding the first byte. ``side`` carries the byte enables (PCIe 2.2.5): for a TLP of one
      DWORD ``first_be`` covers the bytes and ``last_be`` is 0; otherwise ``first_be`` enables
      from the first byte up and ``last_be`` up to the last byte. A TLP of ``n`` payload
      DWORDs takes ``ceil(n / (width / 32))`` beats; payload lanes outside the byte enables
      hold whatever the shift brought there.
    * **Throughput.** With data available and ``rq`` ready, ``rq`` carries a beat every cycle,
      across TLP and command boundaries.
    * **Status.** A command's status is written after the last beat of its last TLP left on
      ``rq`` (posted writes have no completion); ``rq`` waits while the status queue is full.
    * **BAD_LENGTH.** A command of length 0 or above
      :data:`~amnic.dma.commands.MAX_TRANSFER` sends nothing, **consumes no data** (the user
      must send none for it) and reports ``BAD_LENGTH``.
    * **MALFORMED.** The engine checks every data beat as it uses it: beats before the last one
      of the command must have all lanes kept and no ``last``; the beat holding byte
      ``length - 1`` must have ``last`` and exactly the lanes up to that byte. On a mismatch
      (too few or too many bytes) it stops the command: TLPs completed before the mismatch was
      seen have been sent (their bytes are the user's first bytes at the right addresses); a
      TLP in progress is ended at once with ``last`` and ``side.discontinue`` set (the hard IP
      nullifies it, PG213 ``discontinue``); no further TLP of the command is sent. The data
      stream is consumed up to its next ``last`` and the status is ``MALFORMED``.

    Design
    ------
    A splitter plans one TLP per cycle into a register (address, length, DWORD count, byte
    enables, beat count). The beat builder keeps the two oldest unconsumed data beats, ``R0``
    (data beat ``P`` of the command) and ``R1`` (beat ``P + 1``), and builds every output beat
    with one funnel shift of ``window = Cat(4 zero bytes, R0, R1)`` by a byte amount ``k``.
    Let ``lo`` be the transfer byte the output beat starts with and ``B`` the bytes per beat;
    ``R0`` holds ``lo`` at lane ``lo % B``, i.e. at window byte ``4 + lo % B``:

    * first beat of a TLP at host ``address``: byte ``lo`` belongs at output byte
      ``address % 4``, so output byte ``p`` is window byte ``p + k`` with
      ``k = lo % B + 4 - address % 4`` (the zero bytes cover ``address % 4 > lo % B``);
    * the other beats: output byte ``p`` is window byte ``p + k`` with ``k = lo % B + 4``. ``lo``
      advances by ``B`` per beat, so ``k`` is constant within a TLP:
      ``(offset - address % 4) mod B + 4``.

    Each output beat uses bytes of ``R0`` and at most ``R1``. When it has used the last lane of
    ``R0`` (both registers at the end of a command) they are released and a new data beat
    enters in the same cycle, so a beat leaves every cycle. Latency: two cycles from a command
    and its first data beat to its first RQ beat.

    Parameters
    ----------
    width : int
        PCIe user interface width, 256 or 512.
    status_depth : int
        Statuses held for a slow ``status`` consumer before ``rq`` stalls.

    Attributes
    ----------
    cmd : In(stream.Signature(DmaCommand))
    data : In(PacketSignature(width, user_width=0))
    rq : Out(RequestStreamSignature(width))
    max_payload : In(MaxSize)
        Max_Payload_Size of the function (the hard IP's ``cfg_max_payload``).
    status : Out(stream.Signature(DmaStatus))
    tlps : Out(32)
        Complete TLPs sent (discontinued ones not counted); wraps.
    discontinued : Out(16)
        TLPs ended with ``discontinue``; wraps.
    """

    def __init__(self, width, status_depth=4):
        if width not in WIDTHS:
            raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
        self.width = width
        self.status_depth = status_depth
        super().__init__({
            "cmd": In(stream.Signature(DmaCommand)),
            "data": In(PacketSignature(width, user_width=0)),
            "rq": Out(RequestStreamSignature(width)),
            "max_payload": In(MaxSize),
            "status": Out(stream.Signature(DmaStatus)),
            "tlps": Out(32),
            "discontinued": Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        width = self.width
        lanes = width // 8
        dwords = width // 32
        lane_bits = exact_log2(lanes)
        dword_bits = exact_log2(dwords)
        all_lanes = (1 << lanes) - 1

        # ---- status queue -------------------------------------------------------------------
        m.submodules.status_fifo = status_fifo = fifo.SyncFIFO(
            width=DmaStatus.as_shape().size, depth=self.status_depth)
        m.d.comb += [
            self.status.valid.eq(status_fifo.r_rdy),
            self.status.payload.eq(status_fifo.r_data),
            status_fifo.r_en.eq(self.status.ready),
        ]

        # ---- splitter: one planned TLP per cycle into `plan` ----------------------------------
        plan = Signal(_Tlp(width))
        plan_valid = Signal()
        plan_pop = Signal()
        plan_load = ~plan_valid | plan_pop

        busy = Signal()  # a command is being split (its rest in the registers below)
        cur_address = Signal(64)
        cur_remaining = Signal(range(MAX_TRANSFER + 1))
        cur_offset = Signal(range(MAX_TRANSFER + 1))
        cur_id = Signal(16)
        cur_length = Signal(range(MAX_TRANSFER + 1))

        cmd = self.cmd.payload
        address = Signal(64)
        remaining = Signal(range(MAX_TRANSFER + 1))
        offset = Signal(range(MAX_TRANSFER + 1))
        command_id = Signal(16)
        command_length = Signal(range(MAX_TRANSFER + 1))
        m.d.comb += [
            address.eq(Mux(busy, cur_address, cmd.address)),
            remaining.eq(Mux(busy, cur_remaining, cmd.length)),
            offset.eq(Mux(busy, cur_offset, 0)),
            command_id.eq(Mux(busy, cur_id, cmd.id)),
            command_length.eq(Mux(busy, cur_length, cmd.length)),
        ]
        bad_length = ~busy & ((cmd.length == 0) | (cmd.length > MAX_TRANSFER))

        mps_code = Signal(3)
        m.d.comb += mps_code.eq(Mux(self.max_payload.as_value() > MaxSize.B4096.value,
                                    MaxSize.B4096.value, self.max_payload.as_value()))
        mps = Signal(range(_MAX_TLP + 1))
        m.d.comb += mps.eq(Const(128, range(_MAX_TLP + 1)) << mps_code)
        room = Signal(range(_MAX_TLP + 1))
        m.d.comb += room.eq(mps - (address[:12] & (mps - 1)))
        size = Signal(range(_MAX_TLP + 1))
        m.d.comb += size.eq(Mux(remaining < room, remaining, room))
        head = address[:2]
        tlp_dwords = Signal(range(_MAX_TLP // 4 + 2))
        m.d.comb += tlp_dwords.eq((head + size + 3) >> 2)
        beats = Signal(range((_MAX_TLP // 4 + dwords) // dwords + 1))
        m.d.comb += beats.eq((tlp_dwords + dwords - 1) >> dword_bits)
        last_dwords = Signal(range(dwords + 1))
        m.d.comb += last_dwords.eq(tlp_dwords - ((beats - 1) << dword_bits))
        tail = Signal(2)  # (address + size) % 4
        m.d.comb += tail.eq(head + size[:2])
        first_be = Signal(4)
        last_be = Signal(4)
        with m.If(tlp_dwords == 1):
            m.d.comb += first_be.eq(((Const(1, 5) << size[:3]) - 1) << head)
        with m.Else():
            m.d.comb += [
                first_be.eq(Const(0xF, 4) << head),
                last_be.eq(Mux(tail == 0, 0xF, (Const(1, 4) << tail) - 1)),
            ]
        final_byte = Signal(range(MAX_TRANSFER))
        m.d.comb += final_byte.eq(command_length - 1)

        m.d.comb += self.cmd.ready.eq(~busy & plan_load)
        with m.If(plan_load):
            m.d.sync += plan_valid.eq(busy | self.cmd.valid)
            m.d.sync += [
                plan.bad.eq(bad_length),
                plan.id.eq(command_id),
                plan.address.eq(address),
                plan.offset.eq(offset),
                plan.length.eq(size),
                plan.dwords.eq(tlp_dwords),
                plan.beats.eq(beats),
                plan.last_keep.eq((Const(1, dwords + 1) << last_dwords) - 1),
                plan.first_be.eq(first_be),
                plan.last_be.eq(last_be),
                plan.last_of_command.eq(size == remaining),
                plan.last_beat.eq(final_byte >> lane_bits),
                plan.last_lanes.eq((Const(2, lanes + 1) << final_byte[:lane_bits]) - 1),
            ]
            with m.If((busy | self.cmd.valid) & ~bad_length):
                m.d.sync += [
                    busy.eq(size != remaining),
                    cur_address.eq(address + size),
                    cur_remaining.eq(remaining - size),
                    cur_offset.eq(offset + size),
                    cur_id.eq(command_id),
                    cur_length.eq(command_length),
                ]

        # ---- data beat buffer: R0 = beat P of the command, R1 = beat P + 1 --------------------
        r_data = [Signal(width, name=f"r{i}_data") for i in range(2)]
        r_keep = [Signal(lanes, name=f"r{i}_keep") for i in range(2)]
        r_last = [Signal(name=f"r{i}_last") for i in range(2)]
        r_valid = [Signal(name=f"r{i}_valid") for i in range(2)]
        pops = Signal(2)
        push = Signal()
        m.d.comb += [
            self.data.ready.eq(~r_valid[1] | (pops != 0)),
            push.eq(self.data.valid & self.data.ready),
        ]
        incoming = self.data.payload

        def load(i):
            return [r_data[i].eq(incoming.data), r_keep[i].eq(incoming.keep),
                    r_last[i].eq(incoming.last), r_valid[i].eq(1)]

        with m.Switch(pops):
            with m.Case(0):
                with m.If(push):
                    with m.If(~r_valid[0]):
                        m.d.sync += load(0)
                    with m.Else():
                        m.d.sync += load(1)
            with m.Case(1):
                m.d.sync += [r_data[0].eq(r_data[1]), r_keep[0].eq(r_keep[1]),
                             r_last[0].eq(r_last[1]), r_valid[0].eq(r_valid[1]),
                             r_valid[1].eq(0)]
                with m.If(push):
                    with m.If(r_valid[1]):
                        m.d.sync += load(1)
                    with m.Else():
                        m.d.sync += load(0)
            with m.Case(2):
                m.d.sync += [r_valid[0].eq(0), r_valid[1].eq(0)]
                with m.If(push):
                    m.d.sync += load(0)

        # ---- output register -----------------------------------------------------------------
        out = Signal(self.rq.payload.shape())
        out_valid = Signal()
        out_status = Signal()  # the beat ends its command: write the status when it leaves
        out_id = Signal(16)
        m.d.comb += [
            self.rq.payload.eq(out),
            self.rq.valid.eq(out_valid & (~out_status | status_fifo.w_rdy)),
        ]
        accept = Signal()
        m.d.comb += accept.eq(self.rq.valid & self.rq.ready)
        advance = Signal()  # `out` can take a new beat this cycle
        m.d.comb += advance.eq(~out_valid | accept)
        with m.If(accept):
            m.d.sync += out_valid.eq(0)
            with m.If(out.last & ~out.side.discontinue):
                m.d.sync += self.tlps.eq(self.tlps + 1)
            with m.If(out.last & out.side.discontinue):
                m.d.sync += self.discontinued.eq(self.discontinued + 1)

        direct_status = Signal()  # a status not carried by a beat (BAD_LENGTH, MALFORMED)
        direct_error = Signal(DmaError)
        direct_id = Signal(16)
        with m.If(accept & out_status):
            m.d.comb += [
                status_fifo.w_en.eq(1),
                status_fifo.w_data.eq(Cat(out_id, Const(DmaError.OK.value, 3))),
            ]
        with m.Elif(direct_status):
            m.d.comb += [
                status_fifo.w_en.eq(1),
                status_fifo.w_data.eq(Cat(direct_id, direct_error)),
            ]
        # A direct status waits until no beat is held, so it follows every earlier TLP.
        status_free = ~out_valid & status_fifo.w_rdy

        # ---- beat builder --------------------------------------------------------------------
        in_tlp = Signal()  # the next beat continues a TLP
        cur_lo = Signal(range(MAX_TRANSFER + 1))  # transfer byte of the next payload byte
        cur_end = Signal(range(MAX_TRANSFER + 1))  # transfer byte after the TLP's last byte
        cur_beats = Signal.like(plan.beats)  # beats of the TLP still to build
        cur_keep = Signal(dwords)
        cur_last_cmd = Signal()
        cur_cmd_id = Signal(16)
        cur_last_beat = Signal.like(plan.last_beat)
        cur_last_lanes = Signal(lanes)

        aborting = Signal()  # a malformed command is being wound up
        skipping = Signal()  # ... dropping its remaining planned TLPs
        draining = Signal()  # ... consuming its data up to `last`
        abort_id = Signal(16)

        first = ~in_tlp
        lo = Signal(range(MAX_TRANSFER + 1))
        hi = Signal(range(MAX_TRANSFER + 1))
        final = Signal()
        shift = Signal(range(lanes + _PAD))
        last_beat = Signal.like(plan.last_beat)
        last_lanes = Signal(lanes)
        with m.If(first):
            m.d.comb += [
                lo.eq(plan.offset),
                final.eq(plan.beats == 1),
                hi.eq(Mux(plan.beats == 1, plan.offset + plan.length,
                          plan.offset + lanes - plan.address[:2])),
                shift.eq(plan.offset[:lane_bits] + _PAD - plan.address[:2]),
                last_beat.eq(plan.last_beat),
                last_lanes.eq(plan.last_lanes),
            ]
        with m.Else():
            m.d.comb += [
                lo.eq(cur_lo),
                final.eq(cur_beats == 1),
                hi.eq(Mux(cur_beats == 1, cur_end, cur_lo + lanes)),
                shift.eq(cur_lo[:lane_bits] + _PAD),
                last_beat.eq(cur_last_beat),
                last_lanes.eq(cur_last_lanes),
            ]
        index = lo >> lane_bits  # data beat held in R0
        needs_r1 = Signal()
        m.d.comb += needs_r1.eq(((hi - 1) >> lane_bits) != index)
        crosses = Signal()  # the beat uses R0's last lane
        m.d.comb += crosses.eq((hi >> lane_bits) != index)

        def wrong(i, beat_index):
            """Data beat in R<i> disagrees with the command length."""
            return Mux(beat_index < last_beat,
                       r_last[i] | (r_keep[i] != all_lanes),
                       ~r_last[i] | (r_keep[i] != last_lanes))

        malformed = Signal()
        m.d.comb += malformed.eq(r_valid[0] & (wrong(0, index) |
                                               (needs_r1 & r_valid[1] & wrong(1, index + 1))))
        ready = Signal()
        m.d.comb += ready.eq(r_valid[0] & (~needs_r1 | r_valid[1]) & ~malformed)
        command_end = Signal()
        m.d.comb += command_end.eq(final & Mux(first, plan.last_of_command, cur_last_cmd))

        window = Cat(Const(0, 8 * _PAD), r_data[0], r_data[1])
        shifted = Signal(width)
        m.d.comb += shifted.eq(window >> (shift * 8))
        descriptor = Signal(RequesterRequest)
        m.d.comb += [
            descriptor.request_type.eq(RequestType.MEM_WRITE),
            descriptor.address.eq(plan.address[2:]),
            descriptor.dword_count.eq(plan.dwords),
        ]

        def emit_beat():
            stmts = [
                out_valid.eq(1),
                out.keep.eq(Mux(final, Mux(first, plan.last_keep, cur_keep), (1 << dwords) - 1)),
                out.last.eq(final),
                out.side.discontinue.eq(0),
                out_status.eq(command_end),
                out_id.eq(Mux(first, plan.id, cur_cmd_id)),
            ]
            return stmts

        with m.If(aborting):
            with m.If(skipping & plan_valid):
                m.d.comb += plan_pop.eq(1)
                with m.If(plan.last_of_command):
                    m.d.sync += skipping.eq(0)
            with m.If(draining & r_valid[0]):
                m.d.comb += pops.eq(1)
                with m.If(r_last[0]):
                    m.d.sync += draining.eq(0)
            with m.If(~skipping & ~draining & status_free):
                m.d.comb += [direct_status.eq(1), direct_id.eq(abort_id),
                             direct_error.eq(DmaError.MALFORMED)]
                m.d.sync += aborting.eq(0)
        with m.Elif(in_tlp):
            with m.If(advance & r_valid[0] & malformed):
                # End the TLP now; the hard IP nullifies it.
                m.d.sync += [
                    out_valid.eq(1),
                    out.data.eq(0),
                    out.keep.eq((1 << dwords) - 1),
                    out.last.eq(1),
                    out.side.eq(0),
                    out.side.discontinue.eq(1),
                    out_status.eq(0),
                    in_tlp.eq(0),
                    aborting.eq(1),
                    skipping.eq(~cur_last_cmd),
                    draining.eq(1),
                    abort_id.eq(cur_cmd_id),
                ]
            with m.Elif(advance & ready):
                m.d.sync += emit_beat()
                m.d.sync += [
                    out.data.eq(shifted),
                    out.side.eq(0),
                    cur_lo.eq(hi),
                    cur_beats.eq(cur_beats - 1),
                ]
                m.d.comb += pops.eq(Mux(command_end, 1 + needs_r1, crosses))
                with m.If(final):
                    m.d.sync += in_tlp.eq(0)
        with m.Elif(plan_valid):
            with m.If(plan.bad):
                with m.If(status_free):
                    m.d.comb += [plan_pop.eq(1), direct_status.eq(1), direct_id.eq(plan.id),
                                 direct_error.eq(DmaError.BAD_LENGTH)]
            with m.Elif(malformed):
                # Nothing of this TLP has been sent.
                m.d.comb += plan_pop.eq(1)
                m.d.sync += [
                    aborting.eq(1),
                    skipping.eq(~plan.last_of_command),
                    draining.eq(1),
                    abort_id.eq(plan.id),
                ]
            with m.Elif(advance & ready):
                m.d.comb += plan_pop.eq(1)
                m.d.sync += emit_beat()
                m.d.sync += [
                    out.descriptor.eq(descriptor),
                    out.data.eq(shifted),
                    out.side.first_be.eq(plan.first_be),
                    out.side.last_be.eq(plan.last_be),
                ]
                m.d.comb += pops.eq(Mux(command_end, 1 + needs_r1, crosses))
                with m.If(~final):
                    m.d.sync += [
                        in_tlp.eq(1),
                        cur_lo.eq(hi),
                        cur_end.eq(plan.offset + plan.length),
                        cur_beats.eq(plan.beats - 1),
                        cur_keep.eq(plan.last_keep),
                        cur_last_cmd.eq(plan.last_of_command),
                        cur_cmd_id.eq(plan.id),
                        cur_last_beat.eq(plan.last_beat),
                        cur_last_lanes.eq(plan.last_lanes),
                    ]
        return m
