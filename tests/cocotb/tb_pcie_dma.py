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
from cocotb.triggers import ClockCycles, FallingEdge, First, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteRam, AxiMaster, AxiResp

from amnic.csr.ids import PCIE_DMA
from amnic.dma.axis import default_straddle
from amnic.dma.core import REGISTERS, PcieDmaCore
from amnic.dma.queues import QueueKind
from amnic.sim.dma_driver import NicDriver
from amnic.sim.pcie_host import attach

OFFSET = {r.name: r.offset for r in REGISTERS.registers}
#: Window offsets of the generated core (its default parameters).
CORE = PcieDmaCore(256)


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


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def mmio_registers(dut):
    host, _ = await setup(dut)
    bar = host.bar0
    assert await bar.read_dword(0x0) == PCIE_DMA
    assert await bar.read_dword(0x4) == REGISTERS.version
    assert await bar.read_dword(0x8) == REGISTERS.size
    interface = await bar.read_dword(OFFSET["interface"])
    assert interface & 0x3FF == len(dut.m_axis_cq_tdata)
    assert interface >> 10 & 0x3F == 20
    straddle = default_straddle(len(dut.m_axis_cq_tdata))
    assert interface >> 16 & 3 == straddle * 3, "RQ and RC straddling as the model is set"
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


@cocotb.test(timeout_time=1, timeout_unit="ms")
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


@cocotb.test(timeout_time=1, timeout_unit="ms")
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


@cocotb.test(timeout_time=1, timeout_unit="ms")
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


async def setup_dma(dut, *, max_payload, max_read_request):
    host = attach(dut, bar0_bits=20, max_payload=max_payload, max_read_request=max_read_request)
    AxiLiteRam(AxiLiteBus.from_prefix(dut, "m_axil"), dut.clk, dut.rst, size=1 << 19)
    axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
    await FallingEdge(dut.rst)
    await ClockCycles(dut.clk, 10)
    await host.enumerate()
    return host, axi


async def host_memory_port(dut, max_payload, max_read_request, seed):
    """Random AXI4 writes and reads of host memory through the DMA engines; host memory
    compared byte for byte with a shadow copy."""
    rng = random.Random(seed)
    host, axi = await setup_dma(dut, max_payload=max_payload, max_read_request=max_read_request)
    code = (max_payload // 128).bit_length() - 1 | ((max_read_request // 128).bit_length() - 1) << 3
    assert await read_counter(host, "link") == code  # the settings the engines split at
    size = 1 << 17
    address, memory = host.rc.alloc_region(size)
    shadow = bytearray(rng.randrange(256) for _ in range(size))
    memory[:size] = shadow
    for _ in range(40):
        length = rng.choice([1, 3, 64, 65, 1500, rng.randrange(1, 9601)])
        offset = rng.randrange(0, size - length)
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(length))
            await axi.write(address + offset, data)
            shadow[offset:offset + length] = data
        else:
            got = await axi.read(address + offset, length)
            assert got.data == shadow[offset:offset + length], (offset, length)
    await axi.read(address, 4)  # writes are posted: a read behind them sees them
    assert bytes(memory[:size]) == bytes(shadow)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def host_memory_mps128(dut):
    await host_memory_port(dut, 128, 128, seed=4)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def host_memory_mps256(dut):
    await host_memory_port(dut, 256, 512, seed=5)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def host_memory_mps512(dut):
    await host_memory_port(dut, 512, 4096, seed=6)


async def setup_driver(dut, vectors=4):
    host = attach(dut, bar0_bits=20, max_payload=256, max_read_request=512,
                  msix_vectors=CORE.msix.vectors, msix_bar_offset=CORE.msix_table_offset,
                  msix_pba_offset=CORE.msix_pba_offset)
    AxiLiteRam(AxiLiteBus.from_prefix(dut, "m_axil"), dut.clk, dut.rst, size=1 << 19)
    await FallingEdge(dut.rst)
    await ClockCycles(dut.clk, 10)
    await host.enumerate()
    driver = NicDriver(host, CORE)
    await driver.probe(vectors)
    return host, driver


RX_BUFFERS = 8  # packets in flight per queue
RX_BUFFER_BYTES = 2048  # a 9600-byte packet takes five
RX_RING = RX_BUFFERS * 5


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def loopback_queues(dut):
    """TX packets (1..9600 bytes, 1-3 descriptors each) on 8 queues return through the internal
    loopback on the RX queues of the same numbers, scattered over 2 KB receive buffers (up to
    five a packet); data compared byte for byte, completions
    consumed with the phase bit across ring wrap-around, interrupts through MSI-X with
    moderation re-armed by the driver, statistics per queue."""
    rng = random.Random(7)
    longest = 9600
    _, driver = await setup_driver(dut)
    await driver.set_loopback(True)
    await driver.create_completion_queue(0, 4, vector=0)  # TX completions
    await driver.create_completion_queue(1, 4, vector=1)  # RX completions
    queues = range(8)
    for q in queues:
        await driver.create_tx_queue(q, 3, cq=0, weight=1 + q % 3)
        await driver.create_rx_queue(q, 6, cq=1)
        await driver.refill_rx(q, RX_RING, RX_BUFFER_BYTES)
    sent = {q: [] for q in queues}
    received = {q: [] for q in queues}
    tx_done = 0
    total = 60
    pending = list(range(total))
    idle = 0
    while tx_done < total or sum(map(len, received.values())) < total:
        progress = (tx_done, sum(map(len, received.values())), len(pending))
        if idle > 20:
            state = {q: (len(sent[q]), len(received[q]),
                         await driver.stats(QueueKind.TX, q),
                         await driver.stats(QueueKind.RX, q)) for q in queues}
            raise AssertionError(f"no progress: tx_done {tx_done}, {state}")
        # Post what fits in the TX rings (8 descriptors each).
        for _ in range(4):
            if not pending:
                break
            q = rng.choice(queues)
            length = rng.choice([1, 60, 64, 1500, rng.randrange(1, longest + 1)])
            segments = min(rng.randrange(1, 4), length)
            in_ring = sum(p[2] for p in sent[q] if p[1] is None)
            if in_ring + segments > driver.tx_rings[q].size:
                continue
            if len(sent[q]) - len(received[q]) >= RX_BUFFERS:
                continue  # the packet would find no receive buffer and be dropped
            packet = bytes(rng.randrange(256) for _ in range(length))
            driver.queue_tx(q, packet, segments)
            sent[q].append([packet, None, segments])
            pending.pop()
            await driver.kick_tx(q)
        driver.interrupt_event.clear()
        await First(driver.interrupt_event.wait(), ClockCycles(dut.clk, 2000))
        for entry in await driver.poll(0):
            assert entry.status == 0, entry
            waiting = [p for p in sent[entry.queue] if p[1] is None]
            waiting[0][1] = entry
            assert entry.length == len(waiting[0][0])
            assert entry.descriptors == waiting[0][2], entry
            tx_done += 1
        for entry in await driver.poll(1):
            assert entry.status == 0, entry
            assert entry.descriptors == -(-entry.length // RX_BUFFER_BYTES), entry
            received[entry.queue].append(driver.received(entry))
            await driver.refill_rx(entry.queue, entry.descriptors, RX_BUFFER_BYTES)
        await driver.rearm(0)
        await driver.rearm(1)
        now = (tx_done, sum(map(len, received.values())), len(pending))
        idle = 0 if now != progress else idle + 1
    for q in queues:
        assert received[q] == [p for p, _, _ in sent[q]], f"queue {q}"
        stats = await driver.stats(QueueKind.TX, q)
        assert stats["packets"] == len(sent[q])
        assert stats["bytes"] == sum(len(p) for p, _, _ in sent[q])
        rx_stats = await driver.stats(QueueKind.RX, q)
        assert rx_stats["packets"] == len(sent[q]) and rx_stats["drops"] == 0
    assert await driver.queues.counter("rx_unqueued_drops") == 0
    assert driver.interrupts[0] > 0 and driver.interrupts[1] > 0
    dut._log.info("loopback: %d packets, interrupts %s", total, dict(driver.interrupts))


async def wait_completions(dut, driver, cq, count, cycles=20000):
    """Poll ``cq`` until ``count`` entries came (re-arming its interrupt)."""
    entries = []
    for _ in range(cycles // 500):
        entries += await driver.poll(cq)
        await driver.rearm(cq)
        if len(entries) >= count:
            return entries
        await ClockCycles(dut.clk, 500)
    raise AssertionError(f"only {len(entries)} of {count} completions on queue {cq}")


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def queue_bad_input(dut):
    """RX with no buffers drops and counts for that queue only; a zero-length or oversized TX
    descriptor completes as BAD_DESCRIPTOR; a doorbell beyond the ring size stops the queue with
    BAD_INDEX until the driver writes its configuration again; a doorbell for a disabled queue
    does nothing. Traffic on a healthy queue keeps flowing throughout."""
    _, driver = await setup_driver(dut)
    await driver.set_loopback(True)
    await driver.create_completion_queue(0, 5, vector=0)
    await driver.create_completion_queue(1, 5, vector=1)
    for q in (0, 1):
        await driver.create_tx_queue(q, 3, cq=0)
        await driver.create_rx_queue(q, 3, cq=1)
    await driver.refill_rx(0, 4)  # queue 1 gets no receive buffers
    packet = bytes(range(200))

    # RX queue 1 has no buffer: dropped there; queue 0 still receives.
    for q in (1, 1, 0, 1):
        driver.queue_tx(q, packet)
        await driver.kick_tx(q)
    tx = await wait_completions(dut, driver, 0, 4)
    assert all(e.status == 0 for e in tx)
    rx = await wait_completions(dut, driver, 1, 1)
    assert [(e.queue, driver.received(e)) for e in rx] == [(0, packet)]
    assert (await driver.stats(QueueKind.RX, 1))["drops"] == 3
    assert (await driver.stats(QueueKind.RX, 0))["drops"] == 0

    # Zero-length and oversized descriptors.
    ring = driver.tx_rings[0]
    ring.post(driver.memory.alloc(64), 0)
    ring.post(driver.memory.alloc(64), 60000)
    await driver.kick_tx(0)
    bad = await wait_completions(dut, driver, 0, 2)
    assert [e.status for e in bad] == [1, 1]  # BAD_DESCRIPTOR

    # A doorbell claiming more descriptors than the ring holds.
    await driver.queues.doorbell(QueueKind.TX, 0, ring.producer + 100)
    await ClockCycles(dut.clk, 200)
    assert (await driver.stats(QueueKind.TX, 0))["error"] == 1  # BAD_INDEX
    assert await driver.queues.counter("bad_doorbells") >= 1
    await driver.recover(QueueKind.TX, 0)
    assert (await driver.stats(QueueKind.TX, 0))["error"] == 0
    driver.queue_tx(0, packet)
    await driver.kick_tx(0)
    assert (await wait_completions(dut, driver, 0, 1))[0].status == 0
    rx = await wait_completions(dut, driver, 1, 1)
    assert driver.received(rx[0]) == packet

    # A disabled queue ignores its doorbell.
    await driver.queues.disable(QueueKind.TX, 1)
    driver.queue_tx(1, packet)
    await driver.kick_tx(1)
    await ClockCycles(dut.clk, 2000)
    assert await driver.poll(0) == []
    assert (await driver.stats(QueueKind.TX, 1))["consumer"] == 3


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def host_memory_errors(dut):
    """Reads of host addresses nothing answers: the root complex completes them with
    Unsupported Request; the read engine reports the error, the AXI4 port answers SLVERR, the
    error is counted, and reads of real memory keep working."""
    host, axi = await setup_dma(dut, max_payload=256, max_read_request=512)
    address, memory = host.rc.alloc_region(1 << 12)
    memory[:16] = bytes(range(16))
    errors = await read_counter(host, "host_port_errors")
    nowhere = 0x7F_0000_0000
    for length in (4, 100, 3000):
        response = await axi.read(nowhere, length)
        assert response.resp == AxiResp.SLVERR, (length, response)
        got = await axi.read(address, 16)
        assert got.data == bytes(range(16)) and got.resp == AxiResp.OKAY
    assert await read_counter(host, "host_port_errors") == errors + 3


@cocotb.test(timeout_time=3, timeout_unit="ms")
async def dma_window(dut):
    """With the DMA window set to the driver's memory, a TX buffer, an RX buffer and a TX
    descriptor ring outside it are refused before any TLP: the packets complete with DMA_ERROR
    (the loopback drops the failed TX packet as bad), the queue with the ring outside stops
    with DESCRIPTOR_DMA, the refusals are counted with the latest address, memory outside is
    untouched, and the driver recovers the queue without a device reset."""
    host, driver = await setup_driver(dut)
    await driver.set_loopback(True)
    await driver.create_completion_queue(0, 4, vector=0)  # TX completions
    await driver.create_completion_queue(1, 4, vector=1)  # RX completions
    for q in (0, 1):
        await driver.create_tx_queue(q, 3, cq=0)
        await driver.create_rx_queue(q, 3, cq=1)
    await driver.refill_rx(0, 1)
    await driver.set_dma_window()
    outside, outside_memory = host.rc.alloc_region(1 << 14)
    outside_memory[:] = b"\x5A" * len(outside_memory)
    packet = bytes(range(256)) * 2

    async def loop(q):
        driver.queue_tx(q, packet)
        await driver.kick_tx(q)
        assert [e.status for e in await wait_completions(dut, driver, 0, 1)] == [0]
        rx = await wait_completions(dut, driver, 1, 1)
        assert driver.received(rx[0]) == packet

    await loop(0)
    assert await read_counter(host, "window_refused") == 0

    # A TX buffer outside: DMA_ERROR, nothing reaches the RX queue.
    bad_drops = await driver.queues.counter("rx_bad_drops")
    driver.tx_rings[0].post(outside + 64, len(packet))
    await driver.kick_tx(0)
    assert [e.status for e in await wait_completions(dut, driver, 0, 1)] == [2]  # DMA_ERROR
    assert await read_counter(host, "window_refused") == 1
    assert await driver.window_fault() == outside + 64
    assert await driver.queues.counter("rx_bad_drops") == bad_drops + 1
    assert await driver.poll(1) == []

    # An RX buffer outside: DMA_ERROR and the memory there untouched.
    ring = driver.rx_rings[0]
    index = ring.post(outside + 4096, 4096)
    await driver.queues.doorbell(QueueKind.RX, 0, ring.producer)
    driver.queue_tx(0, packet)
    await driver.kick_tx(0)
    assert [e.status for e in await wait_completions(dut, driver, 0, 1)] == [0]
    rx = await wait_completions(dut, driver, 1, 1)
    assert [(e.index, e.status) for e in rx] == [(index, 2)]
    assert await driver.window_fault() == outside + 4096
    await driver.refill_rx(0, 1)
    await loop(0)

    # TX queue 1's ring outside: the descriptor read is refused and the queue stops.
    await driver.queues.configure(QueueKind.TX, 1, base=outside + 8192, log_size=3, cq=0)
    await driver.queues.doorbell(QueueKind.TX, 1, 1)
    await ClockCycles(dut.clk, 500)
    assert (await driver.stats(QueueKind.TX, 1))["error"] == 2  # DESCRIPTOR_DMA
    assert await driver.window_fault() == outside + 8192
    assert await read_counter(host, "window_refused") == 3
    assert bytes(outside_memory) == b"\x5A" * len(outside_memory)

    # Recovery: the driver gives the queue a ring inside the window, no device reset.
    await driver.create_tx_queue(1, 3, cq=0)
    await driver.refill_rx(1, 1)
    await loop(1)
    await driver.set_dma_window(False)
    await driver.refill_rx(0, 1)
    await loop(0)
