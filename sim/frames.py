"""Test frames built with scapy, and pcap files of what a core put on the wire.

Frames are real protocol packets (Ethernet/IPv4/UDP, VLAN-tagged, raw EtherTypes) so that the
dissector of whoever reads the pcap finds nothing malformed; very short sizes, which no real
protocol fits into, are raw bytes.
"""

import random

__all__ = ["build_frame", "write_pcap", "decode_status"]


def build_frame(size, rng=None, seq=0):
    """A frame of exactly ``size`` bytes (destination address through payload, no FCS)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether

    rng = rng or random.Random(size)
    src = f"02:00:00:{seq >> 16 & 0xFF:02x}:{seq >> 8 & 0xFF:02x}:{seq & 0xFF:02x}"
    dst = rng.choice(["02:11:22:33:44:55", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"])
    if size >= 14 + 20 + 8 + 4 and rng.random() < 0.3:
        hdr = Ether(dst=dst, src=src) / Dot1Q(vlan=rng.randrange(1, 4095)) / IP(
            src="10.0.0.1", dst="10.0.0.2") / UDP(sport=9, dport=9)
    elif size >= 14 + 20 + 8:
        hdr = Ether(dst=dst, src=src) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(
            sport=9, dport=9)
    else:
        return bytes(rng.getrandbits(8) for _ in range(size))
    pad = size - len(hdr)
    payload = bytes(rng.getrandbits(8) for _ in range(pad))
    frame = bytes(hdr / payload)
    assert len(frame) == size
    return frame


def write_pcap(path, frames, with_fcs=True):
    """Write ``frames`` (bytes, each ending in its FCS when ``with_fcs``) to a pcap file."""
    import struct

    with open(path, "wb") as f:
        # pcap global header: magic, v2.4, GMT, accuracy, snaplen, DLT_EN10MB (1).
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)))
            f.write(bytes(frame))


def decode_status(layout, value):
    """Decode an integer status word into a dict of the fields of ``layout`` (a data.Struct)."""
    shape = layout.as_shape() if hasattr(layout, "as_shape") else layout
    out = {}
    for name, field in shape:
        width = field.width
        raw = (int(value) >> field.offset) & ((1 << width) - 1)
        out[name] = raw
    return out
