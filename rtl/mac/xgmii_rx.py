"""64-bit XGMII receiver: the receive half of a 10G/25G MAC and reconciliation sublayer.

IEEE 802.3 clause 46 (XGMII, RS) and clause 4.2.4 (MAC receive): finds /S/ on lane 0 or 4,
checks preamble and SFD, strips them and the FCS, checks the FCS (clause 3.2.9), length limits
(clause 4.2.4.2) and control characters inside the frame.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketLayout

from .crc import Crc32, crc32_update_reference
from .ieee802_3 import (
    CRC32_RESIDUE,
    FCS_LEN,
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    PREAMBLE_BYTE,
    SFD,
    XGMII_START,
    XGMII_TERMINATE,
)
from .status import RxStatus
from .xgmii import LANES, XgmiiRxSignature, lane

__all__ = ["XgmiiReceiver"]

VLAN_TAG_LEN = 4


def _first_lanes_mask(count):
    """A 64-bit mask of the first ``count`` byte lanes."""
    return Cat(*[Mux(count > n, 0xFF, 0x00) for n in range(LANES)])


class _State(enum.Enum, shape=2):
    IDLE = 0  # looking for /S/
    DATA = 1  # receiving a frame
    DROP = 2  # frame cut (oversize): counting bytes up to its end


class XgmiiReceiver(wiring.Component):
    """Receive frames from a 64-bit XGMII and check them.

    All logic runs in the ``sync`` domain (rename it to the XGMII receive clock).

    Attributes
    ----------
    xgmii : Out(XgmiiRxSignature)
        ``rxd``/``rxc`` from the PCS.
    o : Out(stream.Signature(PacketLayout(64), always_ready=True))
        Received frames without preamble, SFD or FCS. The MAC cannot wait: there is no
        ``ready``. ``user[0]`` on the last beat is set when the frame is bad (any error in
        ``status``); its bytes are delivered so a monitor can inspect them. A frame with no
        byte besides its FCS is not delivered (it still has a status record).
    max_frame : In(16)
        Largest good frame in bytes, destination address through FCS (init 1518; 802.1Q-tagged
        frames may be 4 bytes longer). Longer frames are cut there, flagged and counted.
    status : Out(stream.Signature(RxStatus, always_ready=True))
        One record per frame that started with /S/ (misaligned or broken starts included, with
        ``framing_error``), valid for one cycle at the frame's end.
    start : Out(1)
        High for the cycle in which the /S/ of a frame is on ``rxd`` (for timestamping).
    start_lane : Out(1)
        With ``start``: 0 for lane 0, 1 for lane 4.

    Latency: the first beat of a frame is valid on ``o`` 4 cycles after its /S/ is on ``rxd``.
    """

    xgmii: Out(XgmiiRxSignature)
    o: Out(stream.Signature(PacketLayout(64), always_ready=True))
    max_frame: In(16, init=MAX_FRAME_LEN)
    status: Out(stream.Signature(RxStatus, always_ready=True))
    start: Out(1)
    start_lane: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Crc32(64)

        cur_d, cur_c = self.xgmii.rxd, self.xgmii.rxc
        prev_d = Signal(64)
        prev_c = Signal(8)
        m.d.sync += [prev_d.eq(cur_d), prev_c.eq(cur_c)]

        state = Signal(_State)
        shift = Signal()
        # The 8 frame bytes at hand: the previous word, or for lane-4 frames its upper half
        # followed by the lower half of the current word.
        v_d = Signal(64)
        v_c = Signal(8)

        def view(sh):
            return (Mux(sh, Cat(prev_d[32:], cur_d[:32]), prev_d),
                    Mux(sh, Cat(prev_c[4:], cur_c[:4]), prev_c))

        # Where a frame can start: /S/ in lane 0 or 4 of the previous word.
        def is_start(n):
            return prev_c[n] & (lane(prev_d, n) == XGMII_START)

        start0, start4 = is_start(0), is_start(4)
        start_any = Signal()
        m.d.comb += start_any.eq(
            start0 | start4 | Cat(*[is_start(n) for n in (1, 2, 3, 5, 6, 7)]).any())
        new_shift = ~start0
        m.d.comb += Cat(v_d, v_c).eq(Cat(*view(Mux(state == _State.IDLE, new_shift, shift))))

        # First control character in the view, and whether it is /T/.
        first_ctrl = Signal(range(LANES + 1))
        m.d.comb += first_ctrl.eq(LANES)
        for n in reversed(range(LANES)):
            with m.If(v_c[n]):
                m.d.comb += first_ctrl.eq(n)
        ends_ok = Signal()  # the first control character is /T/
        for n in range(LANES):
            with m.If(first_ctrl == n):
                m.d.comb += ends_ok.eq(lane(v_d, n) == XGMII_TERMINATE)

        length = Signal(16)  # bytes of the frame so far, DA through FCS, saturating
        held = Signal(64)  # previous 8 frame bytes, delivered once the next ones are seen
        held_valid = Signal()
        # The frame's last, partial beat, in `held`, follows the full beat before it one cycle
        # later (then the receiver is idle and `held` is free): its lanes and bad flag.
        tail_valid = Signal()
        tail_lanes = Signal(range(1, LANES - FCS_LEN))
        tail_user = Signal()
        bcast = Signal()
        mcast = Signal()
        vlan = Signal()
        oversize = Signal()

        max_len = self.max_frame + Mux(vlan, VLAN_TAG_LEN, 0)
        count_here = first_ctrl  # frame bytes in the view: those before its first control
        new_length = Signal(17)
        m.d.comb += new_length.eq(length + count_here)
        length_sat = Mux(new_length[16], 0xFFFF, new_length[:16])

        o = self.o.payload
        # Valid lanes of the beat on `o`, less one (a beat has 1 to 8): `keep` is decoded from
        # it, since the lanes of a beat are contiguous from lane 0.
        o_lanes_m1 = Signal(range(LANES))
        m.d.comb += o.keep.eq(Cat(*[o_lanes_m1 >= n for n in range(LANES)]))
        m.d.sync += [self.o.valid.eq(0), self.status.valid.eq(0)]

        def emit(data_, lanes, last, user):
            """Put a beat of `lanes` (1 to 8) lanes on `o` in the next cycle."""
            m.d.sync += [
                self.o.valid.eq(1), o.data.eq(data_), o_lanes_m1.eq(lanes - 1), o.last.eq(last),
                o.user.eq(user),
            ]

        with m.If(tail_valid):
            emit(held, tail_lanes, 1, tail_user)
            m.d.sync += tail_valid.eq(0)

        def report(*, unstarted=False, **flags):
            """Status of the frame ending now; ``unstarted``: it never got past its start
            (bad preamble/SFD or a misaligned /S/), so it has no length and no addresses."""
            st = self.status.payload
            m.d.sync += self.status.valid.eq(1)
            if unstarted:
                m.d.sync += [st.length.eq(0), st.broadcast.eq(0), st.multicast.eq(0),
                             st.vlan.eq(0)]
            else:
                m.d.sync += [
                    st.length.eq(length_sat),
                    st.broadcast.eq(bcast), st.multicast.eq(mcast), st.vlan.eq(vlan),
                ]
            values = [flags.get(name, 0) for name in ("fcs_error", "framing_error", "runt",
                                                       "oversize")]
            m.d.sync += [
                st.fcs_error.eq(values[0]), st.framing_error.eq(values[1]),
                st.runt.eq(values[2]), st.oversize.eq(values[3]),
                st.good.eq(~Cat(*values).any()),
            ]

        # The FCS check always runs a whole word through the CRC, with the lanes from /T/ on
        # zeroed: a good frame then leaves the 802.3 residue advanced by those zero bytes
        # (one constant per /T/ lane), which is far smaller than a CRC per byte count.
        m.d.comb += [crc.data.eq(v_d & _first_lanes_mask(count_here)), crc.count.eq(LANES)]
        residue = Signal(32)
        with m.Switch(first_ctrl):
            for n in range(LANES + 1):
                with m.Case(n):
                    zeros = bytes(LANES - n) if n < LANES else b""
                    m.d.comb += residue.eq(crc32_update_reference(CRC32_RESIDUE, zeros))

        with m.Switch(state):
            with m.Case(_State.IDLE):
                preamble_ok = (v_c == 0x01) & (lane(v_d, 7) == SFD)
                for n in range(1, 7):
                    preamble_ok &= lane(v_d, n) == PREAMBLE_BYTE
                with m.If(start0 | start4):
                    m.d.sync += [
                        length.eq(0), held_valid.eq(0), shift.eq(new_shift), vlan.eq(0),
                        oversize.eq(0), bcast.eq(0), mcast.eq(0),
                    ]
                    m.d.comb += crc.clear.eq(1)
                    with m.If(preamble_ok):
                        m.d.sync += state.eq(_State.DATA)
                    with m.Else():
                        report(unstarted=True, framing_error=1)
                with m.Elif(start_any):
                    # /S/ on a lane where no frame may start (802.3 clause 46.3.1.2).
                    report(unstarted=True, framing_error=1)
            with m.Case(_State.DATA):
                m.d.comb += crc.valid.eq(1)
                m.d.sync += length.eq(length_sat)
                with m.If(length == 0):
                    m.d.sync += [
                        bcast.eq(v_d[:48] == (1 << 48) - 1),
                        mcast.eq(v_d[0] & (v_d[:48] != (1 << 48) - 1)),
                    ]
                with m.If(length == 8):
                    m.d.sync += vlan.eq(v_d[32:48] == 0x0081)
                with m.If(first_ctrl == LANES):
                    # Eight frame bytes; deliver the previous eight.
                    with m.If(new_length > max_len):
                        # Too long: cut here, deliver what we have as a bad frame.
                        with m.If(held_valid):
                            emit(held, LANES, 1, 1)
                        m.d.sync += [state.eq(_State.DROP), oversize.eq(1)]
                    with m.Else():
                        with m.If(held_valid):
                            emit(held, LANES, 0, 0)
                        m.d.sync += [held.eq(v_d), held_valid.eq(1)]
                with m.Else():
                    n = first_ctrl
                    fcs_bad = crc.next != residue
                    runt = new_length < MIN_FRAME_LEN
                    toolong = new_length > max_len
                    framing = ~ends_ok
                    bad = fcs_bad | runt | toolong | framing
                    m.d.sync += state.eq(_State.IDLE)
                    report(fcs_error=fcs_bad & ends_ok, framing_error=framing, runt=runt,
                           oversize=toolong)
                    with m.If(framing):
                        # /E/ or another control character: the frame ends here, bad.
                        with m.If(held_valid):
                            emit(held, LANES, 1, 1)
                    with m.Elif(held_valid):
                        with m.If(n < FCS_LEN):
                            # The FCS began inside the held bytes.
                            emit(held, n + FCS_LEN, 1, bad)
                        with m.Else():
                            emit(held, LANES, n == FCS_LEN, Mux(n == FCS_LEN, bad, 0))
                            with m.If(n > FCS_LEN):
                                m.d.sync += [
                                    held.eq(v_d), tail_valid.eq(1),
                                    tail_lanes.eq(n - FCS_LEN), tail_user.eq(bad),
                                ]
                    with m.Elif(n > FCS_LEN):
                        # A frame of under 8 bytes: deliver its bytes before the FCS, bad.
                        emit(v_d, n - FCS_LEN, 1, 1)
            with m.Case(_State.DROP):
                m.d.sync += length.eq(length_sat)
                with m.If(first_ctrl != LANES):
                    m.d.sync += state.eq(_State.IDLE)
                    report(oversize=1, framing_error=~ends_ok)

        # /S/ was on rxd one cycle before it reached prev_d: flag it from the current word.
        m.d.comb += [
            self.start.eq((cur_c[0] & (lane(cur_d, 0) == XGMII_START))
                          | (cur_c[4] & (lane(cur_d, 4) == XGMII_START))),
            self.start_lane.eq(~(cur_c[0] & (lane(cur_d, 0) == XGMII_START))),
        ]
        return m
