"""Transmit side of MAC Control flow control: sends PAUSE (IEEE 802.3 annex 31B) and PFC
(annex 31D, IEEE 802.1Qbb) frames between the user's frames, and holds the user's frames back
while the link partner has paused us.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketSignature
from .flow_control import CONTROL_FRAME_LEN, MacControlFrame, byte_reversed
from .ieee802_3 import MAC_CONTROL_ETHERTYPE, PAUSE_DEST, PAUSE_OPCODE, PFC_OPCODE, PFC_PRIORITIES
from .status import FlowControlEvent, FlowControlKind

__all__ = ["ControlRequest", "PauseTransmitter", "default_refresh_cycles"]

_PAUSE_TIME_MAX = 0xFFFF
_ALL_PRIORITIES = (1 << PFC_PRIORITIES) - 1


def default_refresh_cycles(quantum_cycles):
    """Reset value of ``refresh_cycles``: half the longest pause time, in clock cycles."""
    return max(1, _PAUSE_TIME_MAX * quantum_cycles // 2)


class ControlRequest(data.Struct):
    """What one flow-control frame says.

    ``class_enable`` lists the priorities the frame speaks for (all ones for PAUSE); those in
    ``xoff`` are asked to pause for ``quanta`` pause quanta, the others to resume (time 0).
    A PAUSE frame uses bit 0 of ``xoff``.
    """

    kind: FlowControlKind
    class_enable: PFC_PRIORITIES
    xoff: PFC_PRIORITIES
    quanta: 16


def control_frame(m, request, station_addr):
    """The 60 octets of the MAC Control frame for ``request`` (a :class:`ControlRequest`).

    Returns a combinational :class:`MacControlFrame` signal: destination 01-80-C2-00-00-01,
    source ``station_addr`` (octet 0 in bits 47:40), Length/Type 0x8808, the opcode and its
    parameters (annex 31B.2 / 31D.2), reserved octets zero. The MAC appends the FCS.
    """
    frame = Signal(MacControlFrame)
    header = frame.header
    m.d.comb += [
        header.destination.eq(byte_reversed(Const(PAUSE_DEST, 48))),
        header.source.eq(byte_reversed(station_addr)),
        header.ethertype.eq(byte_reversed(Const(MAC_CONTROL_ETHERTYPE, 16))),
    ]
    with m.If(request.kind == FlowControlKind.PAUSE):
        m.d.comb += [
            header.opcode.eq(byte_reversed(Const(PAUSE_OPCODE, 16))),
            header.parameters.pause.pause_time.eq(
                byte_reversed(Mux(request.xoff[0], request.quanta, 0))),
        ]
    with m.Else():
        pfc = header.parameters.pfc
        m.d.comb += [
            header.opcode.eq(byte_reversed(Const(PFC_OPCODE, 16))),
            pfc.priority_enable_vector.eq(byte_reversed(Cat(request.class_enable, Const(0, 8)))),
        ]
        for priority in range(PFC_PRIORITIES):
            xoff = request.xoff[priority] & request.class_enable[priority]
            m.d.comb += pfc.time[priority].eq(byte_reversed(Mux(xoff, request.quanta, 0)))
    return frame


class PauseTransmitter(wiring.Component):
    """Sends PAUSE and PFC frames on request, merged with the user's frames.

    **Requests.** While ``pause_req & tx_pause_enable`` is high the link partner is kept in
    XOFF: a PAUSE frame with ``pause_time = pause_quanta`` goes out, and again every
    ``refresh_cycles`` cycles (start to start, when the output is free) so the partner's timer
    never runs out; when the request falls, a PAUSE frame with time 0 (XON) releases it at once
    (annex 31B.3.2). PFC (annex 31D) works the same per priority with ``pfc_req & tx_pfc_enable``:
    whenever a priority's request changes a PFC frame goes out whose class-enable vector holds
    the changed priorities and every priority still requested; requested priorities get
    ``pause_quanta``, released ones 0. The requested priorities are refreshed together, every
    ``refresh_cycles``. A request that rises and falls again before its frame could start sends
    nothing. Turning an enable off while the partner is held in XOFF sends the XON.

    **Merging.** Control frames are 60 octets (``minFrameSize`` without FCS; the MAC appends
    it) and go first, but only between user frames: a user frame, once its first beat has
    left, is sent whole. PAUSE goes before PFC when both are due. No beat of ``i`` is changed,
    dropped or reordered.

    **Being paused.** While ``paused`` (the link partner's PAUSE, from
    :class:`~amnic.mac.pause_rx.PauseReceiver`, synchronized to this clock) is high no user frame
    starts; one in progress completes, and control frames still go out (annex 31B.3.3). Holding
    back single priorities on PFC is the transmit scheduler's job: it reads the receiver's
    ``pfc_paused``.

    ``o`` is a registered stream: every beat on ``o`` waits in a register, so ``o`` lags ``i``
    by one cycle and back-pressure on ``o`` reaches ``i.ready`` combinationally.

    Parameters
    ----------
    width : int
        Data width of the packet streams, in bits.
    user_width : int
        Width of the ``user`` sideband (passed through; 0 on control frames).
    quantum_cycles : int
        Clock cycles per pause quantum of 512 bit times (8 for 64 bits at line rate); sets the
        reset value of ``refresh_cycles``.

    Attributes
    ----------
    i : In(PacketSignature)
        The user's frames.
    o : Out(PacketSignature)
        To the MAC transmitter: the user's frames and the control frames.
    station_addr : In(48)
        Source address of the control frames (octet 0 in bits 47:40).
    pause_req : In(1)
        Keep the link partner paused (link-level XOFF) while high.
    pfc_req : In(8)
        Bit ``p``: keep priority ``p`` of the link partner paused while high.
    pause_quanta : In(16)
        Pause time sent with XOFF, in quanta; 0xFFFF after reset.
    refresh_cycles : In(32)
        Cycles between the starts of repeated XOFF frames while a request stays high; after
        reset half of 0xFFFF quanta, so the partner is refreshed well before it would resume
        (0 sends them back to back).
    tx_pause_enable : In(1)
        Allow link-level PAUSE requests.
    tx_pfc_enable : In(1)
        Allow PFC requests.
    paused : In(1)
        The link partner paused us: start no user frame.
    event : Out(stream of FlowControlEvent, always_ready)
        One event per control frame, the cycle after its last beat left on ``o``: kind PAUSE
        with all priorities, or kind PFC with the class-enable vector.
    """

    def __init__(self, width=64, *, user_width=1, quantum_cycles=8):
        if width % 8 or width <= 0:
            raise ValueError(f"packet data width must be a positive multiple of 8, not {width}")
        self._width = width
        self._quantum_cycles = quantum_cycles
        refresh_init = default_refresh_cycles(quantum_cycles)
        super().__init__({
            "i": In(PacketSignature(width, user_width)),
            "o": Out(PacketSignature(width, user_width)),
            "station_addr": In(48),
            "pause_req": In(1),
            "pfc_req": In(PFC_PRIORITIES),
            "pause_quanta": In(16, init=_PAUSE_TIME_MAX),
            "refresh_cycles": In(32, init=refresh_init),
            "tx_pause_enable": In(1, init=1),
            "tx_pfc_enable": In(1, init=1),
            "paused": In(1),
            "event": Out(stream.Signature(FlowControlEvent, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        nbytes = self._width // 8

        # What the link partner was last told, and how long ago an XOFF went out.
        want_pause = self.pause_req & self.tx_pause_enable
        want_pfc = Mux(self.tx_pfc_enable, self.pfc_req, 0)
        told_pause = Signal()
        told_pfc = Signal(PFC_PRIORITIES)
        pause_age = Signal(32)
        pfc_age = Signal(32)
        for age in (pause_age, pfc_age):
            with m.If(age != (1 << 32) - 1):
                m.d.sync += age.eq(age + 1)
        pause_due = (want_pause != told_pause) | (told_pause & (pause_age >= self.refresh_cycles))
        pfc_due = (want_pfc != told_pfc) | ((told_pfc != 0) & (pfc_age >= self.refresh_cycles))
        control_due = pause_due | pfc_due

        due_request = Signal(ControlRequest)
        m.d.comb += due_request.quanta.eq(self.pause_quanta)
        with m.If(pause_due):
            m.d.comb += [
                due_request.kind.eq(FlowControlKind.PAUSE),
                due_request.class_enable.eq(_ALL_PRIORITIES),
                due_request.xoff.eq(want_pause),
            ]
        with m.Else():
            m.d.comb += [
                due_request.kind.eq(FlowControlKind.PFC),
                due_request.class_enable.eq((want_pfc ^ told_pfc) | want_pfc),
                due_request.xoff.eq(want_pfc),
            ]

        # The control frame being sent (or about to start), cut into beats.
        sending = Signal(ControlRequest)  # latched when a control frame starts
        request = Signal(ControlRequest)
        nbeats = -(-CONTROL_FRAME_LEN // nbytes)
        last_lanes = CONTROL_FRAME_LEN - (nbeats - 1) * nbytes
        beat_index = Signal(range(nbeats))
        frame = control_frame(m, request, self.station_addr)
        frame_bits = Cat(frame.as_value(), Const(0, nbeats * self._width - len(frame.as_value())))
        control_beat = Signal.like(o.payload)
        m.d.comb += [
            control_beat.data.eq(frame_bits.word_select(beat_index, self._width)),
            control_beat.keep.eq(Mux(beat_index == nbeats - 1, (1 << last_lanes) - 1,
                                     (1 << nbytes) - 1)),
            control_beat.last.eq(beat_index == nbeats - 1),
        ]

        # The output register and what it holds.
        can_load = ~o.valid | o.ready
        counter = Signal(range(nbeats), init=min(1, nbeats - 1))  # next beat of a control frame
        o_control = Signal()  # the beat in ``o`` belongs to a control frame
        with m.FSM(name="source"):
            with m.State("IDLE"):
                m.d.comb += [request.eq(due_request), beat_index.eq(0)]
                m.d.comb += i.ready.eq(can_load & ~control_due & ~self.paused)
                with m.If(can_load):
                    with m.If(control_due):
                        m.d.sync += [
                            sending.eq(due_request),
                            o.payload.eq(control_beat),
                            o.valid.eq(1),
                            o_control.eq(1),
                        ]
                        with m.If(pause_due):
                            m.d.sync += told_pause.eq(want_pause)
                            with m.If(want_pause):
                                m.d.sync += pause_age.eq(1)
                        with m.Else():
                            m.d.sync += told_pfc.eq(want_pfc)
                            with m.If(want_pfc != 0):
                                m.d.sync += pfc_age.eq(1)
                        if nbeats > 1:
                            m.next = "CONTROL"
                    with m.Elif(i.valid & ~self.paused):
                        m.d.sync += [o.payload.eq(i.payload), o.valid.eq(1), o_control.eq(0)]
                        with m.If(~i.payload.last):
                            m.next = "USER"
                    with m.Else():
                        m.d.sync += o.valid.eq(0)

            with m.State("USER"):
                m.d.comb += i.ready.eq(can_load)
                with m.If(can_load):
                    m.d.sync += [o.payload.eq(i.payload), o.valid.eq(i.valid)]
                    with m.If(i.valid & i.payload.last):
                        m.next = "IDLE"

            if nbeats > 1:
                with m.State("CONTROL"):
                    m.d.comb += [request.eq(sending), beat_index.eq(counter)]
                    with m.If(can_load):
                        m.d.sync += [o.payload.eq(control_beat), o.valid.eq(1)]
                        with m.If(counter == nbeats - 1):
                            m.d.sync += counter.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += counter.eq(counter + 1)

        m.d.sync += [
            self.event.valid.eq(o.valid & o.ready & o.payload.last & o_control),
            self.event.payload.kind.eq(sending.kind),
            self.event.payload.priorities.eq(sending.class_enable),
        ]
        return m
