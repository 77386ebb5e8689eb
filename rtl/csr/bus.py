"""The register bus that amnic's register blocks speak, and a decoder that fans it out.

The bus is :class:`amnic.stream.axil.RegisterBusSignature` (re-exported here), which
:class:`amnic.stream.axil.AxiLiteToRegisterBus` drives from an AXI4-Lite slave port. Its
contract, from the initiator's side:

* a request is ``addr`` (a **byte** address), ``write``, ``wdata``, ``wstrb`` (one bit per data
  byte), offered with ``valid`` and taken in the cycle ``valid & ready``; ``valid`` never waits
  for ``ready`` and the request holds until taken;
* the target raises ``done`` for exactly one cycle per request it took, in the cycle it took it
  or later, and takes no other request before; in that cycle ``rdata`` (reads) and ``error``
  (the access failed, AXI ``SLVERR``) are valid. The initiator always accepts the response.

Register blocks decode ``addr`` modulo their window, ignoring bits 1:0 (accesses are whole
32-bit words). :class:`RegisterBusDecoder` places several blocks in one address space.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from amnic.stream.axil import RegisterBusSignature

__all__ = ["RegisterBusSignature", "RegisterBusDecoder"]


class RegisterBusDecoder(wiring.Component):
    """Route register bus requests to the target whose window holds the address.

    Windows are naturally aligned powers of two (a :class:`~amnic.csr.regmap.RegisterBlock`'s
    ``size``) and must not overlap. A target sees the address relative to its window. An address
    in no window is answered the next cycle with ``error`` set and ``rdata`` zero (AXI
    ``DECERR``-like, reported as ``error``).

    The decoder adds no cycle: ``valid`` and the request pass to the chosen target
    combinationally, and its ``ready``, ``done``, ``rdata`` and ``error`` pass back. It takes no
    new request until the previous one is done, so responses cannot overtake each other across
    targets.

    Parameters
    ----------
    addr_width : int
        Address width of the upstream bus (bytes).
    windows : sequence of (int, int)
        ``(base, size)`` in bytes of each target, in port order.
    data_width : int
        Data width of every bus.

    Attributes
    ----------
    bus : In(RegisterBusSignature(addr_width, data_width))
        Upstream, from the initiator.
    targets : Out(...)
        ``targets[i]`` is an ``Out(RegisterBusSignature(log2(size_i), data_width))`` bus to the
        target of window *i*.
    """

    def __init__(self, addr_width, windows, *, data_width=32):
        windows = [(int(base), int(size)) for base, size in windows]
        if not windows:
            raise ValueError("a decoder needs at least one window")
        taken = []
        for base, size in windows:
            if size < 4 or size & (size - 1) or base % size:
                raise ValueError(f"window {base:#x}+{size:#x} is not a naturally aligned "
                                 f"power of two of at least one word")
            if base + size > 1 << addr_width:
                raise ValueError(f"window {base:#x}+{size:#x} is outside a {addr_width}-bit "
                                 f"address space")
            for other_base, other_size in taken:
                if base < other_base + other_size and other_base < base + size:
                    raise ValueError(f"window {base:#x}+{size:#x} overlaps "
                                     f"{other_base:#x}+{other_size:#x}")
            taken.append((base, size))
        self.addr_width = addr_width
        self.windows = windows
        self.data_width = data_width
        super().__init__({
            "bus": In(RegisterBusSignature(addr_width, data_width)),
            "targets": Out(wiring.Signature({
                f"t{i}": Out(RegisterBusSignature(max(1, (size - 1).bit_length()), data_width))
                for i, (_, size) in enumerate(windows)
            })),
        })

    def target(self, index):
        """The bus to the target of window ``index``."""
        return getattr(self.targets, f"t{index}")

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        ports = [self.target(i) for i in range(len(self.windows))]

        pending = Signal()  # a request was taken and its done has not come yet
        hits = Signal(len(ports))
        for i, ((base, size), port) in enumerate(zip(self.windows, ports, strict=True)):
            low = (size - 1).bit_length()
            m.d.comb += [
                hits[i].eq(bus.addr[low:] == base >> low),
                port.addr.eq(bus.addr[:len(port.addr)]),
                port.write.eq(bus.write),
                port.wdata.eq(bus.wdata),
                port.wstrb.eq(bus.wstrb),
                port.valid.eq(bus.valid & hits[i] & ~pending),
            ]

        miss_done = Signal()
        m.d.sync += miss_done.eq(0)
        with m.If(~pending):
            with m.If(hits.any()):
                for i, port in enumerate(ports):
                    with m.If(hits[i]):
                        m.d.comb += bus.ready.eq(port.ready)
            with m.Else():
                m.d.comb += bus.ready.eq(1)
                with m.If(bus.valid):
                    m.d.sync += miss_done.eq(1)

        done = Cat(port.done for port in ports).any() | miss_done
        with m.If(bus.valid & bus.ready & ~done):
            m.d.sync += pending.eq(1)
        with m.Elif(done):
            m.d.sync += pending.eq(0)

        for port in ports:
            with m.If(port.done):
                m.d.comb += [
                    bus.rdata.eq(port.rdata),
                    bus.error.eq(port.error),
                ]
        with m.If(miss_done):
            m.d.comb += bus.error.eq(1)
        m.d.comb += bus.done.eq(done)
        return m
