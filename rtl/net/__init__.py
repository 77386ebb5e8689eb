"""Packet headers, parser, deparser and checksums.

* :mod:`amnic.net.headers` — protocol constants and header field positions (Ethernet, 802.1Q,
  IPv4, IPv6, UDP, TCP, VXLAN, RoCEv2 BTH), each citing its specification;
* :mod:`amnic.net.parser` — the streaming header parser that emits one metadata record per
  packet;
* :mod:`amnic.net.checksum` — checksum insertion on transmit.
"""
