"""Per-frame status records that the MAC datapaths report to the statistics block.

Each datapath emits one record per frame, in its own clock domain, on a
``stream.Signature(layout)`` with ``always_ready=True`` (the MAC cannot wait). Every frame that
starts on the wire produces exactly one record, so ``frames = good + bad`` always holds and no
frame disappears uncounted.
"""

from amaranth.lib import data, enum

__all__ = ["RxStatus", "TxStatus", "FlowControlEvent", "FlowControlKind"]


class RxStatus(data.Struct):
    """Status of one received frame (IEEE 802.3 clause 4.2.9 reception errors).

    ``length`` counts destination address through FCS (saturating at 2**16-1). ``good`` is set
    exactly when none of the error flags is set. Error flags are not exclusive; the statistics
    block counts each reason.
    """

    length: 16
    good: 1
    fcs_error: 1  # frame check sequence mismatch
    framing_error: 1  # /E/ or another control character inside the frame, or no /T/
    runt: 1  # shorter than 64 bytes
    oversize: 1  # longer than the configured maximum (the frame is cut there)
    broadcast: 1  # destination ff:ff:ff:ff:ff:ff
    multicast: 1  # group address other than broadcast
    vlan: 1  # 802.1Q tag present (TPID 0x8100)


class TxStatus(data.Struct):
    """Status of one transmitted frame.

    ``length`` counts destination address through FCS as sent, including padding.
    """

    length: 16
    good: 1
    bad: 1  # marked bad by the user (tuser) and ended with /E/
    underrun: 1  # the source ran dry mid-frame; ended with /E/
    broadcast: 1
    multicast: 1
    vlan: 1


class FlowControlKind(enum.Enum, shape=2):
    """Kind of a MAC Control flow-control frame (802.3 annex 31B, 802.1Qbb / annex 31D)."""

    PAUSE = 0
    PFC = 1


class FlowControlEvent(data.Struct):
    """A PAUSE or PFC frame seen on receive or sent on transmit.

    For PAUSE, ``priorities`` is all ones; for PFC it is the class-enable vector.
    """

    kind: FlowControlKind
    priorities: 8
