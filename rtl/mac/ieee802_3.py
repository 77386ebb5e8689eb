"""Constants of IEEE 802.3 (and 802.1Qbb) used by the MAC, each with the clause it comes from.

Byte values are as they appear on the wire / on an XGMII lane.
"""

# Clause 3.2.1-3.2.2: preamble (7 octets of 0x55) and start frame delimiter.
PREAMBLE_BYTE = 0x55
SFD = 0xD5
PREAMBLE_LEN = 7

# Clause 46.2.3, table 46-3: XGMII control characters (with TXC/RXC set for the lane).
XGMII_IDLE = 0x07
XGMII_START = 0xFB
XGMII_TERMINATE = 0xFD
XGMII_ERROR = 0xFE
XGMII_SEQUENCE = 0x9C

# Clause 4.4.2: minimum frame size including FCS, and the basic maximum (untagged) frame.
MIN_FRAME_LEN = 64
MIN_PAYLOAD_LEN = MIN_FRAME_LEN - 4  # bytes before the FCS; shorter frames are padded
MAX_FRAME_LEN = 1518
FCS_LEN = 4

# Clause 4.4.2 / 46.3.1.4: inter-packet gap. The XGMII RS may shrink a gap to align /S/ on
# lane 0 or 4 by the deficit idle count (0..3), keeping the mean gap at the configured value.
IPG_MIN = 12
DIC_MAX = 3

# Clause 3.2.9: CRC-32 generator polynomial (reflected form as used on the wire) and residue.
CRC32_POLY_REFLECTED = 0xEDB88320
CRC32_RESIDUE = 0xDEBB20E3  # reflected/complemented value of a good frame's CRC incl. FCS

# Clause 31 and annex 31B: MAC Control frames and PAUSE.
MAC_CONTROL_ETHERTYPE = 0x8808
PAUSE_OPCODE = 0x0001
PAUSE_DEST = 0x0180C2000001  # reserved multicast address of MAC Control frames
# IEEE 802.1Qbb (annex 31D of 802.3): priority-based flow control.
PFC_OPCODE = 0x0101
PFC_PRIORITIES = 8
# One pause quantum is 512 bit times (annex 31B.2).
PAUSE_QUANTUM_BITS = 512
