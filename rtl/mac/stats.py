"""MAC statistics: 64-bit frame, octet, error, flow-control and size counters behind registers.

The MAC datapaths report one status record per frame (:mod:`amnic.mac.status`) and one event
per PAUSE/PFC frame; :class:`MacStatistics` counts them in four
:class:`~amnic.csr.counters.CounterBank` RAMs (receive, receive flow control, transmit,
transmit flow control), each with its own increment engine, and serves them on the register bus
(:mod:`amnic.csr.bus`). The register map is :data:`REGISTERS`, generated from the counter lists
below; the hardware decodes its bus from the same description.

Counter definitions follow IEEE 802.3 clause 30 (managed objects) and RMON (RFC 2819):

* "good" frames are those with no error flag (``good`` set); every other frame is "bad". So
  ``frames_good + frames_bad`` is every frame that started, and an error frame is counted once
  in ``frames_bad`` and once more under each reason flagged.
* Octet counters count destination address through FCS (RMON ``etherStatsOctets``), not the
  clause 30 ``aOctets*OK`` data-only count.
* Broadcast, multicast and VLAN counters count good frames only (clause 30
  ``aBroadcastFramesReceivedOK``...); size bins count good and bad frames by length (RMON
  ``etherStatsPkts64Octets``...). A frame shorter than 64 octets falls in no bin; receive
  counts it as a runt, transmit as undersize.
* Flow-control counters count MAC Control frames (802.3 annex 31B PAUSE, 802.1Qbb / annex 31D
  PFC); a PFC frame adds one to the counter of every priority its class-enable vector names.

Rate: each bank applies one increment per cycle. A frame status that keeps its contract
(``good`` exactly when no error flag is set) bumps at most 7 counters and a flow-control event
at most 8, so one receive status, one transmit status and one flow-control
event per direction every 8 cycles (minimum-size frames at 10 Gb/s on a 64-bit datapath) are
counted with no loss. Bursts faster than that queue in each bank's FIFO; an event that finds it
full is counted in the ``*_lost`` registers instead of vanishing.
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from amnic.csr.bus import RegisterBusSignature
from amnic.csr.counters import CounterBank
from amnic.csr.ids import MAC_STATISTICS
from amnic.csr.regmap import Access, Field, Register, RegisterBlock, version

from .ieee802_3 import MAX_FRAME_LEN, MIN_FRAME_LEN, PFC_PRIORITIES
from .status import FlowControlEvent, FlowControlKind, RxStatus, TxStatus

__all__ = ["MacStatistics", "REGISTERS", "COUNTER_BANKS", "StatCounter", "CounterBankSpec"]


class StatCounter(NamedTuple):
    """One statistics counter: its register name, when an event bumps it, and its meaning.

    ``when(record)`` returns the 1-bit condition on the bank's input record (an
    :class:`~amaranth.lib.data.View`); ``weighted`` counters add the frame length instead of 1.
    """

    name: str
    when: object
    doc: str
    weighted: bool = False


class CounterBankSpec(NamedTuple):
    """One counter bank: the input it counts, where its registers start, and its counters."""

    source: str  # the MacStatistics input port feeding it
    base: int  # byte offset of its first counter
    counters: tuple


# RMON (RFC 2819) size bins, inclusive; the last is open-ended (RFC 2819 stops at 1518).
SIZE_BINS = ((64, 64), (65, 127), (128, 255), (256, 511), (512, 1023), (1024, MAX_FRAME_LEN),
             (MAX_FRAME_LEN + 1, None))


def _size_bins(direction):
    bins = []
    for lo, hi in SIZE_BINS:
        if hi is None:
            name, text = f"{lo}_max", f"{lo} octets or more"
            def when(s, lo=lo):
                return s.length >= lo
        elif lo == hi:
            name, text = f"{lo}", f"exactly {lo} octets"
            def when(s, lo=lo):
                return s.length == lo
        else:
            name, text = f"{lo}_{hi}", f"{lo} to {hi} octets"
            def when(s, lo=lo, hi=hi):
                return (s.length >= lo) & (s.length <= hi)
        bins.append(StatCounter(f"{direction}_frames_{name}", when,
                                f"Frames, good or bad, of {text} (RMON etherStatsPkts*Octets)."))
    return tuple(bins)


RX_COUNTERS = (
    StatCounter("rx_frames_good", lambda s: s.good,
                "Frames received without error (802.3 30.3.1.1.5 aFramesReceivedOK)."),
    StatCounter("rx_frames_bad", lambda s: ~s.good,
                "Frames received with at least one error flag."),
    StatCounter("rx_octets_good", lambda s: s.good,
                "Octets, destination address through FCS, of good received frames.",
                weighted=True),
    StatCounter("rx_octets_bad", lambda s: ~s.good,
                "Octets, destination address through FCS, of bad received frames.",
                weighted=True),
    StatCounter("rx_fcs_errors", lambda s: s.fcs_error,
                "Frames with an FCS mismatch (802.3 30.3.1.1.6 aFrameCheckSequenceErrors)."),
    StatCounter("rx_framing_errors", lambda s: s.framing_error,
                "Frames with a control character or error inside, or without a terminate "
                "(802.3 46.3.3 /E/ and lane errors)."),
    StatCounter("rx_runts", lambda s: s.runt,
                f"Frames shorter than {MIN_FRAME_LEN} octets (RMON etherStatsUndersizePkts "
                "plus etherStatsFragments)."),
    StatCounter("rx_oversize", lambda s: s.oversize,
                "Frames longer than the configured maximum, cut there "
                "(802.3 30.3.1.1.25 aFrameTooLongErrors)."),
    StatCounter("rx_broadcast", lambda s: s.good & s.broadcast,
                "Good frames to the broadcast address (30.3.1.1.22 aBroadcastFramesReceivedOK)."),
    StatCounter("rx_multicast", lambda s: s.good & s.multicast,
                "Good frames to a group address other than broadcast "
                "(30.3.1.1.21 aMulticastFramesReceivedOK)."),
    StatCounter("rx_vlan", lambda s: s.good & s.vlan,
                "Good frames with an 802.1Q tag."),
) + _size_bins("rx")

TX_COUNTERS = (
    StatCounter("tx_frames_good", lambda s: s.good,
                "Frames sent without error (802.3 30.3.1.1.2 aFramesTransmittedOK)."),
    StatCounter("tx_frames_bad", lambda s: ~s.good,
                "Frames sent ended with /E/ (underrun or marked bad)."),
    StatCounter("tx_octets_good", lambda s: s.good,
                "Octets, destination address through FCS including padding, of good frames "
                "sent.", weighted=True),
    StatCounter("tx_octets_bad", lambda s: ~s.good,
                "Octets, destination address through FCS, of bad frames sent.", weighted=True),
    StatCounter("tx_underruns", lambda s: s.underrun,
                "Frames cut short because the source ran dry mid-frame."),
    StatCounter("tx_user_bad", lambda s: s.bad,
                "Frames the user marked bad (tuser), sent ending in /E/."),
    StatCounter("tx_broadcast", lambda s: s.good & s.broadcast,
                "Good frames sent to the broadcast address "
                "(30.3.1.1.10 aBroadcastFramesXmittedOK)."),
    StatCounter("tx_multicast", lambda s: s.good & s.multicast,
                "Good frames sent to a group address other than broadcast "
                "(30.3.1.1.9 aMulticastFramesXmittedOK)."),
    StatCounter("tx_vlan", lambda s: s.good & s.vlan, "Good frames sent with an 802.1Q tag."),
    StatCounter("tx_undersize", lambda s: s.length < MIN_FRAME_LEN,
                f"Frames sent shorter than {MIN_FRAME_LEN} octets (possible only with padding "
                "disabled)."),
) + _size_bins("tx")


def _flow_counters(direction, verb):
    pause = StatCounter(
        f"{direction}_pause", lambda e: e.kind == FlowControlKind.PAUSE,
        f"PAUSE frames {verb} (802.3 annex 31B; 30.3.4 aPAUSEMACCtrlFrames*).")
    pfc = tuple(
        StatCounter(f"{direction}_pfc_{p}",
                    lambda e, p=p: (e.kind == FlowControlKind.PFC) & e.priorities[p],
                    f"PFC frames {verb} whose class-enable vector names priority {p} "
                    "(802.1Qbb; 802.3 annex 31D).")
        for p in range(PFC_PRIORITIES))
    return (pause,) + pfc


#: The four banks, in bank order. Each starts on a 256-byte boundary so later versions can add
#: counters to a bank without moving any register.
COUNTER_BANKS = (
    CounterBankSpec("rx_status", 0x100, RX_COUNTERS),
    CounterBankSpec("rx_flow", 0x200, _flow_counters("rx", "received")),
    CounterBankSpec("tx_status", 0x300, TX_COUNTERS),
    CounterBankSpec("tx_flow", 0x400, _flow_counters("tx", "sent")),
)

_CONTROL_OFFSET = 0x10
_LOST_OFFSET = 0x20


def _registers():
    regs = [
        Register("control", _CONTROL_OFFSET, Access.W1S, "Statistics commands.", fields=(
            Field("clear", 0, 1,
                  "Write 1 to zero every counter and every lost count. Each bank finishes the "
                  "event it is applying first, so no event is split by a clear. Reads 1 until "
                  "the clear has finished."),
        )),
    ]
    for i, bank in enumerate(COUNTER_BANKS):
        regs.append(Register(
            f"{bank.source}_lost", _LOST_OFFSET + 4 * i, Access.RO,
            f"Events on {bank.source} dropped because its queue was full (wraps at 2**32); "
            "zero in a system that stays within the rated event rate."))
    for bank in COUNTER_BANKS:
        for j, counter in enumerate(bank.counters):
            regs.append(Register(counter.name, bank.base + 8 * j, Access.RO,
                                 counter.doc + " Free-running; wraps at 2**64.", width=64))
    return RegisterBlock(
        "mac_stats", MAC_STATISTICS, version(1, 0), regs,
        "Ethernet MAC statistics: 64-bit free-running counters of frames, octets, errors, "
        "flow-control frames and frame sizes, per direction (IEEE 802.3 clause 30, RFC 2819). "
        "Software reads a counter low word first, then high word, and differences successive "
        "readings.")


#: The register map of :class:`MacStatistics`.
REGISTERS = _registers()

_SIGNATURES = {
    "rx_status": RxStatus,
    "tx_status": TxStatus,
    "rx_flow": FlowControlEvent,
    "tx_flow": FlowControlEvent,
}


class MacStatistics(wiring.Component):
    """Counts MAC frame status records and flow-control events; serves them as registers.

    Everything runs in the ``sync`` domain; feed records from another clock domain through an
    :class:`~amaranth.lib.fifo.AsyncFIFO`.

    Parameters
    ----------
    fifo_depth : int
        Events each bank can queue (absorbs bursts faster than the rated rate and the
        ``count``-cycle stall of a clear).

    Attributes
    ----------
    rx_status : In(stream.Signature(RxStatus, always_ready=True))
        One record per received frame; each cycle with ``valid`` set is one frame.
    tx_status : In(stream.Signature(TxStatus, always_ready=True))
        One record per transmitted frame.
    rx_flow : In(stream.Signature(FlowControlEvent, always_ready=True))
        One event per PAUSE/PFC frame received.
    tx_flow : In(stream.Signature(FlowControlEvent, always_ready=True))
        One event per PAUSE/PFC frame sent.
    bus : In(RegisterBusSignature(REGISTERS.addr_width))
        Register access (:mod:`amnic.csr.bus`), byte addressed, decoding :data:`REGISTERS`;
        address bits 1:0 are ignored. Always ready; each request is answered (``done``) the
        cycle after it is taken. Reading a counter's low word latches its
        high word into a holding register that every high-word read returns, so low-then-high
        reads are coherent. Writes to read-only registers are ignored; unmapped offsets answer
        with ``error``.
    """

    registers = REGISTERS

    def __init__(self, *, fifo_depth=8):
        self.fifo_depth = fifo_depth
        #: One :class:`~amnic.csr.counters.CounterBank` per entry of :data:`COUNTER_BANKS`.
        self.banks = tuple(
            CounterBank(len(spec.counters), width=64, amount_width=16,
                        weighted=[j for j, c in enumerate(spec.counters) if c.weighted],
                        fifo_depth=fifo_depth)
            for spec in COUNTER_BANKS)
        members = {name: In(stream.Signature(shape, always_ready=True))
                   for name, shape in _SIGNATURES.items()}
        members["bus"] = In(RegisterBusSignature(REGISTERS.addr_width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        banks = self.banks
        for spec, bank in zip(COUNTER_BANKS, banks, strict=True):
            m.submodules[f"{spec.source}_counters"] = bank
            source = getattr(self, spec.source)
            m.d.comb += [
                bank.event.valid.eq(source.valid),
                bank.event.payload.mask.eq(Cat(c.when(source.payload) for c in spec.counters)),
            ]
            if any(c.weighted for c in spec.counters):
                m.d.comb += bank.event.payload.amount.eq(source.payload.length)

        clearing = Signal()
        m.d.comb += clearing.eq(Cat(b.clearing for b in banks).any())

        # What each register word reads as: ("const", value), ("control",), ("lost", bank),
        # ("counter", bank, index).
        sources = {}
        for b, spec in enumerate(COUNTER_BANKS):
            sources[f"{spec.source}_lost"] = ("lost", b)
            for j, counter in enumerate(spec.counters):
                sources[counter.name] = ("counter", b, j)
        sources["control"] = ("control",)

        bus = self.bus
        shadow = Signal(32)  # high word latched by the last low-word read

        # Every request is answered the cycle after it is taken, so the bus is always ready.
        m.d.comb += bus.ready.eq(1)
        m.d.sync += bus.done.eq(0)

        def respond(value, error=0):
            m.d.sync += [
                bus.done.eq(1),
                bus.rdata.eq(Mux(bus.write, 0, value)),
                bus.error.eq(error),
            ]

        with m.If(bus.valid):
            with m.Switch(bus.addr[2:]):
                for register in REGISTERS:
                    source = sources.get(register.name, ("const", register.init))
                    for half, offset in enumerate(register.words):
                        with m.Case(offset // 4):
                            self._decode(m, source, half, bus, banks, clearing, shadow, respond)
                with m.Default():
                    respond(0, error=1)
        return m

    @staticmethod
    def _decode(m, source, half, bus, banks, clearing, shadow, respond):
        kind = source[0]
        if kind == "const":
            respond(source[1])
        elif kind == "control":
            respond(clearing)
            with m.If(bus.write & bus.wstrb[0] & bus.wdata[0]):
                for bank in banks:
                    m.d.comb += bank.clear.eq(1)
        elif kind == "lost":
            respond(banks[source[1]].lost)
        elif half == 1:
            respond(shadow)
        else:
            _, b, j = source
            word = banks[b].read_data
            m.d.comb += banks[b].read_addr.eq(j)
            respond(word[:32])
            with m.If(~bus.write):
                m.d.sync += shadow.eq(word[32:])
