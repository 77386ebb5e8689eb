"""Meters: single-rate two-colour token-bucket policers with rate and burst in registers.

Each meter is a token bucket in the spirit of RFC 2697 (single rate three colour marker)
restricted to its committed bucket: a committed information rate (``rate``, bytes per tick)
refills the bucket up to the committed burst size (``burst``, bytes). For a packet of *L*
bytes arriving at tick *t*:

1. refill: ``tokens = min(tokens + rate * (t - last), burst)`` and ``last = t``;
2. the packet is **green** when ``tokens >= L``, and then ``tokens -= L`` (RFC 2697 clause 3,
   colour-blind mode, committed bucket); otherwise it is **red** and takes no tokens;
3. a green packet passes; a red one is marked or dropped, as the meter's mode says.

Tokens and rates are fixed point with :data:`RATE_FRAC_BITS` fractional bits: the ``rate``
register holds bytes per tick times ``2**20`` (so the resolution is about 1e-6 bytes per tick
and the largest rate 4096 bytes per tick). The burst is a whole number of bytes below
``2**24``. A packet longer than the burst is always red; a packet of length 0 is always green.

A disabled meter (reset state of every meter) still refills its bucket but never takes tokens,
and reports every packet green / pass. Reconfiguring a meter keeps its tokens (a smaller burst
caps them at the next packet). After reset every bucket is empty with ``last = 0``, so it fills
from the first packet on as if it had been refilling since tick 0.

Time is a free-running 64-bit tick counter (``now``) that advances in every cycle ``tick`` is
high; it does not wrap in any practical run time, so refills are exact however long a meter
sits idle. Each meter counts its green and red packets (64-bit, free running: software reads
them and takes differences).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from amnic.csr import Access, Field, Register, RegisterBlock, RegisterFile, version
from amnic.csr.bus import RegisterBusSignature
from amnic.csr.ids import METERS

__all__ = [
    "MeterMode", "MeterColor", "MeterAction", "MeterConfig", "MeterState", "MeterRequest",
    "MeterResult", "MeterBank", "REGISTERS", "RATE_FRAC_BITS", "BURST_BITS", "TOKEN_BITS",
    "TIME_BITS", "LENGTH_BITS",
]

#: Fractional bits of rates and token counts.
RATE_FRAC_BITS = 20
#: Width of the rate register (12 integer bits, 20 fractional bits).
RATE_BITS = 32
#: Width of the burst size in bytes.
BURST_BITS = 24
#: Width of a token count (a full bucket in fixed point).
TOKEN_BITS = BURST_BITS + RATE_FRAC_BITS
#: Width of the tick counter.
TIME_BITS = 64
#: Width of a packet length in bytes.
LENGTH_BITS = 16
#: Width of the per-meter packet counters.
COUNTER_BITS = 64


class MeterMode(enum.Enum, shape=1):
    """What a meter does with a red packet."""

    MARK = 0  #: let it through marked (the pipeline may lower its drop precedence or tag it)
    DROP = 1  #: drop it


class MeterColor(enum.Enum, shape=1):
    """Whether a packet conformed to its meter's profile."""

    GREEN = 0
    RED = 1


class MeterAction(enum.Enum, shape=2):
    """What the pipeline does with a metered packet."""

    PASS = 0  #: green, or the meter is disabled
    MARK = 1  #: red, meter in MARK mode
    DROP = 2  #: red, meter in DROP mode


class MeterConfig(data.Struct):
    """Configuration of one meter."""

    rate: RATE_BITS  #: bytes per tick, times 2**RATE_FRAC_BITS
    burst: BURST_BITS  #: bytes
    mode: MeterMode
    enable: 1


class MeterState(data.Struct):
    """Running state of one meter."""

    tokens: TOKEN_BITS  #: bytes, times 2**RATE_FRAC_BITS
    last: TIME_BITS  #: tick of the last refill
    green: COUNTER_BITS  #: green packets
    red: COUNTER_BITS  #: red packets


class MeterRequest(data.StructLayout):
    """A packet to police: its meter, its length in bytes and a tag returned with the result.

    With ``bypass`` set the request touches no meter: its result is GREEN / PASS, in order with
    the others (a pipeline sends its unmetered packets this way to keep one result per packet).
    """

    def __init__(self, meters, tag_width):
        super().__init__({"index": range(meters), "length": LENGTH_BITS, "tag": tag_width,
                          "bypass": 1})


class MeterResult(data.StructLayout):
    """The outcome: colour, action and the request's tag."""

    def __init__(self, tag_width):
        super().__init__({"color": MeterColor, "action": MeterAction, "tag": tag_width})


def _registers():
    regs = [
        Register("meters", 0x0C, Access.RO, "Number of meters."),
        Register("index", 0x10, Access.RW,
                 "Meter a command acts on. Commands on an index at or beyond `meters` do "
                 "nothing, and a read of one loads zeros."),
        Register("command", 0x14, Access.W1S, "Meter commands; each bit clears when done.",
                 fields=(Field("write", 0, 1, "Write `rate`, `burst` and `control` to meter "
                                              "`index`; requests accepted from the second "
                                              "cycle after the command is written use them."),
                         Field("read", 1, 1, "Load meter `index`'s configuration into `rate`, "
                                             "`burst` and `control`, and its state into "
                                             "`tokens`, `green_packets` and `red_packets`."))),
        Register("rate", 0x18, Access.RW,
                 f"Committed rate in bytes per tick, fixed point with {RATE_FRAC_BITS} "
                 f"fractional bits (RFC 2697 CIR)."),
        Register("burst", 0x1C, Access.RW, "Committed burst size (RFC 2697 CBS).",
                 fields=(Field("bytes", 0, BURST_BITS, "Bucket size in bytes."),)),
        Register("control", 0x20, Access.RW, "Meter mode.",
                 fields=(Field("enable", 0, 1, "Police; when 0 every packet passes green."),
                         Field("mode", 1, 1, "Red packets are 0: marked, 1: dropped."))),
        Register("tokens", 0x28, Access.RO,
                 f"Tokens in the bucket as of its last packet, bytes times "
                 f"2**{RATE_FRAC_BITS} (loaded by a read command).", width=64),
        Register("green_packets", 0x30, Access.RO,
                 "Green packets of the meter (free running; loaded by a read command).",
                 width=64),
        Register("red_packets", 0x38, Access.RO,
                 "Red packets of the meter (free running; loaded by a read command).",
                 width=64),
    ]
    return RegisterBlock("meters", METERS, version(1, 0), regs,
                         "Token-bucket policers (RFC 2697 committed bucket): per-meter rate, "
                         "burst, mode and packet counters, reached through an index.")


#: The meter bank's register map.
REGISTERS = _registers()


def _saturate(value, width):
    """``value`` clamped to ``2**width - 1``."""
    return Mux(value[width:].any(), Const((1 << width) - 1, width), value[:width])


class MeterBank(wiring.Component):
    """A bank of token-bucket meters with a read-modify-write pipeline.

    One request per cycle, results in order, four cycles from the input handshake to
    ``o.valid``. The stages move together (a stalled ``o`` holds them all; ``valid`` never
    waits on ``ready``): accept (read the meter's state and configuration), elapsed time,
    refill amount, decision and write-back. A request sees the effect of every earlier request,
    also to the same meter in the previous cycles: the refill time is forwarded from the
    requests ahead of it, and the tokens and counters from the last two written states.

    A request takes its time stamp (``now``) and its meter's configuration in the cycle it is
    accepted, so a configuration write applies from one request to the next, never within one:
    requests accepted from the second cycle after the register bus takes the write command
    use the new configuration, earlier ones the old.

    Parameters
    ----------
    meters : int
        Number of meters, a power of two (2..4096).
    tag_width : int
        Width of the tag carried from request to result.

    Attributes
    ----------
    i : In(stream.Signature(MeterRequest(meters, tag_width)))
    o : Out(stream.Signature(MeterResult(tag_width)))
    bus : In(RegisterBusSignature)
        Configuration and counters (:data:`REGISTERS`).
    tick : In(1)
        Advance the time base this cycle (tie high, the default, for one tick per cycle, or
        drive from a prescaler for coarser ticks).
    now : Out(64)
        The time base: ticks since reset.
    """

    def __init__(self, meters=256, *, tag_width=16):
        if meters < 2 or meters > 4096 or meters & (meters - 1):
            raise ValueError(f"meter count must be a power of two in 2..4096, not {meters}")
        if tag_width < 1:
            raise ValueError(f"tag width must be at least 1, not {tag_width}")
        self.meters = meters
        self.tag_width = tag_width
        super().__init__({
            "i": In(stream.Signature(MeterRequest(meters, tag_width))),
            "o": Out(stream.Signature(MeterResult(tag_width))),
            "bus": In(RegisterBusSignature(REGISTERS.addr_width)),
            "tick": In(1, init=1),
            "now": Out(TIME_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        index_shape = range(self.meters)

        with m.If(self.tick):
            m.d.sync += self.now.eq(self.now + 1)

        m.submodules.state = state_mem = Memory(shape=MeterState, depth=self.meters, init=[])
        m.submodules.config = config_mem = Memory(shape=MeterConfig, depth=self.meters,
                                                  init=[])
        st_wr = state_mem.write_port()
        st_rd = state_mem.read_port(transparent_for=(st_wr,))
        st_host = state_mem.read_port()
        cfg_wr = config_mem.write_port()
        cfg_rd = config_mem.read_port()
        cfg_host = config_mem.read_port()

        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)

        # Accept: address the memories; the data arrives with the request in stage 1.
        m.d.comb += [
            st_rd.addr.eq(self.i.payload.index),
            st_rd.en.eq(advance),
            cfg_rd.addr.eq(self.i.payload.index),
            cfg_rd.en.eq(advance),
        ]

        def stage(name):
            return {
                "valid": Signal(name=f"{name}_valid"),
                "index": Signal(index_shape, name=f"{name}_index"),
                "length": Signal(LENGTH_BITS, name=f"{name}_length"),
                "tag": Signal(self.tag_width, name=f"{name}_tag"),
                "now": Signal(TIME_BITS, name=f"{name}_now"),
                "bypass": Signal(name=f"{name}_bypass"),
            }

        def shift(dst, src):
            return [dst[k].eq(src[k]) for k in dst]

        s1, s2, s3 = stage("s1"), stage("s2"), stage("s3")
        with m.If(advance):
            m.d.sync += [
                s1["valid"].eq(self.i.valid),
                s1["index"].eq(self.i.payload.index),
                s1["length"].eq(self.i.payload.length),
                s1["tag"].eq(self.i.payload.tag),
                s1["now"].eq(self.now),
                s1["bypass"].eq(self.i.payload.bypass),
            ]

        # Stage 1: time since the meter's last refill. The requests in stages 2 and 3 have not
        # written their state yet; the nearest one to the same meter refilled it at its `now`.
        # A bypassed request is no request to its meter.
        st1 = data.View(MeterState, st_rd.data)
        cfg1 = data.View(MeterConfig, cfg_rd.data)

        def metering(s):
            return s["valid"] & ~s["bypass"]

        last = Mux(metering(s2) & (s2["index"] == s1["index"]), s2["now"],
                   Mux(metering(s3) & (s3["index"] == s1["index"]), s3["now"], st1.last))
        elapsed = (s1["now"] - last)[:TIME_BITS]
        s2_state = Signal(MeterState)
        s2_cfg = Signal(MeterConfig)
        s2_elapsed = Signal(TOKEN_BITS)
        with m.If(advance):
            m.d.sync += shift(s2, s1)
            m.d.sync += [
                s2_state.eq(st1),
                s2_cfg.eq(cfg1),
                # rate >= 1 makes 2**44 - 1 ticks refill a full bucket, so this loses nothing.
                s2_elapsed.eq(_saturate(elapsed, TOKEN_BITS)),
            ]

        # Stage 2: refill amount.
        s3_state = Signal(MeterState)
        s3_cfg = Signal(MeterConfig)
        s3_refill = Signal(TOKEN_BITS)
        with m.If(advance):
            m.d.sync += shift(s3, s2)
            m.d.sync += [
                s3_state.eq(s2_state),
                s3_cfg.eq(s2_cfg),
                s3_refill.eq(_saturate(s2_cfg.rate * s2_elapsed, TOKEN_BITS)),
            ]

        # Stage 3: decide and write back. The state read at accept misses at most the two
        # writes made since; take the newest state of this meter from them when it is there.
        wb = [{"valid": Signal(name=f"wb{n}_valid"),
               "index": Signal(index_shape, name=f"wb{n}_index"),
               "state": Signal(MeterState, name=f"wb{n}_state")} for n in (1, 2)]
        base = Signal(MeterState)
        with m.If(wb[0]["valid"] & (wb[0]["index"] == s3["index"])):
            m.d.comb += base.eq(wb[0]["state"])
        with m.Elif(wb[1]["valid"] & (wb[1]["index"] == s3["index"])):
            m.d.comb += base.eq(wb[1]["state"])
        with m.Else():
            m.d.comb += base.eq(s3_state)

        cap = Cat(Const(0, RATE_FRAC_BITS), s3_cfg.burst)
        total = base.tokens + s3_refill
        filled = Mux(total > cap, cap, total)[:TOKEN_BITS]
        need = Cat(Const(0, RATE_FRAC_BITS), s3["length"])
        conform = filled >= need
        enable = s3_cfg.enable & ~s3["bypass"]
        green = conform | ~enable
        new_state = Signal(MeterState)
        m.d.comb += [
            new_state.tokens.eq(filled - Mux(conform & enable, need, 0)),
            new_state.last.eq(s3["now"]),
            new_state.green.eq(base.green + green),
            new_state.red.eq(base.red + ~green),
            st_wr.addr.eq(s3["index"]),
            st_wr.data.eq(new_state),
            st_wr.en.eq(advance & metering(s3)),
        ]
        o = self.o.payload
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s3["valid"]),
                o.tag.eq(s3["tag"]),
                o.color.eq(Mux(green, MeterColor.GREEN, MeterColor.RED)),
                o.action.eq(Mux(green, MeterAction.PASS,
                                Mux(s3_cfg.mode == MeterMode.DROP, MeterAction.DROP,
                                    MeterAction.MARK))),
            ]
            with m.If(metering(s3)):
                m.d.sync += [
                    wb[0]["valid"].eq(1),
                    wb[0]["index"].eq(s3["index"]),
                    wb[0]["state"].eq(new_state),
                    wb[1]["valid"].eq(wb[0]["valid"]),
                    wb[1]["index"].eq(wb[0]["index"]),
                    wb[1]["state"].eq(wb[0]["state"]),
                ]

        self._host(m, cfg_wr, cfg_host, st_host)
        return m

    def _host(self, m, cfg_wr, cfg_host, st_host):
        """Register access: configuration writes and reads, state reads."""
        m.submodules.regs = regs = RegisterFile(REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        m.d.comb += regs.status.meters.eq(self.meters)
        command = regs.value.command
        in_range = regs.value.index < self.meters
        staged = Signal(MeterConfig)
        m.d.comb += [
            staged.rate.eq(regs.value.rate),
            staged.burst.eq(regs.value.burst),
            staged.enable.eq(regs.value.control[0]),
            staged.mode.eq(regs.value.control[1]),
            cfg_wr.addr.eq(regs.value.index),
            cfg_wr.data.eq(staged),
            cfg_wr.en.eq(command[0] & in_range),
            cfg_host.addr.eq(regs.value.index),
            st_host.addr.eq(regs.value.index),
        ]
        reading = Signal()
        m.d.sync += reading.eq(command[1] & ~reading)
        cfg = Signal(MeterConfig)
        st = Signal(MeterState)
        m.d.comb += [
            cfg.eq(Mux(in_range, cfg_host.data, 0)),
            st.eq(Mux(in_range, st_host.data, 0)),
            regs.load.rate.eq(cfg.rate),
            regs.load.burst.eq(cfg.burst),
            regs.load.control.eq(Cat(cfg.enable, cfg.mode)),
            regs.load_en.rate.eq(reading),
            regs.load_en.burst.eq(reading),
            regs.load_en.control.eq(reading),
            regs.clear.command.eq(Cat(command[0], reading)),
        ]
        tokens, green, red = Signal(64), Signal(64), Signal(64)
        with m.If(reading):
            m.d.sync += [tokens.eq(st.tokens), green.eq(st.green), red.eq(st.red)]
        m.d.comb += [
            regs.status.tokens.eq(tokens),
            regs.status.green_packets.eq(green),
            regs.status.red_packets.eq(red),
        ]
