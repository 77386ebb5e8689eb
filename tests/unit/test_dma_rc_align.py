# amaranth: UnusedElaboratable=no
"""CompletionAligner: the hard IP's RC bus (straddled or not, 256 and 512 bit) into a
payload-aligned completion stream.

The input framing comes from :class:`~amnic.dma.rc_align.RcFramer`, itself checked against
cocotbext-pcie's ``RcSource`` (the model the cocotb tests run against); the expected output is
computed from the completions alone (:func:`~amnic.dma.rc_align.aligned_beats`)."""

import logging
import random
from collections import deque
from types import SimpleNamespace

import pytest
from cocotbext.pcie.xilinx.us.interface import RcSource, UsPcieFrame

from amnic.dma.axis import Bus, user_layout
from amnic.dma.rc_align import CompletionAligner, CompletionBeat
from amnic.sim.pcie_straddle import RcFramer, aligned_beats, frame_completions, offer_beat
from amnic.sim.stream_tb import StreamMonitor, simulate

MODES = [(256, False), (256, True), (512, False), (512, True)]


def random_completion(rng, dwords):
    """DWORDs of a completion: a random descriptor (``dword_count`` set to the payload length)
    and ``dwords`` random payload DWORDs."""
    descriptor = rng.getrandbits(96) & ~(0x7FF << 32) | dwords << 32
    return ([(descriptor >> (32 * k)) & 0xFFFF_FFFF for k in range(3)] +
            [rng.getrandbits(32) for _ in range(dwords)])


def random_length(rng, width):
    """Payload DWORDs, 0..256 (0..1024 bytes), often short or near a beat boundary."""
    dwords = width // 32
    pick = rng.random()
    if pick < 0.3:
        return rng.randrange(0, 2 * dwords + 2)
    if pick < 0.5:
        return max(0, min(256, rng.randrange(1, 17) * dwords + rng.randrange(-4, 5)))
    return rng.randrange(0, 257)


# ---- the framer against cocotbext-pcie -----------------------------------------------------

def model_beats(width, straddle, completions, available):
    """Beats cocotbext-pcie's ``RcSource`` drives for ``completions`` (all queued at once);
    ``available`` answers, in turn, whether the next completion is there when a TLP ends
    before the last segment of a beat. Its coroutine is stepped without a simulator."""
    class Exhausted(Exception):
        pass

    src = RcSource.__new__(RcSource)
    segments = 2 if straddle else 1
    src.bus = SimpleNamespace(tuser=[0] * user_layout(Bus.RC, width).size)
    src.width, src.seg_count = width, segments
    src.seg_byte_lanes = width // 32 // segments
    src.log = logging.getLogger("rc_model")
    src._init()
    queue = deque()
    for words in completions:
        frame = UsPcieFrame()
        frame.data = list(words)
        frame.byte_en, frame.parity = [0xF] * len(words), [0] * len(words)
        queue.append(frame)
    out = []

    async def get_frame():
        if not queue:
            raise Exhausted
        return queue.popleft()

    async def drive(transaction):
        out.append(transaction)

    src._get_frame, src._get_frame_nowait, src._drive = get_frame, queue.popleft, drive
    src.empty = lambda: not queue or not next(available)
    coroutine = src._run()
    try:
        coroutine.send(None)
    except Exhausted:
        pass
    finally:
        coroutine.close()
    return out


def framer_beats(width, straddle, completions, available):
    """:class:`RcFramer` beats under the same availability as :func:`model_beats`."""
    queue = deque(completions)
    framer = RcFramer(width, straddle=straddle)
    beats = []
    while True:
        state = {"start": not framer.busy}

        def fetch(state=state):
            if state["start"]:  # a beat that starts with a new TLP waits for one
                state["start"] = False
                return queue.popleft() if queue else None
            return queue.popleft() if queue and next(available) else None

        beat = framer.beat(fetch)
        if beat is None:
            return beats
        beats.append(beat)


@pytest.mark.parametrize("width,straddle", MODES)
def test_framer_matches_cocotbext_model(width, straddle):
    layout = user_layout(Bus.RC, width)
    fields = ["is_sop", "is_sop_ptr", "is_eop", "is_eop_ptr"] if width == 512 else \
        ["is_sof", "is_eof"]
    mask = 0
    for name in fields:
        field = layout[name]
        mask |= ((1 << field.width) - 1) << field.offset
    rng = random.Random(width + straddle)
    completions = [random_completion(rng, random_length(rng, width)) for _ in range(400)]
    flags = [rng.random() < 0.7 for _ in range(2000)]
    want = model_beats(width, straddle, completions, iter(flags))
    got = framer_beats(width, straddle, completions, iter(flags))
    assert len(got) == len(want) > 400
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (g.tdata, g.tkeep, g.tlast) == (int(w.tdata), int(w.tkeep), int(w.tlast)), n
        assert g.tuser == int(w.tuser) & mask, n
    if straddle:  # two TLPs did share beats
        starts, ends = (layout[n] for n in fields[::len(fields) // 2])
        shared, in_progress = 0, 0
        for b in got:
            tlps = in_progress + bin(b.tuser >> starts.offset & 3).count("1")
            shared += tlps == 2
            in_progress = tlps - bin(b.tuser >> ends.offset & 3 if width == 512 else
                                     (b.tuser >> ends.offset) & 0x11).count("1")
        assert shared > 50


# ---- the aligner ---------------------------------------------------------------------------

class BusDriver:
    """Drives ``dut.i`` from an :class:`RcFramer`: a new beat after a random gap, held until
    taken; ``fetch`` supplies the completions."""

    def __init__(self, dut, fetch, *, gap=0.0, rng=None, skip_lower=0.0):
        self.dut, self.fetch, self.gap, self.rng = dut, fetch, gap, rng or random.Random(0)
        self.skip_lower = skip_lower
        self.framer = RcFramer(dut.width, straddle=dut.straddle)
        self.accepted = []  # cycle of every beat taken
        self.offered = 0  # beats offered, taken or not
        self.cycle = 0

    async def run(self, ctx):
        bus, rng = self.dut.i, self.rng
        beat = None
        while True:
            if beat is None and (not self.gap or rng.random() >= self.gap):
                beat = self.framer.beat(self.fetch, skip_lower=rng.random() < self.skip_lower)
            offer_beat(ctx, bus, beat)
            _, _, ready = await ctx.tick().sample(bus.tready)
            if beat is not None and ready:
                self.accepted.append(self.cycle)
                beat = None
            self.cycle += 1


def run_aligner(width, straddle, completions, *, gap=0.0, ready=1.0, avail=1.0, seed=0,
                skip_lower=0.0):
    """Send ``completions`` through a :class:`CompletionAligner`; check every output beat
    against :func:`aligned_beats`. Returns the input driver and the output monitor."""
    rng = random.Random(seed)
    dut = CompletionAligner(width, straddle=straddle)
    queue = deque(completions)

    def fetch():
        return queue.popleft() if queue and rng.random() < avail else None

    driver = BusDriver(dut, fetch, gap=gap, rng=rng, skip_lower=skip_lower)
    monitor = StreamMonitor(dut.o, name="o")
    want = [b for words in completions for b in aligned_beats(words, width)]

    async def sink(ctx):
        while len(monitor.transfers) < len(want):
            ctx.set(dut.o.ready, rng.random() < ready)
            await ctx.tick()

    simulate(dut, [sink], background=[driver.run, monitor.run],
             max_cycles=20 * len(want) + 2000)
    assert not queue and not driver.framer.busy
    assert len(monitor.transfers) == len(want)
    for n, ((_, got), (desc, data, keep, first, last)) in enumerate(
            zip(monitor.transfers, want, strict=True)):
        mask = sum(0xFFFF_FFFF << (32 * k) for k in range(width // 32) if keep >> k & 1)
        assert (got.keep, got.first, got.last) == (keep, first, last), f"beat {n}"
        assert got.descriptor.as_value().value == desc, f"beat {n}"
        assert got.data & mask == data, f"beat {n}"
    return driver, monitor


def test_completion_beat_layout():
    assert CompletionBeat(512).size == 96 + 512 + 16 + 2
    assert CompletionBeat(256)["data"].offset == 96
    with pytest.raises(ValueError):
        CompletionBeat(128)
    with pytest.raises(ValueError):
        CompletionAligner(64, straddle=False)


@pytest.mark.parametrize("width,straddle", MODES)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_completions(width, straddle, seed):
    """Random completions (0..1024 payload bytes, random descriptors), random gaps between
    input beats, completions not always available when a straddled beat has room (half-empty
    beats), random back-pressure on the output; at 512 bit with straddling, some TLPs start in
    the upper half of a beat whose lower half is empty."""
    rng = random.Random(100 * seed + width + straddle)
    completions = [random_completion(rng, random_length(rng, width)) for _ in range(150)]
    run_aligner(width, straddle, completions, gap=0.3, ready=0.7, avail=0.8, seed=seed,
                skip_lower=0.2 if width == 512 and straddle else 0.0)


@pytest.mark.parametrize("width,straddle", MODES)
def test_short_completions_back_to_back(width, straddle):
    """Completions of 0..6 payload DWORDs, two of them ending in many beats (the cases where
    a beat completes two or three output beats), no gaps, output always ready."""
    rng = random.Random(7 + width + straddle)
    completions = [random_completion(rng, rng.randrange(0, 7)) for _ in range(200)] + \
        [random_completion(rng, rng.choice([0, 1, 5, 13, 14, 16, 20])) for _ in range(100)]
    run_aligner(width, straddle, completions)


# ---- throughput ------------------------------------------------------------------------------

def expected_stalls(width, straddle, lengths):
    """Input beats and the cycles the input stalls when ``lengths`` (payload DWORDs) are framed
    back to back and the output is always ready: TLPs start on the next segment boundary after
    the one before, and an input beat that completes ``k > 1`` output beats holds the next one
    back ``k - 1`` cycles (the last beat holds back nothing)."""
    dwords = width // 32
    segment = dwords // 2 if straddle else dwords
    outputs = {}  # input beat -> output beats it completes
    pos = 0
    for n in lengths:
        size = 3 + n
        for k in range(max(1, -(-n // dwords))):
            end = pos + min(3 + (k + 1) * dwords, size) - 1
            outputs[end // dwords] = outputs.get(end // dwords, 0) + 1
        pos += -(-size // segment) * segment
    beats = -(-pos // dwords)
    return beats, sum(k - 1 for beat, k in outputs.items() if beat < beats - 1)


THROUGHPUT_CASES = {
    # name: (width, straddle, payload DWORDs of each completion)
    "512 straddled, 256 B": (512, True, [64] * 60),
    "512 straddled, 64 B": (512, True, [16] * 120),
    "512 straddled, 512 B": (512, True, [128] * 30),
    "512 straddled, 4-268 B": (512, True, None),
    "512 not straddled, 256 B": (512, False, [64] * 60),
    "256 straddled, 256 B": (256, True, [64] * 40),
    "256 not straddled, 256 B": (256, False, [64] * 40),
    "256 straddled, 4-268 B": (256, True, None),
}


@pytest.mark.parametrize("case", list(THROUGHPUT_CASES))
def test_throughput(case):
    """Completions framed back to back, input always valid, output always ready: the aligner
    takes one input beat per cycle except exactly the extra cycles of input beats that complete
    more than one output beat (none for payloads that are multiples of 64 bytes, so 256-byte
    completions straddled at 512 bit go through at 100 % of the input beats)."""
    width, straddle, lengths = THROUGHPUT_CASES[case]
    rng = random.Random(case)
    if lengths is None:
        lengths = [rng.randrange(1, 68) for _ in range(100)]
    completions = [random_completion(rng, n) for n in lengths]
    beats, stalls = expected_stalls(width, straddle, lengths)
    assert len(frame_completions(completions, width, straddle=straddle)) == beats
    driver, _ = run_aligner(width, straddle, completions)
    accepted = driver.accepted
    assert len(accepted) == beats
    cycles = accepted[-1] - accepted[0] + 1
    assert cycles == beats + stalls
    ratio = beats / cycles
    payload = 4 * sum(lengths)
    print(f"{case}: {beats} input beats in {cycles} cycles ({100 * ratio:.1f} % accepted), "
          f"payload {100 * payload / (cycles * width // 8):.1f} % of the interface")
    if lengths == [64] * len(lengths):
        assert stalls == 0 and ratio == 1.0
    assert ratio >= (0.95 if case == "512 straddled, 256 B" else 0.75)
