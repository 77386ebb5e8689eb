"""The DMA read engine: host memory to a byte stream, through memory read requests (RQ) and
their completions (RC).

A command asks for ``length`` bytes at host byte ``address``. The engine cuts it into memory read
requests (PCIe Base Specification 2.2.7: no request crosses a 4 KB boundary, none is longer than
Max_Read_Request_Size), sends each with a tag (2.2.6.2), and puts the completions' payload into a
reorder buffer at the place its bytes belong. Completions of different requests come in any order
and a request may be answered in several completions, cut at the Read Completion Boundary
(2.3.1.1); completions of one request come in address order (2.4.1). Once a command's bytes are
complete up to a beat, the beat is streamed out; commands leave in the order they came.

How it works
------------
* **Issue.** Each request gets a tag (the lowest one neither outstanding nor reserved after a
  timeout, :func:`~amnic.dma.tags.lowest_set` over the per-tag flags), a *ring slot*
  (issue order) and the next bytes of the reorder buffer (:class:`~amnic.dma.reorder.
  ReorderBuffer`), in the order of the command's bytes; every command starts on a beat. A
  request is sent only if its bytes fit in the buffer behind what is not yet read out, so
  whatever comes back has a place and ``data`` back-pressure never loses anything.
* **Completions.** A per-tag table (block RAM) gives the request's slot, buffer position,
  length and address; a second per-tag table holds the bytes still owed and the first error
  once a completion has left the request unfinished (a per-tag ``fresh`` bit, set at issue,
  stands for "the whole length, no error" until then, so issue never writes that table and
  all the per-tag state is in RAM, not in registers indexed by tag). Completions come
  payload-aligned (:class:`~amnic.dma.rc_align.CompletionAligner` in front of the engine takes
  them off the hard IP's bus, straddled or not). From the descriptor the engine finds the
  buffer position of the payload's byte 0 and the range of valid payload bytes, and every beat
  becomes one shifted write into the buffer. The request's last completion
  marks its slot done when its last beat is written.
* **Failures.** A request that fails (error completion, malformed completion, timeout) is not
  marked done by a completion: its buffer range is queued for *zero-filling*, which writes zeros
  over it in cycles without RC beats, then marks the slot done with the error.
* **Timeout.** A scanner reads one tag's issue time per cycle and ends requests outstanding for
  ``timeout`` cycles; their tags stay reserved until ``2 * timeout`` cycles after issue.
* **Retirement and output.** Slots retire in issue order once done, advancing the position up to
  which the buffer is complete and collecting each command's first error; a beat is read out
  (one per cycle) once all its bytes are complete, and a command's status follows its last beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from amnic.stream import PacketSignature

from .axis import WIDTHS
from .commands import MAX_TRANSFER, DmaCommand, DmaError, DmaStatus, MaxSize
from .descriptors import (
    CompletionError,
    CompletionStatus,
    RequesterCompletion,
    RequestType,
)
from .rc_align import CompletionStreamSignature
from .reorder import ReorderBuffer
from .rq_framer import RequestStreamSignature
from .tags import lowest_set

__all__ = ["DmaReadEngine", "split_read", "request_byte_enables", "max_read_bytes",
           "TIMEOUT_BITS"]

#: Largest memory read request (Max_Read_Request_Size 4096, PCIe 7.5.3.4).
MAX_REQUEST = 4096
#: Width of the completion timeout in cycles (up to about 268 ms at 250 MHz).
TIMEOUT_BITS = 26
_FILL_DEPTH = 8
_STATUS_DEPTH = 4
_ERROR_DEPTH = 16


def _one_hot(index, count):
    """``count`` bits, bit ``i`` set when ``index == i`` (none when ``index >= count``)."""
    return Cat(*(index == i for i in range(count)))


def max_read_bytes(mrrs):
    """Bytes of a Max_Read_Request_Size encoding (:class:`MaxSize` value; reserved values 6 and
    7 count as 4096)."""
    return 128 << min(int(getattr(mrrs, "value", mrrs)), 5)


def split_read(address, length, mrrs):
    """Cut a read of ``length`` bytes at ``address`` into memory read requests.

    Reference of the engine's rule: every request ends at the next multiple of ``mrrs`` bytes
    (the Max_Read_Request_Size in bytes, a power of two 128..4096) or at the end of the read.
    Requests therefore never exceed ``mrrs`` bytes and, since ``mrrs`` divides 4096, never cross
    a 4 KB boundary (PCIe Base Specification 2.2.7).

    Returns
    -------
    list of (int, int)
        ``(address, length)`` of each request, in order; they tile the read exactly.
    """
    if length < 1:
        raise ValueError(f"a read has at least one byte, not {length}")
    out = []
    while length:
        n = min(length, mrrs - address % mrrs)
        out.append((address, n))
        address += n
        length -= n
    return out


def request_byte_enables(address, length):
    """``(dword_count, first_be, last_be)`` of a memory read of ``length`` (>= 1) bytes at
    ``address`` (PCIe 2.2.5: a one-DWORD request has last_be 0)."""
    dwords = (address % 4 + length + 3) // 4
    first_be = (0xF << address % 4) & 0xF
    last_be = 0xF >> (3 - (address + length - 1) % 4)
    if dwords == 1:
        return 1, first_be & last_be, 0
    return dwords, first_be, last_be


class DmaReadEngine(wiring.Component):
    """Read host memory for a stream of commands; deliver the bytes, then a status, per command.

    Contract
    --------
    * **Commands** (``cmd``): :class:`~amnic.dma.commands.DmaCommand`. A command whose length is
      0 or above :data:`~amnic.dma.commands.MAX_TRANSFER` sends no request and delivers no
      data; its status (``BAD_LENGTH``) still comes in command order.
    * **Requests** (``rq``): one :class:`~amnic.dma.rq_framer.RequestBeat` per memory read
      request, the :class:`~amnic.dma.descriptors.RequesterRequest` in ``descriptor``, no
      payload (``keep`` 0), the byte enables in ``side`` (PCIe 2.2.5). Requests follow
      :func:`split_read` with the ``max_read_request`` seen when each request is cut. One
      request per cycle while a tag, a reorder-buffer slot (``tags`` requests) and buffer
      space are free.
    * **Completions** (``rc``): a payload-aligned completion stream
      (:class:`~amnic.dma.rc_align.CompletionBeat`, as
      :class:`~amnic.dma.rc_align.CompletionAligner` makes it from the hard IP's RC bus): the
      :class:`~amnic.dma.descriptors.RequesterCompletion` in ``descriptor`` of the first beat,
      the payload from DWORD 0 of that beat, its first DWORD the one holding byte
      ``lower_address``; ``last`` ends the completion (``keep`` and ``first`` are not used).
      The bytes go where ``byte_count`` says (the request's length minus ``byte_count`` bytes
      precede them). A completion is accepted for a tag that is outstanding, whose ``byte_count``
      equals the bytes still owed and whose ``lower_address[6:0]`` is where those bytes start;
      it finishes the request when it carries the last byte, has ``request_completed`` set, or
      has a status other than Successful. The payload length is trusted to match
      ``dword_count`` (the hard IP checks it).
    * **Data** (``data``): each command's ``length`` bytes, byte 0 in lane 0, packed, ``last``
      on its final beat, in command order. A beat leaves once all its bytes are in the buffer
      (every request has its slot, so nothing is ever dropped under back-pressure). Bytes of a
      request that failed are delivered as zeros (the buffer range is overwritten with zeros
      before the request counts as done), so the stream always keeps its framing.
    * **Status** (``status``): one :class:`~amnic.dma.commands.DmaStatus` per command, after
      its last data beat, with the first error of its requests in address order:
      ``TIMEOUT`` (no completion within ``timeout_cycles``, or the hard IP reported a
      completion timeout), ``COMPLETION`` (UR/CA/CRS status, poisoned data, or the hard IP
      reported a bad status, requester mismatch or function reset), ``MALFORMED`` (a
      completion whose byte count or address is not where the data continues, or that the hard
      IP flagged as such), ``OK`` otherwise.
    * **Unexpected completions** (a tag not outstanding, or one the hard IP marks as invalid)
      are dropped and counted in ``unexpected_completions``.
    * **Completion timeout** (PCIe 2.8): a scanner visits one tag per cycle; a request still
      outstanding ``timeout`` cycles (plus up to ``tags`` cycles of scan) after it was issued
      (put on ``rq``, whether or not ``rq.ready`` took it at once) ends with ``TIMEOUT``. Its
      tag is not reused at once: it stays reserved (completions for it are dropped and counted
      as unexpected) until it has been outstanding for ``2 * timeout``, so a late
      completion is never taken for a new request's. (A completion carries only the tag, so a
      per-tag generation could not tell them apart.)
    * **Flow control on ``rc``**: ``rc.ready`` is high in normal operation. It drops only while
      the queue of failed requests waiting to be zero-filled is nearly full (several requests
      failing at once), and zero-filling uses cycles in which ``rc`` delivers nothing.

    Parameters
    ----------
    width : int
        PCIe user interface width, 256 or 512.
    tags : int
        Outstanding requests at most (a power of two, 2..256; 256 needs 8-bit tags).
    buffer_bytes : int
        Reorder buffer in bytes (a power of two, at least 8192); it bounds the bytes requested
        and not yet delivered on ``data``.
    timeout_cycles : int
        Reset value of ``timeout`` (the default, 2**20 cycles, is about 4 ms at 250 MHz, inside
        the PCIe 7.5.3.16 range A of 50 µs to 10 ms).

    Attributes
    ----------
    cmd : In(stream.Signature(DmaCommand))
    rq : Out(RequestStreamSignature(width))
    rc : In(CompletionStreamSignature(width))
    data : Out(PacketSignature(width, user_width=0))
    status : Out(stream.Signature(DmaStatus))
    max_read_request : In(MaxSize)
        Max_Read_Request_Size from the Device Control register (``cfg_max_read_req``).
    timeout : In(TIMEOUT_BITS, init=timeout_cycles)
        Completion timeout in clock cycles (at least 1; change it only while no read is
        outstanding, or requests in flight may time out early or late once).
    unexpected_completions : Out(32)
        Completions dropped for an unknown tag (wraps).
    timeouts : Out(32)
        Requests ended by a completion timeout, the engine's or one the hard IP reported
        (wraps).
    outstanding : Out(range(tags + 1))
        Tags in use (including tags reserved after a timeout).
    """

    def __init__(self, width, *, tags=256, buffer_bytes=32768, timeout_cycles=1 << 20):
        if width not in WIDTHS:
            raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
        if not 2 <= tags <= 256 or tags & (tags - 1):
            raise ValueError(f"tags must be a power of two 2..256, not {tags}")
        if buffer_bytes < 2 * MAX_REQUEST or buffer_bytes & (buffer_bytes - 1):
            raise ValueError(f"buffer_bytes must be a power of two >= {2 * MAX_REQUEST}, "
                             f"not {buffer_bytes}")
        if not 1 <= timeout_cycles < 1 << TIMEOUT_BITS:
            raise ValueError(f"timeout_cycles must be 1..2**{TIMEOUT_BITS} - 1, "
                             f"not {timeout_cycles}")
        self.width, self.tags, self.buffer_bytes = width, tags, buffer_bytes
        self.timeout_cycles = timeout_cycles
        self.lanes = width // 8
        super().__init__({
            "cmd": In(stream.Signature(DmaCommand)),
            "rq": Out(RequestStreamSignature(width)),
            "rc": In(CompletionStreamSignature(width)),
            "data": Out(PacketSignature(width, user_width=0)),
            "status": Out(stream.Signature(DmaStatus)),
            "max_read_request": In(MaxSize),
            "timeout": In(TIMEOUT_BITS, init=timeout_cycles),
            "unexpected_completions": Out(32),
            "timeouts": Out(32),
            "outstanding": Out(range(tags + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, lane_bits = self.lanes, exact_log2(self.lanes)
        size, pos_bits = self.buffer_bytes, exact_log2(self.buffer_bytes)
        tags, tag_bits = self.tags, exact_log2(self.tags)
        timeout = self.timeout
        time_bits = TIMEOUT_BITS + 2

        # Per-request bookkeeping. A request has a tag (while outstanding) and a ring slot (in
        # issue order, until its bytes have been accounted for in the buffer); both index
        # tables of `tags` entries.
        tag_info = data.StructLayout({
            "slot": tag_bits, "base": pos_bits, "length": range(MAX_REQUEST + 1),
            "addr_lo": 12,
        })
        ring_entry = data.StructLayout({"end": pos_bits + 1, "last": 1})
        mark_layout = data.StructLayout({"slot": tag_bits, "error": DmaError})
        fill_job = data.StructLayout({
            "slot": tag_bits, "base": pos_bits, "length": range(MAX_REQUEST + 1),
            "error": DmaError,
        })
        out_cmd = data.StructLayout({"length": range(MAX_TRANSFER + 1), "id": 16, "bad": 1})

        m.submodules.buffer = buf = ReorderBuffer(self.width, size, mark_layout)
        m.submodules.out_cmds = outq = SyncFIFOBuffered(width=out_cmd.size, depth=tags)
        m.submodules.cmd_errors = errq = SyncFIFO(width=3, depth=_ERROR_DEPTH)
        m.submodules.fills = fillq = SyncFIFOBuffered(width=fill_job.size, depth=_FILL_DEPTH)
        m.submodules.statuses = stq = SyncFIFOBuffered(width=DmaStatus.as_shape().size,
                                                      depth=_STATUS_DEPTH)
        m.submodules.tag_info = info_mem = Memory(shape=tag_info, depth=tags, init=[])
        info_wr = info_mem.write_port()
        info_rc = info_mem.read_port()
        info_scan = info_mem.read_port(transparent_for=(info_wr,))
        m.submodules.stamps = stamp_mem = Memory(shape=time_bits, depth=tags, init=[])
        stamp_wr = stamp_mem.write_port()
        stamp_scan = stamp_mem.read_port(transparent_for=(stamp_wr,))
        m.submodules.ring = ring_mem = Memory(shape=ring_entry, depth=tags, init=[])
        ring_wr = ring_mem.write_port()
        ring_rd = ring_mem.read_port()
        m.submodules.ring_errors = rerr_mem = Memory(shape=DmaError, depth=tags, init=[])
        rerr_wr = rerr_mem.write_port()
        rerr_rd = rerr_mem.read_port(transparent_for=(rerr_wr,))
        # A request's progress after completions that did not finish it: bytes still to come
        # and the first error (the request goes on). Written only by the completion path; an
        # entry counts only once `fresh` (set at issue) is clear, before that the request owes
        # its whole length and has no error. Read when an RC beat is taken, transparent for
        # the write of the TLP before it.
        progress = data.StructLayout({"owed": range(MAX_REQUEST + 1), "error": DmaError})
        m.submodules.progress = prog_mem = Memory(shape=progress, depth=tags, init=[])
        prog_wr = prog_mem.write_port()
        prog_rc = prog_mem.read_port(transparent_for=(prog_wr,))

        now = Signal(time_bits)
        m.d.sync += now.eq(now + 1)
        active = Signal(tags)  # tag outstanding, completions expected
        stale = Signal(tags)  # tag timed out, reserved
        fresh = Signal(tags)  # tag issued, its `progress` entry not yet written
        done = Signal(tags)  # ring slot's bytes are in the buffer (or zero-filled)
        # These flag vectors change through one-hot masks of the tag or slot concerned (updated
        # at the end), never through assignments to a bit at a variable index: Yosys turns each
        # of those into a comparator per flag bit and index value, tags**2 cells each.
        issued = Signal(tags)  # the tag issued in this cycle
        finished = Signal(tags)  # the tag whose last completion is handled in this cycle
        continued = Signal(tags)  # the tag of a completion that leaves its request unfinished
        timed_out = Signal(tags)  # the tag the scanner ends
        expired = Signal(tags)  # the reserved tag the scanner releases
        slot_done = Signal(tags)  # the ring slot whose bytes are all in the buffer
        slot_retired = Signal(tags)  # the ring slot retired in this cycle
        head = Signal(tag_bits + 1)  # oldest ring slot not retired
        tail = Signal(tag_bits + 1)  # next ring slot to issue
        alloc_pos = Signal(pos_bits + 1)  # buffer byte position of the next request
        out_pos = Signal(pos_bits + 1)  # next beat to read out (frees the space behind it)
        done_pos = Signal(pos_bits + 1)  # every byte before this is in the buffer
        # A tag is in use while outstanding or reserved; the lowest free one goes out next.
        tag_free, new_tag = lowest_set(m, ~(active | stale), "free_tag")

        # ---- Issue: cut the command into requests, one per cycle -----------------------------
        mrrs = Signal(range(MAX_REQUEST + 1))
        with m.Switch(self.max_read_request):
            for value in range(6):
                with m.Case(value):
                    m.d.comb += mrrs.eq(128 << value)
            with m.Default():
                m.d.comb += mrrs.eq(MAX_REQUEST)
        busy = Signal()  # a command is being cut
        addr = Signal(64)
        left = Signal.like(self.cmd.payload.length)
        to_boundary = Signal(range(MAX_REQUEST + 1))
        last_req = Signal()
        req_len = Signal(range(MAX_REQUEST + 1))
        m.d.comb += [
            to_boundary.eq(mrrs - (addr[:12] & (mrrs - 1))),
            last_req.eq(left <= to_boundary),
            req_len.eq(Mux(last_req, left, to_boundary)),
        ]
        req_end = Signal(pos_bits + 1)
        rounded_end = Signal(pos_bits + 1)
        m.d.comb += [
            req_end.eq(alloc_pos + req_len),
            rounded_end.eq(Cat(Const(0, lane_bits), (req_end + lanes - 1)[lane_bits:])),
        ]
        slot_end = Mux(last_req, rounded_end, req_end)  # a command starts on a beat
        space_ok = (slot_end - out_pos)[:pos_bits + 1] <= size
        ring_room = (tail - head)[:tag_bits + 1] != tags
        issue = Signal()
        m.d.comb += [
            issue.eq(busy & tag_free & ring_room & space_ok &
                     (~self.rq.valid | self.rq.ready)),
        ]
        dwords = Signal(11)
        last_lane = Signal(2)
        first_be, last_be = Signal(4), Signal(4)
        m.d.comb += [
            dwords.eq((addr[:2] + req_len + 3)[2:]),
            last_lane.eq(addr[:2] + req_len - 1),
            first_be.eq((Const(0xF, 4) << addr[:2])[:4]),
            last_be.eq(Const(0xF, 4) >> ~last_lane),
        ]
        rq_desc = self.rq.payload.descriptor
        m.d.comb += [self.rq.payload.keep.eq(0), self.rq.payload.last.eq(1)]
        with m.If(issue):
            m.d.sync += [
                self.rq.valid.eq(1),
                rq_desc.request_type.eq(RequestType.MEM_READ),
                rq_desc.address.eq(addr[2:]),
                rq_desc.dword_count.eq(dwords),
                rq_desc.tag.eq(new_tag),
            ]
            with m.If(dwords == 1):
                m.d.sync += [self.rq.payload.side.first_be.eq(first_be & last_be),
                             self.rq.payload.side.last_be.eq(0)]
            with m.Else():
                m.d.sync += [self.rq.payload.side.first_be.eq(first_be),
                             self.rq.payload.side.last_be.eq(last_be)]
            m.d.comb += issued.eq(_one_hot(new_tag, tags))
            m.d.sync += [
                tail.eq(tail + 1),
                alloc_pos.eq(slot_end),
                addr.eq(addr + req_len),
                left.eq(left - req_len),
            ]
            with m.If(last_req):
                m.d.sync += busy.eq(0)
        with m.Elif(self.rq.ready):
            m.d.sync += self.rq.valid.eq(0)
        m.d.comb += [
            info_wr.addr.eq(new_tag), info_wr.en.eq(issue),
            info_wr.data.slot.eq(tail[:tag_bits]), info_wr.data.base.eq(alloc_pos[:pos_bits]),
            info_wr.data.length.eq(req_len), info_wr.data.addr_lo.eq(addr[:12]),
            stamp_wr.addr.eq(new_tag), stamp_wr.en.eq(issue), stamp_wr.data.eq(now),
            ring_wr.addr.eq(tail[:tag_bits]), ring_wr.en.eq(issue),
            ring_wr.data.end.eq(slot_end), ring_wr.data.last.eq(last_req),
        ]

        command = self.cmd.payload
        bad_length = (command.length == 0) | (command.length > MAX_TRANSFER)
        outq_in = data.View(out_cmd, outq.w_data)
        m.d.comb += [
            self.cmd.ready.eq((~busy | (issue & last_req)) & outq.w_rdy),
            outq.w_en.eq(self.cmd.valid & self.cmd.ready),
            outq_in.length.eq(command.length), outq_in.id.eq(command.id),
            outq_in.bad.eq(bad_length),
        ]
        with m.If(self.cmd.valid & self.cmd.ready & ~bad_length):
            m.d.sync += [busy.eq(1), addr.eq(command.address), left.eq(command.length)]

        # ---- Completions: RC beat -> register (tag lookup) -> buffer write -------------------
        rc = self.rc
        in_tlp = Signal()  # the next rc beat continues a TLP
        m.d.comb += rc.ready.eq(fillq.level <= _FILL_DEPTH - 2)
        take = rc.valid & rc.ready
        r0_valid, r0_first, r0_last = Signal(), Signal(), Signal()
        r0_data = Signal(self.width)
        cpl = Signal(RequesterCompletion)  # descriptor of the completion being written
        m.d.sync += r0_valid.eq(take)
        with m.If(take):
            m.d.sync += [r0_data.eq(rc.payload.data), r0_last.eq(rc.payload.last),
                         r0_first.eq(~in_tlp), in_tlp.eq(~rc.payload.last)]
        with m.If(take & ~in_tlp):
            m.d.sync += cpl.eq(rc.payload.descriptor)
        incoming = rc.payload.descriptor
        m.d.comb += [info_rc.addr.eq(incoming.tag), info_rc.en.eq(take & ~in_tlp),
                     prog_rc.addr.eq(incoming.tag), prog_rc.en.eq(take & ~in_tlp)]

        info = info_rc.data
        ctag = cpl.tag
        is_fresh = fresh.bit_select(ctag, 1)
        prior = Signal(DmaError)  # first error of the request so far
        owed = Signal(range(MAX_REQUEST + 1))  # bytes the request still owes
        m.d.comb += [
            prior.eq(Mux(is_fresh, DmaError.OK, prog_rc.data.error)),
            owed.eq(Mux(is_fresh, info.length, prog_rc.data.owed)),
        ]
        count = cpl.byte_count
        offset = Signal(range(MAX_REQUEST + 1))  # request bytes before this completion
        start_lo = Signal(12)
        align = Signal(2)
        payload_bytes = Signal(signed(14))  # payload bytes from the first valid one
        m.d.comb += [
            offset.eq(info.length - count),
            start_lo.eq(info.addr_lo + offset),
            align.eq(start_lo[:2]),
            payload_bytes.eq(Cat(Const(0, 2), cpl.dword_count, Const(0, 1)).as_signed() - align),
        ]
        count_final = payload_bytes >= count
        nbytes = Signal(range(MAX_REQUEST + 1))
        m.d.comb += nbytes.eq(Mux(count_final, count, payload_bytes))
        code = cpl.error_code
        status_bad = cpl.status != CompletionStatus.SUCCESSFUL
        unexpected = Signal()
        in_order = Signal()  # byte count and address continue where the request stands
        this_error = Signal(DmaError)
        m.d.comb += [
            unexpected.eq(~active.bit_select(ctag, 1) | (ctag >= tags) |
                          (code == CompletionError.INVALID_TAG)),
            in_order.eq((count == owed) & (count != 0) & (payload_bytes > 0) &
                        (cpl.lower_address[:7] == start_lo[:7])),
        ]
        with m.If(code == CompletionError.TIMEOUT):
            m.d.comb += this_error.eq(DmaError.TIMEOUT)
        with m.Elif(status_bad | cpl.poisoned | (code == CompletionError.POISONED) |
                    (code == CompletionError.BAD_STATUS) | (code == CompletionError.MISMATCH) |
                    (code == CompletionError.FUNCTION_RESET)):
            m.d.comb += this_error.eq(DmaError.COMPLETION)
        with m.Elif((code != CompletionError.NORMAL) | ~in_order):
            m.d.comb += this_error.eq(DmaError.MALFORMED)
        with m.Else():
            m.d.comb += this_error.eq(DmaError.OK)
        final = Signal()
        good = Signal()  # the payload goes into the buffer
        final_error = Signal(DmaError)
        m.d.comb += [
            final.eq(cpl.request_completed | status_bad | (code == CompletionError.TIMEOUT) |
                     (in_order & count_final)),
            good.eq(~unexpected & (this_error == DmaError.OK) & (prior == DmaError.OK)),
            final_error.eq(Mux(prior != DmaError.OK, prior, this_error)),
        ]
        first_beat = r0_valid & r0_first
        rc_free = Signal()
        rc_fill = Signal()
        ip_timeout = Signal()  # the hard IP reports a completion timeout for the request
        m.d.comb += ip_timeout.eq(first_beat & ~unexpected & final &
                                  (code == CompletionError.TIMEOUT))
        with m.If(first_beat):
            with m.If(unexpected):
                m.d.sync += self.unexpected_completions.eq(self.unexpected_completions + 1)
            with m.Elif(final):
                m.d.comb += [rc_free.eq(1), rc_fill.eq(final_error != DmaError.OK)]
                m.d.comb += finished.eq(_one_hot(ctag, tags))
            with m.Else():
                m.d.comb += [
                    prog_wr.en.eq(1), prog_wr.addr.eq(ctag),
                    prog_wr.data.error.eq(Mux(prior == DmaError.OK, this_error, prior)),
                    prog_wr.data.owed.eq(Mux(in_order, count - nbytes, owed)),
                ]
                m.d.comb += continued.eq(_one_hot(ctag, tags))

        # Where this completion's bytes go: payload byte q (q = 0 is DWORD 0 of the first beat)
        # holds host byte (start & ~3) + q, which belongs at buffer byte base + offset - align + q.
        ctx_pos = Signal(pos_bits)
        ctx_rem = Signal(signed(15))  # end of the valid bytes, relative to this beat's lane 0
        ctx_mark = Signal()
        ctx_slot = Signal(tag_bits)
        cur_tag = Signal(8)
        tlp_pos = Signal(pos_bits)
        tlp_end = Signal(signed(15))
        mark_now = ~unexpected & final & (final_error == DmaError.OK)
        m.d.comb += [
            tlp_pos.eq(info.base + offset - align),
            tlp_end.eq(Mux(good, align + nbytes, 0)),
        ]
        seg_pos = Mux(r0_first, tlp_pos, ctx_pos)
        seg_rem = Mux(r0_first, tlp_end, ctx_rem)
        seg_slot = Mux(r0_first, info.slot, ctx_slot)
        with m.If(r0_valid):
            m.d.sync += [ctx_pos.eq(seg_pos + lanes), ctx_rem.eq(seg_rem - lanes)]
        with m.If(first_beat):
            m.d.sync += [ctx_mark.eq(mark_now), ctx_slot.eq(info.slot), cur_tag.eq(ctag)]

        # ---- Zero-filling failed requests ----------------------------------------------------
        fill_in = data.View(fill_job, fillq.w_data)
        fill_out = data.View(fill_job, fillq.r_data)
        f_busy = Signal()
        f_pos = Signal(pos_bits)
        f_rem = Signal(range(MAX_REQUEST + 1))
        f_slot = Signal(tag_bits)
        f_error = Signal(DmaError)
        with m.If(~f_busy & fillq.r_rdy):
            m.d.comb += fillq.r_en.eq(1)
            m.d.sync += [f_busy.eq(1), f_pos.eq(fill_out.base), f_rem.eq(fill_out.length),
                         f_slot.eq(fill_out.slot), f_error.eq(fill_out.error)]
        f_emit = f_busy & ~r0_valid
        f_last = f_rem <= lanes
        with m.If(f_emit):
            m.d.sync += [f_pos.eq(f_pos + lanes), f_rem.eq(f_rem - lanes)]
            with m.If(f_last):
                m.d.sync += f_busy.eq(0)

        # Buffer writes: RC beats first, zero-fill in the cycles without one.
        w = buf.write.payload
        m.d.sync += buf.write.valid.eq(r0_valid | f_emit)
        with m.If(r0_valid):
            m.d.sync += [
                w.pos.eq(seg_pos), w.lo.eq(Mux(r0_first, align, 0)),
                w.hi.eq(Mux(seg_rem <= 0, 0, Mux(seg_rem >= lanes, lanes, seg_rem))),
                w.data.eq(r0_data),
                w.marked.eq(r0_last & Mux(r0_first, mark_now, ctx_mark)),
                w.mark.slot.eq(seg_slot), w.mark.error.eq(DmaError.OK),
            ]
        with m.Else():
            m.d.sync += [
                w.pos.eq(f_pos), w.lo.eq(0), w.hi.eq(Mux(f_last, f_rem, lanes)), w.data.eq(0),
                w.marked.eq(f_last), w.mark.slot.eq(f_slot), w.mark.error.eq(f_error),
            ]

        # ---- Completion timeout: scan one tag per cycle --------------------------------------
        scan = Signal(tag_bits)
        scan_tag = Signal(tag_bits)
        m.d.sync += [scan.eq(scan + 1), scan_tag.eq(scan)]
        m.d.comb += [stamp_scan.addr.eq(scan), info_scan.addr.eq(scan)]
        age = Signal(time_bits)
        m.d.comb += age.eq(now - stamp_scan.data)
        busy_tag = Mux(first_beat, ctag, cur_tag)
        conflict = (r0_valid | in_tlp) & (busy_tag == scan_tag)
        time_out = Signal()
        expire = Signal()
        m.d.comb += [
            time_out.eq(active.bit_select(scan_tag, 1) & (age >= timeout) & ~conflict &
                        (fillq.level <= _FILL_DEPTH - 3) & ~rc_fill),
            expire.eq(stale.bit_select(scan_tag, 1) & (age >= Cat(Const(0, 1), timeout)) &
                      ~rc_free),
        ]
        m.d.sync += self.timeouts.eq(self.timeouts + time_out + ip_timeout)
        with m.If(time_out):
            m.d.comb += timed_out.eq(_one_hot(scan_tag, tags))
        with m.If(expire):
            m.d.comb += expired.eq(_one_hot(scan_tag, tags))
        # A tag is released by its last completion or when its reservation ends (never both
        # in one cycle: `expire` yields to `rc_free`).
        m.d.sync += self.outstanding.eq(self.outstanding + issue - (rc_free | expire))
        m.d.comb += fillq.w_en.eq(rc_fill | time_out)
        with m.If(rc_fill):
            m.d.comb += [fill_in.slot.eq(info.slot), fill_in.base.eq(info.base),
                         fill_in.length.eq(info.length), fill_in.error.eq(final_error)]
        with m.Else():
            m.d.comb += [fill_in.slot.eq(info_scan.data.slot),
                         fill_in.base.eq(info_scan.data.base),
                         fill_in.length.eq(info_scan.data.length),
                         fill_in.error.eq(DmaError.TIMEOUT)]

        # ---- Retirement: walk the ring in issue order --------------------------------------
        mark = buf.written.payload
        m.d.comb += [rerr_wr.addr.eq(mark.slot), rerr_wr.data.eq(mark.error),
                     rerr_wr.en.eq(buf.written.valid)]
        with m.If(buf.written.valid):
            m.d.comb += slot_done.eq(_one_hot(mark.slot, tags))
        retire = Signal()
        entry = ring_rd.data
        m.d.comb += [
            ring_rd.addr.eq((head + retire)[:tag_bits]),
            rerr_rd.addr.eq((head + retire)[:tag_bits]),
            retire.eq((head != tail) & done.bit_select(head[:tag_bits], 1) &
                      (~entry.last | errq.w_rdy)),
        ]
        cmd_error = Signal(DmaError)  # first error of the command's requests so far
        slot_error = rerr_rd.data
        first_error = Mux(cmd_error != DmaError.OK, cmd_error, slot_error)
        m.d.comb += errq.w_data.eq(first_error)
        with m.If(retire):
            m.d.comb += slot_retired.eq(_one_hot(head[:tag_bits], tags))
            m.d.sync += [head.eq(head + 1), done_pos.eq(entry.end)]
            with m.If(entry.last):
                m.d.comb += errq.w_en.eq(1)
                m.d.sync += cmd_error.eq(DmaError.OK)
            with m.Else():
                m.d.sync += cmd_error.eq(first_error)

        # Flag updates of this cycle (set, then clear, as each pair never names the same bit).
        m.d.sync += [
            active.eq((active | issued) & ~finished & ~timed_out),
            fresh.eq((fresh | issued) & ~continued),
            stale.eq((stale | timed_out) & ~expired),
            done.eq((done | slot_done) & ~slot_retired),
        ]

        # ---- Output: read beats whose bytes are all in the buffer ---------------------------
        head_cmd = data.View(out_cmd, outq.r_data)
        o_busy = Signal()  # a command is partly read out; otherwise outq's head is next
        o_left = Signal.like(self.cmd.payload.length)
        o_id = Signal(16)
        cur_left = Mux(o_busy, o_left, head_cmd.length)
        cur_id = Mux(o_busy, o_id, head_cmd.id)
        have = o_busy | (outq.r_rdy & ~head_cmd.bad)
        beat_last = cur_left <= lanes
        need = Mux(beat_last, cur_left, lanes)
        ready_bytes = (done_pos - out_pos)[:pos_bits + 1]
        status_room = stq.level <= _STATUS_DEPTH - 2
        ov, olast = Signal(), Signal()
        okeep = Signal(lanes)
        oid = Signal(16)
        advance = ~ov | self.data.ready
        can_read = have & (ready_bytes >= need) & (~beat_last | status_room)
        m.d.comb += [
            buf.read_addr.eq(out_pos[lane_bits:pos_bits]), buf.read_en.eq(advance),
            self.data.valid.eq(ov), self.data.payload.data.eq(buf.read_data),
            self.data.payload.keep.eq(okeep), self.data.payload.last.eq(olast),
        ]
        with m.If(advance):
            m.d.sync += ov.eq(can_read)
            with m.If(can_read):
                m.d.sync += [
                    okeep.eq(Cat(*(need > lane for lane in range(lanes)))),
                    olast.eq(beat_last), oid.eq(cur_id), out_pos.eq(out_pos + lanes),
                    o_busy.eq(~beat_last), o_left.eq(cur_left - lanes), o_id.eq(cur_id),
                ]
                with m.If(~o_busy):
                    m.d.comb += outq.r_en.eq(1)
        bad_now = (~o_busy & outq.r_rdy & head_cmd.bad & ~(ov & olast) & status_room)
        st_in = data.View(DmaStatus, stq.w_data)
        with m.If(ov & self.data.ready & olast):
            m.d.comb += [stq.w_en.eq(1), st_in.id.eq(oid), st_in.error.eq(errq.r_data),
                         errq.r_en.eq(1)]
        with m.Elif(bad_now):
            m.d.comb += [stq.w_en.eq(1), st_in.id.eq(head_cmd.id),
                         st_in.error.eq(DmaError.BAD_LENGTH), outq.r_en.eq(1)]
        m.d.comb += [
            self.status.valid.eq(stq.r_rdy), self.status.payload.eq(stq.r_data),
            stq.r_en.eq(self.status.ready),
        ]
        return m
