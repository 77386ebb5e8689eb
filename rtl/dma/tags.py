"""Tag management for outstanding non-posted requests (PCIe Base Specification 2.2.6.2).

A memory read request carries a tag; its completions come back with the same tag, in any order
relative to other requests' completions. With 8-bit tags (Extended Tag Field Enable) up to 256
reads may be outstanding per function. :class:`~amnic.dma.read.DmaReadEngine` keeps a tag's
state in per-tag flags and picks the lowest free tag with :func:`lowest_set` (also used to
find pending MSI-X vectors).
"""

from amaranth.hdl import Const, Signal
from amaranth.utils import ceil_log2

__all__ = ["lowest_set"]


def lowest_set(m, bits, name="lowest"):
    """``(any, index)`` of the lowest set bit of ``bits`` (a tree of 2:1 choices).

    ``index`` means nothing when no bit is set.
    """
    width = len(bits)
    if width == 1:
        return bits[0], Const(0, 1)
    half = 1 << (ceil_log2(width) - 1)
    lo_any, lo_index = lowest_set(m, bits[:half], f"{name}_l")
    hi_any, hi_index = lowest_set(m, bits[half:], f"{name}_h")
    bits_out = ceil_log2(width)
    index = Signal(bits_out, name=f"{name}_index")
    found = Signal(name=f"{name}_any")
    m.d.comb += [
        found.eq(lo_any | hi_any),
        index.eq(lo_index),
    ]
    with m.If(~lo_any):
        m.d.comb += index.eq(half + hi_index)
    return found, index
