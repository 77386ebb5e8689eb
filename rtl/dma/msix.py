"""MSI-X table, pending bit array and message sender for the hard IP's "MSI-X external" mode.

In this mode the UltraScale+ integrated block (PG213, "Interrupt Interface") keeps only the
MSI-X capability structure; the MSI-X table and the Pending Bit Array (PBA) live in a BAR of the
user logic, and the user sends a message by pulsing ``cfg_interrupt_msix_int`` for one cycle
with ``cfg_interrupt_msix_address``/``_data`` valid. The block answers with a one-cycle
``cfg_interrupt_msix_sent`` or ``cfg_interrupt_msix_fail``. It reports the capability's MSI-X
Enable and Function Mask bits on ``cfg_interrupt_msix_enable``/``_mask``. When MSI-X is off and
MSI is on, messages go out as MSI instead: ``cfg_interrupt_msi_int`` is a one-cycle one-hot
vector number below ``2**cfg_interrupt_msi_mmenable`` (PCIe Base Specification 7.7.1, Multiple
Message Enable), answered by ``cfg_interrupt_msi_sent``/``_fail``.

:class:`MsixController` implements the table and PBA structures of PCIe Base Specification
7.7.2 (MSI-X Capability and Table Structure) and the masking rules of 6.1.4 (MSI and MSI-X
Operation): a function must not send a message for a masked vector or while the Function Mask is
set; it sets the vector's pending bit instead, and sends the message (clearing the bit) once the
vector and function are unmasked.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream.axil import RegisterBusSignature

from .tags import lowest_set

__all__ = ["MsixController", "MAX_VECTORS", "ENTRY_BYTES"]

#: Largest MSI-X table (Table Size field is 11 bits, N-1 encoded; PCIe 7.7.2.2).
MAX_VECTORS = 2048
#: Bytes per MSI-X table entry: Message Address, Message Upper Address, Message Data, Vector
#: Control (PCIe 7.7.2, Figure "MSI-X Table Structure").
ENTRY_BYTES = 16
_GROUP = 64  # vectors per PBA QWORD, also the unit the pending-bit scanner looks at per cycle


class MsixController(wiring.Component):
    """The MSI-X table and PBA behind a register bus, and the interrupt message sender.

    Register window (byte offsets; ``size`` bytes, a power of two)
    --------------------------------------------------------------
    ===================== ======================================================================
    ``16*v + 0x0``        Message Address (low 32 bits; bits 1:0 are stored as written) RW
    ``16*v + 0x4``        Message Upper Address RW
    ``16*v + 0x8``        Message Data RW
    ``16*v + 0xC``        Vector Control: bit 0 Mask Bit (RW, 1 after reset); bits 31:1 read 0
    ``pba_offset + 8*q``  PBA QWORD ``q`` (low DWORD at ``+0``, high at ``+4``): bit ``i`` is the
                          pending bit of vector ``64*q + i``; read only, writes are ignored
    ===================== ======================================================================

    ``v`` ranges over ``0..vectors-1`` and ``q`` over ``0..ceil(vectors/64)-1``.
    ``pba_offset`` is the table size ``16*vectors`` rounded up to a power of two, and ``size`` is
    ``2*pba_offset``; the hard IP's MSI-X Table Offset and PBA Offset must be set to ``0`` and
    ``pba_offset`` (plus the window's place in the BAR). Every access is answered the cycle after
    it is taken; one access is taken every other cycle. Accesses to offsets with no table entry
    or PBA DWORD (the gap between the table and the PBA, and the space after the PBA) return 0
    with ``error`` set and change nothing. ``wstrb`` selects the bytes written; a Vector Control
    write changes the mask when ``wstrb`` bit 0 is set.

    Storage: address and data are in a :class:`~amaranth.lib.memory.Memory` of ``vectors`` x 96
    bits (block RAM for large tables) whose contents are zero at configuration and are not
    cleared by reset, which the specification allows since every entry is masked after reset
    (7.7.2.4: "Mask Bit ... default value is 1b"). The mask and pending bits are registers, so
    reset sets every mask bit and clears every pending bit.

    Sending
    -------
    * A ``request`` for vector ``v`` (always accepted, one per cycle) sets ``v``'s pending bit if
      MSI-X or MSI is enabled. With both disabled the request is dropped and counted in
      ``dropped`` (as is a request with ``v >= vectors``); the function may not signal then.
    * A scanner looks at one 64-vector group of pending bits per cycle while the sender is idle
      and picks, round-robin, a pending vector that may be sent now:

      - MSI-X enabled: Function Mask clear and the vector's Mask Bit clear. Masked vectors stay
        pending (visible in the PBA) and go out once both masks clear (PCIe 6.1.4.5).
      - MSI-X disabled, MSI enabled: any pending vector, sent as MSI vector
        ``v mod 2**mmenable`` (Multiple Message Enable 6 and 7 are reserved and treated as 5).

      It clears the pending bit, reads the entry from the table (one cycle), drives
      ``msix_address``/``msix_data`` and pulses ``msix_int`` (or ``msi_int``) for one cycle, and
      waits for ``sent`` or ``fail``. A request for the same vector that arrives meanwhile sets
      the pending bit again and makes another message, so no event is signalled before it
      happened.
    * ``sent`` pulse: the message is counted in ``sent``. ``fail`` pulse: counted in ``failed``
      and the vector's pending bit is set again, so the message is retried when the scanner
      next reaches it (after the other eligible vectors) and is held while it is masked. A
      message that fails forever (the block refuses it, e.g. because the host cleared the enable
      while it was being sent) is therefore retried until the enable or a mask stops it.

    From a request for an unmasked vector (taken at clock edge *t*) to ``msix_int`` (sampled at
    edge *t* + 3 at the earliest): 3 cycles plus up to ``ceil(vectors/64) - 1`` cycles while the
    scanner reaches the vector's group. The sender handles one message at a time, so the message
    rate is bounded by the block's ``sent`` latency plus 3 cycles.

    Parameters
    ----------
    vectors : int
        Table entries, 1..2048.

    Attributes
    ----------
    bus : In(RegisterBusSignature(log2(size), 32))
    request : In(stream.Signature(range(vectors)))
    msix_enable, msix_mask : In(1)
        ``cfg_interrupt_msix_enable[0]``, ``cfg_interrupt_msix_mask[0]`` (PF0).
    msix_int : Out(1)
    msix_address : Out(64)
    msix_data : Out(32)
    msix_sent, msix_fail : In(1)
    msi_enable : In(1)
        ``cfg_interrupt_msi_enable[0]``.
    msi_mmenable : In(3)
        ``cfg_interrupt_msi_mmenable[2:0]``.
    msi_int : Out(32)
    msi_sent, msi_fail : In(1)
    sent, failed, dropped : Out(32)
        Messages sent, messages refused by the block, requests dropped; wrapping counters.
    """

    def __init__(self, vectors=64):
        vectors = int(vectors)
        if not 1 <= vectors <= MAX_VECTORS:
            raise ValueError(f"MSI-X supports 1..{MAX_VECTORS} vectors, not {vectors}")
        self.vectors = vectors
        self.table_offset = 0
        self.pba_offset = 1 << ceil_log2(ENTRY_BYTES * vectors)
        self.size = 2 * self.pba_offset
        self.groups = (vectors + _GROUP - 1) // _GROUP
        self.pba_dwords = 2 * self.groups
        self.addr_width = ceil_log2(self.size)
        super().__init__({
            "bus": In(RegisterBusSignature(self.addr_width, 32)),
            "request": In(stream.Signature(range(vectors))),
            "msix_enable": In(1),
            "msix_mask": In(1),
            "msix_int": Out(1),
            "msix_address": Out(64),
            "msix_data": Out(32),
            "msix_sent": In(1),
            "msix_fail": In(1),
            "msi_enable": In(1),
            "msi_mmenable": In(3),
            "msi_int": Out(32),
            "msi_sent": In(1),
            "msi_fail": In(1),
            "sent": Out(32),
            "failed": Out(32),
            "dropped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.vectors
        width = self.groups * _GROUP
        vbits = max(1, ceil_log2(n))

        m.submodules.table = table = Memory(shape=96, depth=n, init=[])
        wr = table.write_port(granularity=8)
        host_rd = table.read_port()
        msg_rd = table.read_port()

        # Mask bits (1 = masked) and pending bits; padding vectors are masked and never pending.
        mask = Signal(width, init=(1 << width) - 1)
        pending = Signal(width)
        pending_set = Signal(width)
        pending_clr = Signal(width)
        m.d.sync += pending.eq((pending & ~pending_clr) | pending_set)

        # ---- register bus ----------------------------------------------------------------
        bus = self.bus
        busy = Signal()  # a request was taken; its done is this cycle
        take = Signal()
        m.d.comb += [
            bus.ready.eq(~busy),
            take.eq(bus.valid & ~busy),
        ]
        m.d.sync += busy.eq(take)

        split = ceil_log2(self.pba_offset)
        in_pba = bus.addr[split]
        entry = bus.addr[4:split] if split > 4 else Const(0, 1)
        word = bus.addr[2:4]
        dword = bus.addr[2:split]
        entry_ok = ~in_pba & (entry < n)
        pba_ok = in_pba & (dword < self.pba_dwords)

        r_word = Signal(2)
        r_table = Signal()  # answer from the table memory
        r_value = Signal(32)  # answer computed at take time (mask bit, PBA DWORD)
        r_error = Signal()
        m.d.comb += host_rd.addr.eq(entry)
        m.d.sync += [
            r_word.eq(word),
            r_table.eq(entry_ok & (word != 3)),
            r_error.eq(~(entry_ok | pba_ok)),
            r_value.eq(0),
        ]
        with m.If(entry_ok & (word == 3)):
            m.d.sync += r_value.eq(mask.bit_select(entry, 1))
        with m.If(pba_ok):
            m.d.sync += r_value.eq(pending.word_select(dword, 32))

        m.d.comb += [
            wr.addr.eq(entry),
            wr.data.eq(Cat(bus.wdata, bus.wdata, bus.wdata)),
        ]
        with m.If(take & bus.write & entry_ok):
            with m.Switch(word):
                for k in range(3):
                    with m.Case(k):
                        m.d.comb += wr.en.eq(bus.wstrb << (4 * k))
                with m.Case(3):
                    with m.If(bus.wstrb[0]):
                        m.d.sync += mask.bit_select(entry, 1).eq(bus.wdata[0])

        m.d.comb += [
            bus.done.eq(busy),
            bus.error.eq(busy & r_error),
        ]
        with m.If(busy & ~r_error):
            with m.If(r_table):
                m.d.comb += bus.rdata.eq(host_rd.data.word_select(r_word, 32))
            with m.Else():
                m.d.comb += bus.rdata.eq(r_value)

        # ---- requests ----------------------------------------------------------------------
        req = self.request
        accept = Signal()
        m.d.comb += [
            req.ready.eq(1),
            accept.eq(req.valid & (req.payload < n) & (self.msix_enable | self.msi_enable)),
        ]
        with m.If(req.valid & ~accept):
            m.d.sync += self.dropped.eq(self.dropped + 1)

        # ---- scanner and sender ----------------------------------------------------------
        group = Signal(range(self.groups))
        floor = Signal(range(_GROUP + 1))  # lowest bit of `group` still to visit this round
        msix_mode = self.msix_enable
        msi_mode = ~self.msix_enable & self.msi_enable
        grp_pending = pending.word_select(group, _GROUP) if self.groups > 1 else pending
        grp_mask = mask.word_select(group, _GROUP) if self.groups > 1 else mask
        eligible = Signal(_GROUP)
        with m.If(msix_mode & ~self.msix_mask):
            m.d.comb += eligible.eq(grp_pending & ~grp_mask)
        with m.Elif(msi_mode):
            m.d.comb += eligible.eq(grp_pending)
        candidates = Signal(_GROUP)
        m.d.comb += candidates.eq(eligible & (Const((1 << _GROUP) - 1, _GROUP) << floor))
        found, index = lowest_set(m, candidates, "scan")

        current = Signal(vbits)  # vector being sent
        as_msix = Signal()
        chosen = Signal(vbits)
        m.d.comb += chosen.eq(Cat(index, group) if self.groups > 1 else index)
        launch = Signal()
        retry = Signal()
        m.d.comb += msg_rd.addr.eq(Mux(launch, chosen, current))

        mme = Signal(3)
        m.d.comb += mme.eq(Mux(self.msi_mmenable > 5, 5, self.msi_mmenable))
        msi_vector = Signal(5)
        m.d.comb += msi_vector.eq(current & ((Const(1, 6) << mme) - 1))

        m.d.sync += [self.msix_int.eq(0), self.msi_int.eq(0)]
        with m.FSM():
            with m.State("SCAN"):
                with m.If(found):
                    m.d.comb += launch.eq(1)
                    m.d.sync += [
                        current.eq(chosen),
                        as_msix.eq(msix_mode),
                        floor.eq(index + 1),
                    ]
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += floor.eq(0)
                    if self.groups > 1:
                        m.d.sync += group.eq(Mux(group == self.groups - 1, 0, group + 1))
            with m.State("LOAD"):  # msg_rd.data holds the entry of `current`
                m.d.sync += [
                    self.msix_address.eq(msg_rd.data[:64]),
                    self.msix_data.eq(msg_rd.data[64:]),
                ]
                with m.If(as_msix):
                    m.d.sync += self.msix_int.eq(1)
                with m.Else():
                    m.d.sync += self.msi_int.eq(Const(1, 32) << msi_vector)
                m.next = "WAIT"
            with m.State("WAIT"):
                sent = Mux(as_msix, self.msix_sent, self.msi_sent)
                fail = Mux(as_msix, self.msix_fail, self.msi_fail)
                with m.If(sent):
                    m.d.sync += self.sent.eq(self.sent + 1)
                    m.next = "SCAN"
                with m.Elif(fail):
                    m.d.comb += retry.eq(1)
                    m.d.sync += self.failed.eq(self.failed + 1)
                    m.next = "SCAN"

        m.d.comb += [
            pending_set.eq((accept << req.payload) | (retry << current)),
            pending_clr.eq(launch << chosen),
        ]
        return m
