"""``amnic generate`` for the packet-processing and flow cores: Verilog ports with AXI names,
the AXI4-Lite wrappers of the flow blocks (:mod:`amnic.flow.axil_cores`) in simulation, and the
committed reference pages of these cores."""

import gc
import io
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.hdl import Shape

from amnic.cli import cores
from amnic.cli.export import axi_ports
from amnic.cli.main import main, render_reference_markdown
from amnic.flow import acl as acl_mod
from amnic.flow import meter as meter_mod
from amnic.flow import rss as rss_mod
from amnic.flow import table as table_mod
from amnic.flow import vxlan as vxlan_mod
from amnic.flow.axil_cores import (
    AclCore,
    FlowTableCore,
    MeterCore,
    RssCore,
    VxlanEncapCore,
    VxlanEncapRequest,
)
from amnic.net.checksum import ErrorLayout, RequestLayout
from amnic.net.editor import EditCommand, EditError
from amnic.net.metadata import ParseResult
from amnic.sim.rss_model import MS_KEY, rss_input, toeplitz_hash
from amnic.sim.stream_tb import get, put, simulate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cores"

#: The cores under test. Each is generated at its defaults except ``flow_table``, whose
#: default of 65536 entries takes minutes to convert (the zero-initialised table memories are
#: written out row by row); 1024 entries exercise the same code in a few seconds.
NEW_CORES = {
    "packet_parser": {},
    "checksum_inserter": {},
    "packet_editor": {},
    "flow_table": {"entries": "1024"},
    "acl": {},
    "rss": {},
    "meters": {},
    "vxlan_encap": {},
}


def _width(shape):
    return Shape.cast(shape).width


def _axil(addr_width):
    """The AXI4-Lite slave ports of a core with ``addr_width`` address bits."""
    return {
        "s_axil_awaddr": ("input", addr_width), "s_axil_awprot": ("input", 3),
        "s_axil_awvalid": ("input", 1),
        "s_axil_awready": ("output", 1), "s_axil_wdata": ("input", 32),
        "s_axil_wstrb": ("input", 4), "s_axil_wvalid": ("input", 1),
        "s_axil_wready": ("output", 1), "s_axil_bresp": ("output", 2),
        "s_axil_bvalid": ("output", 1), "s_axil_bready": ("input", 1),
        "s_axil_araddr": ("input", addr_width), "s_axil_arprot": ("input", 3),
        "s_axil_arvalid": ("input", 1),
        "s_axil_arready": ("output", 1), "s_axil_rdata": ("output", 32),
        "s_axil_rresp": ("output", 2), "s_axil_rvalid": ("output", 1),
        "s_axil_rready": ("input", 1),
    }


def _packet(prefix, direction, width, user_width):
    """The AXI4-Stream ports of a packet stream (``s_axis_x`` in, ``m_axis_x`` out)."""
    back = "output" if direction == "input" else "input"
    ports = {f"{prefix}_tdata": (direction, width), f"{prefix}_tkeep": (direction, width // 8),
             f"{prefix}_tvalid": (direction, 1), f"{prefix}_tready": (back, 1),
             f"{prefix}_tlast": (direction, 1)}
    if user_width:
        ports[f"{prefix}_tuser"] = (direction, user_width)
    return ports


def _stream(name, direction, payload, *, ready=True):
    """The ports of a non-packet stream ``name`` with payload shape ``payload``."""
    back = "output" if direction == "input" else "input"
    ports = {f"{name}_tdata": (direction, _width(payload)), f"{name}_tvalid": (direction, 1)}
    if ready:
        ports[f"{name}_tready"] = (back, 1)
    return ports


def _expected_ports(name):
    """``{port: (direction, width)}`` every port the generated top-level must have."""
    clock = {"clk": ("input", 1), "rst": ("input", 1)}
    if name == "packet_parser":
        return {**clock, **_packet("s_axis_i", "input", 64, 1),
                **_packet("m_axis_o", "output", 64, 1),
                **_stream("meta", "output", ParseResult)}
    if name == "checksum_inserter":
        return {**clock, **_packet("s_axis_i", "input", 64, 1),
                **_packet("m_axis_o", "output", 64, 1),
                **_stream("req", "input", RequestLayout),
                **_stream("errors", "output", ErrorLayout, ready=False)}
    if name == "packet_editor":
        return {**clock, **_packet("s_axis_i", "input", 64, 1),
                **_packet("m_axis_o", "output", 64, 1),
                **_stream("cmd", "input", EditCommand(64, 128, 2, 16)),
                "errors": ("output", _width(EditError))}
    if name == "flow_table":
        return {**clock, **_axil(table_mod.REGISTERS.addr_width),
                **_stream("request", "input", table_mod.FlowLookupRequest(8)),
                **_stream("result", "output", table_mod.FlowLookupResult(1024, 32, 8)),
                "now": ("input", table_mod.TIME_BITS)}
    if name == "acl":
        return {**clock, **_axil(acl_mod.REGISTERS.addr_width),
                **_stream("request", "input", acl_mod.AclRequest(16)),
                **_stream("result", "output", acl_mod.AclResult(64, 16))}
    if name == "rss":
        return {**clock, **_axil(rss_mod.REGISTERS.addr_width),
                **_stream("request", "input", rss_mod.RssRequest(8)),
                **_stream("result", "output", rss_mod.RssResponse(12, 8))}
    if name == "meters":
        return {**clock, **_axil(meter_mod.REGISTERS.addr_width),
                **_stream("request", "input", meter_mod.MeterRequest(256, 16)),
                **_stream("result", "output", meter_mod.MeterResult(16)),
                "tick": ("input", 1), "now": ("output", meter_mod.TIME_BITS)}
    assert name == "vxlan_encap"
    return {**clock, **_axil(vxlan_mod.REGISTERS.addr_width),
            **_stream("request", "input", VxlanEncapRequest),
            **_stream("header", "output", vxlan_mod.EncapHeader)}


def _top_ports(text, top):
    """``{port: (direction, width)}`` declared in module ``top`` of the Verilog ``text``."""
    start = text.index(f"module {top}(")
    body = text[start:text.index("endmodule", start)]
    ports = {}
    for direction, msb, port in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                           body, re.M):
        ports[port] = (direction, int(msb) + 1 if msb else 1)
    return ports


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_new_cores_are_registered_and_available():
    for name in NEW_CORES:
        spec = cores.get(name)
        assert spec.unavailable() is None, name
    # The widths offered are the datapath widths of the NIC.
    for name in ("packet_parser", "checksum_inserter", "packet_editor"):
        assert cores.get(name).param("width").choices == (64, 128, 256, 512)


@pytest.mark.parametrize("name", NEW_CORES)
def test_generate_with_axi_port_names(name, tmp_path):
    spec = cores.get(name)
    given = NEW_CORES[name]
    argv = ["generate", name, "-o", str(tmp_path)]
    for key, value in given.items():
        argv += ["-p", f"{key}={value}"]
    status, out, err = run(argv)
    assert status == 0, err
    values = spec.resolve(given)
    top = spec.top_name(values)
    v = tmp_path / f"{top}.v"
    text = v.read_text()
    ports = _top_ports(text, top)
    expected = _expected_ports(name)
    assert ports == expected, (set(ports) ^ set(expected)) or {
        k: (ports[k], expected[k]) for k in ports if ports[k] != expected[k]}
    # No internal register bus leaks out; the header records the parameters.
    assert not any(p.startswith("bus_") for p in ports)
    for p in spec.params:
        assert f"//   {p.name} = {p.format(values[p.name])}" in text
    summary = (tmp_path / f"{top}.md").read_text()
    assert all(f"`{port}`" in summary for port in expected)
    if shutil.which("iverilog"):
        check = subprocess.run(["iverilog", "-g2012", "-tnull", str(v)],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("argv, message", [
    (["flow_table", "-p", "entries=1000"], "entries must be a power of two"),
    (["flow_table", "-p", "entries=16", "-p", "ways=8"], "fewer than 2 buckets"),
    (["rss", "-p", "entries=100"], "entries must be a power of two"),
    (["meters", "-p", "meters=100"], "meter count must be a power of two"),
    (["packet_parser", "-p", "width=96"], "not allowed; choose from: 64, 128, 256, 512"),
    (["vxlan_encap", "-p", "templates=65"], "out of range (1..64)"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters_are_usage_errors(argv, message, tmp_path):
    status, _, err = run(["generate", *argv, "-o", str(tmp_path / "out")])
    assert status == 2
    assert err.startswith("amnic: error: ") and message in err, err
    assert not (tmp_path / "out").exists()
    # A component whose constructor refused its parameters is never elaborated; collect it
    # here, where its "never used" warning is expected.
    gc.collect()


# --------------------------------------------------------------------------------------------
# The AXI4-Lite wrappers in simulation.


async def axil_write(ctx, axi, addr, value):
    """One AXI4-Lite write (address and data offered together); returns ``bresp``."""
    ctx.set(axi.awaddr, addr)
    ctx.set(axi.wdata, value)
    ctx.set(axi.wstrb, 0xF)
    ctx.set(axi.awvalid, 1)
    ctx.set(axi.wvalid, 1)
    ctx.set(axi.bready, 1)
    aw_done = w_done = False
    for _ in range(64):
        *_, awready, wready, bvalid, bresp = await ctx.tick().sample(
            axi.awready, axi.wready, axi.bvalid, axi.bresp)
        if awready and not aw_done:
            aw_done = True
            ctx.set(axi.awvalid, 0)
        if wready and not w_done:
            w_done = True
            ctx.set(axi.wvalid, 0)
        if bvalid:
            ctx.set(axi.bready, 0)
            return bresp
    raise TimeoutError(f"AXI4-Lite write to {addr:#x} got no response")


async def axil_read(ctx, axi, addr):
    """One AXI4-Lite read; returns ``(rdata, rresp)``."""
    ctx.set(axi.araddr, addr)
    ctx.set(axi.arvalid, 1)
    ctx.set(axi.rready, 1)
    ar_done = False
    for _ in range(64):
        *_, arready, rvalid, rdata, rresp = await ctx.tick().sample(
            axi.arready, axi.rvalid, axi.rdata, axi.rresp)
        if arready and not ar_done:
            ar_done = True
            ctx.set(axi.arvalid, 0)
        if rvalid:
            ctx.set(axi.rready, 0)
            return rdata, rresp
    raise TimeoutError(f"AXI4-Lite read of {addr:#x} got no response")


#: ``(core, register reporting the build's size, its value, staging register, request,
#: expected result fields)`` per flow block, at small sizes.
_WRAPPERS = {
    "acl": (lambda: AclCore(8, tag_width=16), "rules", 8, "value_0",
            {"key": {"src_port": 80}, "tag": 0xBEEF},
            {"hit": 0, "index": 0, "tag": 0xBEEF}),
    "flow_table": (lambda: FlowTableCore(64, 32, ways=4, tag_width=8), "entries", 64,
                   "action_0", {"key": {"dst_port": 443}, "length": 100, "tag": 0x5A},
                   {"hit": 0, "action": 0, "index": 0, "tag": 0x5A}),
    "rss": (lambda: RssCore(entries=16, queue_bits=6, tag_width=8), "reta_info", 4 | 6 << 8,
            "key_0", {"src_addr": 1, "dst_addr": 2, "tag": 0xC3},
            {"hashed": 0, "hash": 0, "queue": 0, "tag": 0xC3}),
    "meters": (lambda: MeterCore(16, tag_width=4), "meters", 16, "rate",
               {"index": 3, "length": 1500, "tag": 0x9},
               {"color": meter_mod.MeterColor.GREEN, "action": meter_mod.MeterAction.PASS,
                "tag": 0x9}),
}


@pytest.mark.parametrize("name", _WRAPPERS)
def test_wrapper_registers_and_lookup_through_axil(name):
    make, size_reg, size_value, staging, request, expected = _WRAPPERS[name]
    dut = make()
    block = dut.registers
    assert "bus" not in dut.signature.members
    assert dut.signature.members["s_axil"].signature.addr_width == block.addr_width
    results = []

    async def bench(ctx):
        axi = dut.s_axil
        for reg, value in (("type_id", block.type_id), ("version", block.version),
                           ("size", block.size), (size_reg, size_value)):
            assert await axil_read(ctx, axi, block[reg].offset) == (value, 0), reg
        # A staging register takes a write and reads it back.
        assert await axil_write(ctx, axi, block[staging].offset, 0xA5C3_0F96) == 0
        assert await axil_read(ctx, axi, block[staging].offset) == (0xA5C3_0F96, 0)
        # An offset where no register is answers SLVERR.
        unused = next(o for o in range(0x0C, block.size, 4) if block.word_at(o) is None)
        assert (await axil_read(ctx, axi, unused))[1] == 2
        # A lookup passes through request -> result.
        await put(ctx, dut.request, request)
        results.append(await get(ctx, dut.result))

    simulate(dut, [bench])
    (result,) = results
    for field, value in expected.items():
        assert getattr(result, field) == value, field


def test_meter_wrapper_time_base():
    dut = MeterCore(4)
    seen = []

    async def bench(ctx):
        ctx.set(dut.tick, 1)
        await ctx.tick().repeat(3)
        first = ctx.get(dut.now)
        await ctx.tick().repeat(5)
        seen.append(ctx.get(dut.now) - first)
        ctx.set(dut.tick, 0)
        held = ctx.get(dut.now)
        await ctx.tick().repeat(4)
        seen.append(ctx.get(dut.now) - held)

    simulate(dut, [bench])
    assert seen == [5, 0]


def test_rss_wrapper_hashes_once_enabled_through_axil():
    dut = RssCore(entries=16, queue_bits=6)
    block = dut.registers
    rng = random.Random(5)
    cases = [(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16),
              rng.getrandbits(16)) for _ in range(6)]
    got = []

    async def bench(ctx):
        axi = dut.s_axil
        # Every table entry n sends to queue n + 1, so the queue shows the table is used.
        for n in range(16):
            await axil_write(ctx, axi, block["reta_index"].offset, n)
            await axil_write(ctx, axi, block["reta_data"].offset, n + 1)
            await axil_write(ctx, axi, block["reta_cmd"].offset, 1)
        control = block["control"].init | 1  # enable, every hash type
        assert await axil_write(ctx, axi, block["control"].offset, control) == 0
        for src, dst, sport, dport in cases:
            await put(ctx, dut.request, {"ipv6": 0, "protocol": 6, "src_addr": src,
                                         "dst_addr": dst, "src_port": sport, "dst_port": dport,
                                         "l4_valid": 1, "tag": 7})
            got.append(await get(ctx, dut.result))

    simulate(dut, [bench])
    for (src, dst, sport, dport), answer in zip(cases, got, strict=True):
        expected = toeplitz_hash(MS_KEY, rss_input(ipv6=False, src_addr=src, dst_addr=dst,
                                                   src_port=sport, dst_port=dport))
        assert answer.hashed == 1 and answer.tag == 7
        assert answer.hash == expected
        assert answer.queue == (expected & 15) + 1


def _ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _random_template(rng):
    ipv6 = rng.random() < 0.5
    return {
        "ipv6": int(ipv6), "udp_checksum": int(rng.random() < 0.5),
        "dst_mac": rng.getrandbits(48), "src_mac": rng.getrandbits(48),
        "src_ip": rng.getrandbits(128 if ipv6 else 32),
        "dst_ip": rng.getrandbits(128 if ipv6 else 32),
        "tos": rng.getrandbits(8), "ttl": rng.randrange(1, 256),
        "vni": rng.getrandbits(24), "udp_dst": rng.choice([4789, 8472]),
    }


def test_vxlan_encap_core_headers_match_reference():
    rng = random.Random(11)
    count = 6
    dut = VxlanEncapCore(count)
    block = dut.registers
    templates = [_random_template(rng) for _ in range(count)]
    requests = []
    for _ in range(40):
        index = rng.randrange(count)
        inner = rng.randbytes(rng.randrange(14, 300))
        requests.append((index, inner, rng.getrandbits(20)))
    got = []

    async def writer(ctx):
        axi = dut.s_axil
        assert await axil_read(ctx, axi, block["templates"].offset) == (count, 0)
        for n, fields in enumerate(templates):
            value = vxlan_mod.template_value(**fields)
            await axil_write(ctx, axi, block["index"].offset, n)
            for w in range(vxlan_mod.TEMPLATE_WORDS):
                await axil_write(ctx, axi, block[f"data_{w}"].offset,
                                 value >> (32 * w) & 0xFFFF_FFFF)
            await axil_write(ctx, axi, block["command"].offset, 1)
        # Requests with idle cycles in between, headers taken with back-pressure.
        for index, inner, h in requests:
            await put(ctx, dut.request, {"template": index, "inner_length": len(inner),
                                         "inner_sum": _ones_sum(inner), "hash": h},
                      idle_prob=0.3, rng=rng)

    async def reader(ctx):
        for _ in requests:
            got.append(await get(ctx, dut.header, ready_prob=0.5, rng=rng))

    simulate(dut, [writer, reader])
    for (index, inner, h), header in zip(requests, got, strict=True):
        data = bytes(header.data[n] for n in range(header.length))
        expected = vxlan_mod.encap_header_reference({**templates[index], "hash": h}, inner)
        assert data == expected, (index, templates[index])


# --------------------------------------------------------------------------------------------
# Reference pages (docs/cores) of these cores.


@pytest.mark.parametrize("name", NEW_CORES)
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_committed_reference_page_is_current(name):
    """``docs/cores/<name>.md`` is what ``amnic generate --docs docs/cores`` writes now (the
    port list comes from the signature, so no conversion is needed to compare)."""
    spec = cores.get(name)
    values = spec.defaults()
    component = spec.build(values)
    ports = axi_ports(component, spec.clock_domains(values))
    expected = render_reference_markdown(spec, ports, component)
    # The component is only inspected, never elaborated: collect it here, where its "never
    # used" warning is expected.
    del component
    gc.collect()
    page = DOCS / f"{name}.md"
    assert page.exists(), f"{page} missing: run amnic generate --docs docs/cores"
    assert page.read_text() == expected, f"{page} is stale: run amnic generate --docs docs/cores"
    index = (DOCS / "index.md").read_text()
    assert f"| [`{name}`]({name}.md) | {spec.description} |" in index

