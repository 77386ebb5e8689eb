"""DMA requests onto the hard IP's requester-request (RQ) bus, straddled at 512 bit.

The engines hand their memory requests over as a :func:`RequestStreamSignature` stream: the
:class:`~amnic.dma.descriptors.RequesterRequest` descriptor beside the payload, not in front of
it. :class:`RequestFramer` puts each descriptor in front of its payload as the hard IP wants it
(PG213, "Requester Interface", DWORD-aligned mode: descriptor in DWORDs 0-3, payload from
DWORD 4) and, with the straddle option on (PG213, "Straddle Option on RQ Interface", 512 bit
only), starts a TLP in DWORD 8 of the beat in which the previous TLP ended in DWORDs 0-7.

Why the descriptor travels beside the payload: a 256-byte memory write is 4 + 64 DWORDs, four
and a quarter 64-byte beats. Framed one TLP per beat it takes five beats, 80 % of the 512-bit
interface and under 90 % of a Gen3 x16 link. Straddled it takes four and a half, which keeps
the link busy; but only a stage that sees the payload beats (four per TLP) can produce four and
a half output beats per TLP: a stage after the framing would already be bound to five.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axis import WIDTHS, Bus, HardIpStreamSignature, side_layout
from .descriptors import RequesterRequest

__all__ = ["RequestBeat", "RequestStreamSignature", "RequestFramer", "DESCRIPTOR_DWORDS"]

#: DWORDs of the RQ descriptor (PG213 "Requester Request Descriptor Format").
DESCRIPTOR_DWORDS = 4


class RequestBeat(data.StructLayout):
    """One beat of a request stream: a memory request with its payload.

    Members
    -------
    descriptor : RequesterRequest
        Valid on the request's first beat.
    data : unsigned(width)
        Payload DWORDs, the first one (the host DWORD holding the first byte) in DWORD 0 of the
        first beat.
    keep : unsigned(width // 32)
        One bit per payload DWORD, contiguous from DWORD 0; all ones except on the last beat.
        A request without payload (a read) is one beat with ``keep`` 0.
    last : unsigned(1)
        Last beat of the request.
    side : side_layout(Bus.RQ)
        Byte enables (first beat); ``discontinue`` on any beat ends the request there and the
        hard IP nullifies it.
    """

    def __init__(self, width):
        if width not in WIDTHS:
            raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
        super().__init__({
            "descriptor": RequesterRequest, "data": width, "keep": width // 32, "last": 1,
            "side": side_layout(Bus.RQ),
        })


def RequestStreamSignature(width):
    """Stream signature of a request stream (see :class:`RequestBeat`)."""
    return stream.Signature(RequestBeat(width))


class RequestFramer(wiring.Component):
    """Frame requests as TLPs on the hard IP's RQ bus.

    Contract
    --------
    * Every request on ``i`` leaves on ``o`` as one TLP, in order: its descriptor in four
      DWORDs, then its payload DWORDs, with ``first_be``/``last_be``/``discontinue`` from
      ``side``. Without straddling every TLP starts in DWORD 0 of a beat. With straddling a TLP
      may also start in DWORD 8 when the previous TLP ended in DWORDs 0-7 of that beat; a TLP
      ending there is held one cycle for a following TLP to share its beat (sent alone if none
      is waiting). A TLP ended with ``discontinue`` never shares a beat.
    * ``is_sop``/``is_sop_ptr``, ``is_eop``/``is_eop_ptr`` (512 bit) count TLPs in beat order;
      ``tlast`` marks beats whose last used DWORD ends a TLP (the only framing at 256 bit);
      ``tkeep`` marks the DWORDs used. Parity, TPH and sequence numbers are 0.
    * Throughput: one input beat per cycle while ``o.tready`` is high, plus one cycle for the
      part of a TLP that does not fit behind its last input beat (the descriptor takes four
      DWORDs). So an aligned 256-byte write takes 9 cycles at 256 bit and 4.5 straddled at
      512 bit (5 unstraddled); back-to-back reads take one cycle each.
    * ``o`` is registered (one cycle from ``i``), and holds its beat until the hard IP takes it.

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool
        Use the hard IP's RQ straddle option (512 bit only).

    Attributes
    ----------
    i : In(RequestStreamSignature(width))
    o : Out(HardIpStreamSignature(Bus.RQ, width))
    """

    def __init__(self, width, *, straddle=False):
        if width not in WIDTHS:
            raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
        if straddle and width != 512:
            raise ValueError("RQ straddling needs the 512-bit interface")
        self.width, self.straddle = width, straddle
        super().__init__({
            "i": In(RequestStreamSignature(width)),
            "o": Out(HardIpStreamSignature(Bus.RQ, width)),
        })

    def elaborate(self, platform):
        m = Module()
        width = self.width
        dwords = width // 32
        half = dwords // 2
        count_shape = range(dwords + 1)
        beat = self.i.payload

        def keep_mask(n):
            """Mask of the ``n`` lowest DWORDs, a bit per DWORD (``n``: 0..dwords)."""
            return (Const(1, dwords + 1) << n) - 1

        def dword_mask(n):
            """Mask of the ``n`` lowest DWORDs, 32 bits per DWORD."""
            return (Const(1, width + 1) << (n * 32)) - 1

        # Payload DWORDs in the input beat (keep is contiguous from DWORD 0).
        n_in = Signal(count_shape)
        for k in range(dwords):
            with m.If(beat.keep[k]):
                m.d.comb += n_in.eq(k + 1)
        starting = Signal(init=1)  # the next input beat starts a request
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += starting.eq(beat.last)

        # DWORDs waiting for DWORD 0 onwards of the next output beat: the rest of the TLP in
        # progress (`pend_n` is then its shift, 4 or 12), or a TLP that ended there (`pend_end`,
        # possibly a whole TLP held for straddling, with its start: `pend_sop`).
        pend = Signal(width)
        pend_n = Signal(count_shape)
        pend_end = Signal()
        pend_sop = Signal()
        pend_disc = Signal()
        pend_be = Signal(8)  # first_be, last_be of a held TLP that starts in `pend`

        # The output register.
        o_valid = Signal()
        load = ~o_valid | self.o.tready
        out = Signal(width)
        out_keep = Signal(dwords)
        sops = Signal(data.ArrayLayout(range(dwords), 2))  # DWORDs where TLPs start
        sop_count = Signal(range(3))
        eops = Signal(data.ArrayLayout(range(dwords), 2))  # DWORDs where TLPs end
        eop_count = Signal(range(3))
        bes = Signal(data.ArrayLayout(8, 2))
        disc = Signal()
        fill = Signal()  # this cycle's beat goes into the output register
        take = Signal()  # the input beat is consumed

        # Placement of the input beat at DWORD `shift` (4: a TLP starting in DWORD 0 or a TLP
        # in progress that did; half + 4: one that started in DWORD 8), behind `prefix`.
        shift = Signal(range(dwords + 1))
        prefix = Signal(width)
        prefix_keep = Signal(dwords)
        placed = Signal(width)
        rest = Signal(width)  # input DWORDs beyond the beat, moved down to DWORD 0
        shifts = (DESCRIPTOR_DWORDS, half + DESCRIPTOR_DWORDS) if self.straddle else \
            (DESCRIPTOR_DWORDS,)
        for s in shifts:
            with m.If(shift == s):
                m.d.comb += [placed.eq(beat.data << (32 * s)),
                             rest.eq(beat.data >> (32 * (dwords - s)))]
        total = Signal(range(2 * dwords + 1))  # DWORDs of the TLP from DWORD 0 of this beat
        m.d.comb += total.eq(shift + n_in)
        room = Signal(count_shape)  # input DWORDs that fit behind the shift
        m.d.comb += room.eq(dwords - shift)
        fits = total <= dwords  # the TLP ends in this beat
        held_fits = total <= half  # ... in its lower half
        desc = beat.descriptor.as_value()
        be = Cat(beat.side.first_be, beat.side.last_be)

        new_pend = Signal(width)
        new_pend_n = Signal(count_shape)
        new_pend_end = Signal()
        hold = Signal()  # keep the assembled beat as `pend` instead of sending it

        out_next = Signal(width)
        keep_next = Signal(dwords)
        # Up to one TLP end and one TLP start carried over from `pend`, then one each new.
        pend_eop_here = Signal()
        pend_sop_here = Signal()
        sop_add = Signal()
        sop_at = Signal(range(dwords))
        eop_add = Signal()
        eop_at = Signal(range(dwords))
        be_new = Signal(8)
        disc_next = Signal()

        def place(start_at, is_start):
            """The beat from ``prefix`` and the input placed at ``shift``; the TLP's start (in
            DWORD ``start_at``, if ``is_start``) and end, and what is left for ``pend``."""
            m.d.comb += [
                out_next.eq(prefix | placed),
                keep_next.eq(prefix_keep | (keep_mask(Mux(fits, n_in, room)) << shift)),
                take.eq(load | hold),
                new_pend.eq(rest),
                new_pend_n.eq(Mux(fits, 0, total - dwords)),
                new_pend_end.eq(beat.last & ~fits),
            ]
            if is_start:
                m.d.comb += [sop_add.eq(1), sop_at.eq(start_at), be_new.eq(be)]
            with m.If(beat.last & fits):
                m.d.comb += [eop_add.eq(1), eop_at.eq(total - 1)]

        can_pair = Signal()
        if self.straddle:
            m.d.comb += can_pair.eq(pend_end & ~pend_disc & (pend_n <= half) & self.i.valid &
                                    starting & ~beat.side.discontinue)
        with m.If(pend_end & ~can_pair):
            # Send the finished TLP alone.
            m.d.comb += [out_next.eq(pend), keep_next.eq(keep_mask(pend_n)), fill.eq(load),
                         pend_eop_here.eq(1), pend_sop_here.eq(pend_sop),
                         disc_next.eq(pend_disc)]
            with m.If(load):
                m.d.sync += [pend_end.eq(0), pend_n.eq(0), pend_sop.eq(0)]
        with m.Elif(self.i.valid):
            with m.If(can_pair):
                # The finished TLP in the lower half, the new one from DWORD 8.
                m.d.comb += [shift.eq(half + DESCRIPTOR_DWORDS),
                             prefix.eq((pend & dword_mask(pend_n)) | (desc << (32 * half))),
                             prefix_keep.eq(keep_mask(pend_n) | (0xF << half)),
                             pend_eop_here.eq(1), pend_sop_here.eq(pend_sop)]
                place(half, True)
            with m.Elif(starting):
                m.d.comb += [shift.eq(DESCRIPTOR_DWORDS), prefix.eq(desc), prefix_keep.eq(0xF)]
                place(0, True)
            with m.Else():
                # A TLP in progress keeps its shift: what is pending is its last `shift`
                # DWORDs.
                m.d.comb += [shift.eq(pend_n), prefix.eq(pend),
                             prefix_keep.eq(keep_mask(pend_n))]
                place(0, False)
            if self.straddle:
                # (Never after pairing: such a TLP starts in DWORD 8 and ends above it.)
                m.d.comb += hold.eq(beat.last & held_fits & ~beat.side.discontinue)
            m.d.comb += [fill.eq(load & ~hold),
                         disc_next.eq(beat.side.discontinue)]
            with m.If(take):
                with m.If(hold):
                    # The whole TLP sits in the lower half: wait for a TLP to straddle it.
                    m.d.sync += [pend.eq(out_next), pend_n.eq(total), pend_end.eq(1),
                                 pend_sop.eq(starting), pend_disc.eq(0), pend_be.eq(be)]
                with m.Else():
                    m.d.sync += [pend.eq(new_pend), pend_n.eq(new_pend_n),
                                 pend_end.eq(new_pend_end), pend_sop.eq(0),
                                 pend_disc.eq(beat.side.discontinue)]
        m.d.comb += self.i.ready.eq(take)

        # Framing of the beat going out: TLP starts and ends in DWORD order.
        with m.If(fill):
            m.d.sync += [out.eq(out_next), out_keep.eq(keep_next), disc.eq(disc_next)]
            # Starts: a held TLP's (DWORD 0) comes before a new one's.
            with m.If(pend_sop_here):
                m.d.sync += [sops[0].eq(0), bes[0].eq(pend_be), sops[1].eq(sop_at),
                             bes[1].eq(be_new), sop_count.eq(1 + sop_add)]
            with m.Else():
                m.d.sync += [sops[0].eq(sop_at), bes[0].eq(be_new), sops[1].eq(0),
                             bes[1].eq(0), sop_count.eq(sop_add)]
            # Ends: the carried-over TLP's (below DWORD 8) before the new one's.
            with m.If(pend_eop_here):
                m.d.sync += [eops[0].eq(pend_n - 1), eops[1].eq(eop_at),
                             eop_count.eq(1 + eop_add)]
            with m.Else():
                m.d.sync += [eops[0].eq(eop_at), eops[1].eq(0), eop_count.eq(eop_add)]
        with m.If(load):
            m.d.sync += o_valid.eq(fill)

        user = self.o.tuser
        last_used = Signal(range(dwords))
        for k in range(dwords):
            with m.If(out_keep[k]):
                m.d.comb += last_used.eq(k)
        ends_last = ((eop_count >= 1) & (eops[0] == last_used)) | \
            ((eop_count == 2) & (eops[1] == last_used))
        m.d.comb += [
            self.o.tvalid.eq(o_valid),
            self.o.tdata.eq(out),
            self.o.tkeep.eq(out_keep),
            self.o.tlast.eq(ends_last),
            user.discontinue.eq(disc),
        ]
        if width == 256:
            m.d.comb += [user.first_be.eq(bes[0][:4]), user.last_be.eq(bes[0][4:])]
        else:
            m.d.comb += [
                user.is_sop.eq(Cat(sop_count >= 1, sop_count == 2)),
                user.is_sop_ptr[0].eq(sops[0] >> 2),
                user.is_sop_ptr[1].eq(sops[1] >> 2),
                user.is_eop.eq(Cat(eop_count >= 1, eop_count == 2)),
                user.is_eop_ptr[0].eq(eops[0]),
                user.is_eop_ptr[1].eq(eops[1]),
            ]
            for k in range(2):
                m.d.comb += [user.first_be[k].eq(bes[k][:4]), user.last_be[k].eq(bes[k][4:])]
        return m
