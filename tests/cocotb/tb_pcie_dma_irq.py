"""cocotb tests of the interrupt path of the generated PcieDmaCore: completion-queue events
through interrupt moderation to MSI-X or MSI messages, behind cocotbext-pcie's UltraScale+
model and root complex.

Traffic is TX packets that the internal loopback (``control.loopback``) returns on the RX
queue of the same number: each packet makes one TX completion (on completion queue ``TX_CQ``)
and one RX completion (on ``RX_CQ``), i.e. one moderation event for each of the two sources.

Interrupts are counted three ways and compared: requests the moderator makes (the MSI-X
controller's ``request`` stream, inside the design, which only the moderator drives here),
messages the design hands to the hard IP (``cfg_interrupt_msix_int`` or the one-hot
``cfg_interrupt_msi_int`` at its ports), and interrupts the root complex delivers to the
driver's handlers. Counts are checked against :class:`SourceModel`, the behaviour
:class:`~amnic.dma.moderation.InterruptModerator` documents, and timing is measured in clock
cycles from the moderator's ``event`` handshake to the message at the ports.

* ``moderation_threshold``: count threshold, timer off: ``K`` completions with the driver
  re-arming after each interrupt give ``K // N`` interrupts; events counted while disarmed
  fire at once on ARM when due; CLEAR, DISARM, ARM|DISARM, CLEAR|ARM; a burst while armed gives
  one interrupt; threshold 0 means every event.
* ``moderation_timer``: one completion (threshold not reached) interrupts once, between
  ``timer * unit + 1`` and ``(timer + 1) * unit + sources + 4`` cycles after its event (the
  bounds moderation.py documents) plus the MSI-X sender's latency, measured in clock cycles;
  the timer starts at the first unsignalled event; a count-fired interrupt restarts it; a
  timer that runs out while disarmed marks the source expired and it fires on ARM.
* ``msix_masking``: a masked vector sets its PBA bit and sends nothing; requests while masked
  make one message on unmask (PCIe 6.1.4.5); the Function Mask holds every vector.
* ``msi_fallback``: with interrupts off, requests are dropped; the host enables MSI (not MSI-X)
  in config space; queue vector ``v`` is sent as MSI message ``v mod 2**MME`` for Multiple
  Message Enable 2, 0 and 5; the MSI-X table masks do not apply to MSI.
"""

import random
from collections import defaultdict

import cocotb
from cocotb.triggers import ClockCycles, Event, FallingEdge, First
from cocotbext.axi import AxiLiteBus, AxiLiteRam

from amnic.dma import moderation
from amnic.dma.core import PcieDmaCore
from amnic.sim.dma_driver import NicDriver
from amnic.sim.pcie_host import attach

#: Window offsets and parameters of the generated core (its defaults; the same at both widths).
CORE = PcieDmaCore(256)
UNIT = CORE.moderation.timer_unit_cycles
SOURCES = CORE.moderation.sources
#: MsixController: a request taken at edge t drives the message at edge t + 3 at the earliest,
#: plus up to groups - 1 cycles of pending-bit scanning.
MSIX_LATENCY = 3
MSIX_SCAN = CORE.msix.groups - 1
TX_CQ, RX_CQ = 0, 1
#: Cycles to wait after a completion is in host memory for its interrupt to be delivered.
SETTLE = 300
PACKET = bytes(range(64))


class SourceModel:
    """Reference behaviour of one moderation source with the timer off (moderation.py)."""

    def __init__(self, threshold):
        self.threshold = threshold
        self.armed = False
        self.count = 0
        self.fired = 0

    def event(self, n=1):
        for _ in range(n):
            self.count = min(self.count + 1, moderation.COUNT_MAX)
            self._fire()

    def control(self, bits):
        if bits & moderation.CLEAR:
            self.count = 0
        self.armed = (self.armed or bool(bits & moderation.ARM)) and not bits & moderation.DISARM
        self._fire()

    def _fire(self):
        if self.armed and self.count and self.count >= self.threshold:
            self.armed, self.count = False, 0
            self.fired += 1

    def state(self):
        return {"armed": int(self.armed), "expired": 0, "count": self.count}


def nonzero(counts):
    return {key: n for key, n in sorted(counts.items()) if n}


class InterruptProbe:
    """Watches the design each cycle (at falling edges, so values are settled): moderation
    events and interrupt requests inside the design, and messages at the hard-IP ports.

    ``cycle`` counts clock cycles; a record's cycle is the one whose rising edge takes the
    handshake or sends the message."""

    def __init__(self, dut):
        self.dut = dut
        core = dut.top.core
        self.moderator = core.moderation
        # The MSI-X controller's request stream (always ready): the moderator's requests, as
        # nothing else requests interrupts here (``interrupt`` held idle).
        self.msix = core.msix
        self.cycle = 0
        self.events = []  # (cycle, source)
        self.fires = []  # (cycle, vector): moderator requests
        self.messages = []  # (cycle, "msix" | "msi", vector)
        self.msix_addresses = set()
        self.sent = 0
        self.changed = Event()
        cocotb.start_soon(self._run())

    async def _run(self):
        dut, mod, msix = self.dut, self.moderator, self.msix
        while True:
            await FallingEdge(dut.clk)
            self.cycle += 1
            if int(mod.event__valid.value) and int(mod.event__ready.value):
                self.events.append((self.cycle, int(mod.event__payload.value)))
            if int(msix.request__valid.value):
                self.fires.append((self.cycle, int(msix.request__payload.value)))
            if int(dut.cfg_interrupt_msix_int.value):
                self.messages.append((self.cycle, "msix",
                                      int(dut.cfg_interrupt_msix_data.value)))
                self.msix_addresses.add(int(dut.cfg_interrupt_msix_address.value))
                self.changed.set()
            msi = int(dut.cfg_interrupt_msi_int.value)
            if msi:
                assert msi & (msi - 1) == 0, f"cfg_interrupt_msi_int not one-hot: {msi:#x}"
                self.messages.append((self.cycle, "msi", msi.bit_length() - 1))
                self.changed.set()
            if int(dut.cfg_interrupt_msix_sent.value) or int(dut.cfg_interrupt_msi_sent.value):
                self.sent += 1
            assert not int(dut.cfg_interrupt_msix_fail.value)
            assert not int(dut.cfg_interrupt_msi_fail.value)

    def count(self, vector, kind=None):
        return sum(1 for _, k, v in self.messages if v == vector and kind in (None, k))

    def fired(self, vector):
        return sum(1 for _, v in self.fires if v == vector)

    def event_cycles(self, source):
        return [c for c, s in self.events if s == source]

    async def wait_message(self, count, cycles):
        """Wait until ``count`` messages were seen in total, at most ``cycles`` cycles."""
        end = self.cycle + cycles
        while len(self.messages) < count and self.cycle < end:
            self.changed.clear()
            await First(self.changed.wait(), ClockCycles(self.dut.clk, 16))
        return len(self.messages) >= count


async def setup(dut, *, interrupts=True, msi=False, vectors=8):
    """Host, driver (probed unless ``interrupts`` is false), loopback on, and a probe."""
    host = attach(dut, bar0_bits=CORE.bar_bits, max_payload=256, max_read_request=512,
                  msix_vectors=CORE.msix.vectors, msix_bar_offset=CORE.msix_table_offset,
                  msix_pba_offset=CORE.msix_pba_offset)
    AxiLiteRam(AxiLiteBus.from_prefix(dut, "m_axil"), dut.clk, dut.rst,
               size=CORE.app_base)
    dut.interrupt_tvalid.value = 0
    await FallingEdge(dut.rst)
    await ClockCycles(dut.clk, 10)
    await host.enumerate()
    driver = NicDriver(host, CORE)
    if interrupts:
        await driver.probe(vectors, msi=msi)
    await driver.set_loopback(True)
    return host, driver, InterruptProbe(dut)


async def create_queues(driver, *, tx, rx):
    """TX queue 0 completing on ``TX_CQ`` and RX queue 0 on ``RX_CQ``; ``tx``/``rx`` are the
    moderation settings (vector, threshold, timer) of the two completion queues (armed)."""
    for cq, settings in ((TX_CQ, tx), (RX_CQ, rx)):
        await driver.create_completion_queue(cq, 6, **settings)
    await driver.create_tx_queue(0, 5, cq=TX_CQ)
    await driver.create_rx_queue(0, 5, cq=RX_CQ)


async def send(driver, count):
    """Post ``count`` receive buffers and ``count`` TX packets, one doorbell."""
    await driver.refill_rx(0, count, size=2048)
    for _ in range(count):
        driver.queue_tx(0, PACKET)
    await driver.kick_tx(0)


async def completions(dut, driver, count, cycles=20000):
    """Wait until ``count`` more completions are on each of the two rings; consume them."""
    got = {TX_CQ: [], RX_CQ: []}
    for _ in range(cycles // 20):
        for cq in got:
            if len(got[cq]) < count:
                got[cq] += await driver.poll(cq)
        if all(len(entries) >= count for entries in got.values()):
            break
        await ClockCycles(dut.clk, 20)
    for cq, entries in got.items():
        assert len(entries) == count, f"{len(entries)} of {count} completions on {cq}"
        assert all(entry.status == 0 and entry.length == len(PACKET) for entry in entries), (
            entries)
    return got


async def step(dut, driver, count):
    """Send ``count`` packets, wait for their completions and for interrupts to settle."""
    await send(driver, count)
    await completions(dut, driver, count)
    await ClockCycles(dut.clk, SETTLE)


# -- moderation_threshold ---------------------------------------------------------------------


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def moderation_threshold(dut):
    _, driver, probe = await setup(dut)
    n, k = 3, 10
    tx_vector, rx_vector = 2, 5
    await create_queues(driver, tx=dict(vector=tx_vector, threshold=n),
                        rx=dict(vector=rx_vector, threshold=0))  # 0: every event
    model = {TX_CQ: SourceModel(n), RX_CQ: SourceModel(0)}
    vector = {TX_CQ: tx_vector, RX_CQ: rx_vector}
    for cq, source in model.items():
        assert await driver.moderation_settings(cq) == {
            "vector": vector[cq], "threshold": source.threshold, "timer": 0}
    for source in model.values():
        source.control(moderation.ARM)

    async def check(what):
        for cq, source in model.items():
            v = vector[cq]
            assert probe.fired(v) == source.fired, (what, cq, probe.fires)
            assert probe.count(v, "msix") == source.fired, (what, cq, probe.messages)
            assert driver.interrupts[v] == source.fired, (what, cq, dict(driver.interrupts))
            assert await driver.moderation_state(cq) == source.state(), (what, cq)

    async def control(cq, bits):
        await driver.moderation_control(cq, bits)
        model[cq].control(bits)
        await ClockCycles(dut.clk, SETTLE)

    async def packets(count, *, rearm_rx=True):
        fired_rx = model[RX_CQ].fired
        await step(dut, driver, count)
        for source in model.values():
            source.event(count)
        await check(f"after {count} packets")
        if rearm_rx and model[RX_CQ].fired != fired_rx:  # the driver serviced the RX queue
            await control(RX_CQ, moderation.ARM)

    # Armed, re-armed by the driver after each interrupt: exactly floor(k / n) interrupts, one
    # at each n-th completion, and k mod n events still pending.
    for i in range(1, k + 1):
        fired = model[TX_CQ].fired
        await packets(1)
        assert model[TX_CQ].fired == i // n
        if model[TX_CQ].fired != fired:
            await control(TX_CQ, moderation.ARM)
    assert probe.fired(tx_vector) == k // n and probe.fired(rx_vector) == k
    assert (await driver.moderation_state(TX_CQ))["count"] == k % n

    # Not re-armed: events are counted, nothing fires, until ARM fires at once.
    await packets(n - k % n)  # reaches n: fires and disarms
    await packets(n + 1)
    assert await driver.moderation_state(TX_CQ) == {"armed": 0, "expired": 0, "count": n + 1}
    fired = model[TX_CQ].fired
    await control(TX_CQ, moderation.ARM)
    assert model[TX_CQ].fired == fired + 1
    await check("ARM with due events")

    # Armed with fewer than n pending: nothing until the n-th; CLEAR forgets pending events.
    await control(TX_CQ, moderation.ARM)
    await packets(n - 1)
    await control(TX_CQ, moderation.CLEAR)
    assert model[TX_CQ].state() == {"armed": 1, "expired": 0, "count": 0}
    await check("CLEAR")
    await packets(n - 1)
    fired = model[TX_CQ].fired
    await packets(1)
    assert model[TX_CQ].fired == fired + 1

    # DISARM wins over ARM; CLEAR applies before ARM (so nothing is due then).
    await control(TX_CQ, moderation.ARM | moderation.DISARM)
    await packets(n)
    await check("ARM|DISARM")
    assert model[TX_CQ].state() == {"armed": 0, "expired": 0, "count": n}
    await control(TX_CQ, moderation.ARM | moderation.CLEAR)
    await check("ARM|CLEAR")
    await control(TX_CQ, moderation.DISARM)
    await packets(n)
    await check("DISARM")
    await control(TX_CQ, moderation.ARM)  # n pending: fires

    # A burst while armed: one interrupt, the rest stays pending (RX is not re-armed either).
    await control(TX_CQ, moderation.ARM)
    await control(RX_CQ, moderation.ARM)
    fired = model[TX_CQ].fired
    await packets(2 * n + 1, rearm_rx=False)
    assert model[TX_CQ].fired == fired + 1 and model[TX_CQ].count == n + 1

    sent = len(probe.messages)
    assert sent == sum(source.fired for source in model.values())
    assert probe.sent == sent
    assert await driver.read_register("msix_sent") == sent
    assert await driver.read_register("msix_failed") == 0
    assert probe.msix_addresses == {driver.host.function.msi_vectors[0].addr}
    assert sum(driver.interrupts.values()) == sent
    dut._log.info("threshold: %d interrupts for %d + %d events", sent,
                  len(probe.event_cycles(TX_CQ)), len(probe.event_cycles(RX_CQ)))


# -- moderation_timer ------------------------------------------------------------------------


def timer_bounds(timer):
    """Cycles from an event to its message (moderation.py plus the MSI-X sender)."""
    low = timer * UNIT + 1 + MSIX_LATENCY
    high = (timer + 1) * UNIT + SOURCES + 4 + MSIX_LATENCY + MSIX_SCAN
    return low, high


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def moderation_timer(dut):
    _, driver, probe = await setup(dut)
    rng = random.Random(11)
    timers = {TX_CQ: 4, RX_CQ: 2}
    vectors = {TX_CQ: 1, RX_CQ: 6}
    big = 1000  # a threshold never reached
    await create_queues(driver, tx=dict(vector=vectors[TX_CQ], threshold=big,
                                        timer=timers[TX_CQ]),
                        rx=dict(vector=vectors[RX_CQ], threshold=big, timer=timers[RX_CQ]))
    delays = {TX_CQ: [], RX_CQ: []}
    longest = max(timer_bounds(t)[1] for t in timers.values())

    def message_cycles(cq):
        return [c for c, _, v in probe.messages if v == vectors[cq]]

    async def timed(count, sources, *, gap=0):
        """Send ``count`` packets ``gap`` cycles apart; each of ``sources`` must interrupt
        exactly once, timed from its first new event, and end disarmed with nothing pending.
        Returns {source: delay}."""
        before = {cq: len(message_cycles(cq)) for cq in sources}
        events = {cq: len(probe.event_cycles(cq)) for cq in sources}
        total = len(probe.messages)
        for n in range(count):
            if n:
                await ClockCycles(dut.clk, gap)
            await send(driver, 1)
            await completions(dut, driver, 1)  # no moderation register reads meanwhile
        assert await probe.wait_message(total + len(sources), 2 * longest)
        await ClockCycles(dut.clk, longest)  # and nothing more comes
        assert len(probe.messages) == total + len(sources), probe.messages[total:]
        result = {}
        for cq in sources:
            event = probe.event_cycles(cq)[events[cq]:]
            messages = message_cycles(cq)[before[cq]:]
            assert len(event) == count and len(messages) == 1, (cq, event, messages)
            result[cq] = messages[0] - event[0]
            assert await driver.moderation_state(cq) == {"armed": 0, "expired": 0,
                                                         "count": 0}
        return result

    # Single completions at different phases of the timer-unit clock: each source interrupts
    # once, within the documented bounds.
    for _ in range(6):
        await ClockCycles(dut.clk, rng.randrange(UNIT))
        for cq, delay in (await timed(1, timers)).items():
            low, high = timer_bounds(timers[cq])
            assert low <= delay <= high, (cq, timers[cq], delay, (low, high))
            delays[cq].append(delay)
            await driver.rearm(cq)

    # Armed with nothing pending: no interrupt.
    total = len(probe.messages)
    await ClockCycles(dut.clk, 2 * longest)
    assert len(probe.messages) == total

    # RX quiet from here (disarmed; its events are only counted) until the last part.
    await driver.moderation_control(RX_CQ, moderation.DISARM)

    # The timer runs from the first unsignalled event, not the latest: a second event half a
    # timer later does not postpone the interrupt.
    half = timers[TX_CQ] * UNIT // 2
    delay = (await timed(2, [TX_CQ], gap=half))[TX_CQ]
    events = probe.event_cycles(TX_CQ)
    assert events[-1] - events[-2] >= half
    low, high = timer_bounds(timers[TX_CQ])
    assert low <= delay <= high, (delay, low, high)
    await driver.rearm(TX_CQ)

    # Count before timer: threshold 2 fires at the second event; a following single event is
    # timed from itself (the firing cleared the count and its start time).
    await driver.set_moderation(TX_CQ, threshold=2)
    assert await driver.moderation_settings(TX_CQ) == {
        "vector": vectors[TX_CQ], "threshold": 2, "timer": timers[TX_CQ]}
    delay = (await timed(2, [TX_CQ]))[TX_CQ]
    events = probe.event_cycles(TX_CQ)
    at_count = message_cycles(TX_CQ)[-1] - events[-1]
    assert at_count < UNIT, at_count
    await driver.rearm(TX_CQ)
    await driver.set_moderation(TX_CQ, threshold=big)
    await ClockCycles(dut.clk, rng.randrange(UNIT))
    delay = (await timed(1, [TX_CQ]))[TX_CQ]
    assert low <= delay <= high, (delay, low, high)
    delays[TX_CQ].append(delay)

    # The timer runs out while disarmed: the source is marked expired and fires on ARM.
    for cq in timers:
        await driver.moderation_control(cq, moderation.DISARM | moderation.CLEAR)
    total = len(probe.messages)
    await send(driver, 1)
    await completions(dut, driver, 1)
    await ClockCycles(dut.clk, longest)
    assert len(probe.messages) == total
    for cq in timers:
        assert await driver.moderation_state(cq) == {"armed": 0, "expired": 1, "count": 1}
        start = probe.cycle
        await driver.rearm(cq)
        assert await probe.wait_message(len(probe.messages) + 1, SETTLE)
        assert probe.messages[-1][2] == vectors[cq]
        dut._log.info("expired source %d: message %d cycles after the ARM write was issued", cq,
                      probe.messages[-1][0] - start)
        assert await driver.moderation_state(cq) == {"armed": 0, "expired": 0, "count": 0}

    assert await driver.read_register("msix_sent") == len(probe.messages) == probe.sent
    assert await driver.read_register("msix_failed") == 0
    assert sum(driver.interrupts.values()) == len(probe.messages)
    dut._log.info("count threshold 2: message %d cycles after the second event", at_count)
    for cq, timer in timers.items():
        dut._log.info("timer %d units (%d cycles): event -> message %s cycles, bounds %s",
                      timer, timer * UNIT, sorted(delays[cq]), timer_bounds(timer))


# -- msix_masking ----------------------------------------------------------------------------


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def msix_masking(dut):
    _, driver, probe = await setup(dut, vectors=CORE.msix.vectors)
    tx_vector, rx_vector = 35, 4  # PBA bits in the high and the low DWORD
    await create_queues(driver, tx=dict(vector=tx_vector, threshold=1),
                        rx=dict(vector=rx_vector, threshold=1))
    assert await driver.pending_vectors() == set()

    # Vector 35 masked: its request sets its pending bit; vector 4 is delivered.
    await driver.mask_vector(tx_vector)
    assert await driver.vector_masked(tx_vector)
    await step(dut, driver, 1)
    assert probe.fired(tx_vector) == 1 and probe.fired(rx_vector) == 1
    assert probe.count(tx_vector) == 0 and probe.count(rx_vector) == 1
    assert driver.interrupts[tx_vector] == 0 and driver.interrupts[rx_vector] == 1
    assert await driver.pending_vectors() == {tx_vector}

    # A second request while masked: still one pending bit.
    await driver.rearm(TX_CQ)
    await driver.rearm(RX_CQ)
    await step(dut, driver, 1)
    assert probe.fired(tx_vector) == 2 and probe.count(tx_vector) == 0
    assert probe.count(rx_vector) == 2
    assert await driver.pending_vectors() == {tx_vector}

    # Unmask: exactly one message, the pending bit clears.
    await driver.mask_vector(tx_vector, False)
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(tx_vector) == 1 and driver.interrupts[tx_vector] == 1
    assert await driver.pending_vectors() == set()
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(tx_vector) == 1

    # Function Mask: every vector is held pending, and sent once when it clears.
    await driver.set_function_mask(True)
    await driver.rearm(TX_CQ)
    await driver.rearm(RX_CQ)
    await step(dut, driver, 1)
    assert probe.fired(tx_vector) == 3 and probe.fired(rx_vector) == 3
    assert probe.count(tx_vector) == 1 and probe.count(rx_vector) == 2
    assert await driver.pending_vectors() == {tx_vector, rx_vector}
    # Unmasking one vector in the table does not release it while the function is masked.
    await driver.mask_vector(rx_vector)
    await driver.mask_vector(rx_vector, False)
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(rx_vector) == 2
    await driver.set_function_mask(False)
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(tx_vector) == 2 and probe.count(rx_vector) == 3
    assert driver.interrupts[tx_vector] == 2 and driver.interrupts[rx_vector] == 3
    assert await driver.pending_vectors() == set()

    # Masked under the Function Mask and its own Mask Bit: needs both cleared.
    await driver.mask_vector(tx_vector)
    await driver.set_function_mask(True)
    await driver.rearm(TX_CQ)
    await driver.rearm(RX_CQ)
    await step(dut, driver, 1)
    await driver.set_function_mask(False)
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(tx_vector) == 2 and probe.count(rx_vector) == 4
    assert await driver.pending_vectors() == {tx_vector}
    await driver.mask_vector(tx_vector, False)
    await ClockCycles(dut.clk, SETTLE)
    assert probe.count(tx_vector) == 3 and driver.interrupts[tx_vector] == 3
    assert await driver.pending_vectors() == set()

    assert {v for _, _, v in probe.messages} == {tx_vector, rx_vector}
    assert all(kind == "msix" for _, kind, _ in probe.messages)
    assert await driver.read_register("msix_sent") == len(probe.messages) == probe.sent
    assert await driver.read_register("msix_failed") == 0


# -- msi_fallback ----------------------------------------------------------------------------


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def msi_fallback(dut):
    _, driver, probe = await setup(dut, interrupts=False)
    tx_vector, rx_vector = 38, 1
    await create_queues(driver, tx=dict(vector=tx_vector, threshold=2),
                        rx=dict(vector=rx_vector, threshold=1))
    model = {TX_CQ: SourceModel(2), RX_CQ: SourceModel(1)}
    vector = {TX_CQ: tx_vector, RX_CQ: rx_vector}
    expected = defaultdict(int)  # MSI message -> messages expected
    enabled = False

    def account(cq, fired):
        if enabled:
            expected[vector[cq] % driver.vectors] += model[cq].fired - fired

    async def service(cq):
        """Re-arm ``cq`` as a driver does after servicing it, again if arming fires it."""
        while not model[cq].armed:
            fired = model[cq].fired
            await driver.rearm(cq)
            model[cq].control(moderation.ARM)
            account(cq, fired)

    async def check(what):
        await ClockCycles(dut.clk, SETTLE)
        for message in range(32):
            assert probe.count(message, "msi") == expected[message], (
                what, message, driver.vectors, probe.messages)
            assert driver.interrupts[message] == expected[message], (
                what, message, dict(driver.interrupts))
        for cq, source in model.items():
            assert probe.fired(vector[cq]) == source.fired, (what, cq)
            assert await driver.moderation_state(cq) == source.state(), (what, cq)

    async def packets(count):
        """``count`` packets, then the driver services and re-arms the sources."""
        await step(dut, driver, count)
        for cq, source in model.items():
            fired = source.fired
            source.event(count)
            account(cq, fired)
        for cq in model:
            await service(cq)
        await check(f"{count} packets, {driver.vectors} messages")

    for source in model.values():
        source.control(moderation.ARM)

    # Neither MSI nor MSI-X enabled: the sources fire, the requests are dropped.
    assert int(dut.cfg_interrupt_msi_enable.value) & 1 == 0
    assert int(dut.cfg_interrupt_msix_enable.value) & 1 == 0
    await step(dut, driver, 2)
    for source in model.values():
        source.event(2)
    await check("interrupts off")
    assert probe.fires and probe.messages == []

    # The host enables MSI with 4 messages; MSI-X stays off although the device offers it.
    assert await driver.probe(4, msi=True) == CORE.queue_counts
    assert driver.vectors == 4
    enabled = True
    await ClockCycles(dut.clk, 10)
    assert int(dut.cfg_interrupt_msi_enable.value) & 1 == 1
    assert int(dut.cfg_interrupt_msix_enable.value) & 1 == 0
    assert int(dut.cfg_interrupt_msi_mmenable.value) & 7 == 2
    await check("MSI on")  # dropped requests are not remembered
    for cq in model:
        await service(cq)  # RX has one event pending (threshold 1): it fires at once
    await check("armed")
    assert nonzero(expected) == {rx_vector: 1}

    # Multiple Message Enable 2 (4 messages): vector 38 is message 2, vector 1 is message 1.
    for _ in range(6):
        await packets(1)
    assert nonzero(expected) == {tx_vector % 4: 3, rx_vector: 7}
    # MSI does not look at the MSI-X table: entry 38 is still masked (its reset value) and
    # nothing is left pending.
    assert await driver.vector_masked(tx_vector)
    assert await driver.pending_vectors() == set()

    # Multiple Message Enable 0: everything is message 0.
    assert await driver.set_msi_messages(1) == 1
    await ClockCycles(dut.clk, 10)
    assert int(dut.cfg_interrupt_msi_mmenable.value) & 7 == 0
    await packets(1)
    await packets(1)
    assert expected[0] == 1 + 2

    # Multiple Message Enable 5 (32 messages, all the model offers): vector 38 is message 6.
    # A burst of two: TX fires at its second event; RX fires at the first and, re-armed with
    # the second pending, at once again.
    assert await driver.set_msi_messages(32) == 32
    await ClockCycles(dut.clk, 10)
    assert int(dut.cfg_interrupt_msi_mmenable.value) & 7 == 5
    await packets(2)
    assert expected[tx_vector % 32] == 1 and expected[rx_vector] == 7 + 2

    assert all(kind == "msi" for _, kind, _ in probe.messages)
    assert probe.sent == len(probe.messages) == sum(expected.values())
    assert await driver.read_register("msix_sent") == len(probe.messages)
    assert await driver.read_register("msix_failed") == 0
    dut._log.info("MSI messages: %s", nonzero(expected))
