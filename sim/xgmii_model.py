"""A Python model of the 64-bit XGMII wire (IEEE 802.3 clause 46) for unit tests and benchmarks.

:func:`decode` turns a sequence of ``(data, ctrl)`` words into the frames they carry with their
start lanes and gaps; :func:`encode` does the reverse for receive stimulus. Both are written
from the standard, independently of the RTL.
"""

import zlib
from dataclasses import dataclass, field

IDLE, START, TERM, ERROR = 0x07, 0xFB, 0xFD, 0xFE
PREAMBLE = bytes([0x55] * 6 + [0xD5])

__all__ = ["WireFrame", "decode", "encode", "fcs"]


def fcs(payload):
    """The 4 FCS bytes of ``payload`` as sent on the wire (zlib CRC-32, little-endian)."""
    return zlib.crc32(payload).to_bytes(4, "little")


@dataclass
class WireFrame:
    """A frame seen on the wire."""

    data: bytes  # from the byte after the SFD through the FCS
    start_byte: int  # byte position of /S/ on the wire
    end_byte: int  # byte position of /T/ (or of the character that ended the frame)
    preamble_ok: bool = True
    errors: list = field(default_factory=list)  # control characters met inside the frame

    @property
    def start_lane(self):
        return self.start_byte % 8

    @property
    def fcs_ok(self):
        return len(self.data) >= 4 and fcs(self.data[:-4]) == self.data[-4:]


def decode(words):
    """Decode ``(data, ctrl)`` 64-bit words into :class:`WireFrame` records."""
    frames, cur = [], None
    pending_pre = None
    for index, (d, c) in enumerate(words):
        for ln in range(8):
            byte = (d >> (8 * ln)) & 0xFF
            is_ctrl = (c >> ln) & 1
            pos = index * 8 + ln
            if pending_pre is not None:
                # Collecting the 7 preamble/SFD bytes after /S/.
                frame, got = pending_pre
                if is_ctrl:
                    frame.preamble_ok = False
                    frame.errors.append(byte)
                    frame.end_byte = pos
                    frames.append(frame)
                    pending_pre = None
                    continue
                got.append(byte)
                if len(got) == 7:
                    frame.preamble_ok = bytes(got) == PREAMBLE
                    cur, pending_pre = frame, None
                continue
            if cur is None:
                if is_ctrl and byte == START:
                    pending_pre = (WireFrame(b"", pos, -1), [])
                continue
            if is_ctrl:
                if byte == TERM:
                    cur.end_byte = pos
                    frames.append(cur)
                    cur = None
                else:
                    cur.errors.append(byte)
            else:
                cur.data += bytes([byte])
    return frames


def encode(frames, gaps=None, start_lanes=None, first_gap=8):
    """Encode frames (bytes from destination address through FCS) as XGMII words.

    ``gaps[i]`` is the number of bytes from frame ``i``'s /T/ (inclusive) to the next /S/;
    it is rounded up so that /S/ lands on lane 0 or 4. ``start_lanes`` may force lanes.
    Returns a list of ``(data, ctrl)`` words, ending with idles.
    """
    stream = [(IDLE, 1)] * first_gap
    for i, frame in enumerate(frames):
        lane = start_lanes[i] if start_lanes else None
        while len(stream) % 4 or (lane is not None and len(stream) % 8 != lane):
            stream.append((IDLE, 1))
        stream.append((START, 1))
        stream += [(b, 0) for b in PREAMBLE]
        stream += [(b, 0) for b in frame]
        stream.append((TERM, 1))
        gap = (gaps[i] if gaps else 12) - 1
        stream += [(IDLE, 1)] * max(gap, 0)
    while len(stream) % 8:
        stream.append((IDLE, 1))
    stream += [(IDLE, 1)] * 16
    words = []
    for w in range(0, len(stream), 8):
        d = c = 0
        for ln, (b, k) in enumerate(stream[w:w + 8]):
            d |= b << (8 * ln)
            c |= k << ln
        words.append((d, c))
    return words
