"""Hardware for a register block: storage, bus decode and the signals a core sees.

:class:`RegisterFile` turns a :class:`~amnic.csr.regmap.RegisterBlock` into logic, so a core
describes its registers once (the description also generates the documentation, the C header
and the driver's constants) and gets the decode for free.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bus import RegisterBusSignature
from .regmap import HEADER_SIZE, Access

__all__ = ["RegisterFile"]

#: Registers whose value the core drives.
_VALUE_IN = (Access.RO, Access.RC)


def _group(block, wanted, member):
    return wiring.Signature({r.name: member(r) for r in block.registers
                             if r.offset >= HEADER_SIZE and r.access in wanted})


class RegisterFile(wiring.Component):
    """The registers of ``block`` in flip-flops behind a register bus.

    Every register other than the header is a port of the component, named after it, in one
    of these groups (each a nested interface; a group without registers has no members):

    ``value`` (Out)
        ``RW``, ``WO``, ``W1S`` and ``W1C`` registers: the current contents, reset to the
        register's ``init``. ``RW`` and ``WO`` change on a bus write (byte enables honoured);
        ``W1S`` bits are set by writing 1 and cleared by the core (``clear``); ``W1C`` bits are
        set by the core (``set``) and cleared by writing 1.
    ``status`` (In)
        ``RO`` and ``RC`` registers: the value the core drives, returned by reads.
    ``written`` (Out)
        ``RW`` and ``WO`` registers: 1 for the one cycle in which ``value`` first shows a bus
        write (any word of the register). Commands use this strobe.
    ``read`` (Out)
        ``RC`` registers: 1 for one cycle when software reads the low word; the core clears its
        value in response.
    ``clear`` (In)
        ``W1S`` registers: bits the core clears this cycle (an action has finished). A bit both
        written and cleared in one cycle ends set.
    ``set`` (In)
        ``W1C`` registers: bits the core sets this cycle (an event happened). A bit both set
        and written with 1 in one cycle ends set, so no event is lost.
    ``load`` and ``load_en`` (In)
        ``RW`` registers: when ``load_en`` is 1 the register takes ``load`` (the core returns
        a result in it, e.g. a table entry read back); this wins over a bus write in the same
        cycle.

    Bus behaviour: always ready, the response (``done``) follows one cycle after the request;
    ``WO`` registers read as 0; reading an unoccupied offset returns 0 with ``error``; writes
    to read-only registers are ignored. A 64-bit register's low-word read latches its high
    word (see :mod:`amnic.csr.regmap`).

    Parameters
    ----------
    block : RegisterBlock
        The registers.
    """

    def __init__(self, block):
        self.block = block
        writable = (Access.RW, Access.WO, Access.W1S, Access.W1C)
        super().__init__({
            "bus": In(RegisterBusSignature(block.addr_width)),
            "value": Out(_group(block, writable, lambda r: Out(r.width, init=r.init))),
            "status": Out(_group(block, _VALUE_IN, lambda r: In(r.width))),
            "written": Out(_group(block, (Access.RW, Access.WO), lambda r: Out(1))),
            "read": Out(_group(block, (Access.RC,), lambda r: Out(1))),
            "clear": Out(_group(block, (Access.W1S,), lambda r: In(r.width))),
            "set": Out(_group(block, (Access.W1C,), lambda r: In(r.width))),
            "load": Out(_group(block, (Access.RW,), lambda r: In(r.width))),
            "load_en": Out(_group(block, (Access.RW,), lambda r: In(1))),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        shadow = Signal(32)

        m.d.comb += bus.ready.eq(1)
        m.d.sync += bus.done.eq(0)
        for name in self.written.signature.members:
            m.d.sync += getattr(self.written, name).eq(0)
        for name in self.read.signature.members:
            m.d.sync += getattr(self.read, name).eq(0)

        # Bits the bus writes with 1 this cycle in W1S / W1C registers.
        self._ones = {r.name: Signal(r.width, name=f"{r.name}_ones") for r in self.block
                      if r.offset >= HEADER_SIZE and r.access in (Access.W1S, Access.W1C)}

        wmask = Cat(b.replicate(8) for b in bus.wstrb)
        wdata = bus.wdata & wmask

        def respond(rdata, error=0):
            m.d.sync += [bus.done.eq(1), bus.rdata.eq(Mux(bus.write, 0, rdata)),
                         bus.error.eq(error)]

        with m.If(bus.valid):
            with m.Switch(bus.addr[2:]):
                for register in self.block:
                    for half, offset in enumerate(register.words):
                        with m.Case(offset // 4):
                            self._word(m, register, half, wdata, wmask, shadow, respond)
                with m.Default():
                    respond(0, error=1)

        # Software writes and hardware events meet here; see the class notes for who wins.
        for name in self.clear.signature.members:
            value = getattr(self.value, name)
            m.d.sync += value.eq((value & ~getattr(self.clear, name)) | self._ones[name])
        for name in self.set.signature.members:
            value = getattr(self.value, name)
            m.d.sync += value.eq((value & ~self._ones[name]) | getattr(self.set, name))
        for name in self.load.signature.members:
            with m.If(getattr(self.load_en, name)):
                m.d.sync += getattr(self.value, name).eq(getattr(self.load, name))
        return m

    def _word(self, m, register, half, wdata, wmask, shadow, respond):
        bus = self.bus
        access = register.access
        lo, hi = 32 * half, 32 * half + 32
        if register.offset < HEADER_SIZE:
            respond(Const(register.init, 32))
            return
        if access in _VALUE_IN:
            value = getattr(self.status, register.name)
        else:
            value = getattr(self.value, register.name)

        if half == 1:
            respond(shadow)
        elif access is Access.WO:
            respond(0)
        else:
            respond(value[lo:hi])
            if register.width == 64:
                with m.If(~bus.write):
                    m.d.sync += shadow.eq(value[32:64])
            if access is Access.RC:
                with m.If(~bus.write):
                    m.d.sync += getattr(self.read, register.name).eq(1)

        if access in (Access.RW, Access.WO):
            with m.If(bus.write):
                m.d.sync += [
                    value[lo:hi].eq((value[lo:hi] & ~wmask) | wdata),
                    getattr(self.written, register.name).eq(1),
                ]
        elif access in (Access.W1S, Access.W1C):
            with m.If(bus.write):
                m.d.comb += self._ones[register.name][lo:hi].eq(wdata)
