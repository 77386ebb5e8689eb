"""The four AXI4-Stream buses of the AMD UltraScale+ PCIe integrated block, and the TLP streams
the DMA engine uses inside.

The hard IP (PG213, "Designing with the Core": Completer Interface, Requester Interface) carries
TLPs as a descriptor followed by payload DWORDs on four streams, each with a ``tuser`` whose
layout depends on the stream and the data width:

====  ==================  ================  =====================  =========================
bus   direction           256 bit tuser     512 bit tuser          what it carries
====  ==================  ================  =====================  =========================
CQ    hard IP -> user     88 (85 on US)     183                    host requests to a BAR
CC    user -> hard IP     33                81                     completions for CQ
RQ    user -> hard IP     62 (60 on US)     137                    DMA requests to the host
RC    hard IP -> user     75                161                    completions for RQ
====  ==================  ================  =====================  =========================

The engine runs the interface in DWORD-aligned mode. On CQ and CC one TLP starts in DWORD 0 of
a beat and no beat holds parts of two TLPs; at 512 bit the ``is_sop``/``is_eop`` fields still
frame every TLP (the hard IP uses them instead of ``tlast``), segment 0 the only one used. The
requester buses, which carry the DMA data, may straddle at 512 bit: RQ through
:class:`~amnic.dma.rq_framer.RequestFramer`, RC through
:class:`~amnic.dma.rc_align.CompletionAligner`; :class:`HardIpTx` and :class:`HardIpRx` serve
the completer side.

Inside the engine every bus is a :func:`TlpStreamSignature`: ``data``, ``keep`` (one bit per
DWORD), ``last`` and a small width-independent ``side`` struct (byte enables of the first and
last DWORD of a request). :class:`HardIpTx` and :class:`HardIpRx` translate between that and
the hard IP's ``tuser`` at either width, so no other block knows the tuser layouts.
"""

import enum as py_enum

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "Bus", "WIDTHS", "user_layout", "side_layout", "TlpBeat", "TlpStreamSignature",
    "HardIpStreamSignature", "HardIpTx", "HardIpRx", "default_straddle",
]

WIDTHS = (256, 512)


def default_straddle(width):
    """Whether the engine uses the straddle option on RQ and RC by default at ``width``: at 512
    bit, where full link throughput needs it (a 256-byte TLP is four and a quarter beats)."""
    return width == 512


class Bus(py_enum.Enum):
    """The four streams of the integrated block, named as in its port names."""

    CQ = "cq"
    CC = "cc"
    RQ = "rq"
    RC = "rc"

    @property
    def to_hard_ip(self):
        """True for the streams the user logic drives (CC, RQ)."""
        return self in (Bus.CC, Bus.RQ)


def _array(width, count):
    return data.ArrayLayout(width, count)


# Field lists from bit 0 up, per PG213 tables "Sideband Signals in m_axis_cq_tuser" etc.
_USER_FIELDS = {
    (Bus.RQ, 256): {
        "first_be": 4, "last_be": 4, "addr_offset": 3, "discontinue": 1, "tph_present": 1,
        "tph_type": 2, "tph_indirect_tag_en": 1, "tph_st_tag": 8, "seq_num": 4, "parity": 32,
        "seq_num_hi": 2,
    },
    (Bus.RQ, 512): {
        "first_be": _array(4, 2), "last_be": _array(4, 2), "addr_offset": _array(2, 2),
        "is_sop": 2, "is_sop_ptr": _array(2, 2), "is_eop": 2, "is_eop_ptr": _array(4, 2),
        "discontinue": 1, "tph_present": 2, "tph_type": 4, "tph_indirect_tag_en": 2,
        "tph_st_tag": 16, "seq_num": _array(6, 2), "parity": 64,
    },
    (Bus.RC, 256): {
        "byte_en": 32, "is_sof": 2, "is_eof": _array(4, 2), "discontinue": 1, "parity": 32,
    },
    (Bus.RC, 512): {
        "byte_en": 64, "is_sop": 4, "is_sop_ptr": _array(2, 4), "is_eop": 4,
        "is_eop_ptr": _array(4, 4), "discontinue": 1, "parity": 64,
    },
    (Bus.CQ, 256): {
        "first_be": 4, "last_be": 4, "byte_en": 32, "sop": 1, "discontinue": 1,
        "tph_present": 1, "tph_type": 2, "tph_st_tag": 8, "parity": 32, "_reserved": 3,
    },
    (Bus.CQ, 512): {
        "first_be": _array(4, 2), "last_be": _array(4, 2), "byte_en": 64, "is_sop": 2,
        "is_sop_ptr": _array(2, 2), "is_eop": 2, "is_eop_ptr": _array(4, 2), "discontinue": 1,
        "tph_present": 2, "tph_type": 4, "tph_st_tag": 16, "parity": 64,
    },
    (Bus.CC, 256): {"discontinue": 1, "parity": 32},
    (Bus.CC, 512): {
        "is_sop": 2, "is_sop_ptr": _array(2, 2), "is_eop": 2, "is_eop_ptr": _array(4, 2),
        "discontinue": 1, "parity": 64,
    },
}


def user_layout(bus, width):
    """The ``tuser`` layout of ``bus`` at ``width`` bits (a :class:`data.StructLayout`)."""
    if width not in WIDTHS:
        raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
    return data.StructLayout(_USER_FIELDS[Bus(bus), width])


def side_layout(bus):
    """The width-independent side information of ``bus`` inside the engine.

    Requests (CQ, RQ) carry the byte enables of their first and last DWORD; completions carry
    nothing but ``discontinue`` (the sender aborts the TLP; the hard IP nullifies it).
    """
    bus = Bus(bus)
    if bus in (Bus.CQ, Bus.RQ):
        return data.StructLayout({"first_be": 4, "last_be": 4, "discontinue": 1})
    return data.StructLayout({"discontinue": 1})


class TlpBeat(data.StructLayout):
    """One beat of a TLP stream inside the engine.

    Parameters
    ----------
    bus : Bus
        Which stream (decides ``side``).
    width : int
        Data width in bits (256 or 512).

    Members
    -------
    data : unsigned(width)
        DWORD 0 in bits 31:0; a TLP's descriptor starts in DWORD 0 of its first beat.
    keep : unsigned(width // 32)
        One bit per valid DWORD; all ones except in the last beat, whose ones are contiguous
        from DWORD 0.
    last : unsigned(1)
        Last beat of the TLP.
    side : side_layout(bus)
        Valid in the first beat.
    """

    def __init__(self, bus, width):
        if width not in WIDTHS:
            raise ValueError(f"PCIe user interface width must be one of {WIDTHS}, not {width}")
        super().__init__({
            "data": width, "keep": width // 32, "last": 1, "side": side_layout(bus),
        })


def TlpStreamSignature(bus, width):
    """Stream signature of a TLP stream inside the engine (see :class:`TlpBeat`)."""
    return stream.Signature(TlpBeat(bus, width))


class HardIpStreamSignature(wiring.Signature):
    """One hard-IP stream from its source's point of view: ``tdata``, ``tkeep``, ``tlast``,
    ``tuser``, ``tvalid`` out and ``tready`` in. The user logic declares it ``Out`` for the
    buses it drives (CC, RQ) and ``In`` for those the hard IP drives (CQ, RC).

    The hard IP's ``tready`` of RC and CQ is 22 bits wide on the real core (one per credit
    class); the model and the engine use bit 0 only, so the port is 1 bit here and a board
    top-level replicates it.
    """

    def __init__(self, bus, width):
        self.bus, self.width = Bus(bus), width
        super().__init__({
            "tdata": Out(width), "tkeep": Out(width // 32), "tlast": Out(1),
            "tuser": Out(user_layout(bus, width)), "tvalid": Out(1), "tready": In(1),
        })

    def __eq__(self, other):
        return (isinstance(other, HardIpStreamSignature) and
                (self.bus, self.width) == (other.bus, other.width))

    def __repr__(self):
        return f"HardIpStreamSignature({self.bus}, {self.width})"


class HardIpTx(wiring.Component):
    """Drive one of the hard IP's input streams (CC or RQ) from an engine TLP stream.

    Combinational except for one flip-flop that remembers whether the next beat starts a TLP
    (for ``is_sop`` at 512 bit). Parity is not generated (the hard IP's parity checking must be
    off, its default).

    Parameters
    ----------
    bus : Bus
        ``Bus.CC`` or ``Bus.RQ``.
    width : int
        256 or 512.

    Attributes
    ----------
    i : In(TlpStreamSignature(bus, width))
    o : Out(HardIpStreamSignature(bus, width))
    """

    def __init__(self, bus, width):
        bus = Bus(bus)
        if not bus.to_hard_ip:
            raise ValueError(f"{bus} is driven by the hard IP")
        self.bus, self.width = bus, width
        super().__init__({
            "i": In(TlpStreamSignature(bus, width)),
            "o": Out(HardIpStreamSignature(bus, width)),
        })

    def elaborate(self, platform):
        m = Module()
        beat, user = self.i.payload, self.o.tuser
        m.d.comb += [
            self.o.tdata.eq(beat.data),
            self.o.tkeep.eq(beat.keep),
            self.o.tlast.eq(beat.last),
            self.o.tvalid.eq(self.i.valid),
            self.i.ready.eq(self.o.tready),
            user.discontinue.eq(beat.side.discontinue),
        ]
        first = Signal(init=1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += first.eq(beat.last)
        if self.bus == Bus.RQ:
            if self.width == 256:
                m.d.comb += [user.first_be.eq(beat.side.first_be),
                             user.last_be.eq(beat.side.last_be)]
            else:
                m.d.comb += [user.first_be[0].eq(beat.side.first_be),
                             user.last_be[0].eq(beat.side.last_be)]
        if self.width == 512:
            last_dword = Signal(4)
            for bit in range(16):
                with m.If(beat.keep[bit]):
                    m.d.comb += last_dword.eq(bit)
            m.d.comb += [
                user.is_sop[0].eq(first),
                user.is_eop[0].eq(beat.last),
                user.is_eop_ptr[0].eq(last_dword),
            ]
        return m


class HardIpRx(wiring.Component):
    """Take one of the hard IP's output streams (CQ or RC) into an engine TLP stream.

    Combinational. At 512 bit the TLP end is taken from ``is_eop[0]`` (the hard IP's ``tlast``
    is not asserted in straddle-capable configurations) and ``keep`` is rebuilt from the end
    pointer.

    Parameters
    ----------
    bus : Bus
        ``Bus.CQ`` or ``Bus.RC``.
    width : int
        256 or 512.

    Attributes
    ----------
    i : In(HardIpStreamSignature(bus, width))
    o : Out(TlpStreamSignature(bus, width))
    """

    def __init__(self, bus, width):
        bus = Bus(bus)
        if bus.to_hard_ip:
            raise ValueError(f"{bus} is driven by the user logic")
        self.bus, self.width = bus, width
        super().__init__({
            "i": In(HardIpStreamSignature(bus, width)),
            "o": Out(TlpStreamSignature(bus, width)),
        })

    def elaborate(self, platform):
        m = Module()
        beat, user = self.o.payload, self.i.tuser
        m.d.comb += [
            beat.data.eq(self.i.tdata),
            self.o.valid.eq(self.i.tvalid),
            self.i.tready.eq(self.o.ready),
            beat.side.discontinue.eq(user.discontinue),
        ]
        if self.bus == Bus.CQ:
            if self.width == 256:
                m.d.comb += [beat.side.first_be.eq(user.first_be),
                             beat.side.last_be.eq(user.last_be)]
            else:
                m.d.comb += [beat.side.first_be.eq(user.first_be[0]),
                             beat.side.last_be.eq(user.last_be[0])]
        if self.width == 256:
            m.d.comb += [beat.keep.eq(self.i.tkeep), beat.last.eq(self.i.tlast)]
        else:
            with m.If(user.is_eop[0]):
                m.d.comb += [
                    beat.last.eq(1),
                    beat.keep.eq((Const(2, 17) << user.is_eop_ptr[0]) - 1),
                ]
            with m.Else():
                m.d.comb += beat.keep.eq(~0)
        return m
