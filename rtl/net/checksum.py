"""Transmit checksum offload: insert L4 (TCP/UDP) and IPv4 header checksums into packets.

:class:`ChecksumInserter` fills in the checksums a host driver asks for, one request per packet,
with the semantics network stacks expect from a NIC:

* **L4 checksum, "partial" offload** — Linux ``CHECKSUM_PARTIAL`` (``include/linux/skbuff.h``),
  virtio-net ``VIRTIO_NET_HDR_F_NEEDS_CSUM``. The host has already written the folded (not
  complemented) pseudo-header sum into the checksum field (RFC 793 s3.1 for TCP, RFC 768 for
  UDP, RFC 8200 s8.1 for the IPv6 pseudo-header). The NIC forms the 16-bit ones'-complement sum
  (RFC 1071) of every byte from ``csum_start`` to the end of the packet, field included, and
  writes its complement at ``csum_start + csum_offset`` (most significant byte first). Words are
  aligned on ``csum_start``. With ``udp`` set, a result of 0x0000 goes out as 0xFFFF, since a
  zero UDP checksum means "no checksum" (RFC 768; RFC 8200 s8.1 for UDP over IPv6).
* **IPv4 header checksum** (RFC 791 s3.1) — the complement of the ones'-complement sum of the
  IPv4 header at ``l3_offset``, ``4 * IHL`` bytes long, computed as if its checksum field (bytes
  10 and 11 of the header) were zero, written into that field.

Both sums are taken over the packet as it arrives. The two ranges do not overlap in the usual
cases (the L4 range starts after the IP header); if the IPv4 checksum field lies inside the L4
range, the L4 sum covers the field's incoming value, and if the two fields share a byte, the L4
value is the one written.

Architecture
------------
The checksum fields come before the data they cover, so the core stores and forwards: each beat
is written into a packet buffer (a :class:`~amaranth.lib.memory.Memory` ring) the cycle it is
accepted, while a four-stage pipeline beside the buffer masks the bytes each sum covers, adds
them up and, after the last beat, judges the request and queues a per-packet *descriptor*
(patch positions and values). The read side takes descriptors in order, reads the packet back
and replaces the field bytes (which may straddle two beats) on the way out. One beat can enter
and one leave in every cycle, so back-to-back packets keep line rate; a packet's first beat
leaves ``beats + 7`` cycles after its first beat entered (at line rate).

Bad requests and oversize packets
---------------------------------
A request is checked against the packet once its length is known. A packet is sent out
**unchanged** (no checksum written, not even a valid one; ``user`` untouched) and reported on
``errors`` when a requested insertion cannot be done:

* ``l4_range`` — L4 requested, but the field ``csum_start + csum_offset .. +1`` does not lie
  wholly inside the packet (this covers ``csum_start`` at or beyond the end as well);
* ``ipv4_range`` — IPv4 requested, but ``l3_offset + 20`` or ``l3_offset + 4 * IHL`` lies beyond
  the end of the packet;
* ``ipv4_header`` — IPv4 requested and the header lies inside the packet, but its IHL is below 5
  or its version is not 4.

A packet longer than ``max_packet`` bytes does not fit the buffer. It is passed through
unchanged, cut-through (its request is ignored), with ``user`` bit 0 — the "bad packet" flag of
:mod:`amnic.stream` — set on its last beat so that a later stage may drop it, and it is reported
as ``oversize`` (and nothing else). After such a packet the core waits until it has been read
back out before it takes the next packet. Every packet that enters leaves, in order.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from amnic.net.window import balanced_sum, fold16
from amnic.stream import PacketLayout, PacketSignature

__all__ = ["RequestLayout", "ErrorLayout", "ChecksumInserter"]

#: Offset from the start of the IPv4 header to its checksum field (RFC 791 s3.1).
IPV4_CHECKSUM_OFFSET = 10
#: Length of an IPv4 header without options, in bytes (RFC 791 s3.1).
IPV4_MIN_HEADER = 20


class RequestLayout(data.Struct):
    """Checksum request for one packet, on :attr:`ChecksumInserter.req`.

    Offsets count bytes from the first byte of the packet (byte lane 0 of its first beat).

    Attributes
    ----------
    l4 : 1
        Insert an L4 checksum ("partial" offload: see :mod:`amnic.net.checksum`).
    udp : 1
        The L4 checksum is a UDP checksum: send a computed 0x0000 as 0xFFFF (RFC 768).
    csum_start : 16
        First byte covered by the L4 checksum (the start of the TCP/UDP header).
    csum_offset : 16
        Position of the L4 checksum field relative to ``csum_start`` (16 for TCP, 6 for UDP).
    ipv4 : 1
        Insert the IPv4 header checksum.
    l3_offset : 16
        First byte of the IPv4 header.
    """

    l4: 1
    udp: 1
    csum_start: 16
    csum_offset: 16
    ipv4: 1
    l3_offset: 16


class ErrorLayout(data.Struct):
    """Why a packet left :class:`ChecksumInserter` without checksum insertion.

    Several of ``l4_range``, ``ipv4_range`` and ``ipv4_header`` may be set together; an
    ``oversize`` packet has no other flag (its request is not examined).
    """

    l4_range: 1
    ipv4_range: 1
    ipv4_header: 1
    oversize: 1


def _swap(value):
    """Exchange the two bytes of a 16-bit value."""
    return Cat(value[8:16], value[0:8])


class _Descriptor(data.Struct):
    """What the read side needs to know to send one stored packet."""

    last_beat: 16  # index of the packet's last beat (stored packets only)
    long: 1  # oversize packet, read cut-through; its end is found from the write side
    mark_bad: 1  # set user bit 0 on the last beat
    l4_patch: 1
    l4_pos: 16  # field byte position (most significant byte); the next byte holds the rest
    l4_value: 16
    ip_patch: 1
    ip_pos: 16
    ip_value: 16


class ChecksumInserter(wiring.Component):
    """Inserts requested L4 and IPv4 header checksums into a packet stream (store-and-forward).

    See :mod:`amnic.net.checksum` for the checksum semantics and the reaction to bad requests and
    oversize packets.

    Parameters
    ----------
    width : int
        Data width in bits: a power of two from 16 up (64 for 10/25G, 512 for 100G).
    user_width : int
        Width of the ``user`` sideband, carried through unchanged (except bit 0 of oversize
        packets, if ``user_width >= 1``).
    max_packet : int
        Longest packet, in bytes, that gets checksums (1 to 65535). The packet buffer holds
        ``ceil(max_packet * 8 / width) + 16`` beats; longer packets pass cut-through.

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
        Packets to send. The first beat of a packet is taken only together with its request.
    req : In(stream.Signature(RequestLayout))
        One request per packet, in packet order; it is taken in the cycle the packet's first
        beat is taken (``req.ready`` is high only then). A packet with ``l4`` and ``ipv4`` clear
        passes unchanged.
    o : Out(PacketSignature(width, user_width))
        The packets, in order, with the checksums inserted; registered. ``keep``, ``last`` and
        ``user`` are those of the input (see above for ``user`` bit 0).
    errors : Out(stream.Signature(ErrorLayout, always_ready=True))
        One event per packet sent without insertion, with the reasons; each cycle with
        ``valid`` set is one packet (feed a :class:`~amnic.csr.counters.CounterBank` to count
        them). It comes a few cycles after the packet's last beat entered — for an oversize
        packet, after its first ``ceil(max_packet * 8 / width) + 1`` beats entered.

    Throughput and latency: one beat per cycle in and out at the same time, so back-to-back
    packets of up to ``max_packet`` bytes keep line rate while ``o.ready`` stays high. At line
    rate a packet's first beat leaves ``beats + 7`` cycles after its first beat was taken.
    """

    #: Descriptors (packets) in flight between the input and the read side.
    DESCRIPTORS = 16
    #: Buffer beats beyond the longest packet, so that line rate holds for back-to-back
    #: packets of the longest length while the previous packet drains.
    SLACK_BEATS = 16

    def __init__(self, width=64, user_width=1, max_packet=16384):
        PacketLayout(width, user_width)  # validates the widths
        if width < 16 or width & (width - 1):
            raise ValueError(f"data width must be a power of two of at least 16, not {width}")
        if not 1 <= max_packet <= 0xFFFF:
            raise ValueError(f"max_packet must be between 1 and 65535, not {max_packet}")
        self.width = width
        self.user_width = user_width
        self.max_packet = max_packet
        self.lanes = width // 8
        self.max_beats = -(-max_packet // self.lanes)
        self.depth = self.max_beats + self.SLACK_BEATS
        super().__init__({
            "i": In(PacketSignature(width, user_width)),
            "req": In(stream.Signature(RequestLayout)),
            "o": Out(PacketSignature(width, user_width)),
            "errors": Out(stream.Signature(ErrorLayout, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        lane_bits = exact_log2(lanes)
        words = lanes // 2
        max_beats = self.max_beats
        depth = self.depth
        beat_shape = range(max_beats + 1)

        mem = m.submodules.buffer = Memory(
            shape=PacketLayout(self.width, self.user_width), depth=depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        descs = m.submodules.descriptors = SyncFIFO(
            width=data.Layout.cast(_Descriptor).size, depth=self.DESCRIPTORS)

        def wrap_inc(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1)

        # Shared between the two sides.
        count = Signal(range(depth + 1))  # rows written and not yet read
        pending = Signal(range(self.DESCRIPTORS + 1))  # packets taken, descriptor not yet used
        long_busy = Signal()  # an oversize packet has not yet been fully read
        long_end_valid = Signal()  # ... and its last row has been written at long_end_ptr
        long_end_ptr = Signal(range(depth))
        accept = Signal()
        accept_first = Signal()
        issue = Signal()  # the read side reads a row
        pop = Signal()  # the read side takes a descriptor
        long_done = Signal()  # the read side reads the last row of an oversize packet

        # --- input: take beats (and requests), write them into the buffer ------------------------
        i, req = self.i, self.req
        first = Signal(init=1)  # the next beat starts a packet
        beat = Signal(beat_shape)  # index of the next beat in its packet, saturating
        long = Signal()  # the packet being taken is oversize
        wr_ptr = Signal(range(depth))
        req_held = Signal(RequestLayout)
        cur_req = Signal(RequestLayout)
        m.d.comb += cur_req.eq(Mux(first, req.payload.as_value(), req_held.as_value()))

        space = count != depth
        can_start = (pending != self.DESCRIPTORS) & ~long_busy
        m.d.comb += [
            i.ready.eq(space & (~first | (req.valid & can_start))),
            req.ready.eq(i.valid & first & space & can_start),
            accept.eq(i.valid & i.ready),
            accept_first.eq(accept & first),
            wp.en.eq(accept),
            wp.addr.eq(wr_ptr),
            wp.data.eq(i.payload),
        ]
        trigger = Signal()  # this beat makes the packet oversize
        m.d.comb += trigger.eq((beat == max_beats) & ~long)

        # The IPv4 IHL and version come from the beat holding byte ``l3_offset``; the header
        # bytes of that very beat need them, so they travel with every beat.
        l3 = cur_req.l3_offset
        at_l3 = beat == l3[lane_bits:]
        l3_byte = i.payload.data.word_select(l3[:lane_bits], 8)
        ihl_held = Signal(4)
        version_held = Signal(4)
        ihl = Signal(4)
        version = Signal(4)
        m.d.comb += [
            ihl.eq(Mux(at_l3, l3_byte[0:4], ihl_held)),
            version.eq(Mux(at_l3, l3_byte[4:8], version_held)),
        ]

        with m.If(accept):
            m.d.sync += [
                wr_ptr.eq(wrap_inc(wr_ptr)),
                ihl_held.eq(ihl),
                version_held.eq(version),
            ]
            with m.If(first):
                m.d.sync += req_held.eq(req.payload)
            with m.If(i.payload.last):
                m.d.sync += [first.eq(1), beat.eq(0), long.eq(0)]
                with m.If(long | trigger):
                    m.d.sync += [long_end_valid.eq(1), long_end_ptr.eq(wr_ptr)]
            with m.Else():
                m.d.sync += [
                    first.eq(0),
                    beat.eq(Mux(beat == max_beats, max_beats, beat + 1)),
                    long.eq(long | trigger),
                ]
            with m.If(trigger):
                m.d.sync += long_busy.eq(1)
        with m.If(long_done):
            m.d.sync += [long_busy.eq(0), long_end_valid.eq(0)]

        m.d.sync += [
            count.eq(count + accept - issue),
            pending.eq(pending + accept_first - pop),
        ]

        # --- summing pipeline: p1 masks, p2 sums groups of words, p3 accumulates, p4 judges ------
        meta_layout = data.StructLayout({
            "valid": 1, "first": 1, "last": 1, "long": 1, "trigger": 1,
            "beat": beat_shape, "nbytes": range(lanes + 1),
            "req": RequestLayout, "ihl": 4, "version": 4, "header_end": 17,
        })
        p1 = Signal(meta_layout)
        p1_data = Signal(self.width)
        p1_keep = Signal(lanes)
        m.d.sync += [
            p1.valid.eq(accept),
            p1.first.eq(first),
            p1.last.eq(i.payload.last),
            p1.long.eq(long),
            p1.trigger.eq(trigger),
            p1.beat.eq(beat),
            p1.req.eq(cur_req),
            p1.ihl.eq(ihl),
            p1.version.eq(version),
            p1.header_end.eq(l3 + Cat(Const(0, 2), ihl)),
            p1_data.eq(i.payload.data),
            p1_keep.eq(Mux(accept, i.payload.keep, 0)),  # no lanes, so no sums, when idle
        ]

        # p1: which byte lanes each sum covers. A lane's byte position is beat * lanes + lane;
        # comparisons split into a beat part (once per beat) and a lane part (a decoder).
        def lanes_from(position):
            """Per lane: byte position >= ``position``."""
            after = p1.beat > position[lane_bits:]
            here = p1.beat == position[lane_bits:]
            return [after | (here & (position[:lane_bits] <= n)) for n in range(lanes)]

        def lanes_at(position):
            """Per lane: byte position == ``position``."""
            here = p1.beat == position[lane_bits:]
            return [here & (position[:lane_bits] == n) for n in range(lanes)]

        ip_field = Signal(17)
        ip_field_next = Signal(17)
        m.d.comb += [
            ip_field.eq(p1.req.l3_offset + IPV4_CHECKSUM_OFFSET),
            ip_field_next.eq(p1.req.l3_offset + IPV4_CHECKSUM_OFFSET + 1),
        ]
        l4_in = lanes_from(p1.req.csum_start)
        ip_from = lanes_from(p1.req.l3_offset)
        ip_to = lanes_from(p1.header_end)
        ip_at = lanes_at(ip_field)
        ip_at_next = lanes_at(ip_field_next)

        p2 = Signal(meta_layout)
        p2_l4 = Signal(self.width)
        p2_ip = Signal(self.width)
        m.d.sync += [p2.eq(p1), p2.nbytes.eq(balanced_sum(p1_keep))]
        for n in range(lanes):
            byte = p1_data.word_select(n, 8)
            keep = p1_keep[n]
            ip_in = ip_from[n] & ~ip_to[n] & ~ip_at[n] & ~ip_at_next[n]
            m.d.sync += [
                p2_l4.word_select(n, 8).eq(Mux(keep & l4_in[n], byte, 0)),
                p2_ip.word_select(n, 8).eq(Mux(keep & ip_in, byte, 0)),
            ]

        # p2: big-endian 16-bit words (even byte positions are the high byte: beats start at
        # even positions), summed in groups of eight.
        def word_groups(masked):
            values = [Cat(masked.word_select(2 * k + 1, 8), masked.word_select(2 * k, 8))
                      for k in range(words)]
            return [balanced_sum(values[k:k + 8]) for k in range(0, words, 8)]

        l4_groups = word_groups(p2_l4)
        ip_groups = word_groups(p2_ip)
        p3 = Signal(meta_layout)
        p3_l4 = [Signal(len(g)) for g in l4_groups]
        p3_ip = [Signal(len(g)) for g in ip_groups]
        m.d.sync += p3.eq(p2)
        m.d.sync += [s.eq(g) for s, g in zip(p3_l4 + p3_ip, l4_groups + ip_groups, strict=True)]

        # p3: accumulate over the packet. The sum of a whole stored packet fits (oversize packets
        # may wrap: their sums are not used).
        acc_width = bits_for(max_beats * words * 0xFFFF)
        l4_acc = Signal(acc_width)
        ip_acc = Signal(acc_width)
        p4 = Signal(meta_layout)
        m.d.sync += [
            p4.eq(p3),
            l4_acc.eq(Mux(p3.first, 0, l4_acc) + balanced_sum(p3_l4)),
            ip_acc.eq(Mux(p3.first, 0, ip_acc) + balanced_sum(p3_ip)),
        ]

        # p4: after a packet's last beat (or an oversize packet's trigger beat), judge the
        # request and queue the descriptor.
        r4 = p4.req
        length = Signal(17)
        l4_field = Signal(17)
        m.d.comb += [
            length.eq(Cat(Const(0, lane_bits), p4.beat) + p4.nbytes),
            l4_field.eq(r4.csum_start + r4.csum_offset),
        ]
        flags = Signal(ErrorLayout)
        oversize = p4.trigger | (length > self.max_packet)
        ip_short = r4.l3_offset + IPV4_MIN_HEADER > length
        with m.If(oversize):
            m.d.comb += flags.oversize.eq(1)
        with m.Else():
            m.d.comb += [
                flags.l4_range.eq(r4.l4 & (l4_field + 2 > length)),
                flags.ipv4_range.eq(r4.ipv4 & (ip_short | (p4.header_end > length))),
                flags.ipv4_header.eq(r4.ipv4 & ~ip_short & ((p4.ihl < 5) | (p4.version != 4))),
            ]
        bad = flags.as_value().any()

        l4_sum = fold16(l4_acc)
        l4_sum = Mux(r4.csum_start[0], _swap(l4_sum), l4_sum)  # words aligned on csum_start
        l4_value = Signal(16)
        m.d.comb += l4_value.eq(~l4_sum)
        ip_sum = fold16(ip_acc)
        ip_sum = Mux(r4.l3_offset[0], _swap(ip_sum), ip_sum)

        desc_in = Signal(_Descriptor)
        m.d.comb += [
            desc_in.last_beat.eq(p4.beat),
            desc_in.long.eq(p4.trigger),
            desc_in.mark_bad.eq(oversize),
            desc_in.l4_patch.eq(r4.l4 & ~bad),
            desc_in.l4_pos.eq(l4_field),
            desc_in.l4_value.eq(Mux(r4.udp & (l4_value == 0), 0xFFFF, l4_value)),
            desc_in.ip_patch.eq(r4.ipv4 & ~bad),
            desc_in.ip_pos.eq(r4.l3_offset + IPV4_CHECKSUM_OFFSET),
            desc_in.ip_value.eq(~ip_sum),
        ]
        push = p4.valid & ((p4.last & ~p4.long) | p4.trigger)
        m.d.comb += [
            descs.w_data.eq(desc_in),
            descs.w_en.eq(push),  # never full: ``pending`` limits the packets in flight
        ]
        m.d.sync += [
            self.errors.valid.eq(push & bad),
            self.errors.payload.eq(flags),
        ]

        # --- output: read packets back and patch the fields --------------------------------------
        o = self.o
        desc_out = _Descriptor(descs.r_data)
        active = Signal()  # ``cur`` holds the descriptor of the packet being read
        cur = Signal(_Descriptor)
        rd_ptr = Signal(range(depth))
        rd_beat = Signal(16)
        advance = ~o.valid | o.ready  # the read pipeline moves
        is_last = Signal()
        m.d.comb += [
            is_last.eq(Mux(cur.long, long_end_valid & (rd_ptr == long_end_ptr),
                           rd_beat == cur.last_beat)),
            # Rows of a stored packet are all written before its descriptor exists; an oversize
            # packet is read as its rows arrive.
            issue.eq(advance & active & (count != 0)),
            pop.eq(descs.r_rdy & (~active | (issue & is_last))),
            descs.r_en.eq(pop),
            long_done.eq(issue & is_last & cur.long),
            rp.addr.eq(rd_ptr),
            rp.en.eq(advance),  # the read data register holds while the output is stalled
        ]
        with m.If(issue):
            m.d.sync += [
                rd_ptr.eq(wrap_inc(rd_ptr)),
                rd_beat.eq(Mux(is_last, 0, rd_beat + 1)),
            ]
            with m.If(is_last):
                m.d.sync += active.eq(0)
        with m.If(pop):
            m.d.sync += [cur.eq(desc_out), active.eq(1), rd_beat.eq(0)]

        # r1: the row read in the previous cycle, with its beat index and descriptor.
        r1_valid = Signal()
        r1_beat = Signal(16)
        r1 = Signal(_Descriptor)
        with m.If(advance):
            m.d.sync += [r1_valid.eq(issue), r1_beat.eq(rd_beat), r1.eq(cur)]

        def beat_lanes(position):
            here = r1_beat == position[lane_bits:]
            return [here & (position[:lane_bits] == n) for n in range(lanes)]

        patches = [  # later entries win where two fields share a byte
            (r1.ip_patch, r1.ip_pos, r1.ip_value[8:16]),
            (r1.ip_patch, r1.ip_pos + 1, r1.ip_value[0:8]),
            (r1.l4_patch, r1.l4_pos, r1.l4_value[8:16]),
            (r1.l4_patch, r1.l4_pos + 1, r1.l4_value[0:8]),
        ]
        patch_lanes = [(enable, beat_lanes(pos), value) for enable, pos, value in patches]
        row = rp.data
        out = Signal(PacketLayout(self.width, self.user_width))
        for n in range(lanes):
            byte = row.data.word_select(n, 8)
            for enable, at, value in patch_lanes:
                byte = Mux(enable & at[n], value, byte)
            m.d.comb += out.data.word_select(n, 8).eq(byte)
        m.d.comb += [out.keep.eq(row.keep), out.last.eq(row.last), out.user.eq(row.user)]
        if self.user_width:
            m.d.comb += out.user[0].eq(row.user[0] | (r1.mark_bad & row.last))
        with m.If(advance):
            m.d.sync += [o.valid.eq(r1_valid), o.payload.eq(out)]

        return m
