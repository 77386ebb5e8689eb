"""Frame format of the MAC Control flow-control frames: PAUSE and priority-based PAUSE (PFC).

A MAC Control frame (IEEE 802.3 clause 31.4) is a ``minFrameSize`` frame whose Length/Type is
0x8808; the two octets after it are the opcode and the rest of the data field holds the opcode's
parameters, then zero padding up to 60 octets before the FCS.

- PAUSE (annex 31B.2), opcode 0x0001: one ``pause_time`` (octets 16-17).
- PFC (annex 31D.2, IEEE 802.1Qbb), opcode 0x0101: a ``priority_enable_vector`` (octets 16-17,
  the low octet 17 holds one bit per priority, bit ``p`` for priority ``p``; the high octet is
  reserved, sent as zero and ignored on receipt) and eight ``time`` values (octets 18-33,
  priority 0 first).

All multi-octet fields are big-endian on the wire. The layouts below hold octets in wire order
(element 0 is the first octet on the wire, in the lowest bits), so a flat value of a layout is
exactly what a packet stream carries; :func:`byte_reversed` converts a big-endian field to and
from a number.
"""

from amaranth.hdl import Cat
from amaranth.lib import data

from .ieee802_3 import MIN_PAYLOAD_LEN

__all__ = [
    "Octets",
    "PauseParameters",
    "PfcParameters",
    "MacControlHeader",
    "MacControlFrame",
    "CONTROL_HEADER_LEN",
    "CONTROL_FRAME_LEN",
    "byte_reversed",
]


def Octets(count):
    """A field of ``count`` octets in wire order (octet 0 first, in bits 7:0)."""
    return data.ArrayLayout(8, count)


class PauseParameters(data.Struct):
    """Parameters of a PAUSE frame (annex 31B.2): the requested time in pause quanta."""

    pause_time: Octets(2)


class PfcParameters(data.Struct):
    """Parameters of a PFC frame (annex 31D.2): class-enable vector and per-priority times."""

    priority_enable_vector: Octets(2)
    time: data.ArrayLayout(Octets(2), 8)


class MacControlHeader(data.Struct):
    """The first 34 octets of a MAC Control frame: addresses, type, opcode and parameters."""

    destination: Octets(6)
    source: Octets(6)
    ethertype: Octets(2)
    opcode: Octets(2)
    parameters: data.UnionLayout({"pause": PauseParameters, "pfc": PfcParameters})


# Octets of the header above and of a whole MAC Control frame without its FCS (clause 31.4).
CONTROL_HEADER_LEN = MacControlHeader.as_shape().size // 8
CONTROL_FRAME_LEN = MIN_PAYLOAD_LEN


class MacControlFrame(data.Struct):
    """A whole MAC Control frame without FCS: the header, then reserved octets sent as zero."""

    header: MacControlHeader
    padding: Octets(CONTROL_FRAME_LEN - CONTROL_HEADER_LEN)


def byte_reversed(value):
    """``value`` with its octets in the opposite order.

    Converts a big-endian number (``0x8808``) to the octets of a wire-order field and back;
    ``value`` must be a whole number of octets wide.
    """
    value = Cat(value)
    if len(value) % 8:
        raise ValueError(f"cannot reverse the octets of a {len(value)}-bit value")
    return Cat(*(value[offset : offset + 8] for offset in reversed(range(0, len(value), 8))))
