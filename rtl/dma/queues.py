"""Host descriptor queues: memory formats, the ``dma_queues`` register block and its front end.

The NIC exchanges packets with the host through rings in host memory, reached only through the
DMA ports of :mod:`amnic.dma.ports`. Three engines own the rings:
:class:`~amnic.dma.tx_queues.TxQueues` (transmit descriptor rings),
:class:`~amnic.dma.rx_queues.RxQueues` (receive buffer rings) and
:class:`~amnic.dma.completions.CompletionQueues` (completion rings shared by both).
:class:`QueueRegisters` owns the one register block (:data:`REGISTERS`) and hands indexed
commands and doorbells to the engines over small streams (:func:`QueueHostSignature`), so the
engines keep their per-queue state in block RAM and serialise all accesses to it.

Host memory formats (little endian, byte offsets within the entry)
-------------------------------------------------------------------
**Descriptor** (16 bytes; TX and RX rings):

====== ====== ==================================================================
Bytes  Field  Meaning
====== ====== ==================================================================
0-7    addr   buffer address (any alignment)
8-11   length buffer length in bytes (TX: bytes to send; RX: buffer size)
12-15  flags  bit 0 MORE (TX): the packet continues in the next descriptor
====== ====== ==================================================================

**Completion entry** (16 bytes; completion rings):

====== ====== ==================================================================
Bytes  Field  Meaning
====== ====== ==================================================================
0-1    queue  TX or RX queue number
2      status :class:`CompletionStatus`
3      kind   :class:`QueueKind` (0 TX, 1 RX)
4-5    index  ring index of the packet's first descriptor (16-bit free running)
6-7    count  descriptors the packet used (its buffers are ``index`` ..
              ``index + count - 1``)
8-11   length packet length in bytes (RX: the packet's length on the wire, also when
              TRUNCATED; TX: sum of the segment lengths)
12-14  -      zero
15     phase  bit 7: 1 on the first pass through the ring, 0 on the second, ...
====== ====== ==================================================================

The host zeroes a completion ring before enabling it; the device writes entry *n* (ring slot
``n mod size``) with ``phase = ((n >> log_size) & 1) ^ 1``, so an entry whose phase differs from
the host's expectation is stale. (A ring started at an index with bit ``log_size`` set begins
on a phase-0 pass; the host then initialises the slots with phase 1 instead of zeroing them.)

Indices
-------
Producer and consumer indices are free-running 16-bit counters (as in virtio split rings); a
ring has ``2**log_size`` entries (``log_size`` 1..15) and entry *n* lives at
``base + (n mod size) * 16``. A doorbell whose index makes ``producer - consumer (mod 2**16)``
exceed the ring size is a *bad index*: the queue is disabled with error
:attr:`QueueError.BAD_INDEX`, the engine's ``bad_doorbells`` count advances and nothing is
fetched; writing the queue's configuration again (a ``command.write``) clears the error.
A doorbell for a disabled queue, or for a queue number beyond the engine's count, is ignored.

Register use
------------
Select a queue with ``queue_select`` ({index, kind}); fill ``base``, ``config``, ``producer``
and ``consumer`` and set ``command.write`` to configure it (this also clears its error), or set
``command.read`` to load them, with ``error``, ``packets``, ``bytes`` and ``drops``, from the
queue. The bit clears when the engine has answered. ``producer``/``consumer`` written with the
configuration set the ring's starting indices (both equal for an empty ring). Doorbells take
one write each (queue number in bits 31:16, index in 15:0) and are queued for their engine in a
FIFO of :data:`DOORBELL_FIFO` entries; a doorbell that finds the FIFO full is lost and counted
in ``lost_doorbells``.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterFile, version
from amnic.csr.bus import RegisterBusSignature
from amnic.csr.ids import DMA_QUEUES

__all__ = [
    "QUEUES_TYPE_ID", "REGISTERS", "DOORBELL_FIFO", "DESCRIPTOR_BYTES", "ENTRY_BYTES",
    "serve_host_command",
    "QueueKind", "QueueError", "CompletionStatus", "DescriptorFlags",
    "QueueControl", "QueueInfo", "Doorbell", "QueueHostSignature", "CompletionRequest",
    "QueueRegisters", "ring_address", "bad_index", "phase_of",
]

#: Type id of the ``dma_queues`` block ("DMAQ").
QUEUES_TYPE_ID = DMA_QUEUES
#: Bytes of a descriptor and of a completion entry.
DESCRIPTOR_BYTES = 16
ENTRY_BYTES = 16
#: Doorbells each engine's FIFO holds.
DOORBELL_FIFO = 16


class QueueKind(enum.Enum, shape=2):
    """Which engine a queue belongs to (``queue_select.kind``, completion entry byte 3)."""

    TX = 0
    RX = 1
    CQ = 2


class QueueError(enum.Enum, shape=2):
    """Why a queue stopped (``error`` register); cleared by writing the configuration."""

    NONE = 0
    BAD_INDEX = 1  #: a doorbell made producer - consumer exceed the ring size
    DESCRIPTOR_DMA = 2  #: TX: a descriptor read returned a DMA error


class CompletionStatus(enum.Enum, shape=8):
    """Completion entry byte 2."""

    OK = 0
    BAD_DESCRIPTOR = 1  #: zero length or above the maximum (TX: also a too long chain)
    DMA_ERROR = 2  #: a DMA transfer of the packet reported an error
    TRUNCATED = 3  #: RX: the buffer was too small; the data up to its length was written


class DescriptorFlags(enum.Flag, shape=32):
    """Descriptor bytes 12-15."""

    MORE = 1


class QueueControl(data.Struct):
    """A configuration write or read of one queue, from :class:`QueueRegisters` to an engine.

    A read ignores every field but ``queue``. A write sets the configuration and both indices
    and clears the queue's error; writes to a queue beyond the engine's count are ignored.
    """

    write: 1
    queue: 16
    base: 64
    log_size: 4
    enable: 1
    cq: 16  #: TX/RX: completion queue; CQ: interrupt vector
    weight: 8  #: TX: packets per scheduling turn (0 acts as 1)
    producer: 16
    consumer: 16


class QueueInfo(data.Struct):
    """An engine's answer to each :class:`QueueControl` (zero for a queue beyond its count)."""

    base: 64
    log_size: 4
    enable: 1
    cq: 16
    weight: 8
    producer: 16
    consumer: 16
    error: QueueError
    packets: 64
    bytes: 64
    drops: 64


class Doorbell(data.Struct):
    """A doorbell: the new producer (TX, RX) or consumer (CQ) index of ``queue``."""

    queue: 16
    index: 16


def QueueHostSignature():
    """What :class:`QueueRegisters` exchanges with one engine (register side's view).

    ``control``/``info`` carry indexed commands (one ``info`` per ``control``), ``doorbell``
    the doorbells; ``bad_doorbells`` counts bad-index doorbells and ``unqueued_drops`` the
    packets or entries the engine dropped that belong to no queue (both wrapping).
    """
    return wiring.Signature({
        "control": Out(stream.Signature(QueueControl)),
        "info": In(stream.Signature(QueueInfo)),
        "doorbell": Out(stream.Signature(Doorbell)),
        "bad_doorbells": In(32),
        "unqueued_drops": In(32),
    })


class CompletionRequest(data.Struct):
    """A completion entry to write, from TX/RX to :class:`~amnic.dma.completions.
    CompletionQueues` (fields as in the entry; ``cq`` selects the ring)."""

    cq: 16
    queue: 16
    kind: QueueKind
    status: CompletionStatus
    index: 16
    length: 32
    descriptors: 16  #: descriptors the packet used


def _registers():
    doorbell_fields = (Field("index", 0, 16, "New index."), Field("queue", 16, 16, "Queue."))
    regs = [
        Register("tx_queues", 0x0C, Access.RO, "Number of TX queues."),
        Register("rx_queues", 0x10, Access.RO, "Number of RX queues."),
        Register("completion_queues", 0x14, Access.RO, "Number of completion queues."),
        Register("queue_select", 0x18, Access.RW, "Queue the commands act on.",
                 fields=(Field("index", 0, 16, "Queue number."),
                         Field("kind", 16, 2, "0 TX, 1 RX, 2 completion queue; kind 3 and "
                                              "numbers beyond the count read as zero and "
                                              "ignore writes."))),
        Register("command", 0x1C, Access.W1S, "Queue commands; each bit clears when done.",
                 fields=(Field("write", 0, 1, "Configure the selected queue from `base`, "
                                              "`config`, `producer` and `consumer`; clears "
                                              "its error."),
                         Field("read", 1, 1, "Load the selected queue's `base`, `config`, "
                                             "indices, `error` and statistics."))),
        Register("base", 0x20, Access.RW, "Ring base address in host memory (16-byte "
                                          "entries; any alignment).", width=64),
        Register("config", 0x28, Access.RW, "Queue configuration.",
                 fields=(Field("log_size", 0, 4, "Ring size is 2**log_size entries (1..15)."),
                         Field("enable", 4, 1, "Queue enabled."),
                         Field("weight", 8, 8, "TX: packets per scheduling turn (0 acts as "
                                               "1)."),
                         Field("cq", 16, 16, "TX/RX: completion queue of the queue's "
                                             "completions; CQ: its interrupt vector."))),
        Register("producer", 0x2C, Access.RW, "Producer index (16-bit free running): TX "
                 "descriptors posted, RX buffers posted, CQ entries written by the device.",
                 fields=(Field("index", 0, 16, "Index."),)),
        Register("consumer", 0x30, Access.RW, "Consumer index: TX descriptors fetched, RX "
                 "buffers used, CQ entries consumed by the host.",
                 fields=(Field("index", 0, 16, "Index."),)),
        Register("error", 0x34, Access.RO, "Why the queue stopped: 0 none, 1 bad doorbell "
                 "index, 2 descriptor read DMA error (TX).",
                 fields=(Field("code", 0, 2, "Code."),)),
        Register("packets", 0x38, Access.RO, "TX/RX: packets completed OK (also TRUNCATED and "
                 "DMA_ERROR ones); CQ: entries written. Free running.", width=64),
        Register("bytes", 0x40, Access.RO, "TX/RX: bytes of those packets (RX: bytes "
                 "written). Free running.", width=64),
        Register("drops", 0x48, Access.RO, "TX: bad descriptors; RX: packets dropped (queue "
                 "disabled, no buffer, bad descriptor); CQ: entries dropped (disabled or "
                 "full). Free running.", width=64),
        Register("tx_doorbell", 0x50, Access.WO, "TX doorbell: new producer index.",
                 fields=doorbell_fields),
        Register("rx_doorbell", 0x54, Access.WO, "RX doorbell: new producer index.",
                 fields=doorbell_fields),
        Register("cq_doorbell", 0x58, Access.WO, "Completion queue doorbell: new consumer "
                 "index (entries the host consumed).", fields=doorbell_fields),
        Register("bad_doorbells", 0x5C, Access.RO, "Doorbells with a bad index (all kinds; "
                 "wrapping)."),
        Register("lost_doorbells", 0x60, Access.RO, "Doorbells lost to a full doorbell FIFO "
                 "(wrapping)."),
        Register("rx_unqueued_drops", 0x64, Access.RO, "RX packets dropped before a queue "
                 "could take them: receive FIFO full or queue number out of range "
                 "(wrapping)."),
        Register("cq_unqueued_drops", 0x68, Access.RO, "Completions dropped for a completion "
                 "queue number out of range (wrapping)."),
        Register("rx_bad_drops", 0x6C, Access.RO, "RX packets dropped because their source "
                 "marked them bad (`tuser` bit 0 on the last beat: a MAC's FCS error, a TX read "
                 "error in the loopback; wrapping)."),
    ]
    return RegisterBlock("dma_queues", QUEUES_TYPE_ID, version(1, 0), regs,
                         "Host descriptor queues of the DMA engine: per-queue configuration, "
                         "indices and statistics through an index, and doorbells.")


#: The ``dma_queues`` register map.
REGISTERS = _registers()


def ring_address(base, index, log_size):
    """Host address of entry ``index`` of the ring of ``2**log_size`` 16-byte entries at
    ``base`` (HDL): ``base + (index mod size) * 16``."""
    mask = ((Const(1, 16) << log_size) - 1)[:16]
    return (base + Cat(Const(0, 4), index[:16] & mask))[:64]


def bad_index(producer, consumer, log_size):
    """Whether ``producer - consumer (mod 2**16)`` exceeds ``2**log_size`` (HDL)."""
    return (producer - consumer)[:16] > (1 << log_size)


def serve_host_command(m, host, state, new, control, in_range, *, stats=None, cq_field="cq"):
    """The step every queue engine takes for a :class:`QueueControl` (HDL, combinational).

    Answers ``host.info`` from the queue's ``state`` (statistics from ``stats``, by default
    ``state`` itself; zeros for a queue beyond the count) and puts ``control``'s configuration
    and indices into ``new`` with the error cleared; the engine writes ``new`` back when
    ``control.write``. ``cq_field`` names the state field that ``QueueControl.cq`` configures
    (``vector`` for completion queues).
    """
    def fields(view):
        return data.Layout.cast(view.shape()).members

    info = host.info.payload
    stats = state if stats is None else stats
    copied = ["base", "log_size", "enable", "producer", "consumer"]
    if "weight" in fields(state):
        copied.append("weight")
    with m.If(in_range):
        m.d.comb += [getattr(info, name).eq(getattr(state, name))
                     for name in copied + ["error"]]
        m.d.comb += info.cq.eq(getattr(state, cq_field))
        m.d.comb += [getattr(info, name).eq(getattr(stats, name))
                     for name in ("packets", "bytes", "drops")
                     if name in fields(stats)]
    m.d.comb += [getattr(new, name).eq(getattr(control, name)) for name in copied]
    m.d.comb += [getattr(new, cq_field).eq(control.cq), new.error.eq(QueueError.NONE),
                 host.info.valid.eq(1)]


def phase_of(index, log_size):
    """Phase bit of entry ``index`` (HDL): ``((index >> log_size) & 1) ^ 1``."""
    return ~(index >> log_size)[0]


class QueueRegisters(wiring.Component):
    """The ``dma_queues`` register block (:data:`REGISTERS`) in front of the three engines.

    Commands: a ``command`` bit selects the engine by ``queue_select.kind`` and sends it one
    :class:`QueueControl`; the engine's :class:`QueueInfo` answer loads the registers (reads)
    and clears the bit. Kind 3 answers zeros at once. Doorbells are buffered per engine in a
    FIFO of :data:`DOORBELL_FIFO` entries.

    Parameters
    ----------
    tx_queues, rx_queues, completion_queues : int
        Counts reported in the registers (the engines' ``count``).

    Attributes
    ----------
    bus : In(RegisterBusSignature(REGISTERS.addr_width))
    tx, rx, cq : Out(QueueHostSignature())
        To the engines' ``host`` members (``wiring.connect(m, regs.tx, tx_queues.host)``).
    rx_bad_drops : In(32)
        The RX engine's ``bad_drops``.
    """

    def __init__(self, tx_queues=256, rx_queues=256, completion_queues=256):
        self.counts = (tx_queues, rx_queues, completion_queues)
        super().__init__({
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
            "tx": Out(QueueHostSignature()),
            "rx": Out(QueueHostSignature()),
            "cq": Out(QueueHostSignature()),
            "rx_bad_drops": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        engines = (self.tx, self.rx, self.cq)
        m.d.comb += [
            regs.status.tx_queues.eq(self.counts[0]),
            regs.status.rx_queues.eq(self.counts[1]),
            regs.status.completion_queues.eq(self.counts[2]),
            regs.status.bad_doorbells.eq(self.tx.bad_doorbells + self.rx.bad_doorbells
                                         + self.cq.bad_doorbells),
            regs.status.rx_unqueued_drops.eq(self.rx.unqueued_drops),
            regs.status.cq_unqueued_drops.eq(self.cq.unqueued_drops),
            regs.status.rx_bad_drops.eq(self.rx_bad_drops),
        ]

        # Doorbells.
        lost = Signal(32)
        lost_now = Signal(3)
        strobes = (regs.written.tx_doorbell, regs.written.rx_doorbell, regs.written.cq_doorbell)
        values = (regs.value.tx_doorbell, regs.value.rx_doorbell, regs.value.cq_doorbell)
        for k, (engine, strobe, value) in enumerate(zip(engines, strobes, values)):
            queue = fifo.SyncFIFOBuffered(width=32, depth=DOORBELL_FIFO)
            m.submodules[f"doorbells{k}"] = queue
            m.d.comb += [
                queue.w_data.eq(value),
                queue.w_en.eq(strobe),
                lost_now[k].eq(strobe & ~queue.w_rdy),
                engine.doorbell.payload.index.eq(queue.r_data[:16]),
                engine.doorbell.payload.queue.eq(queue.r_data[16:]),
                engine.doorbell.valid.eq(queue.r_rdy),
                queue.r_en.eq(engine.doorbell.ready),
            ]
        m.d.sync += lost.eq(lost + lost_now[0] + lost_now[1] + lost_now[2])
        m.d.comb += regs.status.lost_doorbells.eq(lost)

        # Indexed commands.
        command = regs.value.command
        select = regs.value.queue_select
        kind = select[16:18]
        config = regs.value.config
        control = Signal(QueueControl)
        m.d.comb += [
            control.queue.eq(select[:16]),
            control.base.eq(regs.value.base),
            control.log_size.eq(config[0:4]),
            control.enable.eq(config[4]),
            control.weight.eq(config[8:16]),
            control.cq.eq(config[16:32]),
            control.producer.eq(regs.value.producer[:16]),
            control.consumer.eq(regs.value.consumer[:16]),
        ]
        info = Signal(QueueInfo)
        done = Signal()
        for k, engine in enumerate(engines):
            m.d.comb += [engine.control.payload.eq(control), engine.info.ready.eq(1)]
            with m.If(kind == k):
                m.d.comb += [info.eq(engine.info.payload), done.eq(engine.info.valid)]
        with m.If(kind == 3):
            m.d.comb += done.eq(1)  # info stays zero

        is_write = Signal()
        with m.FSM():
            with m.State("IDLE"):
                with m.If(command.any()):
                    m.d.sync += is_write.eq(command[0])
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += control.write.eq(is_write)
                sent = Signal()
                m.d.comb += sent.eq(kind == 3)  # no engine: answer zeros
                for k, engine in enumerate(engines):
                    with m.If(kind == k):
                        m.d.comb += [engine.control.valid.eq(1), sent.eq(engine.control.ready)]
                with m.If(sent):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(done):
                    with m.If(~is_write):
                        m.d.comb += [
                            regs.load.base.eq(info.base),
                            regs.load.config.eq(Cat(info.log_size, info.enable, Signal(3),
                                                    info.weight, info.cq)),
                            regs.load.producer.eq(info.producer),
                            regs.load.consumer.eq(info.consumer),
                        ]
                        for name in ("base", "config", "producer", "consumer"):
                            m.d.comb += getattr(regs.load_en, name).eq(1)
                        m.d.sync += [
                            regs.status.error.eq(info.error),
                            regs.status.packets.eq(info.packets),
                            regs.status.bytes.eq(info.bytes),
                            regs.status.drops.eq(info.drops),
                        ]
                    m.d.comb += regs.clear.command.eq(Cat(is_write, ~is_write))
                    m.next = "IDLE"
        return m
