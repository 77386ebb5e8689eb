"""Host-side models and verification helpers: packets, pcap, cocotb runners, scoreboards."""
