"""Parallel CRC-32 (IEEE 802.3 clause 3.2.9) over whole bytes, several bytes per cycle.

CRC-32 is linear over GF(2): the next state after ``n`` bytes is a XOR of selected bits of the
current state and the data. :func:`crc32_matrix` derives those selections by running the
bit-serial reference on unit vectors, so the hardware never needs hand-written equations.
"""

from functools import cache

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ieee802_3 import CRC32_POLY_REFLECTED

__all__ = ["crc32_update_reference", "crc32_matrix", "crc32_next", "Crc32"]


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


def crc32_next(state, data, nbytes):
    """An Amaranth expression for the CRC state after the first ``nbytes`` bytes of ``data``."""
    bits = Cat(state, data[: 8 * nbytes])
    return Cat(*[(bits & Const(mask, len(bits))).xor() for mask in crc32_matrix(nbytes)])


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
    count : In(range(1, width // 8 + 1))
        Valid bytes of ``data``, from lane 0; with 0 the state does not change.
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
        nlanes = self._width // 8
        start = Mux(self.clear, Const(0xFFFFFFFF, 32), self.crc)
        full = crc32_next(start, self.data, nlanes)
        # A partial word goes through a chain of power-of-two chunks (4, 2, 1 bytes for a
        # 64-bit word) picked by the bits of `count`: far fewer XOR terms than one matrix per
        # byte count, and the full-word matrix stays a single level.
        state, rest = start, self.data
        chunk = 1 << (max(nlanes - 1, 1).bit_length() - 1) if nlanes > 1 else 0
        while chunk:
            take = self.count & chunk
            state = Mux(take, crc32_next(state, rest, chunk), state)
            rest = Mux(take, rest[8 * chunk:], rest[: len(rest) - 8 * chunk])
            chunk >>= 1
        partial = Signal(32)
        m.d.comb += partial.eq(state)
        nxt = Mux(self.count == nlanes, full, partial)
        m.d.comb += self.next.eq(Mux(self.valid, nxt, start))
        m.d.sync += self.crc.eq(self.next)
        return m
