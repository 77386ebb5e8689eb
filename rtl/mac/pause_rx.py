"""Receive side of MAC Control flow control: PAUSE (IEEE 802.3 annex 31B) and PFC (annex 31D,
IEEE 802.1Qbb), working on the packet stream the MAC receiver delivers.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..stream import PacketLayout
from .flow_control import CONTROL_FRAME_LEN, CONTROL_HEADER_LEN, MacControlHeader, byte_reversed
from .ieee802_3 import (
    MAC_CONTROL_ETHERTYPE,
    PAUSE_DEST,
    PAUSE_OPCODE,
    PFC_OPCODE,
    PFC_PRIORITIES,
)
from .status import FlowControlEvent, FlowControlKind

__all__ = ["PauseTimer", "PauseReceiver"]

# The 48-bit addresses on ports are numbers in wire order, first octet in bits 47:40, so
# 01-80-C2-00-00-01 is 0x0180C2000001 (the same convention as ``ieee802_3.PAUSE_DEST``).
_ETHERTYPE_LAST_OCTET = 13  # octet 12-13 is the Length/Type field (clause 3.2.6)
_PAUSE_TIME_MAX = 0xFFFF


class PauseTimer(wiring.Component):
    """Counts down a pause time given in pause quanta (annex 31B.3.1, 31D.3).

    One pause quantum is 512 bit times (annex 31B.2); ``quantum_cycles`` says how many clock
    cycles that is (8 for a 64-bit datapath running at line rate, 64 for an octet-wide one).

    Parameters
    ----------
    quantum_cycles : int
        Clock cycles per pause quantum.

    Attributes
    ----------
    load : In(1)
        Start over with ``quanta``: ``active`` is then high for exactly
        ``quanta * quantum_cycles`` cycles, starting with the next cycle; ``quanta == 0`` makes
        ``active`` low on the next cycle (XON).
    quanta : In(16)
        The time to load, in pause quanta.
    clear : In(1)
        Stop at once (``active`` low from the next cycle); overrides ``load``.
    active : Out(1)
        The pause time has not run out yet.
    """

    def __init__(self, quantum_cycles):
        if quantum_cycles < 1:
            raise ValueError(f"a pause quantum must last at least one cycle, not {quantum_cycles}")
        self._quantum_cycles = quantum_cycles
        super().__init__({
            "load": In(1),
            "quanta": In(16),
            "clear": In(1),
            "active": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(range(_PAUSE_TIME_MAX * self._quantum_cycles + 1))
        with m.If(self.clear):
            m.d.sync += remaining.eq(0)
        with m.Elif(self.load):
            m.d.sync += remaining.eq(self.quanta * self._quantum_cycles)
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        m.d.comb += self.active.eq(remaining != 0)
        return m


class PauseReceiver(wiring.Component):
    """Acts on received PAUSE and PFC frames and (optionally) removes MAC Control frames.

    Watches the frames the MAC receiver delivers (without preamble and FCS). A frame is a valid
    flow-control frame when all of these hold (clause 31.4, annex 31B.3, annex 31D.3):

    - its last beat does not carry ``user[0]`` (the MAC found no FCS or framing error);
    - the Length/Type field (octets 12-13) is 0x8808 (MAC Control);
    - it is exactly 60 octets long (MAC Control frames are ``minFrameSize``, clause 31.4;
      this block rejects any other length rather than guess at padding);
    - the opcode (octets 14-15) is 0x0001 (PAUSE) or 0x0101 (PFC);
    - the destination is 01-80-C2-00-00-01, or equals ``station_addr`` when that is nonzero.

    A valid PAUSE frame reloads the link timer with ``pause_time`` (octets 16-17) when
    ``rx_pause_enable`` is set. A valid PFC frame reloads, when ``rx_pfc_enable`` is set, the
    timer of every priority ``p`` whose bit is set in the low octet (17) of the class-enable
    vector with ``time[p]`` (octets 18+2p, 19+2p); the reserved high octet is ignored. A time of
    0 ends the pause at once (XON). Any other frame leaves the timers alone: bad FCS, wrong
    length, wrong destination, unknown opcode.

    Clause 31.5 never hands MAC Control frames to the MAC client, so with ``drop_control``
    every frame whose Length/Type is 0x8808 is removed from ``o`` (valid or not, whatever its
    FCS status) and all other frames pass unchanged, byte for byte and in order: frames in =
    frames on ``o`` + control frames removed. The decision needs octet 13, so the first beats of
    every frame wait until the beat holding octet 13 arrives (or the frame ends before it): with
    back-to-back beats, ``o`` lags ``i`` by ``13 // (width // 8)`` cycles (1 cycle for 64 bits,
    none for 128 bits and wider), and the lag never grows. Without ``drop_control``, ``o`` is
    ``i`` (no register, no latency).

    The receive path cannot wait, so ``i`` and ``o`` are ``always_ready`` streams: ``i.ready``
    is constant 1 (an ordinary stream source may drive ``i``) and the consumer of ``o`` must
    take a beat in every cycle it is valid (the MAC's receive FIFO does, dropping on overflow).

    ``pfc_paused`` is for the transmit scheduler, which holds back traffic of a paused priority
    (IEEE 802.1Q clause 36, added by 802.1Qbb); this block only reports it. ``paused`` is for the
    :class:`~amnic.mac.pause_tx.PauseTransmitter` of the same port, after synchronizing it to
    the transmit clock.

    Parameters
    ----------
    width : int
        Data width of the packet streams, in bits.
    user_width : int
        Width of the ``user`` sideband; bit 0 marks a bad frame on its last beat.
    quantum_cycles : int
        Clock cycles per pause quantum of 512 bit times (8 for 64 bits at line rate).
    drop_control : bool
        Remove MAC Control frames from ``o``.

    Attributes
    ----------
    i : In(stream of PacketLayout, always_ready)
        Received frames, as delivered by the MAC.
    o : Out(stream of PacketLayout, always_ready)
        The same frames, less the MAC Control frames if ``drop_control``.
    station_addr : In(48)
        This station's MAC address (octet 0 in bits 47:40), also accepted as the destination
        of flow-control frames; 0 disables that.
    rx_pause_enable : In(1)
        Obey PAUSE frames; while low the link timer is stopped.
    rx_pfc_enable : In(1)
        Obey PFC frames; while low the per-priority timers are stopped.
    paused : Out(1)
        The link partner asked us to stop sending (link pause time running).
    pfc_paused : Out(8)
        Bit ``p``: the link partner asked us to stop sending priority ``p``.
    event : Out(stream of FlowControlEvent, always_ready)
        One event per valid PAUSE or PFC frame (whether or not it is obeyed), the cycle after
        its last beat: kind PAUSE with all priorities, or kind PFC with the class-enable vector.
    unknown_opcode_count : Out(32)
        Good 60-octet MAC Control frames whose opcode is neither PAUSE nor PFC (wraps).
    malformed_count : Out(32)
        Good MAC Control frames that are not 60 octets long, or PAUSE/PFC frames sent to a
        destination not accepted (wraps).
    """

    def __init__(self, width=64, *, user_width=1, quantum_cycles=8, drop_control=True):
        if user_width < 1:
            raise ValueError("the receive stream needs user bit 0 to flag bad frames")
        self._width = width
        self._drop_control = drop_control
        self._quantum_cycles = quantum_cycles
        layout = PacketLayout(width, user_width)
        super().__init__({
            "i": In(stream.Signature(layout, always_ready=True)),
            "o": Out(stream.Signature(layout, always_ready=True)),
            "station_addr": In(48),
            "rx_pause_enable": In(1, init=1),
            "rx_pfc_enable": In(1, init=1),
            "paused": Out(1),
            "pfc_paused": Out(PFC_PRIORITIES),
            "event": Out(stream.Signature(FlowControlEvent, always_ready=True)),
            "unknown_opcode_count": Out(32),
            "malformed_count": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        nbytes = self._width // 8

        # Position in the frame: the index of the beat on ``i`` (saturating).
        ethertype_beat = _ETHERTYPE_LAST_OCTET // nbytes
        last_beat = (CONTROL_FRAME_LEN - 1) // nbytes
        last_lanes = CONTROL_FRAME_LEN - last_beat * nbytes
        beat_index_max = max(ethertype_beat, last_beat) + 1
        beat_index = Signal(range(beat_index_max + 1))
        with m.If(i.valid):
            with m.If(i.payload.last):
                m.d.sync += beat_index.eq(0)
            with m.Elif(beat_index != beat_index_max):
                m.d.sync += beat_index.eq(beat_index + 1)

        # The header octets seen so far, including those on ``i`` in this cycle.
        header = Signal(MacControlHeader)
        header_now = Signal(MacControlHeader)
        m.d.comb += header_now.eq(header)
        for octet in range(CONTROL_HEADER_LEN):
            lane = i.payload.data[8 * (octet % nbytes) : 8 * (octet % nbytes) + 8]
            with m.If(i.valid & (beat_index == octet // nbytes)):
                m.d.comb += header_now.as_value()[8 * octet : 8 * octet + 8].eq(lane)
        m.d.sync += header.eq(header_now)

        # Octet 13 is on ``i`` now or was earlier in this frame (else ``header`` is stale there).
        ethertype_lane = _ETHERTYPE_LAST_OCTET % nbytes
        has_ethertype = (beat_index > ethertype_beat) | (
            (beat_index == ethertype_beat) & i.payload.keep[ethertype_lane])
        is_control = has_ethertype & (
            byte_reversed(header_now.ethertype) == MAC_CONTROL_ETHERTYPE)
        opcode = byte_reversed(header_now.opcode)
        destination = byte_reversed(header_now.destination)
        accepted_destination = (destination == PAUSE_DEST) | (
            (self.station_addr != 0) & (destination == self.station_addr))
        length_ok = (beat_index == last_beat) & (i.payload.keep == (1 << last_lanes) - 1)

        frame_end = i.valid & i.payload.last & ~i.payload.user[0] & is_control
        malformed = Signal()
        unknown_opcode = Signal()
        pause_frame = Signal()
        pfc_frame = Signal()
        with m.If(frame_end):
            with m.If(~length_ok):
                m.d.comb += malformed.eq(1)
            with m.Elif((opcode == PAUSE_OPCODE) | (opcode == PFC_OPCODE)):
                m.d.comb += [
                    malformed.eq(~accepted_destination),
                    pause_frame.eq(accepted_destination & (opcode == PAUSE_OPCODE)),
                    pfc_frame.eq(accepted_destination & (opcode == PFC_OPCODE)),
                ]
            with m.Else():
                m.d.comb += unknown_opcode.eq(1)

        with m.If(malformed):
            m.d.sync += self.malformed_count.eq(self.malformed_count + 1)
        with m.If(unknown_opcode):
            m.d.sync += self.unknown_opcode_count.eq(self.unknown_opcode_count + 1)

        # Timers: the link timer (annex 31B.3.1) and one per priority (annex 31D.3).
        class_enable = header_now.parameters.pfc.priority_enable_vector[1]
        m.submodules.link_timer = link_timer = PauseTimer(self._quantum_cycles)
        m.d.comb += [
            link_timer.load.eq(pause_frame),
            link_timer.quanta.eq(byte_reversed(header_now.parameters.pause.pause_time)),
            link_timer.clear.eq(~self.rx_pause_enable),
            self.paused.eq(link_timer.active),
        ]
        for priority in range(PFC_PRIORITIES):
            timer = PauseTimer(self._quantum_cycles)
            m.submodules[f"priority{priority}_timer"] = timer
            m.d.comb += [
                timer.load.eq(pfc_frame & class_enable[priority]),
                timer.quanta.eq(byte_reversed(header_now.parameters.pfc.time[priority])),
                timer.clear.eq(~self.rx_pfc_enable),
                self.pfc_paused[priority].eq(timer.active),
            ]

        m.d.sync += self.event.valid.eq(pause_frame | pfc_frame)
        with m.If(pause_frame):
            m.d.sync += [
                self.event.payload.kind.eq(FlowControlKind.PAUSE),
                self.event.payload.priorities.eq((1 << PFC_PRIORITIES) - 1),
            ]
        with m.If(pfc_frame):
            m.d.sync += [
                self.event.payload.kind.eq(FlowControlKind.PFC),
                self.event.payload.priorities.eq(class_enable),
            ]

        if not self._drop_control:
            m.d.comb += [o.valid.eq(i.valid), o.payload.eq(i.payload)]
            return m

        # Removal of MAC Control frames. The frame on ``i`` is "decided" once the beat with
        # octet 13 (or its last beat) has arrived; until then its beats wait in ``held``.
        decided = Signal()  # the current frame on ``i`` was decided by an earlier beat
        decided_drop = Signal()
        decide = i.valid & ~decided & ((beat_index == ethertype_beat) | i.payload.last)
        drop_now = (beat_index == ethertype_beat) & is_control
        with m.If(i.valid):
            with m.If(i.payload.last):
                m.d.sync += decided.eq(0)
            with m.Elif(decide):
                m.d.sync += [decided.eq(1), decided_drop.eq(drop_now)]
        incoming_decided = decided | decide
        incoming_drop = Mux(decided, decided_drop, drop_now)

        if ethertype_beat == 0:
            m.d.comb += [
                o.valid.eq(i.valid & ~incoming_drop),
                o.payload.eq(i.payload),
            ]
            return m

        # At most ``ethertype_beat`` beats ever wait: undecided beats all belong to the frame
        # on ``i`` (beats 0 .. ethertype_beat-1), and once the head is decided one beat leaves
        # in every cycle, at least as fast as beats arrive.
        depth = ethertype_beat
        entry_layout = data.StructLayout({
            "beat": PacketLayout(self._width, len(i.payload.user)),
            "pending": 1,  # its frame is not decided yet
            "drop": 1,
        })
        held = [Signal(entry_layout, name=f"held{n}") for n in range(depth)]
        count = Signal(range(depth + 1))

        head = held[0]
        head_leaves = (count != 0) & (~head.pending | decide)
        head_drop = Mux(head.pending, drop_now, head.drop)
        bypass = (count == 0) & i.valid & incoming_decided
        push = i.valid & ~bypass

        with m.If(count != 0):
            m.d.comb += [o.valid.eq(head_leaves & ~head_drop), o.payload.eq(head.beat)]
        with m.Else():
            m.d.comb += [o.valid.eq(bypass & ~incoming_drop), o.payload.eq(i.payload)]

        for n in range(depth):
            shifted = Signal(entry_layout, name=f"shifted{n}")
            if n + 1 < depth:
                m.d.comb += shifted.eq(Mux(head_leaves, held[n + 1], held[n]))
            else:
                m.d.comb += shifted.eq(Mux(head_leaves, 0, held[n]))
            write_here = push & Mux(head_leaves, count == n + 1, count == n)
            with m.If(write_here):
                m.d.sync += [
                    held[n].beat.eq(i.payload),
                    held[n].pending.eq(~incoming_decided),
                    held[n].drop.eq(incoming_drop),
                ]
            with m.Else():
                m.d.sync += held[n].eq(shifted)
                with m.If(decide & shifted.pending):
                    m.d.sync += [held[n].pending.eq(0), held[n].drop.eq(drop_now)]
        m.d.sync += count.eq(count + push - head_leaves)
        return m
