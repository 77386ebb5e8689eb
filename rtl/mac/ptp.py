"""IEEE 1588 (PTP) timestamps of frames at the XGMII: time formats and the capture block.

**What is timestamped.** IEEE 1588-2019 clause 7.3.4 puts the *message timestamp point* of an
Ethernet frame at the start of the first bit after the start frame delimiter, i.e. the start of
the first octet of the destination address; IEEE 802.3 clause 90 (time synchronization service
interface) reports exactly that event, the SFD crossing the xMII. Here the reference plane is
the 64-bit XGMII of the MAC (clause 46); the PHY's delays between the XGMII and the medium
(for which clause 90 defines management objects) are the user's to add.

**Where that octet is.** A frame on the XGMII begins with /S/ in lane 0 or lane 4 (clause
46.3.1.2); /S/ takes the place of the first preamble octet, so the octets are /S/, six 0x55,
the SFD (0xD5), then the destination address. Counting /S/ as octet 0, the SFD is octet 7 and
the first octet after it is octet 8. One 64-bit word carries 8 octets per clock period ``P``
and lane ``n`` of a word is ``n`` octet times, ``n * P / 8``, after the word's time. Hence the
timestamp point lies

* ``8`` octet times (exactly ``P``) after the time of the /S/ word when /S/ is in lane 0
  (lane 0 of the next word), and
* ``4 + 8 = 12`` octet times (``1.5 * P``) after it when /S/ is in lane 4 (lane 4 of the next
  word).

**The time of a word** is the value of the ``tod`` input in the clock cycle in which the word
is on the XGMII, which is the value the word's sampling clock edge registers together with it.
Drive ``tod`` with the time of the rising edge that *ends* the current cycle (the edge at which
the word on the bus is sampled), as cocotbext-eth's ``PtpClockSimTime`` does; then a timestamp
is the instant at which the receiving side of the XGMII samples the first destination-address
octet. That is exactly the ``sim_time_sfd`` that cocotbext-eth's ``XgmiiSink`` records for a
frame it samples (its ``XgmiiSource`` stamps the edge that *launches* a word instead, one clock
period earlier). A ``tod`` that holds the time of the edge that *begins* the cycle makes every
timestamp one period early, a constant to correct together with the PHY delays.

**Time formats** (the two of cocotbext-eth's ``PtpClock`` and of common PTP hardware clocks):

* ``"tod96"``: 96-bit time of day, :class:`PtpTod96`: seconds (48 bits), nanoseconds (32 bits,
  always below 10**9) and fractional nanoseconds (16 bits), the IEEE 1588 ``Timestamp`` type
  (clause 5.3.3) extended by 16 bits of sub-nanosecond resolution.
* ``"ns64"``: 64-bit free-running nanoseconds in 48.16 fixed point, :class:`PtpNs64`; wraps
  modulo 2**48 ns.

Resolution is 2**-16 ns (about 15 fs) in both formats; a timestamp is the input time plus the
offset above rounded to the nearest 2**-16 ns, so it is within half a unit of the exact time
when ``tod`` is exact.
"""

from fractions import Fraction

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .ieee802_3 import PREAMBLE_LEN
from .xgmii import LANES

__all__ = [
    "TIMESTAMP_FORMATS", "NS_PER_SECOND", "FNS_PER_NS", "PtpTod96", "PtpNs64",
    "timestamp_layout", "timestamp_width", "sfd_offset_octets", "sfd_offset_fns",
    "PtpTimestampCapture",
]

#: Names of the supported time formats.
TIMESTAMP_FORMATS = ("tod96", "ns64")
#: Nanoseconds per second: the ``ns`` field of :class:`PtpTod96` wraps here.
NS_PER_SECOND = 10**9
#: Units of the fractional-nanosecond fields per nanosecond.
FNS_PER_NS = 1 << 16


class PtpTod96(data.Struct):
    """96-bit time of day: ``seconds`` in bits 95:48, ``ns`` in 47:16, ``fns`` in 15:0.

    ``ns`` is always below 10**9; ``fns`` counts 2**-16 ns.
    """

    fns: 16
    ns: 32
    seconds: 48


class PtpNs64(data.Struct):
    """64-bit time in nanoseconds, 48.16 fixed point: ``ns`` in bits 63:16, ``fns`` in 15:0."""

    fns: 16
    ns: 48


def timestamp_layout(ts_format):
    """The :class:`~amaranth.lib.data.Struct` of a timestamp in ``ts_format``."""
    if ts_format == "tod96":
        return PtpTod96
    if ts_format == "ns64":
        return PtpNs64
    raise ValueError(f"timestamp format must be one of {TIMESTAMP_FORMATS}, not {ts_format!r}")


def timestamp_width(ts_format):
    """Width in bits of a timestamp in ``ts_format`` (96 or 64)."""
    return timestamp_layout(ts_format).as_shape().size


def sfd_offset_octets(start_lane):
    """Octet times from the time of the /S/ word to the first octet after the SFD.

    ``start_lane`` is 0 for /S/ in lane 0 and 1 for /S/ in lane 4 (the encoding of the MAC's
    ``*_start_lane`` outputs). The result is 8 or 12.
    """
    if start_lane not in (0, 1):
        raise ValueError(f"start lane must be 0 (lane 0) or 1 (lane 4), not {start_lane!r}")
    return start_lane * (LANES // 2) + PREAMBLE_LEN + 1


def _exact_ns(value):
    """``value`` (int, str, Decimal, Fraction or float, in ns) as an exact Fraction."""
    result = Fraction(str(value))
    if result <= 0:
        raise ValueError(f"clock period must be positive, not {value!r}")
    return result


def sfd_offset_fns(period_ns, start_lane):
    """:func:`sfd_offset_octets` as a time in units of 2**-16 ns, rounded to the nearest unit.

    ``period_ns`` is the clock period of one 8-octet XGMII word in ns (6.4 for 10GBASE-R at
    156.25 MHz, 2.56 for 25GBASE-R at 390.625 MHz).
    """
    exact = _exact_ns(period_ns) * sfd_offset_octets(start_lane) / LANES * FNS_PER_NS
    return round(exact)


class PtpTimestampCapture(wiring.Component):
    """Timestamp a frame's message timestamp point from the strobe of its /S/.

    All logic is in the ``sync`` domain (rename it to the XGMII clock of the direction). The
    module docstring defines the reference point and what ``tod`` must hold.

    Parameters
    ----------
    ts_format : str
        ``"tod96"`` or ``"ns64"`` (see the module docstring).
    period_ns : int, str, Decimal, Fraction or float
        Clock period in ns; fixes the constant offsets (rounded to 2**-16 ns): one period for a
        lane-0 start, one and a half for a lane-4 start.

    Attributes
    ----------
    tod : In(96 or 64)
        The current time, a :class:`PtpTod96` or :class:`PtpNs64` value; for ``"tod96"`` its
        ``ns`` field must be below 10**9.
    start : In(1)
        High in the cycle a frame's /S/ is on the XGMII.
    start_lane : In(1)
        With ``start``: 0 when /S/ is in lane 0, 1 when in lane 4.
    timestamp : Out(stream.Signature(PtpTod96 or PtpNs64, always_ready=True))
        One timestamp per ``start``, valid for one cycle exactly :attr:`LATENCY` cycles after
        the ``start`` cycle: ``tod`` of that cycle plus the offset for ``start_lane``. For
        ``"tod96"`` the nanoseconds carry into the seconds at 10**9 (seconds wrap at 2**48);
        ``"ns64"`` wraps at 2**64 units. A ``start`` in every cycle gives a timestamp in every
        cycle.
    """

    #: Cycles from ``start`` to ``timestamp.valid``.
    LATENCY = 2

    def __init__(self, ts_format="tod96", period_ns="6.4"):
        self._layout = timestamp_layout(ts_format)
        self._format = ts_format
        self._period_ns = _exact_ns(period_ns)
        self.offsets_fns = (sfd_offset_fns(period_ns, 0), sfd_offset_fns(period_ns, 1))
        if self.offsets_fns[1] >= NS_PER_SECOND * FNS_PER_NS:
            raise ValueError(f"clock period {period_ns} ns is too long")
        super().__init__({
            "tod": In(self._layout.as_shape().size),
            "start": In(1),
            "start_lane": In(1),
            "timestamp": Out(stream.Signature(self._layout, always_ready=True)),
        })

    @property
    def ts_format(self):
        return self._format

    def elaborate(self, platform):
        m = Module()

        # Stage 1: the time of the /S/ word and its lane.
        held = Signal(self._layout)
        held_lane = Signal()
        held_valid = Signal()
        m.d.sync += held_valid.eq(self.start)
        with m.If(self.start):
            m.d.sync += [held.eq(self.tod), held_lane.eq(self.start_lane)]

        # Stage 2: add the offset to the first octet after the SFD and normalise.
        offset = Mux(held_lane, Const(self.offsets_fns[1]), Const(self.offsets_fns[0]))
        out = self.timestamp.payload
        m.d.sync += self.timestamp.valid.eq(held_valid)
        if self._format == "tod96":
            # ns.fns as one number of 2**-16 ns, below 10**9 ns before the addition.
            limit = NS_PER_SECOND * FNS_PER_NS
            subsecond = Signal(len(held.ns) + len(held.fns) + 1)
            m.d.comb += subsecond.eq(Cat(held.fns, held.ns) + offset)
            carry = subsecond >= limit
            wrapped = Mux(carry, subsecond - limit, subsecond)
            with m.If(held_valid):
                m.d.sync += [
                    Cat(out.fns, out.ns).eq(wrapped),
                    out.seconds.eq(held.seconds + carry),
                ]
        else:
            with m.If(held_valid):
                m.d.sync += out.eq(held.as_value() + offset)
        return m
