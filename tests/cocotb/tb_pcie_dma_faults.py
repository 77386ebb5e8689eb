"""cocotb tests of the generated PcieDmaCore against a host that misbehaves within the rules.

The root complex answers the core's memory reads through :class:`amnic.sim.pcie_faults.
CompletionFaults`: completions of different requests out of order, each request cut into
several completions at 64-byte Read Completion Boundaries (PCIe Base Specification 2.3.1.1,
2.4.1), and chosen requests answered with a poisoned completion, Completer Abort or Unsupported
Request status, or not at all. Reads come from the AXI4 host-memory port ``s_axi`` (a
cocotbext-axi ``AxiMaster``) and from the TX queues (through :class:`amnic.sim.dma_driver.
NicDriver`). Every test checks that nothing hangs, that good data stays good byte for byte, that
each failure is reported where the register map says (AXI ``RRESP`` SLVERR and
``host_port_errors``, ``read_errors``, ``read_timeouts``, ``unexpected_completions``, queue
``error`` and completion entry status), and that the core keeps working afterwards.

* ``completion_reordering`` / ``completion_reordering_rcb``: concurrent random-size reads
  (1..9600 bytes) while completions are reordered and split (random RCB cuts at MRRS 512; one
  completion per 64 bytes at MRRS 4096).
* ``poisoned_and_aborted``: one request of a read answered poisoned (first or last completion),
  CA or UR (at once or after successful completions).
* ``completion_timeout``: one request of a read never answered, answered in part, or answered
  after the core gave up; ``read_timeout`` programmed to 2000 cycles.
* ``hard_ip_timeout``: one request of a read answered in part or not at all, and its completion
  timeout reported by the hard IP on RC (before the core's own timeout).
* ``tx_descriptor_poisoned`` / ``tx_buffer_poisoned``: TX queue descriptor and packet buffer
  reads answered poisoned (loopback off: the packets are taken from ``m_axis_tx``).
"""

import random

import cocotb
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiResp, AxiStreamBus, AxiStreamSink
from tb_pcie_dma import OFFSET, read_counter, setup_dma, setup_driver, wait_completions

from amnic.dma.queues import CompletionStatus, QueueError, QueueKind
from amnic.sim.dma_rings import DESCRIPTOR_BYTES
from amnic.sim.pcie_faults import CompletionFaults, Fault, Split

#: The device model's user clock (amnic.sim.pcie_host.attach): 250 MHz.
CLOCK_NS = 4
#: Completion timeout programmed for the timeout test, in cycles.
TIMEOUT = 2000
COUNTERS = ("read_timeouts", "unexpected_completions", "host_port_errors", "read_errors")


async def counters(host):
    return {name: await read_counter(host, name) for name in COUNTERS}


async def expect_counts(host, before, **delta):
    """The counters moved by ``delta`` (0 for those not named) since ``before``."""
    now = await counters(host)
    moved = {name: (now[name] - before[name]) & 0xFFFF_FFFF for name in COUNTERS}
    assert moved == {name: delta.get(name, 0) for name in COUNTERS}, moved


async def expect_quiet(dut, host, faults):
    """No read left outstanding, no request that broke the rules, no completion the device
    model had to throw away (its receive buffer overflowing)."""
    for _ in range(50):
        if await read_counter(host, "reads_outstanding") == 0:
            break
        await ClockCycles(dut.clk, 200)
    assert await read_counter(host, "reads_outstanding") == 0
    assert faults.violations == [], faults.violations[:4]
    assert host.device.local_error.empty(), "completion buffer of the device model overflowed"


async def set_max_read_request(host, nbytes):
    """Program Max_Read_Request_Size and check that the core sees it (``link`` register)."""
    await host.set_max_read_request(nbytes)
    link = await read_counter(host, "link")
    assert link >> 3 & 7 == (nbytes // 128).bit_length() - 1, hex(link)


def random_memory(host, size, rng):
    address, memory = host.rc.alloc_region(size)
    memory[:size] = bytes(rng.getrandbits(8) for _ in range(size))
    return address, memory


def with_zeros(memory, base, address, length, failed):
    """Host bytes ``address .. address + length`` as a read returns them when the requests in
    ``failed`` (:class:`ServedRead`) failed: the engine delivers their bytes as zeros."""
    data = bytearray(memory[address - base:address - base + length])
    for request in failed:
        lo = max(request.address, address)
        hi = min(request.address + request.length, address + length)
        data[lo - address:max(hi, lo) - address] = bytes(max(hi - lo, 0))
    return bytes(data)


async def check_read(axi, address, memory, base, length):
    got = await axi.read(address, length)
    assert got.resp == AxiResp.OKAY, (hex(address), length, got.resp)
    offset = address - base
    assert got.data == bytes(memory[offset:offset + length]), (hex(address), length)


async def concurrent_reads(axi, address, memory, size, rng, *, readers, reads):
    """``readers`` coroutines each doing ``reads`` random reads of 1..9600 bytes; returns the
    lengths read."""
    lengths = []

    async def reader():
        for _ in range(reads):
            length = rng.choice([1, 3, 64, 65, 511, 1500, rng.randrange(1, 9601)])
            offset = rng.randrange(0, size - length)
            await check_read(axi, address + offset, memory, address, length)
            lengths.append(length)

    tasks = [cocotb.start_soon(reader()) for _ in range(readers)]
    for task in tasks:
        await task
    return lengths


async def reordering(dut, *, max_payload, max_read_request, split, seed):
    rng = random.Random(seed)
    host, axi = await setup_dma(dut, max_payload=max_payload, max_read_request=max_read_request)
    await set_max_read_request(host, max_read_request)
    faults = CompletionFaults.for_host(host, split=split, depth=16, seed=seed)
    size = 1 << 18
    address, memory = random_memory(host, size, rng)
    before = await counters(host)
    start = get_sim_time("ns")
    lengths = await concurrent_reads(axi, address, memory, size, rng, readers=12, reads=6)
    elapsed = get_sim_time("ns") - start
    await expect_counts(host, before)
    await expect_quiet(dut, host, faults)
    requests = len(faults.reads)
    split_requests = sum(len(r.cuts) > 1 for r in faults.reads)
    dut._log.info("%d reads, %d bytes in %.1f us; %d requests, %d completions (%d requests "
                  "split), %d completions overtook an older request's", len(lengths),
                  sum(lengths), elapsed / 1000, requests, faults.completions, split_requests,
                  faults.overtakes)
    assert all(r.fault is None and r.sent == len(r.cuts) for r in faults.reads)
    # The host really reordered and split: not one request in a hundred slipped through.
    assert faults.overtakes > faults.completions // 4, (faults.overtakes, faults.completions)
    assert split_requests > requests // 2, (split_requests, requests)
    return faults


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def completion_reordering(dut):
    """MPS 256, MRRS 512: completions cut at random RCB boundaries and reordered."""
    await reordering(dut, max_payload=256, max_read_request=512, split=Split.RANDOM, seed=11)


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def completion_reordering_rcb(dut):
    """MPS 512, MRRS 4096: every 64 bytes its own completion (up to 64 per request)."""
    faults = await reordering(dut, max_payload=512, max_read_request=4096, split=Split.RCB,
                              seed=12)
    assert max(len(r.cuts) for r in faults.reads) == 64


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def poisoned_and_aborted(dut):
    """One request of a 3000-byte read fails: SLVERR, the failed request's bytes read as
    zeros and the rest correct, ``host_port_errors`` + 1 per read; reads running at the same
    time and the same read repeated are correct."""
    rng = random.Random(21)
    host, axi = await setup_dma(dut, max_payload=256, max_read_request=512)
    faults = CompletionFaults.for_host(host, seed=22)
    size = 1 << 16
    address, memory = random_memory(host, size, rng)
    other, other_memory = random_memory(host, size, rng)
    before = await counters(host)
    cases = [(Fault.POISONED, 0), (Fault.POISONED, -1), (Fault.COMPLETER_ABORT, 0),
             (Fault.COMPLETER_ABORT, 1), (Fault.UNSUPPORTED_REQUEST, 0),
             (Fault.UNSUPPORTED_REQUEST, 2)]
    for n, (fault, at) in enumerate(cases):
        length = 3000
        start = address + 4096 * n + 100
        rule = faults.inject(fault, (start + 1100, 1), at=at)  # in the read's third request
        bystanders = [cocotb.start_soon(concurrent_reads(axi, other, other_memory, size, rng,
                                                         readers=1, reads=2))
                      for _ in range(3)]
        got = await axi.read(start, length)
        assert got.resp == AxiResp.SLVERR, (fault, at, got.resp)
        [hit] = rule.hits
        assert hit.fault == fault
        if fault == Fault.POISONED:
            assert hit.sent == len(hit.cuts)
        else:
            assert hit.sent == hit.at + 1  # successful ones, then the error status
        assert got.data == with_zeros(memory, address, start, length, [hit]), (fault, at)
        for task in bystanders:
            await task
        await check_read(axi, start, memory, address, length)  # the rule is used up
        dut._log.info("%s at completion %d of %d: SLVERR, %d completions sent", fault.value,
                      hit.at, len(hit.cuts), hit.sent)
    await expect_counts(host, before, host_port_errors=len(cases), read_errors=len(cases))
    await expect_quiet(dut, host, faults)


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def completion_timeout(dut):
    """Requests never answered end in a completion timeout after ``read_timeout`` cycles:
    SLVERR, ``read_timeouts`` + 1; completions arriving after the timeout are dropped and
    counted as unexpected; once the timed-out tags are free again, heavy traffic reuses them
    with correct data."""
    rng = random.Random(31)
    host, axi = await setup_dma(dut, max_payload=256, max_read_request=512)
    faults = CompletionFaults.for_host(host, seed=32)
    bar = host.bar0
    await bar.write_dword(OFFSET["read_timeout"], TIMEOUT)
    assert await bar.read_dword(OFFSET["read_timeout"]) == TIMEOUT
    size = 1 << 18
    address, memory = random_memory(host, size, rng)
    before = await counters(host)

    async def failing_read(n, **kwargs):
        start = address + 4096 * n + 100
        rule = faults.inject(Fault.DROPPED, (start + 1100, 1), **kwargs)
        t0 = get_sim_time("ns")
        got = await axi.read(start, 3000)
        cycles = (get_sim_time("ns") - t0) / CLOCK_NS
        assert got.resp == AxiResp.SLVERR, (kwargs, got.resp)
        [hit] = rule.hits
        assert got.data == with_zeros(memory, address, start, 3000, [hit]), kwargs
        # The timeout counts from the request's issue; the scanner visits each of the 256
        # tags once per 256 cycles, and the read still has to be zero-filled and returned.
        assert TIMEOUT <= cycles <= TIMEOUT + 256 + 600, cycles
        await check_read(axi, start, memory, address, 3000)  # right away, other tags
        dut._log.info("dropped from completion %d of %d (%s): SLVERR after %d cycles",
                      hit.at, len(hit.cuts), kwargs, cycles)
        return hit

    hits = [await failing_read(0),  # nothing at all
            await failing_read(1, at=1)]  # the first completion, then nothing
    await expect_counts(host, before, read_timeouts=2, host_port_errors=2)

    # Late: the completions come 1.5 timeouts after the request, while its tag is still
    # reserved (until 2 timeouts): each is dropped and counted, none is taken as data.
    hit = await failing_read(2, late_ns=1.5 * TIMEOUT * CLOCK_NS)
    hits.append(hit)
    await faults.wait_idle()
    await ClockCycles(dut.clk, 100)
    assert hit.late == len(hit.cuts) > 0
    await expect_counts(host, before, read_timeouts=3, host_port_errors=3,
                        unexpected_completions=hit.late)

    # After 2 timeouts the reserved tags are free, and the traffic below runs on them again.
    await ClockCycles(dut.clk, 2 * TIMEOUT + 300)
    assert await read_counter(host, "reads_outstanding") == 0
    first = len(faults.reads)
    await concurrent_reads(axi, address, memory, size, rng, readers=8, reads=4)
    reused = {h.tag for h in hits} & {r.tag for r in faults.reads[first:]}
    assert reused == {h.tag for h in hits}, reused
    await expect_counts(host, before, read_timeouts=3, host_port_errors=3,
                        unexpected_completions=hit.late)
    await expect_quiet(dut, host, faults)


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def hard_ip_timeout(dut):
    """A completion timeout the hard IP reports (RC error code 1001b) ends the request at once,
    long before the core's own timeout: SLVERR, zeros for that request only, ``read_timeouts``
    + 1; its tag is free again at once (no reservation), and later reads are intact."""
    rng = random.Random(41)
    host, axi = await setup_dma(dut, max_payload=256, max_read_request=512)
    faults = CompletionFaults.for_host(host, seed=42)
    size = 1 << 16
    address, memory = random_memory(host, size, rng)
    before = await counters(host)
    hits = []
    for n, at in enumerate((0, 1, -1)):
        start = address + 4096 * n + 36
        rule = faults.inject(Fault.HARD_IP_TIMEOUT, (start + 1100, 1), at=at)
        t0 = get_sim_time("ns")
        got = await axi.read(start, 3000)
        cycles = (get_sim_time("ns") - t0) / CLOCK_NS
        [hit] = rule.hits
        hits.append(hit)
        assert got.resp == AxiResp.SLVERR, (at, got.resp)
        assert got.data == with_zeros(memory, address, start, 3000, [hit]), at
        # The report follows the link latency and the model's delay, far below the default
        # read_timeout (2**20 cycles).
        assert cycles < 2000, cycles
        await check_read(axi, start, memory, address, 3000)
    await expect_counts(host, before, read_timeouts=3, host_port_errors=3)
    assert await read_counter(host, "reads_outstanding") == 0
    # The tags are reused at once.
    first = len(faults.reads)
    await concurrent_reads(axi, address, memory, size, rng, readers=8, reads=4)
    reused = {h.tag for h in hits} & {r.tag for r in faults.reads[first:]}
    assert reused, "no timed-out tag reused"
    await expect_counts(host, before, read_timeouts=3, host_port_errors=3)
    await expect_quiet(dut, host, faults)


async def driver_setup(dut):
    """Driver, fault injector, TX queues 0 and 1 completing on completion queue 0, and a sink
    taking the packets from ``m_axis_tx`` (loopback off)."""
    host, driver = await setup_driver(dut)
    faults = CompletionFaults.for_host(host, seed=41)
    await driver.set_loopback(False)
    await driver.create_completion_queue(0, 4, vector=0)
    for q in (0, 1):
        await driver.create_tx_queue(q, 3, cq=0)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_tx"), dut.clk, dut.rst)
    return host, driver, faults, sink


def tx_frame(frame):
    """``(queue, bad, data)`` of a packet taken from ``m_axis_tx``: ``tuser`` bits 16:1 on the
    first beat, bit 0 on the last."""
    user = frame.tuser if isinstance(frame.tuser, list) else [frame.tuser]
    return user[0] >> 1, user[-1] & 1, bytes(frame.tdata)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def tx_descriptor_poisoned(dut):
    """A poisoned descriptor read stops the TX queue with error DESCRIPTOR_DMA (no completion
    entry, nothing sent); the other queue keeps sending; the driver recovers the queue and it
    sends again, data compared."""
    host, driver, faults, sink = await driver_setup(dut)
    rng = random.Random(42)
    packets = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (700, 1500, 64)]
    ring = driver.tx_rings[0]
    index = driver.queue_tx(0, packets[0])
    rule = faults.inject(Fault.POISONED, (ring.address_of(index), DESCRIPTOR_BYTES))
    await driver.kick_tx(0)
    driver.queue_tx(1, packets[1])
    await driver.kick_tx(1)
    [entry] = await wait_completions(dut, driver, 0, 1)
    assert (entry.queue, entry.status) == (1, CompletionStatus.OK.value), entry
    assert tx_frame(await sink.recv()) == (1, 0, packets[1])
    await ClockCycles(dut.clk, 1000)
    assert await driver.poll(0) == [] and sink.empty()
    assert len(rule.hits) == 1
    stats = await driver.stats(QueueKind.TX, 0)
    assert stats["error"] == QueueError.DESCRIPTOR_DMA.value, stats
    assert stats["packets"] == 0, stats
    dut._log.info("TX queue 0 after the poisoned descriptor read: %s", stats)

    await driver.recover(QueueKind.TX, 0)
    assert (await driver.stats(QueueKind.TX, 0))["error"] == QueueError.NONE.value
    for packet in (packets[0], packets[2]):
        driver.queue_tx(0, packet)
        await driver.kick_tx(0)
    entries = await wait_completions(dut, driver, 0, 2)
    assert [(e.queue, e.status) for e in entries] == [(0, 0), (0, 0)], entries
    assert [tx_frame(await sink.recv()) for _ in range(2)] == \
        [(0, 0, packets[0]), (0, 0, packets[2])]
    await expect_quiet(dut, host, faults)


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def tx_buffer_poisoned(dut):
    """A packet whose buffer read is poisoned completes as DMA_ERROR and leaves on m_axis_tx
    with the error bit (``tuser`` bit 0) on its last beat; the packets around it leave intact
    with the bit clear."""
    host, driver, faults, sink = await driver_setup(dut)
    rng = random.Random(43)
    packets = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (900, 2000, 300)]
    before = await counters(host)
    memory = driver.memory
    for n, packet in enumerate(packets):
        first = driver.queue_tx(0, packet, segments=2)
        if n == 1:  # poison the second segment's buffer read
            buffer = memory.read(driver.tx_rings[0].address_of(first + 1), 8)
            rule = faults.inject(Fault.POISONED, (int.from_bytes(buffer, "little"), 1))
    await driver.kick_tx(0)
    entries = await wait_completions(dut, driver, 0, 3)
    assert [e.status for e in entries] == [CompletionStatus.OK.value,
                                           CompletionStatus.DMA_ERROR.value,
                                           CompletionStatus.OK.value], entries
    assert len(rule.hits) == 1
    frames = [tx_frame(await sink.recv()) for _ in packets]
    for n, ((queue, bad, data), packet) in enumerate(zip(frames, packets)):
        assert (queue, bad, len(data)) == (0, n == 1, len(packet)), n
        if n != 1:
            assert data == packet, n
    stats = await driver.stats(QueueKind.TX, 0)
    assert stats["error"] == QueueError.NONE.value and stats["packets"] == 3, stats
    # Counted as a failed read; queue reads are not AXI host-port reads.
    await expect_counts(host, before, read_errors=1)
    await expect_quiet(dut, host, faults)
