"""Building blocks for reading headers out of a captured byte window.

A *window* is a ``Value`` of ``8 * n`` bits holding the first ``n`` bytes of a frame, byte 0 (the
first on the wire) in bits 7:0. Helpers here read big-endian fields from byte vectors, select
``n`` bytes at a run-time offset from a set of possible offsets, and add 16-bit words with the
ones'-complement arithmetic of the Internet checksum (RFC 1071).
"""

from amaranth.hdl import Cat, Const, Signal

__all__ = ["byte", "be_field", "select_bytes", "balanced_sum", "fold16", "word_sum",
           "masked_window_sum"]


def byte(vec, index):
    """Byte ``index`` of a byte vector (byte 0 in bits 7:0)."""
    return vec[8 * index:8 * index + 8]


def be_field(vec, offset, length):
    """The ``length``-byte big-endian (network order) field at ``offset``, as its numeric value."""
    return Cat(*(byte(vec, offset + length - 1 - k) for k in range(length)))


def select_bytes(m, window, window_len, offset, length, candidates, name):
    """Bytes ``[offset, offset + length)`` of ``window`` for a run-time ``offset``.

    Parameters
    ----------
    m : Module
    window : Value
        ``8 * window_len`` bits.
    window_len : int
    offset : Value
    length : int
        Bytes to select.
    candidates : iterable of int
        The offsets that can occur. Any other ``offset`` gives all zeros; bytes past the window
        read zero.
    name : str
        Name of the returned signal.

    Returns
    -------
    Signal(8 * length)
    """
    out = Signal(8 * length, name=name)
    with m.Switch(offset):
        for c in sorted(set(candidates)):
            if 0 <= c < window_len:
                with m.Case(c):
                    m.d.comb += out.eq(window[8 * c:8 * min(c + length, window_len)])
    return out


def balanced_sum(values, m=None, name="sum", hold_every=3):
    """Sum of ``values`` as a balanced adder tree (each addition widens by one bit).

    With a module ``m``, every ``hold_every``-th level of the tree (and the root) is kept in
    named signals (``{name}_l{level}_{k}``): this keeps expressions shallow for elaboration and
    simulation while adding few signals.
    """
    values = list(values)
    if not values:
        return Const(0, 1)
    level = 0
    while len(values) > 1:
        nxt = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        level += 1
        if m is not None and (level % hold_every == 0 or len(nxt) == 1):
            held = []
            for k, value in enumerate(nxt):
                sig = Signal(len(value), name=f"{name}_l{level}_{k}")
                m.d.comb += sig.eq(value)
                held.append(sig)
            nxt = held
        values = nxt
    return values[0]


def fold16(value):
    """Reduce a sum of 16-bit words of any width to 16 bits by end-around carry (RFC 1071
    section 2).

    Each fold adds the high part to the low 16 bits. Once a fold has left at most 17 bits, the
    value is at most 0xFFFF + 0xFFFF, so one more fold cannot carry.
    """
    if len(value) <= 16:
        return value
    value = value[:16] + value[16:]
    while len(value) > 17:
        value = value[:16] + value[16:]
    return (value[:16] + value[16:])[:16]


def word_sum(vec, nbytes, mask=None, m=None, name="word_sum"):
    """Sum of the 16-bit big-endian words of a byte vector (unfolded).

    ``mask`` (optional) is a Python list of one bit per word: words whose bit is low add zero.
    An odd trailing byte is the high byte of a word whose low byte is zero (RFC 1071).
    """
    words = []
    for k in range(0, nbytes, 2):
        hi = byte(vec, k)
        lo = byte(vec, k + 1) if k + 1 < nbytes else Const(0, 8)
        word = Cat(lo, hi)
        if mask is not None:
            word = word & mask[k // 2].replicate(16)
        words.append(word)
    return balanced_sum(words, m, name)


def masked_window_sum(m, window, window_len, lo, hi, name, lo_min=0):
    """Unfolded sum of the 16-bit words of the bytes ``[lo, hi)`` of ``window``.

    Words are aligned to the start of the window. The caller guarantees ``lo`` even,
    ``lo_min <= lo < window_len`` and ``hi <= window_len`` whenever it uses the result (other
    values give some sum). A byte at an odd offset is the low byte of its word, so an odd ``hi``
    keeps the high byte of the last word only (RFC 1071 padding).
    """
    bits = (window_len).bit_length()
    lo_word = Signal(bits, name=f"{name}_lo")
    hi_word = Signal(bits, name=f"{name}_hi")
    hi_odd = Signal(name=f"{name}_odd")
    m.d.comb += [lo_word.eq(lo[1:bits + 1]), hi_word.eq(hi[1:bits + 1]), hi_odd.eq(hi[0])]
    first, count = lo_min // 2, window_len // 2 - lo_min // 2
    if count <= 0:
        return Const(0, 16)
    full = Signal(count, name=f"{name}_full")  # word k entirely in the range
    high = Signal(count, name=f"{name}_high")  # its high byte in the range
    m.d.comb += [
        full.eq(Cat(*((lo_word <= k) & (k < hi_word) for k in range(first, first + count)))),
        high.eq(full | Cat(*(hi_odd & (lo_word <= k) & (hi_word == k)
                             for k in range(first, first + count)))),
    ]
    # Byte 2k (the high byte of word k) lies in bits 16k..16k+7 of the window.
    lanes = Signal(16 * count, name=f"{name}_lanes")
    m.d.comb += lanes.eq(Cat(*(Cat(high[j].replicate(8), full[j].replicate(8))
                               for j in range(count))))
    kept = Signal(16 * count, name=f"{name}_kept")
    m.d.comb += kept.eq(window[16 * first:16 * (first + count)] & lanes)
    words = [Cat(byte(kept, 2 * j + 1), byte(kept, 2 * j)) for j in range(count)]
    return balanced_sum(words, m, name)
