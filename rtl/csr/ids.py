"""Type ids of amnic register blocks, in one place so no two blocks share one.

Each id is :func:`~amnic.csr.regmap.fourcc` of a four-character tag that reads in a register
dump. A block keeps its id for life; incompatible register-map changes bump the major
:func:`~amnic.csr.regmap.version` instead.
"""

from .regmap import fourcc

__all__ = ["MAC_STATISTICS"]

#: :class:`amnic.mac.stats.MacStatistics` ("MSTA").
MAC_STATISTICS = fourcc("MSTA")
