"""Ethernet MAC: CRC-32, XGMII (10G/25G) and GMII/RGMII (1G) framing, pause/PFC, statistics."""
