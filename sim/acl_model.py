"""Reference models of the ACL stage and the token-bucket meters (simulation only).

Both models are written from the contracts of :mod:`amnic.flow.acl` and :mod:`amnic.flow.meter`
with plain Python integers, independently of the hardware, so tests can compare the RTL against
them transfer by transfer and the match-action pipeline's model can reuse them.

ACL
---
Rules are ternary: a key ``k`` (the raw :class:`~amnic.flow.key.FlowKey` bit pattern) matches a
valid rule when ``k & mask == value & mask``. Among matching rules the lowest index wins. The
winner's action gives the verdict and a queue range ``[queue_first, queue_first + queue_count)``
(clipped to the 4096 queues, never wrapping) outside which the packet may not be delivered; a
key that matches no rule gets the default verdict and the whole queue space.

Meters
------
Single-rate two-colour token buckets in the spirit of RFC 2697 (committed rate and committed
burst only). Tokens are counted in units of ``2**-RATE_FRAC_BITS`` bytes. On a request at time
``now`` (in ticks) for a packet of ``length`` bytes:

1. refill: ``tokens = min(tokens + rate * (now - last), burst << RATE_FRAC_BITS)``, ``last = now``;
2. the packet conforms (green) when ``tokens >= length << RATE_FRAC_BITS``; a conforming packet
   of an enabled meter takes its tokens, a non-conforming one takes none (red);
3. a disabled meter refills but never consumes and reports every packet green.

Green packets pass; red packets are marked or dropped by the meter's mode. Each meter counts its
green and red packets. A bank starts with every meter at ``tokens = last = 0``, disabled.
"""

from dataclasses import dataclass, field

__all__ = [
    "ALLOW", "DENY", "QUEUES", "AclRule", "AclResult", "AclModel", "queue_allowed",
    "RATE_FRAC_BITS", "GREEN", "RED", "PASS", "MARK", "DROP", "MODE_MARK", "MODE_DROP",
    "MeterConfig", "MeterState", "MeterModel", "rate_value",
]

#: ACL verdicts.
ALLOW, DENY = 0, 1
#: Size of the queue space (12-bit queue numbers).
QUEUES = 4096


@dataclass(frozen=True)
class AclRule:
    """One ACL rule; ``value`` and ``mask`` are raw flow-key bit patterns."""

    value: int
    mask: int
    verdict: int = ALLOW
    queue_first: int = 0
    queue_count: int = QUEUES
    valid: bool = True

    def matches(self, key):
        return self.valid and (key ^ self.value) & self.mask == 0


@dataclass(frozen=True)
class AclResult:
    """The outcome of one lookup."""

    hit: bool
    index: int
    verdict: int
    queue_first: int
    queue_count: int


class AclModel:
    """A priority-ordered ternary rule table.

    Parameters
    ----------
    rules : int
        Number of rule slots; every slot starts invalid.
    default_verdict : int
        Verdict of a key that matches no rule (:data:`ALLOW` after reset).
    """

    def __init__(self, rules, default_verdict=ALLOW):
        self.rules = [None] * rules
        self.default_verdict = default_verdict

    def write(self, index, rule):
        """Install ``rule`` (an :class:`AclRule`) in slot ``index``; out of range is ignored."""
        if 0 <= index < len(self.rules):
            self.rules[index] = rule

    def clear(self, index):
        """Invalidate slot ``index``; out of range is ignored."""
        if 0 <= index < len(self.rules):
            self.rules[index] = None

    def copy(self):
        other = AclModel(len(self.rules), self.default_verdict)
        other.rules = list(self.rules)
        return other

    def lookup(self, key):
        """The :class:`AclResult` for raw key ``key``."""
        for index, rule in enumerate(self.rules):
            if rule is not None and rule.matches(key):
                return AclResult(True, index, rule.verdict, rule.queue_first, rule.queue_count)
        return AclResult(False, 0, self.default_verdict, 0, QUEUES)


def queue_allowed(result, queue):
    """Whether a packet with ACL result ``result`` may be delivered to ``queue``."""
    return (result.verdict == ALLOW
            and result.queue_first <= queue < result.queue_first + result.queue_count)


#: Fractional bits of meter rates and token counts.
RATE_FRAC_BITS = 20
#: Meter colours.
GREEN, RED = 0, 1
#: Meter actions.
PASS, MARK, DROP = 0, 1, 2
#: Meter modes: what happens to a red packet.
MODE_MARK, MODE_DROP = 0, 1


def rate_value(bytes_per_tick):
    """The fixed-point rate register value nearest to ``bytes_per_tick``."""
    return round(bytes_per_tick * (1 << RATE_FRAC_BITS))


@dataclass
class MeterConfig:
    rate: int = 0  #: bytes per tick, fixed point with RATE_FRAC_BITS fractional bits
    burst: int = 0  #: bytes
    mode: int = MODE_MARK
    enable: bool = False


@dataclass
class MeterState:
    tokens: int = 0  #: fixed point with RATE_FRAC_BITS fractional bits
    last: int = 0
    green: int = 0
    red: int = 0


@dataclass
class MeterModel:
    """A bank of ``meters`` token buckets (see the module notes)."""

    meters: int
    config: list = field(default_factory=list)
    state: list = field(default_factory=list)

    def __post_init__(self):
        self.config = [MeterConfig() for _ in range(self.meters)]
        self.state = [MeterState() for _ in range(self.meters)]

    def configure(self, index, rate, burst, mode=MODE_MARK, enable=True):
        self.config[index] = MeterConfig(rate, burst, mode, bool(enable))

    def police(self, index, length, now):
        """Police one packet; returns ``(colour, action)``."""
        cfg, st = self.config[index], self.state[index]
        if now < st.last:
            raise ValueError("time went backwards")
        st.tokens = min(st.tokens + cfg.rate * (now - st.last), cfg.burst << RATE_FRAC_BITS)
        st.last = now
        need = length << RATE_FRAC_BITS
        conform = st.tokens >= need
        if cfg.enable and conform:
            st.tokens -= need
        if conform or not cfg.enable:
            st.green += 1
            return GREEN, PASS
        st.red += 1
        return RED, (DROP if cfg.mode == MODE_DROP else MARK)
