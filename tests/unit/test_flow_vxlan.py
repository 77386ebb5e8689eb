"""VXLAN encapsulation templates and outer-header builder against scapy (RFC 7348)."""

import random
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from amnic.flow.vxlan import (
    REGISTERS,
    TEMPLATE_WORDS,
    EncapHeaderBuilder,
    EncapTemplates,
    encap_header_reference,
    template_value,
)
from amnic.sim.csr_bus import bus_read, bus_write, read_register, write_register
from amnic.sim.stream_tb import get, put, simulate


def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def random_case(rng):
    ipv6 = rng.random() < 0.5
    t = {
        "ipv6": int(ipv6),
        "udp_checksum": int(rng.random() < 0.5),
        "dst_mac": rng.getrandbits(48), "src_mac": rng.getrandbits(48),
        "src_ip": rng.getrandbits(128 if ipv6 else 32),
        "dst_ip": rng.getrandbits(128 if ipv6 else 32),
        "tos": rng.getrandbits(8), "ttl": rng.randrange(1, 256),
        "vni": rng.getrandbits(24), "udp_dst": rng.choice([4789, 4789, 8472]),
    }
    inner = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=rng.randrange(65536))
                  / rng.randbytes(rng.randrange(0, 200)))
    inner = inner[:rng.randrange(14, len(inner) + 1)]  # odd lengths and truncations too
    return t, inner, rng.getrandbits(20)


def scapy_outer(t, inner, h):
    """The outer headers as scapy builds them."""
    mac = lambda v: ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))  # noqa: E731
    sport = 0xC000 | (h & 0x3FFF)
    vx = VXLAN(flags=0x08, vni=t["vni"])
    udp = UDP(sport=sport, dport=t["udp_dst"])
    if t["ipv6"]:
        from ipaddress import IPv6Address
        ip = IPv6(tc=t["tos"], fl=h, hlim=t["ttl"], src=str(IPv6Address(t["src_ip"])),
                  dst=str(IPv6Address(t["dst_ip"])))
    else:
        from ipaddress import IPv4Address
        ip = IP(tos=t["tos"], ttl=t["ttl"], id=0, flags="DF", src=str(IPv4Address(t["src_ip"])),
                dst=str(IPv4Address(t["dst_ip"])))
        if not t["udp_checksum"]:
            udp.chksum = 0
    pkt = Ether(dst=mac(t["dst_mac"]), src=mac(t["src_mac"])) / ip / udp / vx
    if t["udp_dst"] != 4789:
        pkt = pkt.__class__(bytes(pkt / inner))  # scapy binds VXLAN to 4789 only; raw bytes
        return bytes(pkt)[:70 if t["ipv6"] else 50]
    return bytes(pkt / inner)[:70 if t["ipv6"] else 50]


def test_reference_matches_scapy():
    rng = random.Random(1)
    for _ in range(200):
        t, inner, h = random_case(rng)
        assert encap_header_reference({**t, "hash": h}, inner) == scapy_outer(t, inner, h)


def test_builder_matches_scapy():
    rng = random.Random(2)
    cases = [random_case(rng) for _ in range(60)]
    dut = EncapHeaderBuilder()
    got = []

    async def source(ctx):
        for t, inner, h in cases:
            await put(ctx, dut.i, {"template": t, "inner_length": len(inner),
                                   "inner_sum": ones_sum(inner), "hash": h}, rng=rng)

    async def sink(ctx):
        for _ in cases:
            got.append(await get(ctx, dut.o, rng=rng))

    simulate(dut, [source, sink])
    for (t, inner, h), header in zip(cases, got, strict=True):
        data = bytes(header.data[n] for n in range(header.length))
        assert data == scapy_outer(t, inner, h), t


def test_template_table_write_read_and_lookup():
    dut = EncapTemplates(count=8)
    rng = random.Random(3)
    values = {i: template_value(ipv6=i % 2, dst_mac=rng.getrandbits(48),
                                src_ip=rng.getrandbits(128), vni=rng.getrandbits(24))
              for i in range(8)}

    async def bench(ctx):
        bus = dut.bus
        assert await read_register(ctx, bus, REGISTERS["templates"]) == 8
        for i, v in values.items():
            await write_register(ctx, bus, REGISTERS["index"], i)
            for w in range(TEMPLATE_WORDS):
                await bus_write(ctx, bus, REGISTERS[f"data_{w}"].offset,
                                (v >> (32 * w)) & 0xFFFF_FFFF)
            await write_register(ctx, bus, REGISTERS["command"], 1)
        for i in (5, 2):
            # Read back through the registers.
            for w in range(TEMPLATE_WORDS):
                await bus_write(ctx, bus, REGISTERS[f"data_{w}"].offset, 0)
            await write_register(ctx, bus, REGISTERS["index"], i)
            await write_register(ctx, bus, REGISTERS["command"], 2)
            for _ in range(4):  # the command bit clears when the read is done
                if not await read_register(ctx, bus, REGISTERS["command"]):
                    break
            else:
                raise AssertionError("template read did not finish")
            words = [(await bus_read(ctx, bus, REGISTERS[f"data_{w}"].offset))[0]
                     for w in range(TEMPLATE_WORDS)]
            assert sum(w << (32 * n) for n, w in enumerate(words)) == values[i]
        for i in range(8):
            ctx.set(dut.read_index, i)
            await ctx.tick()
            assert ctx.get(dut.read_data).as_value().value == values[i]
        # An index beyond the table writes nothing and reads zeros.
        await write_register(ctx, bus, REGISTERS["index"], 9)
        await write_register(ctx, bus, REGISTERS["command"], 3)
        await ctx.tick().repeat(2)
        assert (await bus_read(ctx, bus, REGISTERS["data_0"].offset))[0] == 0

    simulate(dut, [bench])
