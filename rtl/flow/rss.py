"""Receive-Side Scaling: the Toeplitz hash and the indirection table that picks a receive queue.

Implements the Microsoft NDIS RSS specification ("RSS hashing functions", "RSS hashing types",
"RSS configuration") for packets that miss the flow table:

* :class:`ToeplitzHash` — the 32-bit Toeplitz hash of a byte string under a 320-bit secret key,
  one hash per cycle, fully pipelined.
* :class:`Rss` — chooses the hash input of each packet from its flow key fields and the enabled
  hash types, hashes it and looks the hash up in the indirection table; key, hash types and
  table are registers (:data:`REGISTERS`).

The Toeplitz hash
-----------------
For input bits ``b[0..n)`` (``b[0]`` the most significant bit of the first byte) and key bits
``K[0..320)`` (``K[0]`` the most significant bit of key byte 0), the result is the XOR, over
every set input bit ``b[i]``, of the 32 key bits ``K[i..i+32)`` read as a number with ``K[i]``
most significant. Bit ``31 - j`` of the result is therefore the parity of
``b[i] & K[i + j]`` over all ``i``: a fixed AND-XOR network per result bit whose inputs are the
data and key bits. Trailing zero bytes do not change the hash, so inputs of different lengths
share one network of the widest input, with the bytes past the length forced to zero.

Hash inputs (network byte order, in this order): IPv4 2-tuple ``src addr, dst addr`` (8 bytes),
IPv4 4-tuple ``+ src port, dst port`` (12), IPv6 2-tuple (32), IPv6 4-tuple (36). The IPv6
"_EX" types (home address option, routing header type 2 addresses) are not supported: the
addresses of the IPv6 header are always used.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.csr.bus import RegisterBusSignature
from amnic.csr.file import RegisterFile
from amnic.csr.ids import RSS
from amnic.csr.regmap import Access, Field, Register, RegisterBlock, version
from amnic.net.headers import IPPROTO_TCP, IPPROTO_UDP

from .key import FlowKey

__all__ = [
    "KEY_BYTES", "MAX_INPUT_BYTES", "MS_DEFAULT_KEY", "NO_PAYLOAD", "REGISTERS", "RssTuple",
    "RssControl", "ToeplitzInput", "ToeplitzOutput", "ToeplitzHash", "RssRequest", "RssResponse",
    "Rss",
]

#: Bytes of the RSS secret key (320 bits).
KEY_BYTES = 40

#: Longest input a 40-byte key can hash (the window must stay inside the key).
MAX_INPUT_BYTES = KEY_BYTES - 4

#: The reset value of the key: the key of the Microsoft RSS verification suite. It is public,
#: so a driver should load a random key before enabling RSS on untrusted traffic.
MS_DEFAULT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

#: The payload shape of a hash request that carries nothing alongside.
NO_PAYLOAD = unsigned(0)



def ToeplitzInput(input_bytes, payload=NO_PAYLOAD):
    """Layout of a :class:`ToeplitzHash` request.

    Fields
    ------
    data : ArrayLayout(unsigned(8), input_bytes)
        The input, ``data[0]`` the first byte hashed.
    length : unsigned
        Bytes of ``data`` hashed: ``data[length:]`` is ignored (treated as zero). A length
        above ``input_bytes`` hashes all of ``data``; length 0 gives hash 0.
    payload : ``payload``
        Carried to the answer unchanged.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(8), input_bytes),
        "length": unsigned(input_bytes.bit_length()),
        "payload": payload,
    })


def ToeplitzOutput(payload=NO_PAYLOAD):
    """Layout of a :class:`ToeplitzHash` answer: ``hash`` (32 bits) and the request's
    ``payload``."""
    return data.StructLayout({"hash": unsigned(32), "payload": payload})


class ToeplitzHash(wiring.Component):
    """Pipelined Toeplitz hash (Microsoft RSS hashing function, 32-bit result).

    Accepts one request per cycle and answers it :attr:`latency` cycles later, in order. A stage
    takes a new request whenever it is empty or the stage after it moves, so back-pressure on
    ``o`` holds every request in place and bubbles are squeezed out. ``o.valid`` never depends
    on ``o.ready``; ``i.ready`` does.

    A caller whose data is already zero past its length can tie ``length`` to the constant
    ``input_bytes``; the masking logic then folds away in synthesis.

    Stage 1 splits the input bits into groups of ``group`` and registers, for every result bit,
    the parity of ``data & key window`` over each group; stage 2 XORs the group parities of each
    result bit. The key is sampled in stage 1 only (in the cycle the request is taken), so each
    hash uses the key of one cycle. With the default group of 3, each stage-1 parity is one
    6-input LUT (three AND pairs) feeding a flip-flop; for the 36-byte input, ``32 * 96``
    of them, then a 96-input XOR per result bit.

    Parameters
    ----------
    input_bytes : int
        Width of the input, 1 to :data:`MAX_INPUT_BYTES` (36, the IPv6 4-tuple).
    payload : shape
        Per-request data carried alongside (a tag, flags).
    group : int
        Input bits per stage-1 partial parity: larger groups need fewer flip-flops but deeper
        stage-1 logic and, as mapped by Yosys, more LUTs.

    Attributes
    ----------
    key : In(ArrayLayout(unsigned(8), 40))
        The secret key, ``key[0]`` the first key byte (network order).
    i : In(stream.Signature(ToeplitzInput(input_bytes, payload)))
        Requests.
    o : Out(stream.Signature(ToeplitzOutput(payload)))
        Answers, in request order.
    latency : int
        Cycles from a request's handshake to its answer's handshake while ``o.ready`` is held
        high (the number of pipeline stages).
    """

    latency = 2

    def __init__(self, input_bytes=MAX_INPUT_BYTES, *, payload=NO_PAYLOAD, group=3):
        if not 1 <= input_bytes <= MAX_INPUT_BYTES:
            raise ValueError(f"input_bytes must be 1..{MAX_INPUT_BYTES}, not {input_bytes}")
        if group < 1:
            raise ValueError(f"group must be positive, not {group}")
        self.input_bytes = input_bytes
        self.payload = payload
        self.group = group
        super().__init__({
            "key": In(data.ArrayLayout(unsigned(8), KEY_BYTES)),
            "i": In(stream.Signature(ToeplitzInput(input_bytes, payload))),
            "o": Out(stream.Signature(ToeplitzOutput(payload))),
        })

    def elaborate(self, platform):
        m = Module()
        nbits = 8 * self.input_bytes
        g = self.group

        # The input and the key as numbers, first byte most significant, so the key window of
        # result bit 31 - j lines up with the input as key[top - nbits - j:top - j]. Bytes at
        # and past ``length`` are masked off.
        n = self.input_bytes
        used = Signal(n)
        for k in range(n):
            m.d.comb += used[k].eq(self.i.payload.length > k)
        bits = Signal(nbits)
        m.d.comb += bits.eq(Cat(self.i.payload.data[k] for k in reversed(range(n)))
                            & Cat(used[k].replicate(8) for k in reversed(range(n))))
        key = Cat(self.key[k] for k in reversed(range(KEY_BYTES)))
        top = 8 * KEY_BYTES

        # Stage 1: for each result bit, the parity of every group of ``g`` adjacent terms
        # ``bits & window``. It is written with whole-word operations (bit ``g * t`` of
        # ``terms ^ terms >> 1 ^ ... ^ terms >> (g - 1)`` is the parity of group ``t``) so that
        # simulation evaluates a few wide expressions per cycle; only the bits at multiples of
        # ``g`` are used, and synthesis removes the flip-flops and logic of the others.
        s1_valid = Signal()
        s1_parity = Signal(data.ArrayLayout(unsigned(nbits), 32))
        s1_payload = Signal(self.payload)
        s2_ready = ~self.o.valid | self.o.ready
        s1_ready = ~s1_valid | s2_ready
        m.d.comb += self.i.ready.eq(s1_ready)
        with m.If(s1_ready):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_payload.eq(self.i.payload.payload)]
            for j in range(32):
                terms = bits & key[top - nbits - j:top - j]
                parity = terms
                for shift in range(1, g):
                    parity = parity ^ (terms >> shift)
                m.d.sync += s1_parity[31 - j].eq(parity)

        # Stage 2: the parity of the group parities.
        group_starts = sum(1 << lo for lo in range(0, nbits, g))
        with m.If(s2_ready):
            m.d.sync += [self.o.valid.eq(s1_valid), self.o.payload.payload.eq(s1_payload)]
            m.d.sync += self.o.payload.hash.eq(
                Cat((s1_parity[r] & group_starts).xor() for r in range(32)))
        return m


class RssTuple(enum.Enum, shape=6):
    """Which input :class:`Rss` hashes for a packet; the value is the input's length in
    bytes."""

    NONE = 0  #: not hashed
    IPV4 = 8  #: source and destination IPv4 address
    IPV4_L4 = 12  #: IPv4 addresses, source and destination port
    IPV6 = 32  #: source and destination IPv6 address
    IPV6_L4 = 36  #: IPv6 addresses, source and destination port


class RssControl(data.Struct):
    """The ``control`` register of :class:`Rss` (bits 6:0; see :data:`REGISTERS`)."""

    enable: 1
    ipv4: 1
    tcp_ipv4: 1
    udp_ipv4: 1
    ipv6: 1
    tcp_ipv6: 1
    udp_ipv6: 1


_HASH_TYPE_DOCS = {
    "ipv4": "IPv4 2-tuple (NDIS_HASH_IPV4, ethtool ip4): hash source and destination address "
            "of IPv4 packets that no enabled 4-tuple type covers.",
    "tcp_ipv4": "IPv4 with TCP (NDIS_HASH_TCP_IPV4, ethtool tcp4): hash the 4-tuple of IPv4 "
                "TCP packets with a valid TCP header (not a fragment).",
    "udp_ipv4": "IPv4 with UDP (NDIS_HASH_UDP_IPV4, ethtool udp4): hash the 4-tuple of IPv4 "
                "UDP packets with a valid UDP header (not a fragment).",
    "ipv6": "IPv6 2-tuple (NDIS_HASH_IPV6, ethtool ip6): hash source and destination address "
            "of IPv6 packets that no enabled 4-tuple type covers.",
    "tcp_ipv6": "IPv6 with TCP (NDIS_HASH_TCP_IPV6, ethtool tcp6): as tcp_ipv4 for IPv6.",
    "udp_ipv6": "IPv6 with UDP (NDIS_HASH_UDP_IPV6, ethtool udp6): as udp_ipv4 for IPv6.",
}

_CONTROL_OFFSET = 0x0C
_KEY_OFFSET = 0x20
_KEY_WORDS = KEY_BYTES // 4


def _registers():
    control_fields = [Field("enable", 0, 1,
                            "1: hash packets of the enabled types. 0: no packet is hashed "
                            "(every answer has hashed 0, hash 0, the queue of table entry 0).")]
    for n, (name, doc) in enumerate(_HASH_TYPE_DOCS.items()):
        assert RssControl.as_shape()[name].offset == n + 1
        control_fields.append(Field(name, n + 1, 1, doc))
    control_init = 0b111_1110  # every hash type enabled, RSS itself off
    regs = [
        Register("control", _CONTROL_OFFSET, Access.RW,
                 "RSS enable and enabled hash types (Microsoft RSS hashing types). TCP or UDP "
                 "packets whose 4-tuple type is disabled, or whose ports are not valid, fall "
                 "back to the 2-tuple type of their IP version.",
                 init=control_init, fields=tuple(control_fields)),
        Register("reta_info", 0x10, Access.RO,
                 "Indirection table geometry, fixed at build time (the reset value shown is "
                 "that of the default build: 128 entries, 12-bit queue numbers).",
                 init=7 | 12 << 8, fields=(
                     Field("table_log2", 0, 5, "log2 of the number of table entries."),
                     Field("queue_bits", 8, 5, "Width of a queue number in bits."),
                 )),
        Register("reta_index", 0x14, Access.RW,
                 "Indirection table entry that reta_cmd writes or reads.", fields=(
                     Field("index", 0, 16, "Entry number; an index at or above the number of "
                                           "entries addresses nothing (writes are ignored, "
                                           "reads return 0)."),
                 )),
        Register("reta_data", 0x18, Access.RW,
                 "Queue number for a table write; receives the entry of a table read.",
                 fields=(
                     Field("queue", 0, 16, "Queue number; bits at and above queue_bits are "
                                           "not stored (a read returns them as 0)."),
                 )),
        Register("reta_cmd", 0x1C, Access.W1S,
                 "Indirection table commands on entry reta_index. Each bit reads 1 until its "
                 "command is done (a few cycles); wait for 0 before the next command or "
                 "before reading reta_data. A write and a read set together write first.",
                 fields=(
                     Field("write", 0, 1, "Store reta_data.queue into the entry."),
                     Field("read", 1, 1, "Load the entry into reta_data.queue."),
                 )),
    ]
    for w in range(_KEY_WORDS):
        regs.append(Register(
            f"key_{w}", _KEY_OFFSET + 4 * w, Access.RW,
            f"Secret key bytes {4 * w}..{4 * w + 3}, byte {4 * w} in bits 31:24 (network "
            f"order: key_0 bits 31:24 are the first key byte). Each hash uses the key of one "
            f"cycle; while software rewrites the key, hashes may mix old and new words.",
            init=int.from_bytes(MS_DEFAULT_KEY[4 * w:4 * w + 4], "big")))
    return RegisterBlock(
        "rss", RSS, version(1, 0), regs,
        "Receive-Side Scaling (Microsoft RSS): a 40-byte Toeplitz key, the enabled hash types "
        "and the indirection table that maps the low bits of each packet's hash to a receive "
        "queue. After reset RSS is off, every hash type enabled, the key is the public "
        "Microsoft verification key and every table entry is queue 0.")


#: The register map of :class:`Rss`.
REGISTERS = _registers()

_KEY_FIELDS = FlowKey.as_shape()


def RssRequest(tag_width=8):
    """Layout of an :class:`Rss` request (one packet).

    Fields
    ------
    ipv6, protocol, src_addr, dst_addr, src_port, dst_port
        As in :class:`~amnic.flow.key.FlowKey`; of an IPv4 packet only the low 32 address bits
        are used.
    l4_valid : unsigned(1)
        1 when the ports are meaningful: a TCP or UDP header is present and the packet is not
        a fragment. Without it a TCP/UDP packet is hashed as a 2-tuple.
    tag : unsigned(tag_width)
        Returned unchanged with the answer.
    """
    fields = {name: _KEY_FIELDS[name].shape
              for name in ("ipv6", "protocol", "src_addr", "dst_addr", "src_port", "dst_port")}
    return data.StructLayout({**fields, "l4_valid": unsigned(1), "tag": unsigned(tag_width)})


def RssResponse(queue_bits=12, tag_width=8):
    """Layout of an :class:`Rss` answer.

    Fields
    ------
    hash : unsigned(32)
        The Toeplitz hash; 0 when not hashed.
    queue : unsigned(queue_bits)
        ``table[hash % entries]`` (entry 0 when not hashed).
    hashed : unsigned(1)
        1 when an enabled hash type applied to the packet.
    tag : unsigned(tag_width)
        The request's tag.
    """
    return data.StructLayout({"hash": unsigned(32), "queue": unsigned(queue_bits),
                              "hashed": unsigned(1), "tag": unsigned(tag_width)})


def _be_bytes(value, count):
    """The low ``count`` bytes of ``value`` in network order (first byte most significant)."""
    return [value[8 * (count - 1 - k):8 * (count - k)] for k in range(count)]


class Rss(wiring.Component):
    """Receive-Side Scaling for packets that miss the flow table.

    Per request the tuple to hash follows the Microsoft hash-type rules: with ``control.enable``
    set, a TCP packet (protocol 6) with ``l4_valid`` whose IP version's TCP type is enabled
    hashes the 4-tuple, a UDP packet (17) likewise with the UDP type; any other packet hashes
    the 2-tuple if the plain type of its IP version is enabled; otherwise it is not hashed. The
    queue is ``table[hash & (entries - 1)]``. A packet that is not hashed gets ``hashed`` 0,
    hash 0 and the queue of table entry 0 (the default queue).

    Timing: one request per cycle; without back-pressure each answer is taken :attr:`latency`
    cycles after its request; answers come in request order;
    back-pressure on ``o`` stalls the pipeline (``i.ready`` falls), ``o.valid`` never waits on
    ``o.ready``. A table entry rewritten while requests flow is seen either before or after
    the write by each request, never half-written.

    Registers (:data:`REGISTERS`): ``control``, the ten ``key_*`` words and the indirection
    table, reached indirectly: write ``reta_index`` (and ``reta_data`` for a write), set a bit
    of ``reta_cmd``, wait until ``reta_cmd`` reads 0, then (for a read) read ``reta_data``.
    ``reta_info`` tells software the table size and queue width. After reset every entry is
    queue 0.

    Parameters
    ----------
    entries : int
        Indirection table entries, a power of two from 2 to 65536.
    queue_bits : int
        Width of a queue number, 1 to 16.
    tag_width : int
        Width of the request tag returned with each answer.

    Attributes
    ----------
    bus : In(RegisterBusSignature(REGISTERS.addr_width))
        Register access (:mod:`amnic.csr.bus`) to :data:`REGISTERS`.
    i : In(stream.Signature(RssRequest(tag_width)))
        One request per packet.
    o : Out(stream.Signature(RssResponse(queue_bits, tag_width)))
        One answer per request, in order.
    latency : int
        Cycles from a request's handshake to its answer's handshake while ``o.ready`` is held
        high: 4 (tuple selection, two hash stages, table lookup).
    """

    registers = REGISTERS
    latency = 2 + ToeplitzHash.latency

    def __init__(self, *, entries=128, queue_bits=12, tag_width=8):
        if not 2 <= entries <= 1 << 16 or entries & (entries - 1):
            raise ValueError(f"entries must be a power of two from 2 to 65536, not {entries}")
        if not 1 <= queue_bits <= 16:
            raise ValueError(f"queue_bits must be 1..16, not {queue_bits}")
        if tag_width < 0:
            raise ValueError(f"tag_width must not be negative, not {tag_width}")
        self.entries = entries
        self.queue_bits = queue_bits
        self.tag_width = tag_width
        self.index_bits = entries.bit_length() - 1
        super().__init__({
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
            "i": In(stream.Signature(RssRequest(tag_width))),
            "o": Out(stream.Signature(RssResponse(queue_bits, tag_width))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        m.d.comb += regs.status.reta_info.eq(self.index_bits | self.queue_bits << 8)

        m.submodules.table = table = memory.Memory(
            shape=unsigned(self.queue_bits), depth=self.entries, init=[])
        self._table_access(m, regs, table)

        payload = data.StructLayout({"hashed": unsigned(1), "tag": unsigned(self.tag_width)})
        m.submodules.hash = toeplitz = ToeplitzHash(MAX_INPUT_BYTES, payload=payload)
        for w in range(_KEY_WORDS):
            word = getattr(regs.value, f"key_{w}")
            for q, byte in enumerate(_be_bytes(word, 4)):
                m.d.comb += toeplitz.key[4 * w + q].eq(byte)

        # Stage A: choose the tuple and lay out its bytes.
        req = self.i.payload
        control = RssControl(regs.value.control[:RssControl.as_shape().size])
        kind = Signal(RssTuple)
        tcp = req.protocol == IPPROTO_TCP
        udp = req.protocol == IPPROTO_UDP
        v6_ports = req.l4_valid & ((tcp & control.tcp_ipv6) | (udp & control.udp_ipv6))
        v4_ports = req.l4_valid & ((tcp & control.tcp_ipv4) | (udp & control.udp_ipv4))
        with m.If(~control.enable):
            m.d.comb += kind.eq(RssTuple.NONE)
        with m.Elif(req.ipv6 & v6_ports):
            m.d.comb += kind.eq(RssTuple.IPV6_L4)
        with m.Elif(req.ipv6 & control.ipv6):
            m.d.comb += kind.eq(RssTuple.IPV6)
        with m.Elif(~req.ipv6 & v4_ports):
            m.d.comb += kind.eq(RssTuple.IPV4_L4)
        with m.Elif(~req.ipv6 & control.ipv4):
            m.d.comb += kind.eq(RssTuple.IPV4)
        with m.Else():
            m.d.comb += kind.eq(RssTuple.NONE)

        # Bytes outside the chosen tuple are zeroed here, so the hash needs no length mask (its
        # length input is tied to the full width and the mask logic folds away).
        addr_on = (kind != RssTuple.NONE).replicate(8)
        port_on = ((kind == RssTuple.IPV4_L4) | (kind == RssTuple.IPV6_L4)).replicate(8)
        ports = [b & port_on for b in _be_bytes(req.src_port, 2) + _be_bytes(req.dst_port, 2)]
        v4 = Cat(*(b & addr_on for b in _be_bytes(req.src_addr, 4) + _be_bytes(req.dst_addr, 4)),
                 *ports)
        v6 = Cat(*(b & addr_on for b in _be_bytes(req.src_addr, 16) + _be_bytes(req.dst_addr, 16)),
                 *ports)
        a_ready = ~toeplitz.i.valid | toeplitz.i.ready
        m.d.comb += [
            self.i.ready.eq(a_ready),
            toeplitz.i.payload.length.eq(MAX_INPUT_BYTES),
        ]
        with m.If(a_ready):
            m.d.sync += [
                toeplitz.i.valid.eq(self.i.valid),
                toeplitz.i.payload.data.eq(Mux(req.ipv6, v6, v4)),
                toeplitz.i.payload.payload.hashed.eq(kind != RssTuple.NONE),
                toeplitz.i.payload.payload.tag.eq(req.tag),
            ]

        # Stages B (in ToeplitzHash) and C: the table lookup, read as the hash moves into C.
        lookup = table.read_port(domain="sync")
        c_ready = ~self.o.valid | self.o.ready
        m.d.comb += [
            toeplitz.o.ready.eq(c_ready),
            lookup.addr.eq(toeplitz.o.payload.hash[:self.index_bits]),
            lookup.en.eq(c_ready),
            self.o.payload.queue.eq(lookup.data),
        ]
        with m.If(c_ready):
            m.d.sync += [
                self.o.valid.eq(toeplitz.o.valid),
                self.o.payload.hash.eq(toeplitz.o.payload.hash),
                self.o.payload.hashed.eq(toeplitz.o.payload.payload.hashed),
                self.o.payload.tag.eq(toeplitz.o.payload.payload.tag),
            ]
        return m

    def _table_access(self, m, regs, table):
        """The reta_cmd sequencer: a write takes one cycle, a read two (address, then load)."""
        index = regs.value.reta_index[:16]
        in_range = index < self.entries
        cmd = regs.value.reta_cmd
        store = table.write_port()
        fetch = table.read_port(domain="sync")
        reading = Signal()  # fetch.data holds the entry a read command asked for
        reading_valid = Signal()  # ... and that entry exists
        m.d.comb += [
            store.addr.eq(index),
            store.data.eq(regs.value.reta_data),
            fetch.addr.eq(index),
        ]
        with m.If(cmd[0]):
            m.d.comb += [store.en.eq(in_range), regs.clear.reta_cmd[0].eq(1)]
        with m.Elif(cmd[1] & ~reading):
            m.d.comb += fetch.en.eq(1)
            m.d.sync += [reading.eq(1), reading_valid.eq(in_range)]
        with m.If(reading):
            m.d.sync += reading.eq(0)
            m.d.comb += [
                regs.load.reta_data.eq(Mux(reading_valid, fetch.data, 0)),
                regs.load_en.reta_data.eq(1),
                regs.clear.reta_cmd[1].eq(1),
            ]
