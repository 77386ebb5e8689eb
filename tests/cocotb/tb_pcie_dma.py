"""cocotb tests of the generated PcieDmaCore Verilog behind cocotbext-pcie's UltraScale+ model.

A ``RootComplex`` enumerates the design through the hard-IP model and reaches BAR0 with memory
reads and writes, as a driver would (:mod:`amnic.sim.pcie_host`). The application half of BAR0
ends in a cocotbext-axi ``AxiLiteRam`` on ``m_axil``, an independent AXI4-Lite slave.

* ``mmio_registers``: identification, scratch (whole and byte writes), link settings as the
  root complex programmed them, counters.
* ``app_window``: random reads and writes of 1..128 bytes at random offsets of the application
  window, compared with the AXI4-Lite RAM's contents, with back-pressure on CQ and CC.
* ``bad_requests``: I/O reads and writes, reads longer than one completion allows, and reads of
  unmapped offsets: Unsupported Request (the host's access fails) or zeros, each counted; the
  device answers normally afterwards.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteRam

from amnic.csr.ids import PCIE_DMA
from amnic.dma.core import REGISTERS
from amnic.sim.pcie_host import attach

OFFSET = {r.name: r.offset for r in REGISTERS.registers}


async def setup(dut, *, backpressure=False):
    host = attach(dut, bar0_bits=20)
    app = AxiLiteRam(AxiLiteBus.from_prefix(dut, "m_axil"), dut.clk, dut.rst, size=1 << 19)
    if backpressure:
        rng = random.Random(1)
        host.device.cq_source.set_pause_generator(iter(lambda: rng.random() < 0.3, None))
        host.device.cc_sink.set_pause_generator(iter(lambda: rng.random() < 0.3, None))
    await FallingEdge(dut.rst)
    await ClockCycles(dut.clk, 10)
    await host.enumerate()
    return host, app


async def read_counter(host, name):
    return await host.bar0.read_dword(OFFSET[name])


@cocotb.test()
async def mmio_registers(dut):
    host, _ = await setup(dut)
    bar = host.bar0
    assert await bar.read_dword(0x0) == PCIE_DMA
    assert await bar.read_dword(0x4) == REGISTERS.version
    assert await bar.read_dword(0x8) == REGISTERS.size
    interface = await bar.read_dword(OFFSET["interface"])
    assert interface & 0x3FF == len(dut.m_axis_cq_tdata)
    assert interface >> 10 == 20
    # The root complex programmed MPS 256 (1) and MRRS 512 (2) at enumeration.
    assert await bar.read_dword(OFFSET["link"]) == 1 | 2 << 3

    rng = random.Random(2)
    for _ in range(20):
        value = rng.getrandbits(32)
        await bar.write_dword(OFFSET["scratch"], value)
        assert await bar.read_dword(OFFSET["scratch"]) == value
    await bar.write_dword(OFFSET["scratch"], 0x11223344)
    await bar.write(OFFSET["scratch"] + 1, b"\xAA\xBB")  # bytes 1 and 2 only
    assert await bar.read_dword(OFFSET["scratch"]) == 0x11BBAA44
    assert await bar.read(OFFSET["scratch"] + 2, 1) == b"\xBB"

    reads = await read_counter(host, "mmio_reads")
    writes = await read_counter(host, "mmio_writes")
    await bar.write_dword(OFFSET["scratch"], 5)
    await bar.write_dword(OFFSET["scratch"], 6)
    assert await read_counter(host, "mmio_reads") == reads + 2  # the two counter reads
    assert await read_counter(host, "mmio_writes") == writes + 2
    assert await read_counter(host, "unsupported") == 0
    assert await read_counter(host, "malformed") == 0


@cocotb.test()
async def app_window(dut):
    host, app = await setup(dut, backpressure=True)
    bar, base = host.bar0, 1 << 19
    rng = random.Random(3)
    shadow = bytearray(1 << 12)
    app.write(0, bytes(shadow))
    for _ in range(150):
        offset = rng.randrange(0, len(shadow) - 128)
        length = rng.choice([1, 2, 3, 4, 7, 8, rng.randrange(1, 129)])
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(length))
            await bar.write(base + offset, data)
            shadow[offset:offset + length] = data
        else:
            got = await bar.read(base + offset, length)
            assert got == shadow[offset:offset + length], (offset, length)
    # Writes are posted: a read behind them returns after they are done.
    await bar.read_dword(base)
    assert app.read(0, len(shadow)) == shadow


@cocotb.test()
async def bad_requests(dut):
    host, _ = await setup(dut)
    bar, base = host.bar0, 1 << 19

    async def fails(operation):
        try:
            await operation
        except Exception:  # the root complex raises on a UR completion
            return True
        return False

    before = await read_counter(host, "unsupported")
    assert await fails(host.io_bar.read(0, 4))
    assert await fails(host.io_bar.write(0, b"\x01\x02\x03\x04"))
    assert await fails(bar.read(base, 256))  # 64 DWORDs: more than one completion allows
    assert await read_counter(host, "unsupported") == before + 3

    errors = await read_counter(host, "bus_errors")
    assert await bar.read_dword(0x4000) == 0  # between the register block and the app window
    await bar.write_dword(0x4000, 0xDEAD)  # ignored
    assert await bar.read_dword(0x4000) == 0
    assert await read_counter(host, "bus_errors") == errors + 3
    # Nothing hangs: normal accesses work.
    await bar.write_dword(OFFSET["scratch"], 0x5A5A)
    assert await bar.read_dword(OFFSET["scratch"]) == 0x5A5A


@cocotb.test()
async def mmio_read_latency(dut):
    """Cycles from a read request's first CQ beat to its completion's first CC beat."""
    host, _ = await setup(dut)
    start = []
    latencies = []

    async def monitor():
        cycle = 0
        while True:
            await RisingEdge(dut.clk)
            cycle += 1
            if int(dut.m_axis_cq_tvalid.value) and int(dut.m_axis_cq_tready.value):
                start.append(cycle)
            if int(dut.s_axis_cc_tvalid.value) and int(dut.s_axis_cc_tready.value) and start:
                latencies.append(cycle - start.pop())
                start.clear()

    cocotb.start_soon(monitor())
    for register in ("scratch", "link"):
        await host.bar0.read_dword(OFFSET[register])
    await host.bar0.read_dword(1 << 19)
    app_latency = latencies[-1]
    dut._log.info("MMIO read latency (cycles, CQ in to CC out): registers %s, AXI4-Lite "
                  "window %d", latencies[:2], app_latency)
    assert all(0 < lat < 20 for lat in latencies[:2]), latencies
    assert app_latency < 30
