"""Stream testbench helpers for the Amaranth simulator (async ``add_testbench`` style).

These helpers drive and observe :mod:`amaranth.lib.stream` interfaces of a design under test,
in particular packet streams (:class:`amnic.stream.PacketLayout`) of any data width:

* :func:`packet_to_beats` / :func:`beats_to_packet` convert between ``bytes`` and beats, and the
  latter checks the packet convention (full beats, then a last beat whose valid lanes are
  contiguous from lane 0).
* :func:`put` / :func:`get` move one transfer of any stream; :func:`put_packet` /
  :func:`get_packet` move a whole packet. The sender inserts random idle cycles and the
  receiver random back-pressure, both drawn from a caller-supplied :class:`random.Random`, so a
  test is reproducible from its seed.
* :class:`StreamMonitor` watches a stream passively, asserts the handshake rules (once
  ``valid`` is high it stays high with the same payload until the transfer) and records every
  transfer with its cycle number, for scoreboards and throughput checks.
* :func:`simulate` runs testbenches with clocks and a watchdog, so a hung design fails instead
  of hanging the test run.

Handshakes are judged from values sampled *at* the clock edge (``ctx.tick().sample(...)``),
after every testbench has set its inputs for that cycle, so a producer testbench and a consumer
testbench may share a design with combinational ``ready`` paths.

User sideband convention: ``user`` is per-packet status carried on a packet's last beat
(:mod:`amnic.stream`), so :func:`put_packet` puts an integer ``user`` on the last beat (earlier
beats get 0) and :func:`get_packet` reports the last beat's ``user``.
"""

import os
import random
from dataclasses import dataclass

from amaranth.sim import Simulator

__all__ = [
    "DEFAULT_SEED", "Beat", "packet_to_beats", "beats_to_packet", "random_packet",
    "put", "get", "put_beat", "get_beat", "put_packet", "get_packet", "put_packets",
    "get_packets",
    "StreamMonitor", "assert_packets_equal", "simulate",
]

#: Seed of the generator used when a helper is called without ``rng``.
DEFAULT_SEED = 0x5EED
_default_rng = random.Random(DEFAULT_SEED)


@dataclass(frozen=True)
class Beat:
    """One packet-stream beat as plain Python values."""

    data: int
    keep: int
    last: bool
    user: int = 0

    def as_dict(self):
        return {"data": self.data, "keep": self.keep, "last": int(self.last), "user": self.user}

    @classmethod
    def from_payload(cls, payload):
        """Convert a sampled :class:`~amnic.stream.PacketLayout` value (``data.Const``)."""
        return cls(payload.data, payload.keep, bool(payload.last), payload.user)


def _lanes(width):
    if width <= 0 or width % 8:
        raise ValueError(f"data width must be a positive multiple of 8, not {width}")
    return width // 8


def packet_to_beats(data, width, user=0):
    """Cut ``data`` into beats of ``width`` bits (byte 0 in lane 0 of the first beat).

    Parameters
    ----------
    data : bytes
        The packet; at least one byte.
    width : int
        Data width in bits.
    user : int or sequence of int
        An ``int`` goes on the last beat (earlier beats carry 0); a sequence gives one value per
        beat.

    Returns
    -------
    list of Beat
    """
    lanes = _lanes(width)
    if not data:
        raise ValueError("a packet has at least one byte")
    chunks = [bytes(data[k:k + lanes]) for k in range(0, len(data), lanes)]
    if isinstance(user, int):
        users = [0] * (len(chunks) - 1) + [user]
    else:
        users = list(user)
        if len(users) != len(chunks):
            raise ValueError(f"{len(users)} user values for {len(chunks)} beats")
    return [
        Beat(int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1, n == len(chunks) - 1, u)
        for n, (chunk, u) in enumerate(zip(chunks, users, strict=True))
    ]


def beats_to_packet(beats, width, *, strict=True):
    """Join beats back into ``(bytes, user)``; ``user`` is the last beat's.

    With ``strict`` (the default), raise :exc:`AssertionError` unless the beats follow the
    packet convention: ``last`` only on the final beat, every other beat full, and the final
    beat's ``keep`` a non-empty run of ones from lane 0. Without ``strict``, the bytes of all
    lanes whose ``keep`` bit is set are concatenated.
    """
    lanes = _lanes(width)
    beats = list(beats)
    if not beats:
        raise ValueError("no beats")
    full = (1 << lanes) - 1
    out = bytearray()
    for n, beat in enumerate(beats):
        final = n == len(beats) - 1
        if strict:
            assert beat.last == final, f"beat {n} of {len(beats)}: last={beat.last}"
            if not final:
                assert beat.keep == full, f"beat {n} is not the last but keep={beat.keep:#x}"
            else:
                assert beat.keep and beat.keep & (beat.keep + 1) == 0, (
                    f"last beat keep={beat.keep:#x} is not contiguous from lane 0")
        raw = beat.data.to_bytes(lanes, "little")
        out += bytes(raw[k] for k in range(lanes) if beat.keep >> k & 1)
    return bytes(out), beats[-1].user


def random_packet(rng, min_len=1, max_len=300):
    """A packet of ``rng.randint(min_len, max_len)`` random bytes."""
    return rng.randbytes(rng.randint(min_len, max_len))


def _rng(rng):
    return _default_rng if rng is None else rng


async def put(ctx, stream, payload, *, domain="sync", idle_prob=0.0, rng=None):
    """Send one transfer of ``payload`` on ``stream`` (the design's input).

    Before raising ``valid``, idle for a random number of cycles: each cycle idles with
    probability ``idle_prob``. Returns after the clock edge at which the transfer happened, with
    ``valid`` low again (the next :func:`put` raises it before the next edge, so back-to-back
    calls send back-to-back transfers).
    """
    rng = _rng(rng)
    while idle_prob > 0 and rng.random() < idle_prob:
        ctx.set(stream.valid, 0)
        await ctx.tick(domain)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    while True:
        # One-shot waits: a testbench abandoned at the end of a simulation leaves no half-closed
        # async generator behind (as ``.until()`` would).
        _, _, ready = await ctx.tick(domain).sample(stream.ready)
        if ready:
            break
    ctx.set(stream.valid, 0)


async def get(ctx, stream, *, domain="sync", ready_prob=1.0, rng=None):
    """Receive one transfer from ``stream`` (the design's output) and return its payload.

    Each cycle ``ready`` is high with probability ``ready_prob``. Returns after the clock edge of
    the transfer, with ``ready`` low again. The payload is the sampled value (a
    :class:`amaranth.lib.data.Const` for a layout, an ``int`` for a plain shape).
    """
    rng = _rng(rng)
    while True:
        ready = ready_prob >= 1.0 or rng.random() < ready_prob
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick(domain).sample(stream.valid, stream.payload)
        if ready and valid:
            ctx.set(stream.ready, 0)
            return payload


async def put_beat(ctx, stream, beat, **kwargs):
    """:func:`put` for a :class:`Beat` on a packet stream."""
    await put(ctx, stream, beat.as_dict(), **kwargs)


async def get_beat(ctx, stream, **kwargs):
    """:func:`get` for a packet stream, returning a :class:`Beat`."""
    return Beat.from_payload(await get(ctx, stream, **kwargs))


def _payload_width(stream):
    return stream.payload.shape().width


async def put_packet(ctx, stream, data, user=0, *, domain="sync", idle_prob=0.0, rng=None):
    """Send ``data`` as one packet on the packet stream ``stream``.

    Beats follow :func:`packet_to_beats` (``user`` as described there); each beat may be
    preceded by idle cycles as in :func:`put`.
    """
    rng = _rng(rng)
    for beat in packet_to_beats(data, _payload_width(stream), user):
        await put_beat(ctx, stream, beat, domain=domain, idle_prob=idle_prob, rng=rng)


async def get_packet(ctx, stream, *, domain="sync", ready_prob=1.0, rng=None, strict=True):
    """Receive one packet from the packet stream ``stream``; return ``(bytes, user)``.

    Back-pressure as in :func:`get`. With ``strict`` the beats must follow the packet
    convention (see :func:`beats_to_packet`).
    """
    rng = _rng(rng)
    beats = []
    while not beats or not beats[-1].last:
        beats.append(await get_beat(ctx, stream, domain=domain, ready_prob=ready_prob, rng=rng))
    return beats_to_packet(beats, _payload_width(stream), strict=strict)


async def put_packets(ctx, stream, packets, **kwargs):
    """:func:`put_packet` for each ``(bytes, user)`` of ``packets`` in turn."""
    for data, user in packets:
        await put_packet(ctx, stream, data, user, **kwargs)


async def get_packets(ctx, stream, count, **kwargs):
    """:func:`get_packet` ``count`` times; return the list of ``(bytes, user)``."""
    return [await get_packet(ctx, stream, **kwargs) for _ in range(count)]


class StreamMonitor:
    """Passive observer of one stream: checks the handshake rules and records transfers.

    Add :meth:`run` as a background testbench (``sim.add_testbench(mon.run, background=True)``
    or via :func:`simulate`). At every clock edge of ``domain`` it asserts that a payload
    offered without being taken (``valid & ~ready``) is offered again, unchanged, at the next
    edge, and it appends ``(cycle, payload)`` to :attr:`transfers` for every transfer. ``cycle``
    counts edges of ``domain`` from the start of the simulation (the first edge is cycle 0).

    Attributes
    ----------
    transfers : list of (int, payload)
    """

    def __init__(self, stream, *, domain="sync", name="stream"):
        self.stream = stream
        self.domain = domain
        self.name = name
        self.transfers = []

    async def run(self, ctx):
        stream = self.stream
        pending = None
        cycle = 0
        async for _, rst, valid, ready, payload in ctx.tick(self.domain).sample(
                stream.valid, stream.ready, stream.payload):
            if rst:
                pending = None
            else:
                if pending is not None:
                    assert valid, f"{self.name}: valid dropped at cycle {cycle} before transfer"
                    assert payload == pending, (
                        f"{self.name}: payload changed at cycle {cycle} while waiting for ready:"
                        f" {pending!r} -> {payload!r}")
                if valid and ready:
                    self.transfers.append((cycle, payload))
                pending = payload if valid and not ready else None
            cycle += 1

    def beats(self):
        """The recorded transfers of a packet stream as ``(cycle, Beat)``."""
        return [(cycle, Beat.from_payload(p)) for cycle, p in self.transfers]

    def packets(self, *, strict=True):
        """The complete packets seen so far, as ``(bytes, user)`` (see :func:`beats_to_packet`)."""
        return [pkt for pkt, _, _ in self.packet_spans(strict=strict)]

    def packet_spans(self, *, strict=True):
        """The complete packets seen so far, as ``((bytes, user), first_cycle, last_cycle)``."""
        width = _payload_width(self.stream)
        out, current = [], []
        for cycle, beat in self.beats():
            current.append((cycle, beat))
            if beat.last:
                pkt = beats_to_packet([b for _, b in current], width, strict=strict)
                out.append((pkt, current[0][0], cycle))
                current = []
        return out


def assert_packets_equal(got, expected, what="packets"):
    """Assert two lists of ``(bytes, user)`` are equal, naming the first difference."""
    for n, (g, e) in enumerate(zip(got, expected, strict=False)):
        if g != e:
            g_data, g_user = g
            e_data, e_user = e
            if g_data == e_data:
                where = "only user differs"
            else:
                first = next((k for k, (a, b) in enumerate(zip(g_data, e_data, strict=False))
                              if a != b), min(len(g_data), len(e_data)))
                where = f"first difference at byte {first}"
            raise AssertionError(
                f"{what}[{n}]: got {len(g_data)} bytes user={g_user:#x}, expected "
                f"{len(e_data)} bytes user={e_user:#x}; {where}")
    assert len(got) == len(expected), f"{what}: got {len(got)}, expected {len(expected)}"


def simulate(dut, testbenches, *, clocks=None, background=(), max_cycles=100_000, vcd=None):
    """Simulate ``dut`` until every testbench in ``testbenches`` has returned.

    Parameters
    ----------
    dut : Elaboratable
    testbenches : iterable of async callables taking ``ctx``
        Critical testbenches; the simulation ends when all have returned.
    clocks : dict of str to float, optional
        Clock period in seconds per domain; default ``{"sync": 10e-9}``.
    background : iterable of async callables
        Background testbenches such as :meth:`StreamMonitor.run`.
    max_cycles : int
        Watchdog: fail with :exc:`TimeoutError` if the testbenches are still running after this
        many cycles of the first clock.
    vcd : str, optional
        Write a waveform to this file; the environment variable ``AMNIC_VCD_DIR`` also enables
        waveforms (named after ``vcd`` or the design's class).
    """
    clocks = clocks or {"sync": 10e-9}
    sim = Simulator(dut)
    for domain, period in clocks.items():
        sim.add_clock(period, domain=domain)
    watch_domain = next(iter(clocks))

    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick(watch_domain)
        raise TimeoutError(f"simulation still running after {max_cycles} {watch_domain} cycles")

    for tb in testbenches:
        sim.add_testbench(tb)
    for tb in background:
        sim.add_testbench(tb, background=True)
    sim.add_testbench(watchdog, background=True)

    vcd_dir = os.environ.get("AMNIC_VCD_DIR")
    if vcd is None and vcd_dir:
        vcd = type(dut).__name__ + ".vcd"
    if vcd is not None:
        path = os.path.join(vcd_dir, vcd) if vcd_dir else vcd
        with sim.write_vcd(path):
            sim.run()
    else:
        sim.run()
