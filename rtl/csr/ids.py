"""Type ids of amnic register blocks, in one place so no two blocks share one.

Each id is :func:`~amnic.csr.regmap.fourcc` of a four-character tag that reads in a register
dump. A block keeps its id for life; incompatible register-map changes bump the major
:func:`~amnic.csr.regmap.version` instead.
"""

from .regmap import fourcc

__all__ = [
    "MAC_STATISTICS", "RSS", "FLOW_TABLE", "ACL", "METERS", "VXLAN_TEMPLATES", "MATCH_ACTION",
    "PCIE_DMA", "DMA_QUEUES",
]

#: :class:`amnic.mac.stats.MacStatistics` ("MSTA").
MAC_STATISTICS = fourcc("MSTA")

#: :class:`amnic.flow.rss.Rss` ("RSSI"): Toeplitz key and indirection table.
RSS = fourcc("RSSI")

#: :class:`amnic.flow.table.FlowTable` ("FLOW"): exact-match flow table.
FLOW_TABLE = fourcc("FLOW")

#: :class:`amnic.flow.acl.Acl` ("ACLT"): ternary access-control rules.
ACL = fourcc("ACLT")

#: :class:`amnic.flow.meter.MeterBank` ("METR"): token-bucket policers.
METERS = fourcc("METR")

#: :class:`amnic.flow.vxlan.EncapTemplates` ("VXTP"): VXLAN encapsulation templates.
VXLAN_TEMPLATES = fourcc("VXTP")

#: :class:`amnic.flow.pipeline.MatchActionPipeline` ("MAPL"): bad-input policy and counters.
MATCH_ACTION = fourcc("MAPL")

#: :class:`amnic.dma.core.PcieDmaCore` ("PDMA"): PCIe interface, completer and DMA status.
PCIE_DMA = fourcc("PDMA")

#: :class:`amnic.dma.queues.QueueRegisters` ("DMAQ"): descriptor and completion queues.
DMA_QUEUES = fourcc("DMAQ")
