"""Packet streams: the beat layout every amnic core speaks, and blocks that move beats.

A packet travels as a sequence of *beats* on an :mod:`amaranth.lib.stream` interface. Each
beat carries ``data`` (``width`` bits, byte lane 0 in bits 7:0, the first byte on the wire),
``keep`` (one bit per byte lane), ``last`` (set on the final beat of a packet) and ``user``
(sideband bits whose meaning each core documents; bit 0 is "bad packet" wherever a core marks
errors). Only the last beat of a packet may have ``keep`` other than all ones, and its valid
lanes are contiguous from lane 0 — the AXI4-Stream "packed" convention.

Hand-offs follow the ``lib.stream`` rules: a beat moves when ``valid & ready``; ``valid`` never
waits for ``ready``; once asserted, ``valid`` and ``payload`` hold until the beat moves.
"""

from amaranth.hdl import Const, Mux
from amaranth.lib import data, stream

__all__ = [
    "PacketLayout", "PacketSignature", "keep_bytes",
    # re-exported blocks (imported at the end of this module: they use PacketLayout)
    "PacketDropEvent", "PacketFifo", "AsyncPacketFifo",
    "StreamSkidBuffer", "SkidBuffer",
    "WidthUpConverter", "WidthDownConverter",
    "PacketArbiter", "PacketMux", "PacketDemux",
    "AxiResp", "AxiLiteSignature", "RegisterBusSignature", "AxiLiteToRegisterBus",
    "Axi4Signature", "AxiBurst",
]


class PacketLayout(data.StructLayout):
    """The beat of a packet stream.

    Parameters
    ----------
    width : int
        Data width in bits; a multiple of 8.
    user_width : int
        Width of the ``user`` sideband (0 for none).
    """

    def __init__(self, width, user_width=1):
        if width <= 0 or width % 8:
            raise ValueError(f"packet data width must be a positive multiple of 8, not {width}")
        if user_width < 0:
            raise ValueError(f"user width must be non-negative, not {user_width}")
        self.width = width
        self.user_width = user_width
        super().__init__({
            "data": width,
            "keep": width // 8,
            "last": 1,
            "user": user_width,
        })

    def __repr__(self):
        return f"PacketLayout({self.width}, user_width={self.user_width})"


def PacketSignature(width, user_width=1):
    """A :class:`amaranth.lib.stream.Signature` carrying :class:`PacketLayout` beats."""
    return stream.Signature(PacketLayout(width, user_width))


def keep_bytes(count, lanes):
    """``keep`` of a packed beat of ``lanes`` byte lanes holding ``count`` bytes (HDL; all
    lanes when ``count >= lanes``)."""
    return Mux(count >= lanes, (1 << lanes) - 1,
               ((Const(1, lanes + 1) << count[:lanes.bit_length()]) - 1)[:lanes])


# Blocks built on the layout above; imported last because they import PacketLayout from here.
from .arbiter import PacketArbiter  # noqa: E402
from .axi4 import Axi4Signature, AxiBurst  # noqa: E402
from .axil import AxiLiteSignature, AxiLiteToRegisterBus, AxiResp, RegisterBusSignature  # noqa: E402
from .fifo import AsyncPacketFifo, PacketDropEvent, PacketFifo  # noqa: E402
from .mux import PacketDemux, PacketMux  # noqa: E402
from .skid import SkidBuffer, StreamSkidBuffer  # noqa: E402
from .width import WidthDownConverter, WidthUpConverter  # noqa: E402
