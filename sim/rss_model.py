"""Reference model of Receive-Side Scaling: the Toeplitz hash, its input tuples, queue choice.

Written from the Microsoft NDIS "RSS hashing functions" and "RSS hashing types" specification,
independently of the RTL (:mod:`amnic.flow.rss`), so the two can be compared:

* :func:`toeplitz_hash` — for each input bit, most significant bit of byte 0 first, a set bit
  XORs the 32 key bits at the current window into the result; the window then slides by one
  bit. The key is a byte string in network order (its first byte holds the first 8 window
  bits).
* :func:`rss_input` — the byte string hashed for a packet: source address, destination
  address, then (4-tuple only) source port and destination port, each in network byte order.
* :class:`RssModel` — the hash-type rules (which tuple a packet gets, given the enabled hash
  types) and the indirection table lookup ``table[hash % entries]``.
* :data:`MS_KEY`, :data:`MS_IPV4_VECTORS`, :data:`MS_IPV6_VECTORS` — the published
  verification key and vectors ("Verifying the RSS hash calculation").
"""

import ipaddress
from dataclasses import dataclass, field

from amnic.net.headers import IPPROTO_TCP, IPPROTO_UDP

__all__ = [
    "KEY_BYTES", "MS_KEY", "MS_IPV4_VECTORS", "MS_IPV6_VECTORS", "HashTypes", "RssModel",
    "toeplitz_hash", "rss_input", "tuple_length", "IPPROTO_TCP", "IPPROTO_UDP",
]

#: Length of the RSS secret key in bytes (320 bits).
KEY_BYTES = 40

#: The key of the Microsoft RSS verification suite.
MS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

#: IPv4 verification vectors: ``(dst, dst_port, src, src_port, hash_2tuple, hash_4tuple)``.
MS_IPV4_VECTORS = (
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
)

#: IPv6 verification vectors, same columns as :data:`MS_IPV4_VECTORS`.
MS_IPV6_VECTORS = (
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
     0x4B61E985, 0x02D1FEEF),
)



def toeplitz_hash(key, data):
    """The 32-bit Toeplitz hash of ``data`` under ``key`` (Microsoft RSS hashing function).

    Parameters
    ----------
    key : bytes
        The secret key, at least ``len(data) + 4`` bytes.
    data : bytes
        The hash input.

    Returns
    -------
    int
    """
    key, data = bytes(key), bytes(data)
    if len(key) < len(data) + 4:
        raise ValueError(f"a {len(data)}-byte input needs a key of at least {len(data) + 4} "
                         f"bytes, not {len(key)}")
    key_bits = len(key) * 8
    key_int = int.from_bytes(key, "big")
    result = 0
    for i in range(len(data) * 8):
        if data[i // 8] >> (7 - i % 8) & 1:
            # The 32 key bits starting at bit i (bit 0 = most significant bit of key[0]).
            result ^= key_int >> (key_bits - 32 - i) & 0xFFFF_FFFF
    return result


def _address_bytes(address, ipv6):
    size = 16 if ipv6 else 4
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    value = int(address)
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"address {address!r} does not fit {size} bytes")
    return value.to_bytes(size, "big")


def rss_input(*, ipv6, src_addr, dst_addr, src_port=None, dst_port=None):
    """The RSS hash input of a packet: the 2-tuple, or the 4-tuple when ports are given.

    Parameters
    ----------
    ipv6 : bool
    src_addr, dst_addr : str, int or ipaddress address
        Numeric value or text form.
    src_port, dst_port : int or None
        Both given for a 4-tuple (TCP/UDP), both ``None`` for a 2-tuple.

    Returns
    -------
    bytes
        8 (IPv4 2-tuple), 12 (IPv4 4-tuple), 32 (IPv6 2-tuple) or 36 (IPv6 4-tuple) bytes.
    """
    out = _address_bytes(src_addr, ipv6) + _address_bytes(dst_addr, ipv6)
    if (src_port is None) != (dst_port is None):
        raise ValueError("give both ports (4-tuple) or neither (2-tuple)")
    if src_port is not None:
        out += src_port.to_bytes(2, "big") + dst_port.to_bytes(2, "big")
    return out


def tuple_length(*, ipv6, ports):
    """Bytes of an RSS input tuple (8, 12, 32 or 36)."""
    return (32 if ipv6 else 8) + (4 if ports else 0)


@dataclass
class HashTypes:
    """The enabled RSS hash types (NDIS_HASH_IPV4, NDIS_HASH_TCP_IPV4, ...; ethtool ``ip4``,
    ``tcp4``, ...), plus the global enable."""

    enable: bool = True
    ipv4: bool = True
    tcp_ipv4: bool = True
    udp_ipv4: bool = True
    ipv6: bool = True
    tcp_ipv6: bool = True
    udp_ipv6: bool = True


@dataclass
class RssModel:
    """RSS decisions for a packet, as the Microsoft hash-type rules define them.

    Parameters
    ----------
    key : bytes
        40-byte secret key.
    table : list of int
        The indirection table; its length is a power of two.
    types : HashTypes
        Enabled hash types.
    """

    key: bytes = MS_KEY
    table: list = field(default_factory=lambda: [0] * 128)
    types: HashTypes = field(default_factory=HashTypes)

    def hash_input(self, *, ipv6, protocol, src_addr, dst_addr, src_port, dst_port, l4_valid):
        """The bytes hashed for a packet, or ``None`` when no enabled hash type applies.

        TCP (protocol 6) with a valid transport header and the TCP type of its IP version
        enabled, or UDP (17) likewise with the UDP type, hashes the 4-tuple; otherwise the
        2-tuple if the plain IPv4/IPv6 type is enabled; otherwise nothing.
        """
        t = self.types
        if not t.enable:
            return None
        tcp = t.tcp_ipv6 if ipv6 else t.tcp_ipv4
        udp = t.udp_ipv6 if ipv6 else t.udp_ipv4
        plain = t.ipv6 if ipv6 else t.ipv4
        if l4_valid and ((protocol == IPPROTO_TCP and tcp) or (protocol == IPPROTO_UDP and udp)):
            return rss_input(ipv6=ipv6, src_addr=src_addr, dst_addr=dst_addr,
                             src_port=src_port, dst_port=dst_port)
        if plain:
            return rss_input(ipv6=ipv6, src_addr=src_addr, dst_addr=dst_addr)
        return None

    def process(self, **request):
        """``(hash, queue, hashed)`` for a packet (keyword arguments as :meth:`hash_input`).

        Unhashed packets get hash 0 and therefore the queue in table entry 0.
        """
        data = self.hash_input(**request)
        value = 0 if data is None else toeplitz_hash(self.key, data)
        return value, self.table[value % len(self.table)], data is not None
