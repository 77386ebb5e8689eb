"""What a PCIe link can carry: the ceiling DMA throughput figures are measured against.

Per PCI Express Base Specification 3.0: 8 GT/s per lane with 128b/130b encoding (4.2.2); a TLP
on the wire adds a 4-byte STP framing token (with the sequence number, 4.2.2.3.2), its header
(3 or 4 DWORDs, 2.2.1) and a 4-byte LCRC (3.5.2.1). DLLPs (acknowledgements and flow-control
updates) take a few percent more, depending on the link partner; they are left out, so the
ceiling here is slightly above what any device reaches.
"""

from dataclasses import dataclass

__all__ = ["Link", "LINKS"]

FRAMING = 4 + 4  # STP token + LCRC


@dataclass(frozen=True)
class Link:
    """A PCIe link and the user interface that carries it on an UltraScale+ device."""

    name: str
    gts: float  # per lane, GT/s
    lanes: int
    width: int  # user interface bits
    clock_mhz: float  # user interface clock

    @property
    def raw_gbps(self):
        """Bits per second the lanes carry after 128b/130b encoding, in Gbit/s."""
        return self.gts * self.lanes * 128 / 130

    def payload_gbps(self, payload, header_bytes):
        """Ceiling of TLP payload throughput with TLPs of ``payload`` bytes."""
        return self.raw_gbps * payload / (payload + header_bytes + FRAMING)

    def write_ceiling_gbps(self, max_payload):
        """Memory writes with 4-DWORD headers, each carrying ``max_payload`` bytes."""
        return self.payload_gbps(max_payload, 16)

    def read_ceiling_gbps(self, completion_bytes):
        """Read data arriving in completions (3-DWORD headers) of ``completion_bytes``."""
        return self.payload_gbps(completion_bytes, 12)

    def interface_gbps(self, bits_per_cycle):
        """Throughput of ``bits_per_cycle`` on the user interface clock, in Gbit/s."""
        return bits_per_cycle * self.clock_mhz / 1000


LINKS = {
    256: Link("Gen3 x8", 8.0, 8, 256, 250.0),
    512: Link("Gen3 x16", 8.0, 16, 512, 250.0),
}
