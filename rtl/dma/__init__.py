"""PCIe DMA engine on the AMD UltraScale+ integrated block's user interface (in progress)."""
