"""The completer: host requests to BAR0 become register bus accesses (CQ -> bus -> CC).

The host reaches the device's registers with memory reads and writes to BAR0. The hard IP
delivers each request on CQ as a :class:`~amnic.dma.descriptors.CompleterRequest` descriptor
plus payload and expects a completion on CC for every non-posted request (PCIe Base
Specification 2.2.9, 2.3; PG213 "Completer Interface").
"""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from amnic.stream.axil import RegisterBusSignature

from .axis import Bus, TlpStreamSignature
from .descriptors import CompleterCompletion, CompleterRequest, CompletionStatus, RequestType

__all__ = ["Completer", "MAX_READ_DWORDS", "read_byte_count"]

#: Longest memory read answered (DWORDs): one completion of at most 128 bytes, the smallest
#: Max_Payload_Size, so it is legal on every link.
MAX_READ_DWORDS = 32

_NON_POSTED = (
    RequestType.MEM_READ, RequestType.IO_READ, RequestType.IO_WRITE, RequestType.MEM_FETCH_ADD,
    RequestType.MEM_SWAP, RequestType.MEM_CAS, RequestType.MEM_READ_LOCKED,
    RequestType.CFG_READ_0, RequestType.CFG_READ_1, RequestType.CFG_WRITE_0,
    RequestType.CFG_WRITE_1,
)


def read_byte_count(dwords, first_be, last_be):
    """Byte count and lower-address byte offset of a memory read (PCIe 2.3.1.1, Table 2-38).

    Python reference of what :class:`Completer` puts in a completion's ``byte_count`` and
    ``lower_address[1:0]``.
    """
    def skip_low(be):
        return next((i for i in range(4) if be >> i & 1), 0)

    def skip_high(be):
        return next((i for i in range(4) if be >> (3 - i) & 1), 0)

    if dwords == 1:
        if first_be == 0:
            return 1, 0
        low, high = skip_low(first_be), skip_high(first_be)
        return 4 - low - high, low
    return 4 * dwords - skip_low(first_be) - skip_high(last_be), skip_low(first_be)


def _skip_low(m, be):
    """Disabled bytes below the first enabled one (0 when none is enabled)."""
    skip = Signal(2)
    for i in reversed(range(4)):
        with m.If(be[i]):
            m.d.comb += skip.eq(i)
    return skip


def _skip_high(m, be):
    """Disabled bytes above the last enabled one (0 when none is enabled)."""
    skip = Signal(2)
    for i in range(4):
        with m.If(be[i]):
            m.d.comb += skip.eq(3 - i)
    return skip


class Completer(wiring.Component):
    """Answer the host's BAR0 requests from a register bus.

    Contract
    --------
    * **Memory write to BAR0** (posted): every payload DWORD becomes one register bus write at
      ``(address + 4 * i) mod 2**addr_width`` with ``wstrb`` = first/last byte enables for the
      first/last DWORD and all ones in between; DWORDs whose byte enables are all zero (a
      zero-length write) make no access. A payload shorter than ``dword_count`` ends the
      request early; extra DWORDs are discarded (both counted as ``malformed``).
    * **Memory read from BAR0** of 1..:data:`MAX_READ_DWORDS` DWORDs: one register bus read per
      DWORD, answered with one successful completion (``byte_count`` and ``lower_address`` per
      PCIe 2.3.1.1). A read the bus answers with ``error`` (nothing mapped there) returns the
      bus's ``rdata`` (0 for amnic's decoders) and counts ``bus_errors``; so does a write the
      bus refuses. A zero-length read
      (one DWORD, no byte enabled) returns one zero DWORD without a bus access.
    * **Anything else that needs a completion** (reads of other BARs or longer than
      :data:`MAX_READ_DWORDS`, I/O, atomics, locked reads, reads whose descriptor beat is not
      its last): an Unsupported Request completion without data (PCIe 2.3.1), counted in
      ``unsupported``. Posted requests the completer does not take (writes to other BARs,
      messages) are dropped and counted in ``unsupported``.
    * A request the hard IP marks ``discontinue`` is dropped without a completion (the hard IP
      reports the error itself); writes of earlier beats of the same TLP have already happened.
    * One request at a time; CQ is back-pressured meanwhile. Nothing waits for anything but the
      register bus (whose ``done`` always comes) and CC ``ready``.

    Parameters
    ----------
    width : int
        PCIe user interface width (256 or 512).
    addr_width : int
        Register bus address width (bytes); BAR0 is ``2**addr_width`` bytes.

    Attributes
    ----------
    cq : In(TlpStreamSignature(Bus.CQ, width))
    cc : Out(TlpStreamSignature(Bus.CC, width))
    bus : Out(RegisterBusSignature(addr_width))
    completer_id : In(16)
        Bus/device/function of the completer (the hard IP fills it in when 0 is sent with
        ``completer_id_enable`` clear, which is what this block does).
    reads, writes, unsupported, malformed, bus_errors : Out(32)
        Request counters (wrap around).
    busy : Out(1)
        A request is being served.
    """

    def __init__(self, width, addr_width=16):
        self.width = width
        self.addr_width = addr_width
        super().__init__({
            "cq": In(TlpStreamSignature(Bus.CQ, width)),
            "cc": Out(TlpStreamSignature(Bus.CC, width)),
            "bus": Out(RegisterBusSignature(addr_width)),
            "reads": Out(32),
            "writes": Out(32),
            "unsupported": Out(32),
            "malformed": Out(32),
            "bus_errors": Out(32),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.width // 32
        cq, cc, bus = self.cq, self.cc, self.bus

        request = Signal(CompleterRequest)
        first_be, last_be = Signal(4), Signal(4)
        beat = Signal(self.width)  # the CQ beat being served
        beat_last = Signal()
        lane = Signal(range(lanes + 1))  # next DWORD of `beat` to use
        remaining = Signal(range(1025))  # DWORDs still to access
        first_dword = Signal()
        address = Signal(self.addr_width)
        completion = Signal(self.width)  # the CC beat being filled
        fill = Signal(range(lanes + 1))  # DWORDs in `completion`
        ur_after_drain = Signal()

        incoming = CompleterRequest(cq.payload.data[:128])
        in_type = incoming.request_type
        non_posted = Signal()
        m.d.comb += non_posted.eq(0)
        for kind in _NON_POSTED:
            with m.If(in_type == kind):
                m.d.comb += non_posted.eq(1)
        to_bar0 = incoming.bar_id == 0
        is_read = (in_type == RequestType.MEM_READ) & to_bar0 & (
            incoming.dword_count <= MAX_READ_DWORDS) & (incoming.dword_count != 0)
        is_write = (in_type == RequestType.MEM_WRITE) & to_bar0

        # Byte count / lower address of the request being served.
        in_low = _skip_low(m, cq.payload.side.first_be)
        in_high_first = _skip_high(m, cq.payload.side.first_be)
        in_high_last = _skip_high(m, cq.payload.side.last_be)
        byte_count = Signal(13)
        one_dword = incoming.dword_count == 1
        with m.If(one_dword & (cq.payload.side.first_be == 0)):
            m.d.comb += byte_count.eq(1)
        with m.Elif(one_dword):
            m.d.comb += byte_count.eq(4 - in_low - in_high_first)
        with m.Else():
            m.d.comb += byte_count.eq((incoming.dword_count << 2) - in_low - in_high_last)

        def completion_header(status, dwords, count, lower):
            return {
                "lower_address": lower, "address_type": incoming.address_type,
                "byte_count": count, "dword_count": dwords, "status": status,
                "requester_id": incoming.requester_id, "tag": incoming.tag,
                "traffic_class": incoming.traffic_class, "attributes": incoming.attributes,
            }

        header = Signal(CompleterCompletion)
        dword = beat.word_select(lane, 32)
        got = Signal(32)  # read data of the current DWORD
        strobe = Signal(4)
        with m.If(first_dword):
            m.d.comb += strobe.eq(first_be)
        with m.Elif(remaining == 1):
            m.d.comb += strobe.eq(last_be)
        with m.Else():
            m.d.comb += strobe.eq(0xF)

        m.d.comb += [
            bus.addr.eq(address),
            bus.wdata.eq(dword),
            bus.wstrb.eq(strobe),
        ]

        with m.FSM(name="completer"):
            with m.State("IDLE"):
                m.d.comb += cq.ready.eq(1)
                with m.If(cq.valid):
                    header_fields = completion_header(
                        CompletionStatus.SUCCESSFUL, incoming.dword_count, byte_count,
                        Const(0, 7))
                    m.d.sync += [
                        request.eq(incoming),
                        first_be.eq(cq.payload.side.first_be),
                        last_be.eq(cq.payload.side.last_be),
                        beat.eq(cq.payload.data),
                        beat_last.eq(cq.payload.last),
                        lane.eq(4),
                        remaining.eq(incoming.dword_count),
                        first_dword.eq(1),
                        address.eq(incoming.address << 2),
                        fill.eq(3),
                        ur_after_drain.eq(0),
                        header.eq(0),
                    ]
                    for name, value in header_fields.items():
                        m.d.sync += getattr(header, name).eq(value)
                    m.d.sync += header.lower_address.eq(
                        ((incoming.address << 2) | in_low)[:7])
                    with m.If(cq.payload.side.discontinue):
                        with m.If(~cq.payload.last):
                            m.next = "DRAIN"
                    with m.Elif(is_write):
                        m.next = "WRITE"
                    with m.Elif(is_read & cq.payload.last):
                        m.next = "READ"
                    with m.Elif(non_posted):
                        m.d.sync += self.unsupported.eq(self.unsupported + 1)
                        m.d.sync += ur_after_drain.eq(1)
                        with m.If(cq.payload.last):
                            m.next = "UNSUPPORTED"
                        with m.Else():
                            m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += self.unsupported.eq(self.unsupported + 1)
                        with m.If(~cq.payload.last):
                            m.next = "DRAIN"

            with m.State("DRAIN"):
                m.d.comb += [cq.ready.eq(1), self.busy.eq(1)]
                with m.If(cq.valid & cq.payload.last):
                    with m.If(ur_after_drain):
                        m.next = "UNSUPPORTED"
                    with m.Else():
                        m.next = "IDLE"

            with m.State("WRITE"):
                m.d.comb += self.busy.eq(1)
                with m.If(remaining == 0):
                    with m.If(~beat_last):
                        m.d.sync += self.malformed.eq(self.malformed + 1)
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += self.writes.eq(self.writes + 1)
                        m.next = "IDLE"
                with m.Elif(lane == lanes):
                    with m.If(beat_last):
                        m.d.sync += self.malformed.eq(self.malformed + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += cq.ready.eq(1)
                        with m.If(cq.valid):
                            m.d.sync += [beat.eq(cq.payload.data), beat_last.eq(cq.payload.last),
                                         lane.eq(0)]
                with m.Elif(strobe == 0):
                    m.d.sync += [lane.eq(lane + 1), remaining.eq(remaining - 1),
                                 address.eq(address + 4), first_dword.eq(0)]
                with m.Else():
                    m.d.comb += [bus.valid.eq(1), bus.write.eq(1)]
                    with m.If(bus.ready):
                        with m.If(bus.done):
                            m.d.sync += [lane.eq(lane + 1), remaining.eq(remaining - 1),
                                         address.eq(address + 4), first_dword.eq(0),
                                         self.bus_errors.eq(self.bus_errors + bus.error)]
                        with m.Else():
                            m.next = "WRITE_WAIT"

            with m.State("WRITE_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(bus.done):
                    m.d.sync += [lane.eq(lane + 1), remaining.eq(remaining - 1),
                                 address.eq(address + 4), first_dword.eq(0),
                                 self.bus_errors.eq(self.bus_errors + bus.error)]
                    m.next = "WRITE"

            # Reads: `completion` starts with the header in DWORDs 0..2 and fills from DWORD 3.
            with m.State("READ"):
                m.d.comb += self.busy.eq(1)
                with m.If(first_dword):
                    m.d.sync += completion[:96].eq(header)
                with m.If(first_dword & (first_be == 0) & (remaining == 1)):
                    m.d.sync += got.eq(0)
                    m.next = "READ_STORE"
                with m.Else():
                    m.d.comb += [bus.valid.eq(1), bus.write.eq(0)]
                    with m.If(bus.ready):
                        with m.If(bus.done):
                            m.d.sync += got.eq(bus.rdata)
                            m.d.sync += self.bus_errors.eq(self.bus_errors + bus.error)
                            m.next = "READ_STORE"
                        with m.Else():
                            m.next = "READ_WAIT"

            with m.State("READ_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(bus.done):
                    m.d.sync += got.eq(bus.rdata)
                    m.d.sync += self.bus_errors.eq(self.bus_errors + bus.error)
                    m.next = "READ_STORE"

            with m.State("READ_STORE"):
                m.d.comb += self.busy.eq(1)
                for i in range(lanes):
                    with m.If(fill == i):
                        m.d.sync += completion.word_select(i, 32).eq(got)
                m.d.sync += [fill.eq(fill + 1), remaining.eq(remaining - 1),
                             address.eq(address + 4), first_dword.eq(0)]
                with m.If((remaining == 1) | (fill == lanes - 1)):
                    m.next = "SEND"
                with m.Else():
                    m.next = "READ"

            with m.State("SEND"):
                m.d.comb += [
                    self.busy.eq(1),
                    cc.valid.eq(1),
                    cc.payload.data.eq(completion),
                    cc.payload.keep.eq((Const(1, lanes + 1) << fill) - 1),
                    cc.payload.last.eq(remaining == 0),
                ]
                with m.If(cc.ready):
                    m.d.sync += fill.eq(0)
                    with m.If(remaining == 0):
                        m.d.sync += self.reads.eq(self.reads + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "READ"

            with m.State("UNSUPPORTED"):
                ur = CompleterCompletion(Signal(96))
                m.d.comb += [
                    ur.eq(header),
                    ur.status.eq(CompletionStatus.UNSUPPORTED_REQUEST),
                    ur.dword_count.eq(0),
                    self.busy.eq(1),
                    cc.valid.eq(1),
                    cc.payload.data.eq(ur),
                    cc.payload.keep.eq(0b111),
                    cc.payload.last.eq(1),
                ]
                with m.If(cc.ready):
                    m.next = "IDLE"
        return m
