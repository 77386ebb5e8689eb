"""Parallel CRC-32 (IEEE 802.3 clause 3.2.9) over whole bytes, several bytes per cycle.

CRC-32 is linear over GF(2): the next state after ``n`` bytes is a XOR of selected bits of the
current state and the data. :func:`crc32_matrix` derives those selections by running the
bit-serial reference on unit vectors, so the hardware never needs hand-written equations.

Two identities of the reflected CRC keep the hardware small:

* Each data byte is XORed into the low byte of the state before the state shifts, so running
  ``n`` bytes ``d`` from state ``s`` equals running ``d`` XOR the low ``n`` bytes of ``s`` from
  state 0, with the state bytes that no data byte reached shifted down:
  ``crc(s, d) = crc(0, d ^ s[:8n]) ^ (s >> 8n)``. The XOR matrix then spans the data bits
  only, and for 4 bytes or more no separate state term remains.
* From state 0, leading zero bytes change nothing: ``crc(0, d) = crc(0, zeros + d)``. A word
  with ``k`` valid bytes is therefore moved to the top lanes and run through the same matrix as
  a full word, instead of through one matrix per byte count.
"""

from functools import cache

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ieee802_3 import CRC32_POLY_REFLECTED

__all__ = ["crc32_update_reference", "crc32_matrix", "crc32_from_zero", "crc32_next", "Crc32"]


def crc32_update_reference(state, data):
    """Bit-serial CRC-32 update of ``state`` (32-bit int, no final complement) by ``data``.

    Bytes are taken least-significant bit first, as on the wire. With ``state=0xFFFFFFFF`` and
    a final complement this equals :func:`zlib.crc32`.
    """
    for byte in data:
        state ^= byte
        for _ in range(8):
            state = (state >> 1) ^ (CRC32_POLY_REFLECTED if state & 1 else 0)
    return state


@cache
def crc32_matrix(nbytes):
    """Return, for each of the 32 next-state bits, the mask of input bits it XORs together.

    Input bits are numbered state[0:32] then data[0:8*nbytes] (byte 0 in bits 7:0).
    """
    rows = [0] * 32
    for bit in range(32 + 8 * nbytes):
        if bit < 32:
            state, data = 1 << bit, bytes(nbytes)
        else:
            state, data = 0, (1 << (bit - 32)).to_bytes(nbytes, "little")
        out = crc32_update_reference(state, data)
        for row in range(32):
            if out >> row & 1:
                rows[row] |= 1 << bit
    return tuple(rows)


def crc32_from_zero(data, nbytes):
    """An Amaranth expression for the CRC state after the first ``nbytes`` bytes of ``data``,
    starting from state 0 (only the data columns of :func:`crc32_matrix`)."""
    bits = data[: 8 * nbytes]
    return Cat(*[(bits & Const(mask >> 32, len(bits))).xor() for mask in crc32_matrix(nbytes)])


def crc32_next(state, data, nbytes):
    """An Amaranth expression for the CRC state after the first ``nbytes`` bytes of ``data``."""
    absorbed = min(nbytes, 4)
    folded = Cat(data[: 8 * absorbed] ^ state[: 8 * absorbed], data[8 * absorbed: 8 * nbytes])
    return crc32_from_zero(folded, nbytes) ^ (state >> (8 * nbytes))[:32]


class Crc32(wiring.Component):
    """Running CRC-32 over a stream of words with a byte count, one word per cycle.

    Parameters
    ----------
    width : int
        Data width in bits (multiple of 8).

    Attributes
    ----------
    clear : In(1)
        Restart at the initial value ``0xFFFFFFFF`` (takes effect on the next cycle; a word
        presented with ``clear`` is processed after the restart, so ``clear`` with ``valid``
        starts a new frame with this word).
    valid : In(1)
        Process ``data``'s first ``count`` bytes this cycle.
    data : In(width)
        The word; lanes at and above ``count`` are ignored (they need not be zero).
    count : In(range(width // 8 + 1))
        Valid bytes of ``data``, from lane 0 (0 to ``width // 8``); with 0 the state does not
        change.
    crc : Out(32)
        The running state after all processed words (not complemented).
    next : Out(32)
        The state including this cycle's word (combinational): ``~next`` in wire order
        (little-endian) is the FCS to append after this word.
    """

    def __init__(self, width=64):
        if width % 8:
            raise ValueError("CRC data width must be a multiple of 8")
        self._width = width
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "data": In(width),
            "count": In(range(width // 8 + 1)),
            "crc": Out(32, init=0xFFFFFFFF),
            "next": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        width, nlanes = self._width, self._width // 8
        start = Mux(self.clear, Const(0xFFFFFFFF, 32), self.crc)
        count = Mux(self.valid, self.count, 0)  # bytes taken this cycle

        # The state folded into the word's first bytes, then the first `count` bytes moved to
        # the top lanes (the bytes above them fall off the end, one shift stage per bit of the
        # distance): a full-word CRC from state 0 over that is the CRC of exactly `count` bytes
        # (see the module docstring).
        absorbed = min(nlanes, 4)
        aligned = Cat(self.data[: 8 * absorbed] ^ start[: 8 * absorbed],
                      self.data[8 * absorbed:])
        distance = Signal(range(nlanes + 1))
        m.d.comb += distance.eq(nlanes - count)
        for bit in reversed(range(len(distance))):
            aligned = Mux(distance[bit], (aligned << (8 << bit))[:width], aligned)
        unreached = Signal(32)  # state bytes beyond the `count` bytes absorbed
        with m.Switch(count):
            for n in range(min(nlanes, 3) + 1):
                with m.Case(n):
                    m.d.comb += unreached.eq((start >> (8 * n))[:32])
        m.d.comb += self.next.eq(crc32_from_zero(aligned, nlanes) ^ unreached)
        m.d.sync += self.crc.eq(self.next)
        return m
