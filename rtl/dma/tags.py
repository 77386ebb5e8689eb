"""Tag management for outstanding non-posted requests (PCIe Base Specification 2.2.6.2).

A memory read request carries a tag; its completions come back with the same tag, in any order
relative to other requests' completions. With 8-bit tags (Extended Tag Field Enable) up to 256
reads may be outstanding per function. :class:`TagAllocator` hands out free tags and takes them
back when the last completion of a request arrives.
"""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["TagAllocator", "lowest_set"]


def lowest_set(m, bits, name="lowest"):
    """``(any, index)`` of the lowest set bit of ``bits`` (a tree of 2:1 choices).

    ``index`` is 0 when no bit is set.
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


class TagAllocator(wiring.Component):
    """Hand out free tags, one per cycle, and take them back.

    ``alloc`` offers the lowest free tag whenever one is free (``valid`` depends only on the
    state, never on ``ready``); taking it marks the tag outstanding from the next cycle. A tag
    on ``free`` becomes free again from the next cycle; freeing a tag that is not outstanding
    changes nothing and pulses ``bad_free`` (a completion with a stale or unknown tag).

    Parameters
    ----------
    tags : int
        Number of tags (2..1024): 32 without extended tags, 256 with 8-bit tags, 1024 with
        10-bit tags (PCIe 4.0).

    Attributes
    ----------
    alloc : Out(stream.Signature(range(tags)))
    free : In(stream.Signature(range(tags), always_ready=True))
    outstanding : Out(range(tags + 1))
        Tags handed out and not yet freed.
    bad_free : Out(1)
    """

    def __init__(self, tags=256):
        if not 2 <= tags <= 1024:
            raise ValueError(f"tag count must be 2..1024, not {tags}")
        self.tags = tags
        super().__init__({
            "alloc": Out(stream.Signature(range(tags))),
            "free": In(stream.Signature(range(tags), always_ready=True)),
            "outstanding": Out(range(tags + 1)),
            "bad_free": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        used = Signal(self.tags)
        any_free, lowest = lowest_set(m, ~used, "free_tag")
        m.d.comb += [
            self.alloc.valid.eq(any_free),
            self.alloc.payload.eq(lowest),
        ]
        take = self.alloc.valid & self.alloc.ready
        freed = self.free.payload
        known = used.bit_select(freed, 1)
        give = self.free.valid & known
        m.d.sync += self.bad_free.eq(self.free.valid & ~known)
        with m.If(take):
            m.d.sync += used.bit_select(self.alloc.payload, 1).eq(1)
        with m.If(give):
            m.d.sync += used.bit_select(freed, 1).eq(0)
        m.d.sync += self.outstanding.eq(self.outstanding + take - give)
        return m
