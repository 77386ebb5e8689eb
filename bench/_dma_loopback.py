"""Section ``loopback`` of ``amnic bench dma``: packet rate of the DMA queues through the
internal loopback, cycle-exact.

:func:`measure_loopback` takes the core's queue subsystem,
:class:`~amnic.dma.host_queues.HostQueues`, with ``loopback`` set (TX packets go straight into
the RX queue of the same number), behind the core's read and write multiplexers. The muxes keep
the core's three clients; client 0 (the AXI4 host-memory port) stays idle. Host memory is
:mod:`amnic.sim.dma_rings` behind the two muxes' engine ports: each DMA read's data starts
``latency`` cycles after its command and each write's status comes ``latency`` cycles after its
data, one data beat per cycle, never back-pressured. The PCIe link itself is not modelled,
nor the core's DMA address window between the multiplexers and the engines (a one-cycle
command stage while disabled): the models stand for the engines behind it.
"""

import random

from amnic.bench.dma import LATENCY, _log2_ring, progress

__all__ = ["TX_WEIGHT", "CASES", "host_models", "steady_rate", "active_queues",
           "measure_loopback", "measure_loopback_phases", "loopback_rows"]

#: Scheduler weight of every TX queue (packets served per turn), as in ``measure_tx``.
TX_WEIGHT = 16


def host_models(width, rng, *, reads=(), writes=(), latency=LATENCY, memory_bytes=1 << 23):
    """Host memory and the DMA engine models behind the given ports.

    Parameters
    ----------
    width : int
        Data width of the ports in bits.
    rng : random.Random
        Random source of the models (they draw from it every cycle even with no
        back-pressure, so share it only where the draw order does not matter).
    reads, writes : iterable of ports
        :func:`~amnic.dma.ports.DmaReadPortSignature` / ``DmaWritePortSignature`` ports seen
        from the client side (a client's port, or a mux's ``engine``).
    latency : int
        Cycles from a read command to its first data beat, and from a write's last data beat
        to its status.
    memory_bytes : int
        Size of the :class:`~amnic.sim.dma_rings.HostMemory`.

    Returns
    -------
    (HostMemory, list)
        The memory and the testbenches of the models (to run in the background); the models
        take every command and data beat at once and send data without gaps.
    """
    from amnic.sim.dma_rings import DmaReadModel, DmaWriteModel, HostMemory

    memory = HostMemory(memory_bytes)
    benches = []
    for model, ports in ((DmaReadModel, reads), (DmaWriteModel, writes)):
        for port in ports:
            benches += model(port, memory, width, rng, latency=latency, ready=1.0,
                             gap=0.0).benches()
    return memory, benches


def steady_rate(cycles, trim=0.1):
    """Events per 1000 cycles in the middle of ``cycles`` (event cycles, in order): between
    the event after the first ``trim`` share of them and the event before the last ``trim``
    share (the ramp-up, and the drain, when the last packets go faster with TX done).
    ``None`` when that leaves no span."""
    first = int(len(cycles) * trim)
    last = len(cycles) - 1 - first
    if last <= first or cycles[last] == cycles[first]:
        return None
    return 1000 * (last - first) / (cycles[last] - cycles[first])


def active_queues(queues, count):
    """The numbers of ``count`` of ``queues`` queues, spread evenly: ``k * queues // count``
    for ``k`` in ``range(count)``."""
    if not 1 <= count <= queues:
        raise ValueError(f"cannot pick {count} of {queues} queues")
    return [k * queues // count for k in range(count)]


def _loopback_design(width, queues):
    """The core's queues (:class:`~amnic.dma.host_queues.HostQueues`) in loopback behind the
    core's read and write multiplexers; attributes ``queues`` (with its parts ``txq``, ``rxq``,
    ``cqs``), ``read_mux``, ``write_mux``."""
    from amaranth.hdl import Elaboratable, Module
    from amaranth.lib import wiring

    from amnic.dma.host_queues import HostQueues
    from amnic.dma.ports import DmaReadMux, DmaWriteMux

    class Loopback(Elaboratable):
        def __init__(self):
            self.queues = HostQueues(width, queues, queues, 2)
            self.read_mux = DmaReadMux(width, 3)
            self.write_mux = DmaWriteMux(width, 3)

        def elaborate(self, platform):
            m = Module()
            m.submodules.queues = q = self.queues
            m.submodules.read_mux, m.submodules.write_mux = self.read_mux, self.write_mux
            wiring.connect(m, q.tx_read, self.read_mux.c1)
            wiring.connect(m, q.rx_read, self.read_mux.c2)
            wiring.connect(m, q.rx_write, self.write_mux.c1)
            wiring.connect(m, q.cq_write, self.write_mux.c2)
            m.d.comb += [q.loopback.eq(1), q.events.ready.eq(1)]
            return m

    return Loopback()


def measure_loopback(width, size, queues, packets, *, active=None, latency=LATENCY, seed=3):
    """Loop ``packets`` packets of ``size`` bytes from the TX queues to the RX queues.

    One simulation of :func:`measure_loopback_phases` with a single phase.

    Parameters
    ----------
    width : int
        Data width in bits (256 or 512).
    size : int
        Packet bytes (1..9600).
    queues : int
        TX queues, and as many RX queues.
    packets : int
        Packets in all.
    active : int, optional
        Queues that carry the packets (default ``min(queues, packets)``).
    latency : int
        DMA latency of the host model in cycles (:func:`host_models`).
    seed : int
        Seed of the packet contents.

    Returns
    -------
    dict
        The row of the phase (see :func:`measure_loopback_phases`).
    """
    return measure_loopback_phases(width, queues, [(size, packets, active)], latency=latency,
                                   seed=seed)[0]


def measure_loopback_phases(width, queues, phases, *, latency=LATENCY, seed=3):
    """Loop packets from the TX queues to the RX queues in ``phases``, one simulation.

    The engines are built with ``queues`` TX and RX queues. A phase ``(size, packets)`` or
    ``(size, packets, active)`` sends ``packets`` packets of ``size`` bytes on ``active``
    queues (default or ``None``: ``min(queues, packets)``), spread evenly over the queue
    numbers (:func:`active_queues`): its packet ``n`` is posted on the ``n mod active``-th of
    them (TX weight :data:`TX_WEIGHT`), and the RX queue of the same number gets one buffer of
    ``size`` bytes per packet it will receive.

    Before the simulation every descriptor and buffer of every phase is in host memory. The
    host (through the ``dma_queues`` registers) configures completion queue 0 (TX
    completions) and 1 (RX completions) and every queue active in some phase (the others stay
    disabled, as after reset). Then, phase by phase, it rings the phase's RX doorbells (all
    its buffers), then its TX doorbells (all its descriptors), and waits until every
    completion entry of the phase is written, so phases do not overlap: each runs from an
    idle, drained design (building the design once saves simulation time).

    Returns
    -------
    list of dict
        One row per phase: ``direction`` ('loopback'), ``width``, ``size``, ``queues``,
        ``active_queues``, ``packets``, ``per_queue`` (packets per active queue),
        ``measured_packets`` (RX completions after the phase's last TX doorbell),
        ``per_1000_cycles`` (those completions as handed to the completion queues, less the
        first and the last tenth (ramp-up and drain, :func:`steady_rate`), per 1000 cycles;
        ``None`` below 10), ``line_rate_pct`` (that rate times ``size`` over the bytes one
        beat per cycle carries in 1000 cycles), ``cycles`` (the phase's first TX doorbell to
        its last RX completion) and ``ok``: every packet of the phase in the next buffer of
        the RX queue with its TX queue's number, byte for byte and in posting order; its
        completion entries in the rings, OK, with the packet's length and the ring indices in
        order per queue (TX: the descriptor's, RX: the buffer's); and ``tx_bad`` never set in
        the whole simulation.
    """
    from amnic.dma.queues import CompletionStatus, QueueKind
    from amnic.sim.csr_bus import SimulatorBackend
    from amnic.sim.dma_rings import CompletionRing, DescriptorRing, QueueDriver
    from amnic.sim.stream_tb import simulate

    lanes = width // 8
    rng = random.Random(seed)
    plan = []
    totals = {}  # packets per queue over all phases
    phases = [(*phase, None)[:3] for phase in phases]
    phases = [(size, packets, min(queues, packets) if count is None else count)
              for size, packets, count in phases]
    for size, packets, count in phases:
        if count > packets:
            raise ValueError(f"{packets} packets cannot use {count} queues")
        active = active_queues(queues, count)
        queue_of = [active[n % len(active)] for n in range(packets)]
        plan.append({"size": size, "packets": packets, "active": active,
                     "queue_of": queue_of, "start": dict(totals)})
        for q in queue_of:
            totals[q] = totals.get(q, 0) + 1
    total = sum(packets for _, packets, _ in phases)
    dut = _loopback_design(width, queues)
    cq_log = min(15, _log2_ring(total + 1))
    # Packets and buffers (64-byte aligned), TX and RX rings (at most twice n + 1 entries of
    # 16 bytes each, plus alignment) and the two completion rings.
    footprint = (sum(2 * packets * -(-size // 64) * 64 for size, packets, _ in phases) +
                 sum(2 * (32 * (n + 1) + 64) for n in totals.values()) + (32 << cq_log))
    memory, benches = host_models(
        width, rng, reads=[dut.read_mux.engine], writes=[dut.write_mux.engine],
        latency=latency, memory_bytes=footprint + (1 << 16))
    cq_rings = [CompletionRing(memory, cq_log), CompletionRing(memory, cq_log)]
    tx_rings = {q: DescriptorRing(memory, _log2_ring(n + 1)) for q, n in totals.items()}
    rx_rings = {q: DescriptorRing(memory, _log2_ring(n + 1)) for q, n in totals.items()}
    for phase in plan:
        size = phase["size"]
        phase["sent"] = {q: [] for q in phase["active"]}
        phase["buffers"] = {q: [] for q in phase["active"]}
        for q in phase["queue_of"]:
            payload = rng.randbytes(size)
            address = memory.alloc(size)
            memory.write(address, payload)
            tx_rings[q].post(address, size)
            phase["sent"][q].append(payload)
            phase["buffers"][q].append(memory.alloc(size))
            rx_rings[q].post(phase["buffers"][q][-1], size)
        phase["tx_producer"] = {q: tx_rings[q].producer for q in phase["active"]}
        phase["rx_producer"] = {q: rx_rings[q].producer for q in phase["active"]}
    st = {"cycle": 0, "completions": [], "events": 0, "tx_bad": 0}

    async def host(ctx):
        driver = QueueDriver(SimulatorBackend(ctx, dut.queues.bus))
        for cq, ring in enumerate(cq_rings):
            await driver.configure(QueueKind.CQ, cq, base=ring.base, log_size=ring.log_size)
        for q, ring in rx_rings.items():
            await driver.configure(QueueKind.RX, q, base=ring.base, log_size=ring.log_size,
                                   cq=1)
        for q, ring in tx_rings.items():
            await driver.configure(QueueKind.TX, q, base=ring.base, log_size=ring.log_size,
                                   cq=0, weight=TX_WEIGHT)
        done = 0
        for phase in plan:
            for q, index in phase["rx_producer"].items():
                await driver.doorbell(QueueKind.RX, q, index)
            phase["first"] = st["cycle"]
            for q, index in phase["tx_producer"].items():
                await driver.doorbell(QueueKind.TX, q, index)
            phase["rung"] = st["cycle"]
            done += phase["packets"]
            while st["events"] < 2 * done:  # every entry written and its status back
                await ctx.tick().repeat(32)  # (waking up less often simulates faster)

    async def monitor(ctx):
        q = dut.queues
        c, tx = q.rxq.completions, q.txq.tx
        async for _, _, cv, cr, ev, tv, tr, last, bad in ctx.tick().sample(
                c.valid, c.ready, q.events.valid, tx.valid, tx.ready, tx.payload.last,
                q.txq.tx_bad):
            if cv and cr:
                st["completions"].append(st["cycle"])
            st["events"] += ev
            if tv and tr and last and bad:
                st["tx_bad"] += 1
            st["cycle"] += 1

    budget = sum((8 * latency + 4 * -(-size // lanes)) * packets
                 for size, packets, _ in phases)
    simulate(dut, [host], background=benches + [monitor],
             max_cycles=100 * len(totals) + budget + 20_000 * len(phases))

    entries = [ring.poll() for ring in cq_rings]  # TX, RX
    rows, done = [], 0
    for phase in plan:
        size, packets = phase["size"], phase["packets"]
        intact = all(memory.read(address, size) == payload
                     for q in phase["active"]
                     for address, payload in zip(phase["buffers"][q], phase["sent"][q]))
        entries_ok = True
        for kind, ring_entries in zip((QueueKind.TX, QueueKind.RX), entries):
            got = {q: [] for q in phase["active"]}
            for e in ring_entries[done:done + packets]:
                entries_ok &= (e.kind == kind.value and
                               e.status == CompletionStatus.OK.value and e.length == size)
                got.setdefault(e.queue, []).append(e.index)
            entries_ok &= got == {
                q: list(range(phase["start"].get(q, 0),
                              phase["start"].get(q, 0) + len(phase["sent"][q])))
                for q in phase["active"]}
        mine = st["completions"][done:done + packets]
        done += packets
        after = [c for c in mine if c > phase["rung"]]
        rate = steady_rate(after) if len(after) >= 10 else None
        rows.append({
            "direction": "loopback", "width": width, "size": size, "queues": queues,
            "active_queues": len(phase["active"]), "packets": packets,
            "per_queue": round(packets / len(phase["active"]), 1),
            "measured_packets": len(after),
            "per_1000_cycles": None if rate is None else round(rate, 1),
            "line_rate_pct": (None if rate is None else
                              round(100 * rate * size / (1000 * lanes), 1)),
            "cycles": mine[-1] - phase["first"] if mine else None,
            "ok": (intact and entries_ok and st["tx_bad"] == 0 and len(mine) == packets),
        })
    return rows


#: Rows per run mode: (size, queues, active queues, packets). One queue holds a deep ring (its
#: steady state repeats every few packets, in step with the descriptor batches, and needs
#: many of them to show); on 16 and 256 queues every active queue holds two packets, so the
#: engines switch queues all the time (each switch costs a descriptor fetch on the TX and on
#: the RX side). The 256-queue rows use 128 (full) or 16 (quick) of the queues, to keep the
#: section within about 2 min (full) and 30 s (quick) of simulation.
CASES = {
    "quick": [(64, 1, 1, 48), (64, 16, 16, 32), (64, 256, 16, 32),
              (1500, 1, 1, 48), (1500, 16, 16, 32), (1500, 256, 16, 32)],
    "full": [(64, 1, 1, 256), (64, 16, 16, 32), (64, 256, 128, 256),
             (1500, 1, 1, 256), (1500, 16, 16, 32), (1500, 256, 128, 256)],
}
#: Widths measured per run mode.
LOOPBACK_WIDTHS = {"quick": (256,), "full": (256,)}


def loopback_rows(quick):
    """Loopback packet rate at 64 and 1500 bytes on 1, 16 and 256 queues (:data:`CASES`):
    one simulation per width and queue count, its sizes as phases, rows in :data:`CASES`
    order."""
    mode = "quick" if quick else "full"
    rows = []
    for width in LOOPBACK_WIDTHS[mode]:
        results = {}
        for queues in dict.fromkeys(q for _, q, _, _ in CASES[mode]):
            phases = [(size, packets, active)
                      for size, q, active, packets in CASES[mode] if q == queues]
            for row in measure_loopback_phases(width, queues, phases):
                results[row["size"], queues] = row
                progress(f"loopback {width} bit, {row['size']} B, {queues} queues "
                         f"({row['active_queues']} active): {row['per_1000_cycles']} per 1000 "
                         f"cycles, ok {row['ok']}")
        rows += [results[size, queues] for size, queues, _, _ in CASES[mode]]
    return rows
