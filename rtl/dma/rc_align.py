"""Requester completions of the UltraScale+ hard IP as a payload-aligned completion stream.

On its RC bus the hard IP (PG213, "Requester Completion Interface") sends each completion as a
3-DWORD :class:`~amnic.dma.descriptors.RequesterCompletion` followed by the payload DWORDs
(DWORD-aligned mode). Without the straddle option a beat holds at most one TLP, starting in
DWORD 0. With it (PG213 "Straddle Option on RC Interface", two TLPs per beat) the beat is cut
into two halves and a TLP may also start in the first DWORD of the upper half (DWORD 8 at 512
bit, DWORD 4 at 256 bit) while the one before it ends in the lower half:

* at 512 bit the starts are ``is_sop[1:0]`` with ``is_sop_ptr`` (0 or 2, in 4-DWORD units) and
  the ends ``is_eop[1:0]`` with ``is_eop_ptr`` (the last DWORD), first TLP of the beat first;
  ``tlast`` is not used. Without straddling the same fields frame the single TLP.
* at 256 bit the starts are ``is_sof[1:0]`` (the first start is in DWORD 0 unless a TLP is
  still in progress, then in DWORD 4; a second start is in DWORD 4) and the ends ``is_eof[k]``
  (bit 0 set, bits 3:1 the last DWORD). Without straddling ``tlast`` and ``tkeep`` frame the
  TLP.

A 256-byte completion takes 67 DWORDs: five 512-bit beats without straddling, but only four and
a half with it, so two completions share a beat. :class:`CompletionAligner` turns the bus into a
stream of :class:`CompletionBeat` that carries one completion per beat group with its payload
shifted down to DWORD 0, so that the read engine writes each beat into its reorder buffer
without knowing where the TLP sat on the bus. :class:`amnic.sim.pcie_straddle.RcFramer` is the
reference model of the hard IP's framing (as cocotbext-pcie's ``RcSource`` does it).
"""


from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axis import WIDTHS, Bus, HardIpStreamSignature
from .descriptors import RequesterCompletion

__all__ = [
    "DESCRIPTOR_DWORDS", "CompletionBeat", "CompletionStreamSignature", "CompletionAligner",
]

#: DWORDs of the RC descriptor in front of a completion's payload (DWORD-aligned mode).
DESCRIPTOR_DWORDS = 3


def _check_width(width):
    if width not in WIDTHS:
        raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")


class CompletionBeat(data.StructLayout):
    """One beat of a payload-aligned completion stream.

    A completion with ``d`` payload DWORDs is ``ceil(d / dwords)`` beats (``dwords`` =
    ``width // 32``); a completion without payload is one beat with ``keep`` 0.

    Parameters
    ----------
    width : int
        Data width in bits (256 or 512).

    Members
    -------
    descriptor : RequesterCompletion
        The completion's descriptor, the same on every beat of the completion.
    data : unsigned(width)
        Payload DWORDs ``k * dwords`` and up of beat ``k``: the completion's first payload
        DWORD (the one holding byte ``lower_address``) is in bits 31:0 of its first beat.
    keep : unsigned(width // 32)
        One bit per valid DWORD; all ones except in the last beat, whose ones are contiguous
        from DWORD 0 (none for a completion without payload). DWORDs not kept hold garbage.
    first : unsigned(1)
        First beat of the completion.
    last : unsigned(1)
        Last beat of the completion.
    """

    def __init__(self, width):
        _check_width(width)
        super().__init__({
            "descriptor": RequesterCompletion, "data": width, "keep": width // 32,
            "first": 1, "last": 1,
        })


def CompletionStreamSignature(width):
    """Stream signature of a payload-aligned completion stream (see :class:`CompletionBeat`)."""
    return stream.Signature(CompletionBeat(width))


class CompletionAligner(wiring.Component):
    """Take the hard IP's RC bus into a payload-aligned completion stream.

    Contract
    --------
    * **Input** (``i``): the RC bus in DWORD-aligned mode, framed as described in this module's
      documentation; with ``straddle`` the hard IP's two-TLP straddle option on RC (PG213), at
      either width. A TLP ends on the bus before the next one starts (no interleaving).
      ``byte_en``, ``parity`` and ``discontinue`` of ``tuser`` are ignored, as is ``tkeep``
      except for the end of a TLP at 256 bit without straddling.
    * **Output** (``o``): every completion of the input, in input order, as
      :class:`CompletionBeat` beats: its payload DWORDs in order from DWORD 0 of its first beat,
      ``dwords`` per beat, and its descriptor on every beat. The payload length is the TLP's
      length on the bus minus the 3 descriptor DWORDs (the descriptor's ``dword_count`` is not
      consulted).
    * **Throughput**: one input beat per cycle while ``o`` is ready, except that an input beat
      that completes more than one output beat takes one cycle per output beat. That happens
      only for the tail of a completion that does not fit in the beat it merges into (the
      input beat in which the TLP ends holds more than the DWORDs its descriptor displaced), or
      when a beat holds the ends of two TLPs (at least one of them short); completions whose
      payload is a non-zero multiple of 64 bytes never cause it.
    * **Timing**: ``o`` is registered; ``i.tready`` depends combinationally on ``o.ready``
      through a few gates only (an input beat is held in a register while its output beats
      leave), never on ``i.tvalid`` or the input beat. Latency: the clock edge that takes an
      input beat puts it in that register; the next one loads the output beat it completes.

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool
        Whether the hard IP's straddle option on RC is on (two TLPs per beat).

    Attributes
    ----------
    i : In(HardIpStreamSignature(Bus.RC, width))
    o : Out(CompletionStreamSignature(width))
    """

    def __init__(self, width, *, straddle):
        _check_width(width)
        self.width, self.straddle = width, bool(straddle)
        super().__init__({
            "i": In(HardIpStreamSignature(Bus.RC, width)),
            "o": Out(CompletionStreamSignature(width)),
        })

    def elaborate(self, platform):
        m = Module()
        dwords = self.width // 32
        half = dwords // 2
        p_lo, p_hi = DESCRIPTOR_DWORDS, half + DESCRIPTOR_DWORDS  # payload offset of a TLP
        ptr_bits = (dwords - 1).bit_length()
        user = self.i.tuser

        # ---- Decode the input beat ----------------------------------------------------------
        # A beat holds at most two pieces: piece A from DWORD 0 (a TLP in progress or a new
        # one) and, with straddling, piece B, a TLP starting in the upper half.
        in_tlp = Signal()  # a TLP continues into the next beat
        in_seg1 = Signal()  # ... that started in the upper half (payload offset p_hi)
        in_fresh = Signal()  # ... that started in the last beat (its next output is its first)
        a_new, b_new = Signal(), Signal()
        end1, end2 = Signal(), Signal()  # first and second TLP end in the beat
        ptr1, ptr2 = Signal(ptr_bits), Signal(ptr_bits)  # their last DWORDs
        if self.straddle and self.width == 512:
            sop0_upper = user.is_sop_ptr[0][1]
            m.d.comb += [
                a_new.eq(user.is_sop[0] & ~sop0_upper),
                b_new.eq((user.is_sop[0] & sop0_upper) | user.is_sop[1]),
                end1.eq(user.is_eop[0]), ptr1.eq(user.is_eop_ptr[0]),
                end2.eq(user.is_eop[1]), ptr2.eq(user.is_eop_ptr[1]),
            ]
        elif self.straddle:
            m.d.comb += [
                a_new.eq(~in_tlp & user.is_sof[0]),
                b_new.eq((in_tlp & user.is_sof[0]) | user.is_sof[1]),
                end1.eq(user.is_eof[0][0]), ptr1.eq(user.is_eof[0][1:]),
                end2.eq(user.is_eof[1][0]), ptr2.eq(user.is_eof[1][1:]),
            ]
        else:
            m.d.comb += a_new.eq(~in_tlp)
            if self.width == 512:
                m.d.comb += [end1.eq(user.is_eop[0]), ptr1.eq(user.is_eop_ptr[0])]
            else:
                m.d.comb += end1.eq(self.i.tlast)
                for dword in range(dwords):
                    with m.If(self.i.tkeep[dword]):
                        m.d.comb += ptr1.eq(dword)
        a_here = in_tlp | a_new
        a_end = a_here & end1
        b_end = b_new & Mux(a_here, end2, end1)
        b_ptr = Mux(a_here, ptr2, ptr1)

        # ---- Input register: the beat whose output beats are being sent --------------------
        cur_valid = Signal()
        cur = Signal(self.width)
        c_cont, c_new, c_aend, c_bnew, c_bend = Signal(), Signal(), Signal(), Signal(), Signal()
        c_aptr, c_bptr = Signal(ptr_bits), Signal(ptr_bits)
        c_seg1, c_fresh = Signal(), Signal()
        cur_done = Signal()
        m.d.comb += self.i.tready.eq(~cur_valid | cur_done)
        with m.If(self.i.tready):
            m.d.sync += cur_valid.eq(self.i.tvalid)
        with m.If(self.i.tvalid & self.i.tready):
            m.d.sync += [
                cur.eq(self.i.tdata),
                c_cont.eq(in_tlp), c_new.eq(a_new), c_aend.eq(a_end), c_aptr.eq(ptr1),
                c_bnew.eq(b_new), c_bend.eq(b_end), c_bptr.eq(b_ptr),
                c_seg1.eq(in_seg1), c_fresh.eq(in_fresh),
                in_tlp.eq(Mux(b_new, ~b_end, a_here & ~a_end)),
                in_seg1.eq(b_new | (in_seg1 & ~a_new)),
                in_fresh.eq(a_new | b_new),
            ]

        # ---- Output beats of the held beat, one per cycle -----------------------------------
        # M: the continued TLP's DWORDs from the previous beat, topped up from this one;
        # T: the rest of piece A in this beat (a tail, or a whole TLP starting in DWORD 0);
        # B: piece B when it ends in this beat.
        prev = Signal(self.width)  # the beat before `cur` (its DWORDs p_lo and up are used)
        desc = Signal(RequesterCompletion)  # descriptor of the TLP in progress
        done_m, done_t = Signal(), Signal()  # output beats of `cur` already sent
        cont_lo = Mux(c_seg1, p_hi, p_lo)  # payload offset of the continued TLP
        need_t = c_aend & (c_new | (c_aptr >= cont_lo))
        pend_m = c_cont & ~done_m
        pend_t = need_t & ~done_t
        pend_b = c_bend
        phase_m = pend_m
        phase_t = ~pend_m & pend_t
        phase_b = ~pend_m & ~pend_t & pend_b
        pending = pend_m | pend_t | pend_b
        single = ~((pend_m & pend_t) | (pend_m & pend_b) | (pend_t & pend_b))
        out_free = ~self.o.valid | self.o.ready
        emit = cur_valid & pending & out_free
        m.d.comb += cur_done.eq(cur_valid & (~pending | (out_free & single)))
        with m.If(cur_done):
            m.d.sync += [done_m.eq(0), done_t.eq(0), prev.eq(cur)]
            with m.If(c_bnew & ~c_bend):
                m.d.sync += desc.eq(cur[32 * half:32 * half + 96])
            with m.Elif(c_new & ~c_aend):
                m.d.sync += desc.eq(cur[:96])
        with m.Elif(emit):
            m.d.sync += [done_m.eq(done_m | phase_m), done_t.eq(done_t | phase_t)]

        lo = Mux(phase_m, prev, cur)
        if self.straddle:
            q_hi = Signal()
            m.d.comb += q_hi.eq(phase_b | (c_cont & c_seg1))
            q = Mux(q_hi, p_hi, p_lo)
            shifted = Mux(q_hi, Cat(lo[32 * p_hi:], cur[:32 * p_hi]),
                          Cat(lo[32 * p_lo:], cur[:32 * p_lo]))
        else:
            q = p_lo
            shifted = Cat(lo[32 * p_lo:], cur[:32 * p_lo])
        end_ptr = Mux(phase_b, c_bptr, c_aptr)
        merge_last = c_aend & (c_aptr < cont_lo)  # the continued TLP ends in the M beat
        count = Signal(range(dwords + 1))  # payload DWORDs in the output beat
        with m.If(phase_m):
            m.d.comb += count.eq(Mux(merge_last, dwords - q + c_aptr + 1, dwords))
        with m.Else():
            m.d.comb += count.eq(end_ptr + 1 - q)
        beat = self.o.payload
        with m.If(out_free):
            m.d.sync += self.o.valid.eq(emit)
        with m.If(emit):
            m.d.sync += [
                beat.data.eq(shifted),
                beat.keep.eq(Cat(*(count > dword for dword in range(dwords)))),
                beat.first.eq(Mux(phase_m, c_fresh, Mux(phase_t, c_new, 1))),
                beat.last.eq(~phase_m | merge_last),
            ]
            with m.If(phase_b):
                m.d.sync += beat.descriptor.eq(cur[32 * half:32 * half + 96])
            with m.Elif(phase_t & c_new):
                m.d.sync += beat.descriptor.eq(cur[:96])
            with m.Else():
                m.d.sync += beat.descriptor.eq(desc)
        return m
