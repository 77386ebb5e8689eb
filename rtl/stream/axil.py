"""AXI4-Lite interface and an adapter from AXI4-Lite to a simple register bus.

AXI4-Lite is the AMBA AXI protocol without bursts, IDs or caching (ARM IHI 0022, part B
"AMBA AXI4-Lite"): five channels (write address AW, write data W, write response B, read
address AR, read data R), each with its own ``valid``/``ready`` handshake (IHI 0022 A3.2), and
the response encoding OKAY/EXOKAY/SLVERR/DECERR (IHI 0022 A3.4.4).

:class:`AxiLiteSignature` names its members like the AXI signals without the leading ``A``
(``awaddr``, ``wstrb``, ``bresp``...), so a member ``s_axil`` of a component becomes
``s_axil_awaddr``, ``s_axil_wstrb``, ... in Verilog made by :func:`amnic.cli.export.
export_verilog`.

The register bus (:class:`RegisterBusSignature`) is the internal side: one request at a time,
with a request handshake and a one-cycle response strobe::

    initiator -> target : addr, write, wdata, wstrb, valid
    target -> initiator : ready            (request taken when valid & ready)
    target -> initiator : rdata, error, done

* ``valid`` rises with a request and holds it (``addr``, ``write``, ``wdata``, ``wstrb``
  stable) until ``ready``; ``valid`` never waits for ``ready``.
* ``addr`` is the AXI byte address; ``wstrb`` has one bit per byte of ``wdata`` (writes only).
* The target raises ``done`` for exactly one cycle per accepted request, in the cycle of the
  handshake or any later cycle, and before then does not take another request. In that cycle
  ``rdata`` holds the read data (reads) and ``error`` says whether the access failed (unmapped
  address, read-only register written, ...). The initiator always takes the response.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "AxiResp", "AxiLiteSignature", "RegisterBusSignature", "AxiLiteToRegisterBus",
    "RegisterBusToAxiLite",
]


class AxiResp(enum.Enum, shape=2):
    """``BRESP``/``RRESP`` encoding (IHI 0022 A3.4.4)."""

    OKAY = 0
    EXOKAY = 1  # exclusive access okay; not used by AXI4-Lite
    SLVERR = 2  # the slave was reached but the access failed
    DECERR = 3  # no slave at this address (interconnect decode error)


def _check_widths(addr_width, data_width):
    if addr_width < 1:
        raise ValueError(f"address width must be positive, not {addr_width}")
    if data_width not in (32, 64):
        raise ValueError(f"AXI4-Lite data width must be 32 or 64, not {data_width}")


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite, from the master's point of view (``In(AxiLiteSignature(...))`` for a slave).

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` (byte addresses).
    data_width : int
        Width of ``wdata``/``rdata``: 32 or 64 (IHI 0022 B1.1).

    Members
    -------
    awaddr, awprot, awvalid, awready
        Write address channel. ``awprot`` is the protection type (IHI 0022 A4.7).
    wdata, wstrb, wvalid, wready
        Write data channel; ``wstrb`` has one bit per data byte.
    bresp, bvalid, bready
        Write response channel; ``bresp`` is an :class:`AxiResp` value.
    araddr, arprot, arvalid, arready
        Read address channel.
    rdata, rresp, rvalid, rready
        Read data channel.
    """

    def __init__(self, addr_width, data_width=32):
        _check_widths(addr_width, data_width)
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width),
            "awprot": Out(3),
            "awvalid": Out(1),
            "awready": In(1),
            "wdata": Out(data_width),
            "wstrb": Out(data_width // 8),
            "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2),
            "bvalid": In(1),
            "bready": Out(1),
            "araddr": Out(addr_width),
            "arprot": Out(3),
            "arvalid": Out(1),
            "arready": In(1),
            "rdata": In(data_width),
            "rresp": In(2),
            "rvalid": In(1),
            "rready": Out(1),
        })

    def __eq__(self, other):
        return (isinstance(other, AxiLiteSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AxiLiteSignature({self.addr_width}, data_width={self.data_width})"


class RegisterBusSignature(wiring.Signature):
    """The internal register bus, from the initiator's point of view (see the module docs).

    Parameters
    ----------
    addr_width : int
        Width of ``addr`` (byte address).
    data_width : int
        Width of ``wdata``/``rdata``; a multiple of 8.

    Members
    -------
    addr, write, wdata, wstrb, valid : Out
        Request, held while ``valid`` and not ``ready``.
    ready : In(1)
        The target takes the request.
    rdata, error, done : In
        Response, valid in the cycle ``done`` is high.
    """

    def __init__(self, addr_width, data_width=32):
        if addr_width < 1 or data_width < 8 or data_width % 8:
            raise ValueError(f"bad register bus widths: addr {addr_width}, data {data_width}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "addr": Out(addr_width),
            "write": Out(1),
            "wdata": Out(data_width),
            "wstrb": Out(data_width // 8),
            "valid": Out(1),
            "ready": In(1),
            "rdata": In(data_width),
            "error": In(1),
            "done": In(1),
        })

    def __eq__(self, other):
        return (isinstance(other, RegisterBusSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"RegisterBusSignature({self.addr_width}, data_width={self.data_width})"


class AxiLiteToRegisterBus(wiring.Component):
    """AXI4-Lite slave that performs each access as one register-bus request.

    The AW, W and AR channels each have a one-entry holding register, so the master may present
    write address and data in either order or together (IHI 0022 A3.3.1 allows any order), and
    may issue reads while a write waits for its data. A write is performed once both its
    address and data are held. When a read and a write are both ready, they alternate, so
    neither starves. One access is in flight at a time: its response (OKAY, or SLVERR when the
    register bus reports ``error``) is presented on B or R, and the next access starts after
    that response has been taken. ``awprot``/``arprot`` are ignored. All outputs are
    registered.

    Parameters
    ----------
    addr_width : int
        Address width of both buses.
    data_width : int
        Data width of both buses: 32 or 64.

    Attributes
    ----------
    s_axil : In(AxiLiteSignature(addr_width, data_width))
        AXI4-Lite slave port.
    bus : Out(RegisterBusSignature(addr_width, data_width))
        Register bus initiator port.
    """

    def __init__(self, addr_width=16, data_width=32):
        _check_widths(addr_width, data_width)
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "s_axil": In(AxiLiteSignature(addr_width, data_width)),
            "bus": Out(RegisterBusSignature(addr_width, data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        axi, bus = self.s_axil, self.bus

        aw_full = Signal()
        aw_addr = Signal(self.addr_width)
        w_full = Signal()
        w_data = Signal(self.data_width)
        w_strb = Signal(self.data_width // 8)
        ar_full = Signal()
        ar_addr = Signal(self.addr_width)

        m.d.comb += [
            axi.awready.eq(~aw_full),
            axi.wready.eq(~w_full),
            axi.arready.eq(~ar_full),
        ]
        with m.If(axi.awvalid & axi.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(axi.awaddr)]
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(axi.wdata), w_strb.eq(axi.wstrb)]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [ar_full.eq(1), ar_addr.eq(axi.araddr)]

        write_ready = Signal()
        prefer_read = Signal()  # a write went last: a waiting read goes next
        resp = Signal(2)
        m.d.comb += [
            write_ready.eq(aw_full & w_full),
            resp.eq(AxiResp.OKAY),
        ]
        with m.If(bus.error):
            m.d.comb += resp.eq(AxiResp.SLVERR)

        def respond():
            with m.If(bus.write):
                m.d.sync += [axi.bvalid.eq(1), axi.bresp.eq(resp)]
            with m.Else():
                m.d.sync += [axi.rvalid.eq(1), axi.rresp.eq(resp), axi.rdata.eq(bus.rdata)]
            m.next = "RESPOND"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(ar_full & (prefer_read | ~write_ready)):
                    m.d.sync += [
                        bus.addr.eq(ar_addr),
                        bus.write.eq(0),
                        bus.valid.eq(1),
                        ar_full.eq(0),
                        prefer_read.eq(0),
                    ]
                    m.next = "REQUEST"
                with m.Elif(write_ready):
                    m.d.sync += [
                        bus.addr.eq(aw_addr),
                        bus.write.eq(1),
                        bus.wdata.eq(w_data),
                        bus.wstrb.eq(w_strb),
                        bus.valid.eq(1),
                        aw_full.eq(0),
                        w_full.eq(0),
                        prefer_read.eq(1),
                    ]
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                with m.If(bus.ready):
                    m.d.sync += bus.valid.eq(0)
                    with m.If(bus.done):
                        respond()
                    with m.Else():
                        m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(bus.done):
                    respond()
            with m.State("RESPOND"):
                with m.If(axi.bvalid & axi.bready):
                    m.d.sync += axi.bvalid.eq(0)
                    m.next = "IDLE"
                with m.If(axi.rvalid & axi.rready):
                    m.d.sync += axi.rvalid.eq(0)
                    m.next = "IDLE"
        return m


class RegisterBusToAxiLite(wiring.Component):
    """AXI4-Lite master that performs each register-bus request as one AXI4-Lite access.

    A write presents AW and W together (each dropped once its handshake happened, IHI 0022
    A3.3.1) and then waits for B; a read presents AR and waits for R. ``done`` comes in the
    cycle after the response handshake, with ``error`` set for any response other than OKAY
    or EXOKAY and ``rdata`` the read data. ``bready``/``rready`` are high only while a response
    is awaited. ``awprot``/``arprot`` are 0 (unprivileged, secure, data). The slave must answer
    every access (AXI has no abort); nothing else can stall the bus.

    Parameters
    ----------
    addr_width : int
        Address width of both buses.
    data_width : int
        Data width of both buses: 32 or 64.

    Attributes
    ----------
    bus : In(RegisterBusSignature(addr_width, data_width))
        Register bus target port.
    m_axil : Out(AxiLiteSignature(addr_width, data_width))
        AXI4-Lite master port.
    """

    def __init__(self, addr_width=16, data_width=32):
        _check_widths(addr_width, data_width)
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "bus": In(RegisterBusSignature(addr_width, data_width)),
            "m_axil": Out(AxiLiteSignature(addr_width, data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        axi, bus = self.m_axil, self.bus
        okay = (axi.bresp == AxiResp.OKAY) | (axi.bresp == AxiResp.EXOKAY)
        read_okay = (axi.rresp == AxiResp.OKAY) | (axi.rresp == AxiResp.EXOKAY)
        m.d.sync += bus.done.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += bus.ready.eq(1)
                with m.If(bus.valid):
                    m.d.sync += [axi.wdata.eq(bus.wdata), axi.wstrb.eq(bus.wstrb),
                                 axi.awaddr.eq(bus.addr), axi.araddr.eq(bus.addr)]
                    with m.If(bus.write):
                        m.d.sync += [axi.awvalid.eq(1), axi.wvalid.eq(1)]
                        m.next = "WRITE"
                    with m.Else():
                        m.d.sync += axi.arvalid.eq(1)
                        m.next = "READ"
            with m.State("WRITE"):
                with m.If(axi.awready):
                    m.d.sync += axi.awvalid.eq(0)
                with m.If(axi.wready):
                    m.d.sync += axi.wvalid.eq(0)
                m.d.comb += axi.bready.eq(~axi.awvalid & ~axi.wvalid)
                with m.If(axi.bready & axi.bvalid):
                    m.d.sync += [bus.done.eq(1), bus.error.eq(~okay), bus.rdata.eq(0)]
                    m.next = "IDLE"
            with m.State("READ"):
                with m.If(axi.arready):
                    m.d.sync += axi.arvalid.eq(0)
                m.d.comb += axi.rready.eq(~axi.arvalid)
                with m.If(axi.rready & axi.rvalid):
                    m.d.sync += [bus.done.eq(1), bus.error.eq(~read_okay),
                                 bus.rdata.eq(axi.rdata)]
                    m.next = "IDLE"
        return m
