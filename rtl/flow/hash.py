"""The two hash functions of the exact-match flow table, in hardware and as a Python reference.

Both are H3 hashes (Carter and Wegman, "Universal classes of hash functions", JCSS 18(2),
1979): bit *i* of hash *j* is the parity of the key ANDed with a fixed mask ``M[j][i]``. In
hardware every output bit is one XOR tree over the key bits its mask selects (about half of the
341 bits: three LUT6 levels), with no carry chain and no state, so the tree can be cut by
registers wherever timing needs. The two functions use different masks, so a key's two
candidate buckets are independent, which cuckoo hashing needs.

The masks are not stored anywhere: they are drawn from SplitMix64 (G. Steele, D. Lea and C.
Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014) seeded with ``seed``, so
any program can rebuild them from the seed alone (the flow table reports its seed in a
register). The order of draws is:

* for function 0, then function 1; for output bit 0 to 31 of that function: draw six 64-bit
  words ``w0..w5``; the mask is ``w0 | w1 << 64 | ... | w5 << 320`` truncated to the key width
  (341 bits, :data:`~amnic.flow.key.FLOW_KEY_BITS`).

A hash is 32 bits wide; a table with ``2**n`` buckets per bank uses the low ``n`` bits, so the
functions do not depend on the table size.

The key is the raw bit pattern of a :class:`~amnic.flow.key.FlowKey`
(:func:`~amnic.flow.key.flow_key_value`), bit 0 being bit 0 of ``port``.
"""

from amaranth.hdl import Cat, Const, Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .key import FLOW_KEY_BITS, FlowKey

__all__ = ["DEFAULT_SEED", "HASH_BITS", "HASH_FUNCTIONS", "splitmix64", "h3_masks",
           "FlowHashes", "FlowHashUnit"]

#: Seed of the masks unless a table is built with another one.
DEFAULT_SEED = 0x464C4F57  # "FLOW"

#: Width of each hash value.
HASH_BITS = 32

#: Number of hash functions (one per table bank).
HASH_FUNCTIONS = 2

_MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One SplitMix64 step: returns ``(output, next_state)`` (all 64-bit integers)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31), state


def h3_masks(seed=DEFAULT_SEED, *, functions=HASH_FUNCTIONS, bits=HASH_BITS,
             key_bits=FLOW_KEY_BITS):
    """The H3 masks: ``masks[j][i]`` selects the key bits whose parity is bit ``i`` of hash
    ``j``. See the module notes for the order of draws."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed {seed:#x} is not a 64-bit unsigned integer")
    words = -(-key_bits // 64)
    state = seed
    masks = []
    for _ in range(functions):
        rows = []
        for _ in range(bits):
            mask = 0
            for w in range(words):
                value, state = splitmix64(state)
                mask |= value << (64 * w)
            rows.append(mask & ((1 << key_bits) - 1))
        masks.append(tuple(rows))
    return tuple(masks)


class FlowHashes:
    """Python reference of the two flow-table hash functions (used by the driver model).

    Parameters
    ----------
    seed : int
        Mask seed (see the module notes).

    Examples
    --------
    >>> h = FlowHashes()
    >>> h(0, 0), h(0, 1)
    (0, 0)
    """

    def __init__(self, seed=DEFAULT_SEED):
        self.seed = seed
        self.masks = h3_masks(seed)

    def __call__(self, key, which):
        """Hash ``which`` (0 or 1) of the raw key ``key``, a :data:`HASH_BITS`-bit integer."""
        if not 0 <= key < 1 << FLOW_KEY_BITS:
            raise ValueError(f"key {key:#x} is wider than {FLOW_KEY_BITS} bits")
        out = 0
        for i, mask in enumerate(self.masks[which]):
            out |= ((key & mask).bit_count() & 1) << i
        return out

    def bucket(self, key, which, buckets):
        """The bucket of ``key`` in bank ``which`` of a table with ``buckets`` (a power of two)
        buckets per bank: the low bits of the hash."""
        return self(key, which) & (buckets - 1)


class FlowHashUnit(wiring.Component):
    """Both hash functions of a key, combinationally.

    Parameters
    ----------
    width : int
        Output bits per hash, 1 to :data:`HASH_BITS`: bits ``width-1..0`` of each hash.
    seed : int
        Mask seed.

    Attributes
    ----------
    key : In(FlowKey)
        The key.
    hashes : Out(ArrayLayout(width, 2))
        ``hashes[j]`` is hash ``j`` of ``key`` truncated to ``width`` bits, equal to
        ``FlowHashes(seed)(key, j) & (2**width - 1)``; valid in the same cycle as ``key``.
    """

    def __init__(self, width, *, seed=DEFAULT_SEED):
        if not 1 <= width <= HASH_BITS:
            raise ValueError(f"hash width must be 1 to {HASH_BITS}, not {width}")
        self.width = width
        self.seed = seed
        self.masks = h3_masks(seed)
        super().__init__({
            "key": In(FlowKey),
            "hashes": Out(data.ArrayLayout(width, HASH_FUNCTIONS)),
        })

    def elaborate(self, platform):
        m = Module()
        raw = self.key.as_value()
        for j in range(HASH_FUNCTIONS):
            bits = []
            for i in range(self.width):
                mask = self.masks[j][i]
                taps = [raw[b] for b in range(FLOW_KEY_BITS) if mask >> b & 1]
                bits.append(Cat(*taps).xor() if taps else Const(0, 1))
            m.d.comb += self.hashes[j].eq(Cat(*bits))
        return m
