"""Commands and status of the DMA read and write engines (the engines' user side).

A user of :class:`~amnic.dma.write.DmaWriteEngine` or :class:`~amnic.dma.read.DmaReadEngine`
(the queue manager, the AXI4 master front end) asks for one transfer with a :class:`DmaCommand`
and hears back once with a :class:`DmaStatus` when the transfer is done. Transfer data travels
on packet streams (:class:`amnic.stream.PacketLayout`, byte 0 of the transfer in byte lane 0 of
the first beat, packed).
"""

from amaranth.lib import data, enum

__all__ = ["MAX_TRANSFER", "DmaError", "DmaCommand", "DmaStatus", "MaxSize"]

#: Largest transfer of one command, in bytes.
MAX_TRANSFER = 1 << 16


class MaxSize(enum.Enum, shape=3):
    """Max Payload Size / Max Read Request Size encoding of the Device Control register
    (PCIe Base Specification 7.5.3.4): 128 << value bytes. The hard IP reports the values the
    host programmed on ``cfg_max_payload`` / ``cfg_max_read_req``."""

    B128 = 0
    B256 = 1
    B512 = 2
    B1024 = 3
    B2048 = 4
    B4096 = 5


class DmaError(enum.Enum, shape=3):
    """Outcome of a transfer."""

    OK = 0
    BAD_LENGTH = 1  #: length 0 or above MAX_TRANSFER: nothing was sent
    OUT_OF_WINDOW = 2  #: the address range leaves the window allowed for the requester
    TIMEOUT = 3  #: a read's completion did not arrive in time (PCIe 2.8)
    COMPLETION = 4  #: a completion had UR/CA status or was poisoned (PCIe 2.3.2, 2.7.2)
    MALFORMED = 5  #: a completion's length or address did not match the request


class DmaCommand(data.Struct):
    """One transfer: ``length`` bytes (1..MAX_TRANSFER) at host byte ``address`` (any
    alignment). ``id`` is returned in the status."""

    address: 64
    length: range(MAX_TRANSFER + 1)
    id: 16


class DmaStatus(data.Struct):
    """The end of one transfer, in command order."""

    id: 16
    error: DmaError
