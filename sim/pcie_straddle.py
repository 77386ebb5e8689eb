"""Models of the hard IP's requester buses, with the straddle option (PG213, "Straddle Option on
RQ Interface", "... on RC Interface") and without, for tests and benchmarks:
:func:`straddled_tlps` and :func:`tlast_tlps` read RQ/CC beats as the integrated block does,
:class:`RcFramer` frames completions on RC as it does."""

from dataclasses import dataclass, field

from amnic.dma.axis import Bus, user_layout
from amnic.dma.rc_align import DESCRIPTOR_DWORDS

__all__ = ["StraddledTlp", "straddled_tlps", "tlast_tlps", "RcBusBeat", "RcFramer",
           "frame_completions", "aligned_beats", "offer_beat"]

_DWORDS = 16


@dataclass
class StraddledTlp:
    """One TLP read off the bus: its DWORDs (descriptor first), the byte enables the beat
    carried for it (RQ only, else ``None``) and whether any of its beats had ``discontinue``."""

    dwords: list = field(default_factory=list)
    first_be: int | None = None
    last_be: int | None = None
    discontinue: bool = False


def _require(number, ok, why):
    if not ok:
        raise ValueError(f"beat {number}: {why}")


def straddled_tlps(beats, bus):
    """The TLPs in the 512-bit hard-IP beats ``(tdata, tkeep, tuser)`` of ``bus`` (RQ or CC).

    A beat's ``is_sop[k]``/``is_sop_ptr[k]`` give where the k-th TLP to start in it begins,
    ``is_eop[k]``/``is_eop_ptr[k]`` the last DWORD of the k-th TLP to end in it, and the
    byte enables of the k-th starting TLP are ``first_be[k]``/``last_be[k]``.

    Raises
    ------
    ValueError
        On a beat the integrated block would not accept: a start other than DWORD 0 or 8, a
        start before the previous TLP ended, a start in DWORD 8 behind an empty lower half,
        end pointers past the data, ``tkeep`` that disagrees with the framing, a
        discontinued TLP sharing its beat with another, or a last TLP that never ends.
    """
    layout = user_layout(bus, 512)
    tlps, current = [], None

    for number, (tdata, tkeep, tuser) in enumerate(beats):
        user = layout.from_bits(tuser)
        starts = [int(user.is_sop_ptr[k]) * 4 for k in range(2) if user.is_sop >> k & 1]
        ends = [int(user.is_eop_ptr[k]) for k in range(2) if user.is_eop >> k & 1]
        _require(number, all(s in (0, 8) for s in starts), f"TLP start in DWORD {starts}")
        _require(number, starts == sorted(set(starts)) and ends == sorted(set(ends)),
                 "pointers unordered")
        continuing = current is not None
        _require(number, starts[:1] != [8] or continuing,
                 "start in DWORD 8 behind an empty lower half")
        pending = list(starts)
        used = 0
        for dword in range(_DWORDS):
            if pending and pending[0] == dword:
                _require(number, current is None, "a TLP starts before the previous one ended")
                k = len(starts) - len(pending)
                current = StraddledTlp()
                if bus == Bus.RQ:
                    current.first_be, current.last_be = int(user.first_be[k]), int(user.last_be[k])
                pending.pop(0)
            if current is None:
                continue
            current.dwords.append(tdata >> 32 * dword & 0xFFFF_FFFF)
            current.discontinue |= bool(user.discontinue)
            used |= 1 << dword
            if ends and ends[0] == dword:
                tlps.append(current)
                current = None
                ends.pop(0)
        _require(number, not ends and not pending, "framing points past the data")
        _require(number, not user.discontinue or len(starts) + continuing == 1,
              "a discontinued TLP shares its beat")
        _require(number, tkeep == used, f"tkeep {tkeep:#x}, data in {used:#x}")
    if current is not None:
        raise ValueError("the last TLP does not end")
    return tlps


def tlast_tlps(beats, width, bus):
    """The TLPs in hard-IP beats ``(tdata, tkeep, tuser, tlast)`` of ``bus`` (RQ or CC) without
    straddling: every TLP from DWORD 0 of a beat, ended by ``tlast``, ``tkeep`` contiguous.

    Raises
    ------
    ValueError
        On a ``tkeep`` that is not contiguous from DWORD 0, or a last TLP that never ends.
    """
    layout = user_layout(bus, width)
    tlps, current = [], None
    for number, (tdata, tkeep, tuser, tlast) in enumerate(beats):
        user = layout.from_bits(tuser)
        if current is None:
            current = StraddledTlp()
            if bus == Bus.RQ:
                be = (user.first_be, user.last_be) if width == 256 else \
                    (user.first_be[0], user.last_be[0])
                current.first_be, current.last_be = int(be[0]), int(be[1])
        _require(number, tkeep & (tkeep + 1) == 0, f"tkeep {tkeep:#x} not contiguous")
        current.dwords += [tdata >> 32 * k & 0xFFFF_FFFF for k in range(width // 32)
                           if tkeep >> k & 1]
        current.discontinue |= bool(user.discontinue)
        if tlast:
            tlps.append(current)
            current = None
    if current is not None:
        raise ValueError("the last TLP does not end")
    return tlps


# ---- RC: how the hard IP frames completions ------------------------------------------------

@dataclass(frozen=True)
class RcBusBeat:
    """One beat of the RC bus as integers (``tuser`` packed as :func:`~amnic.dma.axis.
    user_layout` ``(Bus.RC, width)``; ``byte_en``, ``parity`` and ``discontinue`` are 0)."""

    tdata: int
    tkeep: int
    tlast: int
    tuser: int


class RcFramer:
    """How the hard IP frames completions on its RC bus, one beat at a time (a model for
    simulations and benchmarks, following cocotbext-pcie's ``RcSource``).

    TLPs are packed back to back: a TLP in progress continues in DWORD 0 of the next beat, and
    with ``straddle`` a new TLP starts in the upper half of a beat whose lower half holds the
    end of the one before it, when a completion is available at that moment.

    Parameters
    ----------
    width : int
        256 or 512.
    straddle : bool
        The straddle option (two TLPs per beat).
    """

    def __init__(self, width, *, straddle):
        self.width, self.straddle = width, bool(straddle)
        self.dwords = width // 32
        self.segments = 2 if straddle else 1
        self._layout = user_layout(Bus.RC, width)
        self._words = []  # DWORDs of the TLP in progress still to send

    @property
    def busy(self):
        """A TLP is partly sent (the next beat continues it)."""
        return bool(self._words)

    def beat(self, fetch, *, skip_lower=False):
        """Frame the next beat.

        Parameters
        ----------
        fetch : callable
            ``fetch()`` returns the next completion as a list of DWORDs (the 3 descriptor
            DWORDs, then the payload), or ``None`` when none is available now.
        skip_lower : bool
            At 512 bit with straddling and no TLP in progress, leave the lower half empty and
            start the next TLP in the upper half (``is_sop_ptr`` says where it is; the hard IP
            is not known to do this, the aligner accepts it).

        Returns
        -------
        RcBusBeat or None
            ``None`` when no TLP is in progress and ``fetch`` has none.
        """
        per = self.dwords // self.segments
        tdata = tkeep = 0
        starts, ends = [], []  # DWORD of each TLP start; last DWORD of each TLP end
        first = 0
        if skip_lower and self.straddle and self.width == 512 and not self._words:
            first = 1
        for segment in range(first, self.segments):
            if not self._words:
                words = fetch()
                if words is None:
                    break
                if len(words) < DESCRIPTOR_DWORDS:
                    raise ValueError("a completion has at least its 3 descriptor DWORDs")
                self._words = list(words)
                starts.append(segment * per)
            last = None
            for dword in range(segment * per, (segment + 1) * per):
                if self._words:
                    tdata |= (self._words.pop(0) & 0xFFFF_FFFF) << (32 * dword)
                    tkeep |= 1 << dword
                    last = dword
            if not self._words:
                ends.append(last)
        if not starts and not tkeep:
            return None
        user = {}
        if self.width == 512:
            user["is_sop"] = sum(1 << k for k in range(len(starts)))
            user["is_sop_ptr"] = [s // 4 for s in starts] + [0] * (4 - len(starts))
            user["is_eop"] = sum(1 << k for k in range(len(ends)))
            user["is_eop_ptr"] = list(ends) + [0] * (4 - len(ends))
        else:
            user["is_sof"] = sum(1 << k for k in range(len(starts)))
            user["is_eof"] = [1 | e << 1 for e in ends] + [0] * (2 - len(ends))
        tuser = self._layout.const(user).as_value().value
        tlast = int(not self.straddle and bool(ends))
        return RcBusBeat(tdata, tkeep, tlast, tuser)


def frame_completions(completions, width, *, straddle):
    """All of ``completions`` (DWORD lists, descriptor first) framed back to back as
    :class:`RcFramer` does when each is available at once: a list of :class:`RcBusBeat`."""
    queue = list(completions)
    framer = RcFramer(width, straddle=straddle)
    beats = []
    while True:
        beat = framer.beat(lambda: queue.pop(0) if queue else None)
        if beat is None:
            return beats
        beats.append(beat)


def aligned_beats(words, width):
    """What :class:`CompletionAligner` makes of one completion (DWORDs, descriptor first): a
    list of ``(descriptor, data, keep, first, last)`` integers, ``data`` with zeros where
    ``keep`` is clear."""
    dwords = width // 32
    descriptor = sum((w & 0xFFFF_FFFF) << (32 * k) for k, w in enumerate(words[:3]))
    payload = list(words[DESCRIPTOR_DWORDS:])
    chunks = [payload[k:k + dwords] for k in range(0, len(payload), dwords)] or [[]]
    return [(descriptor, sum((w & 0xFFFF_FFFF) << (32 * k) for k, w in enumerate(chunk)),
             (1 << len(chunk)) - 1, int(n == 0), int(n == len(chunks) - 1))
            for n, chunk in enumerate(chunks)]


def offer_beat(ctx, bus, beat):
    """Drive ``beat`` (an :class:`RcBusBeat`, or ``None`` for no beat) onto the hard-IP stream
    ``bus`` in an Amaranth testbench."""
    ctx.set(bus.tvalid, beat is not None)
    if beat is not None:
        ctx.set(bus.tdata, beat.tdata)
        ctx.set(bus.tkeep, beat.tkeep)
        ctx.set(bus.tlast, beat.tlast)
        ctx.set(bus.tuser.as_value(), beat.tuser)
