"""Streaming packet header parser: packets pass through, one metadata record per packet.

The parser sits in line on a packet stream. It copies each beat to its output through one
register stage and, as the beats leave, a capture stage (:mod:`amnic.net.capture`) keeps the
first bytes of the packet, its length and the ones'-complement sum of the rest. At the last beat
the captured window enters a fixed-length pipeline that decodes one layer per stage
(:mod:`amnic.net.stages`) and writes a :class:`~amnic.net.metadata.ParseResult` into a small
FIFO, from which ``meta`` is served.
"""

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketSignature
from . import stages
from .capture import HeaderCapture, window_length
from .metadata import ParseResult
from .window import fold16

__all__ = ["PacketParser"]


class _Stage(Elaboratable):
    """One register stage of the parse pipeline: copies its record and applies ``step``.

    The record is held while bubbles pass (clock enables; also keeps the simulation quiet).
    Window bytes below ``drop_below`` are cleared: no later stage reads them.
    """

    def __init__(self, layout, step, drop_below=0):
        self.i = Signal(layout)
        self.o = Signal(layout)
        self._step = step
        self._drop = drop_below

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.valid.eq(self.i.valid)
        with m.If(self.i.valid):
            m.d.sync += self.o.eq(self.i)
            self._step(m, self.i, self.o)
            if self._drop:
                m.d.sync += self.o.window[:8 * self._drop].eq(0)
        return m


class PacketParser(wiring.Component):
    """Parse Ethernet, VLAN/QinQ, IPv4, IPv6, TCP, UDP, VXLAN and RoCEv2 headers of each packet.

    Protocols: Ethernet (IEEE 802.3) with up to two VLAN tags of TPID 0x8100 or 0x88A8 (IEEE
    802.1Q/802.1ad); IPv4 (RFC 791: options stepped over, header checksum verified per RFC
    1071, fragments flagged); IPv6 (RFC 8200: up to ``ipv6_ext`` Hop-by-Hop, Routing,
    Destination Options and Fragment headers stepped over, others flagged as unparsed); TCP
    (RFC 9293) and UDP (RFC 768) with checksum verification over the pseudo-header (RFC 8200
    8.1 for IPv6); VXLAN (RFC 7348, UDP port 4789) with the inner Ethernet/VLAN/IP/TCP/UDP
    headers and their checksums; RoCEv2 (IBTA annex A17, UDP port 4791) Base Transport Header.
    See :mod:`amnic.net.metadata` for every field.

    Contract: ``o`` carries the packets of ``i`` unchanged (data, keep, last, user), one
    register stage later. Only the last beat of a packet may be partial (the packet-stream
    convention); a last beat with ``keep`` zero is accepted as a packet of zero bytes. ``meta``
    carries exactly one record per packet, in packet order; a record becomes valid only after
    the packet's last beat has left ``o`` (:attr:`latency` cycles after that beat when ``meta``
    is not back-pressured). Back-pressure on ``o`` stalls ``i`` at once (``i.ready`` follows
    ``o.ready`` through one gate); back-pressure on ``meta`` stalls ``i`` once ``meta_depth``
    records are waiting or in flight. Nothing is dropped, duplicated or reordered, and packets
    never mix. With ``o`` and ``meta`` always ready, ``i`` is always ready: one beat per cycle
    at any width, so back-to-back packets of one beat each (up to 64 bytes at 512 bits) pass at
    one packet per cycle.

    Parameters
    ----------
    width : int
        Data width in bits: 64, 128, 256 or 512 (any multiple of 16 works).
    user_width : int
        Width of the ``user`` sideband, passed through.
    window : int
        Bytes of each packet decoded (rounded up to whole beats); at least 64. The default 192
        holds outer Ethernet + 2 tags + IPv6 + UDP + VXLAN + inner Ethernet + tag + IPv6 + TCP
        with up to 36 option bytes.
    ipv6_ext : int
        IPv6 extension headers stepped over per level.
    meta_depth : int or None
        Records the output FIFO holds; default: enough for full throughput.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
    o : Out(PacketSignature(width, user_width))
    meta : Out(stream.Signature(ParseResult))
    latency : int
        Cycles from a last beat's transfer on ``o`` to its record's ``meta.valid``.
    window_len : int
        The window in bytes.

    Notes
    -----
    Headers are decoded from the first ``window`` bytes of a packet. A header is reported only
    when it is complete: all its bytes (for IPv4 and TCP including options) lie before the end
    of the frame — for headers inside an IP packet, before the end of that IP packet if it comes
    first — and inside the window. Otherwise the header's fields read zero, parsing of that
    level stops, and ``errors.truncated`` (the frame or IP packet ends inside the header) or
    ``errors.beyond_window`` is raised; the ``kind`` of the layer still tells what the previous
    header announced. A complete header with an impossible value (IP version, IPv4 IHL < 5, TCP
    data offset < 5, VXLAN I flag clear) raises ``errors.malformed`` and stops the level.
    A non-first fragment has no transport layer (kind NONE); no tunnel is decoded inside a
    fragment. Checksums are reported NOT_CHECKED when they cannot be verified: the IP header of
    IPv6 (it has no checksum), UDP over IPv4 with checksum 0, fragments, a routing header with
    segments left, or a segment that is not wholly in the frame (or whose end lies past the
    window while bytes follow it in the frame).
    """

    def __init__(self, width, user_width=1, *, window=192, ipv6_ext=3, meta_depth=None):
        if width % 16 or width <= 0:
            raise ValueError(f"parser data width must be a positive multiple of 16, not {width}")
        if window < 64:
            raise ValueError(f"the window must hold at least 64 bytes, not {window}")
        if ipv6_ext < 0:
            raise ValueError("ipv6_ext must not be negative")
        self.width = width
        self.user_width = user_width
        self.ipv6_ext = ipv6_ext
        self._window = window
        self.window_len = window_length(width, window)
        self.stage_count = 2 * ipv6_ext + 7
        # capture register -> stage registers -> FIFO write -> FIFO output register.
        self.latency = self.stage_count + 3
        if meta_depth is None:
            meta_depth = self.stage_count + 6
        if meta_depth < 2:
            raise ValueError("meta_depth must be at least 2")
        self.meta_depth = meta_depth
        super().__init__({
            "i": In(PacketSignature(width, user_width)),
            "o": Out(PacketSignature(width, user_width)),
            "meta": Out(stream.Signature(ParseResult)),
        })

    def elaborate(self, platform):
        m = Module()
        wlen = self.window_len
        m.submodules.capture = capture = HeaderCapture(self.width, self._window, self.user_width)
        m.submodules.fifo = meta_fifo = fifo.SyncFIFOBuffered(
            width=ParseResult.as_shape().size, depth=self.meta_depth)

        # Credits: one per record the FIFO can still take, counting records in flight.
        credits = Signal(range(self.meta_depth + 1), init=self.meta_depth)
        take = self.i.valid & self.i.ready & self.i.payload.last
        give = self.meta.valid & self.meta.ready
        m.d.sync += credits.eq(credits - take + give)

        # Pass-through register; the capture watches the beats as they leave.
        m.d.comb += self.i.ready.eq((~self.o.valid | self.o.ready) & (credits != 0))
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [
                self.o.valid.eq(self.i.valid & (credits != 0)),
                self.o.payload.eq(self.i.payload),
            ]
        m.d.comb += [
            capture.i.valid.eq(self.o.valid & self.o.ready),
            capture.i.payload.eq(self.o.payload),
        ]

        # The parse pipeline: one register stage per layer, advancing every cycle.
        layout = stages.ParseState(wlen)
        head = Signal(layout, name="state_capture")
        m.d.comb += [
            head.valid.eq(capture.o.valid),
            head.window.eq(capture.o.payload.window),
            head.length.eq(capture.o.payload.length),
            head.rest_sum.eq(capture.o.payload.rest_sum),
            head.outer.frame_end.eq(capture.o.payload.length),
            head.res.frame_sum.eq(fold16(capture.o.payload.frame_sum)),
        ]
        outer_next = stages.candidates(stages.OUTER_NEXT_MIN, wlen)
        inner_eth = stages.candidates(stages.INNER_L2_MIN, wlen)
        inner_l3 = stages.candidates(stages.INNER_L3_MIN, wlen)
        inner_next = stages.candidates(stages.INNER_NEXT_MIN, wlen)
        # (name, lowest window byte the stage reads, stage function)
        outer_min, inner_min = stages.OUTER_NEXT_MIN, stages.INNER_NEXT_MIN
        steps = [("outer_l2_l3", 0, lambda m, s, n: stages.stage_outer_l2_l3(m, s, n, wlen))]
        steps += [(f"outer_ext{k}", outer_min, lambda m, s, n: stages.stage_ipv6_ext(
            m, s, n, "outer", wlen, outer_next)) for k in range(self.ipv6_ext)]
        steps += [
            ("outer_l4", outer_min, lambda m, s, n: stages.stage_l4(
                m, s, n, "outer", wlen, outer_next, True)),
            ("inner_l2", stages.INNER_L2_MIN, lambda m, s, n: stages.stage_inner_l2(
                m, s, n, wlen, inner_eth)),
            ("inner_l3", stages.INNER_L3_MIN, lambda m, s, n: stages.stage_inner_l3(
                m, s, n, wlen, inner_l3)),
        ]
        steps += [(f"inner_ext{k}", inner_min, lambda m, s, n: stages.stage_ipv6_ext(
            m, s, n, "inner", wlen, inner_next)) for k in range(self.ipv6_ext)]
        steps += [
            ("inner_l4", inner_min, lambda m, s, n: stages.stage_l4(
                m, s, n, "inner", wlen, inner_next, False)),
            ("sums", outer_min, lambda m, s, n: stages.stage_sums(m, s, n, wlen)),
            ("verdict", wlen, lambda m, s, n: stages.stage_verdict(m, s, n)),
        ]
        assert len(steps) == self.stage_count
        state = head
        for k, (name, _, step) in enumerate(steps):
            # Window bytes below what any later stage reads are not kept.
            needed = min([lowest for _, lowest, _ in steps[k + 1:]], default=wlen)
            stage = _Stage(layout, step, drop_below=needed)
            m.submodules[f"stage_{name}"] = stage
            m.d.comb += stage.i.eq(state)
            state = stage.o

        m.d.comb += [
            meta_fifo.w_en.eq(state.valid),
            meta_fifo.w_data.eq(state.res),
            self.meta.valid.eq(meta_fifo.r_rdy),
            self.meta.payload.as_value().eq(meta_fifo.r_data),
            meta_fifo.r_en.eq(self.meta.ready),
        ]
        return m
