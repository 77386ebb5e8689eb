"""Records of the match-action pipeline (:mod:`amnic.flow.pipeline`): what it tells the
consumer of each delivered packet, why it drops packets, and its control register.
"""

from amaranth.lib import data, enum

from amnic.net.metadata import ChecksumStatus

__all__ = ["DropReason", "Destination", "PipelineControl", "CONTROL_RESET"]


class DropReason(enum.Enum, shape=4):
    """Why the pipeline dropped a packet; each reason has its own counter.

    The reasons are tested in this order; a packet is counted under the first that applies.
    """

    NONE = 0
    ERRORED = 1  #: ``user`` bit 0 set on the last beat (the MAC saw a bad FCS or a PHY error)
    GIANT = 2  #: longer than ``max_packet`` bytes (cut short at the input, then dropped)
    MALFORMED = 3  #: a parse error or bad checksum the ``control`` register drops
    ACL_DENY = 4  #: the ACL's verdict (rule or default) is DENY
    FLOW_DROP = 5  #: the flow entry's delivery is DROP
    TENANT = 6  #: the chosen queue lies outside the queue range the ACL allows the packet
    METER_DROP = 7  #: red at a meter in DROP mode


#: Number of drop reasons (including NONE).
DROP_REASONS = len(DropReason)


class Destination(data.Struct):
    """Where a delivered packet goes and what the pipeline learnt about it (one per packet).

    Attributes
    ----------
    queue : unsigned(12)
        Destination queue (for the mirror copy: the mirror queue).
    mirror : unsigned(1)
        This record belongs to a mirror copy.
    flow_hit : unsigned(1)
        The packet matched flow-table entry ``flow_index``.
    flow_index : unsigned(20)
    rss_hash : unsigned(32)
        Toeplitz hash of the packet (RSS), valid when ``rss_hashed``.
    rss_hashed : unsigned(1)
    port : unsigned(8)
        Ingress port.
    vni : unsigned(24)
        VXLAN network identifier of a VXLAN packet as received (also after decapsulation).
    decapsulated : unsigned(1)
        The outer VXLAN headers were removed.
    meter_red : unsigned(1)
        A meter in MARK mode found the packet out of profile.
    outer_l3_checksum, outer_l4_checksum, inner_l3_checksum, inner_l4_checksum : ChecksumStatus
        Receive checksum verification of the packet as it arrived (RFC 1071).
    """

    queue: 12
    mirror: 1
    flow_hit: 1
    flow_index: 20
    rss_hash: 32
    rss_hashed: 1
    port: 8
    vni: 24
    decapsulated: 1
    meter_red: 1
    outer_l3_checksum: ChecksumStatus
    outer_l4_checksum: ChecksumStatus
    inner_l3_checksum: ChecksumStatus
    inner_l4_checksum: ChecksumStatus


class PipelineControl(data.Struct):
    """The pipeline's ``control`` register: which bad input it drops, how meters mark."""

    drop_truncated: 1
    drop_malformed: 1
    drop_bad_ipv4_checksum: 1
    drop_bad_l4_checksum: 1
    mark_ecn: 1


#: Reset value of ``control``: drop cut-short and malformed headers and bad IPv4 header
#: checksums, deliver bad TCP/UDP checksums (reported in :class:`Destination`), mark red packets
#: of ECN-capable transports with CE.
CONTROL_RESET = PipelineControl.const({
    "drop_truncated": 1, "drop_malformed": 1, "drop_bad_ipv4_checksum": 1,
    "drop_bad_l4_checksum": 0, "mark_ecn": 1,
}).as_value().value
