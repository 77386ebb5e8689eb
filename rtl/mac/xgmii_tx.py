"""64-bit XGMII transmitter: the transmit half of a 10G/25G MAC and reconciliation sublayer.

IEEE 802.3 clause 46 (XGMII, RS) and clause 4 (MAC transmit). Frames start with /S/ on lane 0
or lane 4, are followed by /T/ and idles, and the deficit idle count (clause 46.3.1.4) keeps the
mean inter-packet gap at exactly the configured value while aligning each start.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.stream import PacketSignature

from .ieee802_3 import DIC_MAX, IPG_MIN, XGMII_ERROR, XGMII_IDLE, XGMII_TERMINATE
from .status import TxStatus
from .tx_framer import TxFramer
from .xgmii import LANES, XgmiiTxSignature, idle_word, lane, preamble_word

__all__ = ["XgmiiTransmitter"]


class _State(enum.Enum, shape=2):
    IDLE = 0  # inter-packet gap; may start a frame
    DATA = 1  # sending frame words
    TERMINATE = 2  # the frame's /T/ did not fit into its last word: send it now
    DISCARD = 3  # an underrun ended the frame early: drop the rest of the packet


class XgmiiTransmitter(wiring.Component):
    """Frame packets onto a 64-bit XGMII: preamble, padding, FCS, /T/, gap with DIC.

    All logic runs in the ``sync`` domain (rename it to the XGMII transmit clock).

    Attributes
    ----------
    i : In(PacketSignature(64))
        Packets to send, without preamble or FCS. ``user[0]`` on the last beat marks a packet
        bad: it is sent ending in /E/ characters so the far end discards it. The source must
        keep up once a packet has started (as a cut-through MAC requires): a beat that is not
        valid when needed is an *underrun*: the frame is ended with /E/ and the rest of the
        packet is dropped. Put a packet FIFO in front when the source may stall.
    xgmii : Out(XgmiiTxSignature)
        ``txd``/``txc``, registered.
    ifg : In(8)
        Inter-packet gap in bytes, /T/ included (init 12; values below 12 count as 12). The
        mean gap over back-to-back frames equals it exactly; single gaps vary by up to 3 bytes.
    status : Out(stream.Signature(TxStatus, always_ready=True))
        One record per frame, valid for one cycle after its /T/ left (the payload means
        nothing while ``valid`` is low).
    start : Out(1)
        High for the cycle in which ``txd`` carries a frame's /S/ (for timestamping).
    start_lane : Out(1)
        With ``start``: 0 when /S/ is on lane 0, 1 when on lane 4.

    Latency: a packet's first beat is accepted in the cycle /S/ is decided, and /S/ appears
    on ``txd`` one cycle later.
    """

    i: In(PacketSignature(64))
    xgmii: Out(XgmiiTxSignature)
    ifg: In(8, init=IPG_MIN)
    status: Out(stream.Signature(TxStatus, always_ready=True))
    start: Out(1)
    start_lane: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.framer = framer = TxFramer(64)
        wiring.connect(m, wiring.flipped(self.i), framer.i)
        w = framer.o

        idle_d, idle_c = idle_word()
        pre_d, pre_c = preamble_word()
        state = Signal(_State)
        shift = Signal()  # current frame started on lane 4: wire = [hold, unshifted.lo]
        hold_d = Signal(32, init=idle_d.value & 0xFFFFFFFF)
        hold_c = Signal(4, init=0xF)
        gap = Signal(range(-32, 512))  # bytes of gap still owed, from the next word's lane 0
        deficit = Signal(range(DIC_MAX + 1))
        length = Signal(16)
        bad = Signal()
        underrun = Signal()
        bcast = Signal()
        mcast = Signal()
        vlan = Signal()

        # The unshifted word produced this cycle (frame aligned to lane 0).
        u_d = Signal(64)
        u_c = Signal(8)
        m.d.comb += [u_d.eq(idle_d), u_c.eq(idle_c)]
        # /T/ leaves in this unshifted word at lane `t_lane`.
        t_now = Signal()
        t_lane = Signal(range(LANES))
        new_shift = Signal()
        starting = Signal()

        # When the gap allows, a frame starts as soon as the framer has (or is taking) a word.
        frame_ready = w.valid | (framer.i.valid & framer.i.ready)
        lane0_ok = gap <= 0
        lane4_ok = gap <= 4

        # Mask of data lanes of the framer word, and the word with bad lanes turned into /E/.
        lane_valid = Signal(LANES)
        for n in range(LANES):
            m.d.comb += lane_valid[n].eq(n < w.payload.count)
        err_d = Cat(*[Const(XGMII_ERROR, 8) for _ in range(LANES)])

        with m.Switch(state):
            with m.Case(_State.IDLE):
                with m.If(frame_ready & (lane0_ok | lane4_ok)):
                    m.d.comb += [
                        starting.eq(1), new_shift.eq(~lane0_ok), u_d.eq(pre_d), u_c.eq(pre_c),
                    ]
                    m.d.sync += [
                        state.eq(_State.DATA), length.eq(0), bad.eq(0), underrun.eq(0),
                    ]
                with m.Elif(lane4_ok):
                    # Nothing to send although the gap is over: the DIC restarts from zero.
                    m.d.sync += deficit.eq(0)
            with m.Case(_State.DATA):
                m.d.comb += w.ready.eq(1)
                with m.If(~w.valid):
                    # Underrun: poison the frame, terminate it next cycle, drop the rest.
                    m.d.comb += [u_d.eq(err_d), u_c.eq(0xFF)]
                    m.d.sync += [state.eq(_State.TERMINATE), underrun.eq(1)]
                with m.Else():
                    m.d.sync += length.eq(length + w.payload.count)
                    with m.If(length == 0):
                        m.d.sync += [
                            bcast.eq(w.payload.data[:48] == (1 << 48) - 1),
                            mcast.eq(w.payload.data[0] & (w.payload.data[:48] != (1 << 48) - 1)),
                        ]
                    with m.If(length == 8):
                        m.d.sync += vlan.eq(w.payload.data[32:48] == 0x0081)
                    # Data lanes, then /T/ at the first free lane, then idles.
                    for n in range(LANES):
                        data_n = Mux(w.payload.error, XGMII_ERROR, lane(w.payload.data, n))
                        ctrl_n = w.payload.error
                        with m.If(lane_valid[n]):
                            m.d.comb += [u_d[8 * n: 8 * n + 8].eq(data_n), u_c[n].eq(ctrl_n)]
                        with m.Elif(w.payload.last & (n == w.payload.count)):
                            m.d.comb += [
                                u_d[8 * n: 8 * n + 8].eq(XGMII_TERMINATE), u_c[n].eq(1),
                            ]
                        with m.Else():
                            m.d.comb += [
                                u_d[8 * n: 8 * n + 8].eq(XGMII_IDLE), u_c[n].eq(1),
                            ]
                    with m.If(w.payload.last):
                        m.d.sync += bad.eq(w.payload.error)
                        with m.If(w.payload.count == LANES):
                            m.d.sync += state.eq(_State.TERMINATE)
                        with m.Else():
                            m.d.comb += [t_now.eq(1), t_lane.eq(w.payload.count)]
                            m.d.sync += state.eq(_State.IDLE)
            with m.Case(_State.TERMINATE):
                m.d.comb += [
                    u_d[:8].eq(XGMII_TERMINATE), u_c[0].eq(1), t_now.eq(1), t_lane.eq(0),
                ]
                m.d.sync += state.eq(Mux(underrun, _State.DISCARD, _State.IDLE))
            with m.Case(_State.DISCARD):
                m.d.comb += w.ready.eq(1)
                with m.If(w.valid & w.payload.last):
                    m.d.sync += state.eq(_State.IDLE)

        # Gap bookkeeping with the deficit idle count (802.3 clause 46.3.1.4).
        ifg = Mux(self.ifg < IPG_MIN, IPG_MIN, self.ifg)
        with m.If(t_now):
            pos = t_lane + Mux(shift, 4, 0)  # wire lane of /T/, from this word's lane 0
            raw = Signal(range(512))
            m.d.comb += raw.eq(pos + ifg)
            rem = raw[:2]
            with m.If(rem == 0):
                m.d.sync += gap.eq(raw - LANES)
            with m.Elif(deficit + rem <= DIC_MAX):
                m.d.sync += [gap.eq(raw - rem - LANES), deficit.eq(deficit + rem)]
            with m.Else():
                m.d.sync += [gap.eq(raw + 4 - rem - LANES), deficit.eq(deficit + rem - 4)]
        with m.Elif(~starting & (gap > -LANES)):
            m.d.sync += gap.eq(gap - LANES)

        # Lane-4 alignment and the registered XGMII output.
        cur_shift = Mux(starting, new_shift, shift)
        with m.If(starting):
            m.d.sync += shift.eq(new_shift)
        m.d.sync += [
            self.xgmii.txd.eq(Mux(cur_shift, Cat(hold_d, u_d[:32]), u_d)),
            self.xgmii.txc.eq(Mux(cur_shift, Cat(hold_c, u_c[:4]), u_c)),
            hold_d.eq(u_d[32:]),
            hold_c.eq(u_c[4:]),
            self.start.eq(starting),
        ]
        # The frame that starts on txd now set `shift` in the cycle before.
        m.d.comb += self.start_lane.eq(self.start & shift)

        # One status record per frame, the cycle after its /T/ was emitted. By then the frame's
        # registers hold their final values (the last word's bytes and error are in), so the
        # record reads them directly.
        m.d.sync += self.status.valid.eq(t_now)
        st = self.status.payload
        m.d.comb += [
            st.length.eq(length),
            st.good.eq(~bad & ~underrun),
            st.bad.eq(bad & ~underrun),
            st.underrun.eq(underrun),
            st.broadcast.eq(bcast),
            st.multicast.eq(mcast),
            st.vlan.eq(vlan),
        ]
        return m
