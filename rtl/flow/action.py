"""What the match-action stage does with a packet: the action record of a flow-table entry.

A flow-table entry stores one :class:`FlowAction` as its raw bit pattern
(``FlowAction.as_value()``); the pipeline (:mod:`amnic.flow.pipeline`) decodes it. Packets that
miss the flow table get the pipeline's default action: RSS over the indirection table
(:mod:`amnic.flow.rss`).

Order of effects for a packet that is not dropped: VXLAN decapsulation, then VLAN pop/push,
then DSCP/ECN rewrite of the (now outermost) IPv4/IPv6 header, then VXLAN encapsulation.
One packet gets at most one header edit that changes its length (decap, pop, push or encap);
a flow that asks for several is rejected when the driver writes it
(:func:`FlowAction.check`), so the hardware never has to combine them.
"""

from amaranth.lib import data, enum

__all__ = ["Delivery", "VlanOp", "TunnelOp", "FlowAction", "ACTION_BITS", "action_value"]


class Delivery(enum.Enum, shape=2):
    """Where a matched packet goes."""

    QUEUE = 0  #: to ``queue``
    GROUP = 1  #: to ``queue + (RSS hash mod 2**group_log2)``: RSS inside a queue group
    DROP = 2  #: nowhere; counted as dropped by the flow table


class VlanOp(enum.Enum, shape=2):
    """802.1Q tag edit (IEEE 802.1Q-2018 clause 9)."""

    NONE = 0
    PUSH = 1  #: insert a C-tag (TPID 0x8100) with ``vid`` and ``pcp`` after the source address
    POP = 2  #: remove the outermost tag, if the packet has one


class TunnelOp(enum.Enum, shape=2):
    """VXLAN (RFC 7348) tunnel edit."""

    NONE = 0
    DECAP = 1  #: strip outer Ethernet/IP/UDP/VXLAN headers of a VXLAN packet
    ENCAP = 2  #: prepend the outer headers of encapsulation template ``template``


class FlowAction(data.Struct):
    """The action of a flow-table entry.

    Attributes
    ----------
    delivery : Delivery
    queue : unsigned(12)
        Destination queue, or the first queue of the group.
    group_log2 : unsigned(4)
        log2 of the group size for :attr:`Delivery.GROUP`.
    mirror : unsigned(1)
        Also send a copy of the (edited) packet to ``mirror_queue``.
    mirror_queue : unsigned(12)
    vlan_op : VlanOp
    vid : unsigned(12)
    pcp : unsigned(3)
    tunnel_op : TunnelOp
    template : unsigned(6)
        Encapsulation template index (:mod:`amnic.flow.vxlan`).
    set_dscp : unsigned(1)
    dscp : unsigned(6)
        Differentiated services code point (RFC 2474) written when ``set_dscp``.
    set_ecn : unsigned(1)
    ecn : unsigned(2)
        ECN field (RFC 3168) written when ``set_ecn``.
    meter : unsigned(1)
        Police the flow with meter ``meter_index`` (:mod:`amnic.flow.meter`).
    meter_index : unsigned(8)
    """

    delivery: Delivery
    queue: 12
    group_log2: 4
    mirror: 1
    mirror_queue: 12
    vlan_op: VlanOp
    vid: 12
    pcp: 3
    tunnel_op: TunnelOp
    template: 6
    set_dscp: 1
    dscp: 6
    set_ecn: 1
    ecn: 2
    meter: 1
    meter_index: 8

    @staticmethod
    def check(fields):
        """Raise :exc:`ValueError` if the action ``fields`` (a dict) asks for more than one
        length-changing edit or has a group larger than the queue space."""
        vlan = fields.get("vlan_op", VlanOp.NONE) != VlanOp.NONE
        tunnel = fields.get("tunnel_op", TunnelOp.NONE) != TunnelOp.NONE
        if vlan and tunnel:
            raise ValueError("one action can edit the VLAN tag or the tunnel, not both")
        if fields.get("group_log2", 0) > 12:
            raise ValueError("a queue group has at most 4096 queues")


#: Width of an action in bits.
ACTION_BITS = FlowAction.as_shape().size


def action_value(**fields):
    """The raw bit pattern of an action (for drivers and models), after :meth:`FlowAction.check`.
    """
    FlowAction.check(fields)
    return FlowAction.const(fields).as_value().value
