"""AXI4 (full) interface signature and the burst-type encoding.

AXI4 has five channels (write address AW, write data W, write response B, read address AR, read
data R), each with its own ``valid``/``ready`` handshake (ARM IHI 0022 A3.2). Unlike AXI4-Lite
(:mod:`amnic.stream.axil`) a transaction is a *burst* of up to 256 beats (``AxLEN`` + 1, IHI
0022 A3.4.1) of ``2**AxSIZE`` bytes each, of type FIXED, INCR or WRAP (:class:`AxiBurst`), with
a transaction ID (``AxID``, IHI 0022 A5) that the slave returns on B and R. Write data carries a
strobe bit per byte lane and ``wlast`` on the final beat (IHI 0022 A3.4.3); read data carries
``rlast``. Responses use the :class:`~amnic.stream.axil.AxiResp` encoding (IHI 0022 A3.4.4).

:class:`Axi4Signature` names its members like the AXI signals without the leading ``A``
(``awaddr``, ``wstrb``, ``rlast``...), so a member ``s_axi`` of a component becomes
``s_axi_awaddr``, ``s_axi_wstrb``, ... in Verilog made by :func:`amnic.cli.export.
export_verilog`, which is what cocotbext-axi's ``AxiBus.from_prefix(dut, "s_axi")`` looks for.
The optional QoS, region and user signals are not part of the signature.
"""

from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from .axil import AxiResp

__all__ = ["AxiBurst", "AxiResp", "Axi4Signature"]


class AxiBurst(enum.Enum, shape=2):
    """``AWBURST``/``ARBURST`` encoding (IHI 0022 A3.4.1, "Burst type")."""

    FIXED = 0  # every beat at the same address (FIFO-like peripherals)
    INCR = 1  # each beat at the previous address plus the transfer size
    WRAP = 2  # incrementing, wrapping at a boundary of (length * size) bytes
    # 3 is reserved


class Axi4Signature(wiring.Signature):
    """AXI4, from the master's point of view (``In(Axi4Signature(...))`` for a slave).

    Parameters
    ----------
    addr_width : int
        Width of ``awaddr``/``araddr`` (byte addresses).
    data_width : int
        Width of ``wdata``/``rdata``: a power of two from 8 to 1024 (IHI 0022 A3.4.1,
        "Burst size").
    id_width : int
        Width of the transaction IDs ``awid``/``bid``/``arid``/``rid`` (IHI 0022 A5); at least 1.

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awlock, awcache, awprot, awvalid, awready
        Write address channel. ``awlen`` is the number of beats minus one (8 bits, AXI4),
        ``awsize`` the log2 of the bytes per beat, ``awburst`` an :class:`AxiBurst` value,
        ``awlock`` the exclusive-access flag (IHI 0022 A7.2), ``awcache`` the memory type
        (IHI 0022 A4.4), ``awprot`` the protection type (IHI 0022 A4.7).
    wdata, wstrb, wlast, wvalid, wready
        Write data channel; ``wstrb`` has one bit per data byte, ``wlast`` marks the final beat.
    bid, bresp, bvalid, bready
        Write response channel; ``bresp`` is an :class:`~amnic.stream.axil.AxiResp` value.
    arid, araddr, arlen, arsize, arburst, arlock, arcache, arprot, arvalid, arready
        Read address channel, fields as on AW.
    rid, rdata, rresp, rlast, rvalid, rready
        Read data channel; ``rresp`` is per beat, ``rlast`` marks the final beat of a burst.
    """

    def __init__(self, addr_width, data_width, id_width):
        if addr_width < 1:
            raise ValueError(f"address width must be positive, not {addr_width}")
        if data_width < 8 or data_width > 1024 or data_width & (data_width - 1):
            raise ValueError(f"AXI4 data width must be a power of two from 8 to 1024, "
                             f"not {data_width}")
        if id_width < 1:
            raise ValueError(f"ID width must be positive, not {id_width}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width),
                f"{ch}addr": Out(addr_width),
                f"{ch}len": Out(8),
                f"{ch}size": Out(3),
                f"{ch}burst": Out(2),
                f"{ch}lock": Out(1),
                f"{ch}cache": Out(4),
                f"{ch}prot": Out(3),
                f"{ch}valid": Out(1),
                f"{ch}ready": In(1),
            })
            if ch == "aw":
                members.update({
                    "wdata": Out(data_width),
                    "wstrb": Out(data_width // 8),
                    "wlast": Out(1),
                    "wvalid": Out(1),
                    "wready": In(1),
                    "bid": In(id_width),
                    "bresp": In(2),
                    "bvalid": In(1),
                    "bready": Out(1),
                })
        members.update({
            "rid": In(id_width),
            "rdata": In(data_width),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        })
        super().__init__(members)

    def __eq__(self, other):
        return (isinstance(other, Axi4Signature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __repr__(self):
        return (f"Axi4Signature({self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width})")
