"""Packet headers, parser, editor and checksums.

* :mod:`amnic.net.headers` — protocol constants and header field positions (Ethernet, 802.1Q,
  IPv4, IPv6, UDP, TCP, VXLAN, RoCEv2 BTH), each citing its specification;
* :mod:`amnic.net.metadata` — :class:`ParseResult`, the per-packet metadata record;
* :mod:`amnic.net.capture`, :mod:`amnic.net.window`, :mod:`amnic.net.stages` — the parser's
  header-window capture, run-time-offset field access and per-layer parse stages;
* :mod:`amnic.net.parser` — :class:`PacketParser`, one metadata record per packet;
* :mod:`amnic.net.editor` — :class:`PacketEditor`, insert/remove/overwrite bytes in flight;
* :mod:`amnic.net.checksum` — :class:`ChecksumInserter`, checksum insertion on transmit.
"""
