"""10G/25G Ethernet MAC with IEEE 1588 (PTP) timestamps of every frame sent and received.

:class:`Mac10GPtp` is :class:`~amnic.mac.mac_10g.Mac10G` with a
:class:`~amnic.mac.ptp.PtpTimestampCapture` on each direction: transmit timestamps come back
on a stream of their own (for a two-step clock, which sends them in a following message),
receive timestamps travel with the frame in its ``user`` sideband. :mod:`amnic.mac.ptp` defines
the reference point (the first octet after the SFD at the XGMII) and the time formats.
"""

from amaranth.hdl import DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketLayout, PacketSignature

from .mac_10g import Mac10G, forward_ports
from .ptp import PtpTimestampCapture, timestamp_layout, timestamp_width

__all__ = ["TxPtpUser", "RxPtpUser", "TxTimestamp", "Mac10GPtp"]

#: A received frame's first beat leaves the MAC at least this many cycles after its /S/ was on
#: the XGMII, and the /S/ of the next frame comes later than that first beat minus this many
#: cycles. See :class:`Mac10GPtp` ("Receive timestamps").
RX_START_TO_FIRST_BEAT = 3

#: User frames whose first beat the MAC has taken but whose /S/ has not gone out yet, at most.
TX_TAGS_IN_FLIGHT = 4


class TxPtpUser(data.StructLayout):
    """``user`` of the transmit stream: ``bad`` (bit 0, on the last beat) and ``tag``."""

    def __init__(self, tag_width):
        super().__init__({"bad": 1, "tag": tag_width})


class RxPtpUser(data.StructLayout):
    """``user`` of the receive stream: ``bad`` (bit 0, on the last beat) and ``timestamp``."""

    def __init__(self, ts_format):
        super().__init__({"bad": 1, "timestamp": timestamp_layout(ts_format)})


class TxTimestamp(data.StructLayout):
    """One transmit timestamp and the tag its frame carried."""

    def __init__(self, ts_format, tag_width):
        fields = {"timestamp": timestamp_layout(ts_format)}
        if tag_width:
            fields["tag"] = tag_width
        super().__init__(fields)


class Mac10GPtp(wiring.Component):
    """:class:`~amnic.mac.mac_10g.Mac10G` that timestamps every user frame in both directions.

    Every port of :class:`~amnic.mac.mac_10g.Mac10G` is here with the same name, domain and
    meaning, except ``tx`` and ``rx``, whose ``user`` sideband grows as described below.

    Parameters
    ----------
    ts_format : str
        ``"tod96"`` (96-bit time of day) or ``"ns64"`` (64-bit ns, 48.16), see
        :mod:`amnic.mac.ptp`; ``ts_width`` below is 96 or 64.
    period_ns : int, str, Decimal, Fraction or float
        XGMII clock period in ns, the same in both directions: 6.4 for 10GBASE-R, 2.56 for
        25GBASE-R.
    tag_width : int
        Width of the tag that a transmitted frame carries to its timestamp (0 for none).
    flow_control : bool
        Passed to :class:`~amnic.mac.mac_10g.Mac10G` (PAUSE/PFC).

    Attributes
    ----------
    tx : In(PacketSignature(64, 1 + tag_width))                   (tx domain)
        As ``Mac10G.tx``, with ``user`` a :class:`TxPtpUser`: ``bad`` (bit 0) is read on the
        last beat, ``tag`` on the first beat.
    rx : Out(stream.Signature(PacketLayout(64, 1 + ts_width), always_ready=True))  (rx domain)
        As ``Mac10G.rx``, with ``user`` an :class:`RxPtpUser`: ``bad`` (bit 0) on the last
        beat as before, and ``timestamp``, the frame's receive timestamp, on *every* beat of
        the frame (the same value on all of them).
    tx_ptp_ts : In(ts_width)                                      (tx domain)
    rx_ptp_ts : In(ts_width)                                      (rx domain)
        The current time, as :class:`~amnic.mac.ptp.PtpTimestampCapture` ``tod`` requires
        (the time of the clock edge that ends the current cycle).
    tx_timestamp : Out(stream.Signature(TxTimestamp(ts_format, tag_width), always_ready=True))
        (tx domain) One record per frame from ``tx`` (bad and underrun frames included), in the
        order the frames were sent: its timestamp and its tag. Valid for one cycle,
        ``PtpTimestampCapture.LATENCY`` (2) cycles after the cycle in which the frame's /S/ is on
        ``txd`` (``tx_start`` high); there is no back-pressure. MAC Control frames that the MAC
        sends on its own (PAUSE/PFC) get no record.

    Transmit tags: the tag of each frame's first beat is queued (up to
    :data:`TX_TAGS_IN_FLIGHT` frames; ``tx.ready`` waits for room) and leaves with the
    timestamp of the next /S/ that begins a frame from ``tx``. An /S/ begins such a frame
    exactly when a frame from ``tx`` is queued at that moment: the MAC sends the frames of
    ``tx`` in order, and its flow-control frames go out only between them, never ahead of a
    frame whose first beat it has taken.

    Receive timestamps: a frame's timestamp is that of the latest /S/ that was on ``rxd`` at
    least :data:`RX_START_TO_FIRST_BEAT` (3) cycles before the frame's first beat on ``rx``.
    That is the frame's own /S/, because the MAC delivers a frame's first beat 3 to 5 cycles
    after its /S/ (3 for frames of 1 to 3 octets before the FCS, otherwise 4; 5 with flow
    control for frames of more than 8, whose first beat waits for octet 13), and the next
    frame's /S/ cannot be on ``rxd`` earlier than 2 cycles before this frame's first beat (it
    follows this frame's /T/). This holds for any gap between frames, and frames that start but
    deliver nothing (bad preamble, MAC Control frames the MAC removes) leave no stale
    timestamp behind, which a FIFO of timestamps filled at every /S/ would. The rule depends on
    those latencies of :class:`~amnic.mac.mac_10g.Mac10G`; the cocotb tests check it.
    """

    def __init__(self, *, ts_format="tod96", period_ns="6.4", tag_width=16, flow_control=True):
        if tag_width < 0:
            raise ValueError(f"tag width must be non-negative, not {tag_width}")
        self._ts_format = ts_format
        self._period_ns = period_ns
        self._tag_width = tag_width
        self._mac = Mac10G(flow_control=flow_control)
        ts_width = timestamp_width(ts_format)
        members = dict(self._mac.signature.members.items())
        members.update({
            "tx": In(PacketSignature(64, 1 + tag_width)),
            "rx": Out(stream.Signature(PacketLayout(64, 1 + ts_width), always_ready=True)),
            "tx_ptp_ts": In(ts_width),
            "rx_ptp_ts": In(ts_width),
            "tx_timestamp": Out(stream.Signature(TxTimestamp(ts_format, tag_width),
                                                 always_ready=True)),
        })
        super().__init__(members)

    @property
    def ts_format(self):
        return self._ts_format

    @property
    def tag_width(self):
        return self._tag_width

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        forward_ports(m, self, mac, skip=("tx", "rx"))
        self._transmit(m, mac)
        self._receive(m, mac)
        return m

    def _transmit(self, m, mac):
        latency = PtpTimestampCapture.LATENCY
        m.submodules.tx_capture = capture = DomainRenamer("tx")(
            PtpTimestampCapture(self._ts_format, self._period_ns))
        m.submodules.tx_tags = tags = DomainRenamer("tx")(
            SyncFIFO(width=max(1, self._tag_width), depth=TX_TAGS_IN_FLIGHT))

        # Queue the tag of each frame's first beat; hold the first beat while the queue is full.
        user = data.View(TxPtpUser(self._tag_width), self.tx.payload.user)
        first = Signal(init=1)
        room = ~first | tags.w_rdy
        with m.If(self.tx.valid & self.tx.ready):
            m.d.tx += first.eq(self.tx.payload.last)
        m.d.comb += [
            mac.tx.valid.eq(self.tx.valid & room),
            self.tx.ready.eq(mac.tx.ready & room),
            mac.tx.payload.data.eq(self.tx.payload.data),
            mac.tx.payload.keep.eq(self.tx.payload.keep),
            mac.tx.payload.last.eq(self.tx.payload.last),
            mac.tx.payload.user.eq(user.bad),
            tags.w_en.eq(self.tx.valid & self.tx.ready & first),
            tags.w_data.eq(user.tag if self._tag_width else 0),
        ]

        # An /S/ while a tag is queued begins that frame; any other /S/ is the MAC's own.
        m.d.comb += [
            capture.tod.eq(self.tx_ptp_ts),
            capture.start.eq(mac.tx_start),
            capture.start_lane.eq(mac.tx_start_lane),
            tags.r_en.eq(mac.tx_start),
        ]
        is_user, tag = mac.tx_start & tags.r_rdy, tags.r_data
        for stage in range(latency):
            is_user_next = Signal(name=f"tx_user_frame_{stage}")
            tag_next = Signal(len(tag), name=f"tx_tag_{stage}")
            m.d.tx += [is_user_next.eq(is_user), tag_next.eq(tag)]
            is_user, tag = is_user_next, tag_next

        out = self.tx_timestamp
        m.d.comb += [
            out.valid.eq(capture.timestamp.valid & is_user),
            out.payload.timestamp.eq(capture.timestamp.payload),
        ]
        if self._tag_width:
            m.d.comb += out.payload.tag.eq(tag)

    def _receive(self, m, mac):
        m.submodules.rx_capture = capture = DomainRenamer("rx")(
            PtpTimestampCapture(self._ts_format, self._period_ns))
        m.d.comb += [
            capture.tod.eq(self.rx_ptp_ts),
            capture.start.eq(mac.rx_start),
            capture.start_lane.eq(mac.rx_start_lane),
        ]

        # ``latest`` shows the timestamps of the starts at least RX_START_TO_FIRST_BEAT cycles
        # back: the capture takes LATENCY cycles and the register one more; delay the rest.
        pad = RX_START_TO_FIRST_BEAT - PtpTimestampCapture.LATENCY - 1
        assert pad >= 0, "the timestamp capture is too slow for the receive path"
        valid, payload = capture.timestamp.valid, capture.timestamp.payload
        for stage in range(pad):
            valid_next = Signal(name=f"rx_ts_valid_{stage}")
            payload_next = Signal.like(payload, name=f"rx_ts_{stage}")
            m.d.rx += [valid_next.eq(valid), payload_next.eq(payload)]
            valid, payload = valid_next, payload_next
        latest = Signal.like(capture.timestamp.payload)
        with m.If(valid):
            m.d.rx += latest.eq(payload)

        # The first beat of a frame takes ``latest``; the later beats repeat it.
        first = Signal(init=1)
        frame_ts = Signal.like(latest)
        beat = mac.rx.payload
        with m.If(mac.rx.valid):
            m.d.rx += first.eq(beat.last)
            with m.If(first):
                m.d.rx += frame_ts.eq(latest)
        user = data.View(RxPtpUser(self._ts_format), self.rx.payload.user)
        m.d.comb += [
            self.rx.valid.eq(mac.rx.valid),
            self.rx.payload.data.eq(beat.data),
            self.rx.payload.keep.eq(beat.keep),
            self.rx.payload.last.eq(beat.last),
            user.bad.eq(beat.user[0]),
            user.timestamp.eq(Mux(first, latest, frame_ts)),
        ]
