"""The 64-bit XGMII interface (IEEE 802.3 clause 46) as used by 10GBASE-R and 25GBASE-R PCS.

Eight byte lanes per clock (two 32-bit XGMII transfers, lane 0 first on the wire); ``c`` bit
``n`` marks lane ``n`` as a control character (clause 46.2.3, table 46-3).
"""

from amaranth.hdl import Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ieee802_3 import PREAMBLE_BYTE, SFD, XGMII_IDLE, XGMII_START

__all__ = [
    "XgmiiTxSignature", "XgmiiRxSignature", "XgmiiSignature", "LANES", "lane", "idle_word",
    "preamble_word",
]

LANES = 8

#: Transmit direction, from the MAC's point of view: ``txd``/``txc`` leave the MAC.
XgmiiTxSignature = wiring.Signature({"txd": Out(64), "txc": Out(8)})
#: Receive direction, from the MAC's point of view: ``rxd``/``rxc`` enter the MAC.
XgmiiRxSignature = wiring.Signature({"rxd": In(64), "rxc": In(8)})
#: Both directions, from the MAC's point of view.
XgmiiSignature = wiring.Signature({**XgmiiTxSignature.members, **XgmiiRxSignature.members})


def lane(word, n):
    """Byte lane ``n`` of a 64-bit XGMII data word."""
    return word[8 * n: 8 * n + 8]


def idle_word():
    """(data, ctrl) of eight /I/ characters."""
    return Const(int.from_bytes(bytes([XGMII_IDLE] * LANES), "little"), 64), Const(0xFF, 8)


def preamble_word():
    """(data, ctrl) of /S/ followed by six preamble bytes and the SFD (clause 46.3.1.2)."""
    word = bytes([XGMII_START] + [PREAMBLE_BYTE] * 6 + [SFD])
    return Const(int.from_bytes(word, "little"), 64), Const(0x01, 8)
