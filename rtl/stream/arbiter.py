"""N-input packet arbiter: whole packets from several sources onto one stream."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import PacketLayout, PacketSignature
from .mux import forward_packets

__all__ = ["PacketArbiter"]


class PacketArbiter(wiring.Component):
    """Merges packets from ``n`` inputs, granting one input per packet.

    A grant is decided between packets among the inputs whose ``valid`` is high, and held until
    the granted packet's last beat has moved; beats of different packets never interleave.
    Arbitration costs no cycle: the next packet's first beat follows the previous packet's last
    beat directly, so the output carries one beat per cycle while ``o.ready`` is high and some
    input has a beat.

    Parameters
    ----------
    width : int
        Data width in bits.
    user_width : int
        Width of the ``user`` sideband.
    n : int
        Number of inputs.
    policy : "round_robin" or "priority"
        ``"round_robin"``: the input after the most recently granted one goes first, so every
        waiting input is served within ``n`` packets. ``"priority"``: the lowest-numbered valid
        input always wins (a busy input 0 can starve the others).

    Attributes
    ----------
    i0 ... i<n-1> : In(PacketSignature(width, user_width))
        Inputs. A source must keep ``valid`` high once raised (the ``lib.stream`` rule); the
        arbiter may switch to another input while a source's ``valid`` is low between packets.
    o : Out(PacketSignature(width, user_width))
        Output, registered.
    """

    POLICIES = ("round_robin", "priority")

    def __init__(self, width, user_width=1, n=2, policy="round_robin"):
        PacketLayout(width, user_width)
        if n < 1:
            raise ValueError(f"need at least one input, not {n}")
        if policy not in self.POLICIES:
            raise ValueError(f"policy must be one of {self.POLICIES}, not {policy!r}")
        self.n = n
        self.policy = policy
        members = {f"i{k}": In(PacketSignature(width, user_width)) for k in range(n)}
        members["o"] = Out(PacketSignature(width, user_width))
        super().__init__(members)

    @property
    def inputs(self):
        return [getattr(self, f"i{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        inputs = self.inputs
        choice = Signal(range(self.n))
        any_valid = Signal()
        m.d.comb += any_valid.eq(Cat(*(port.valid for port in inputs)).any())

        def prefer(order):
            # Later assignments win, so walk from the lowest to the highest preference.
            for k in reversed(order):
                with m.If(inputs[k].valid):
                    m.d.comb += choice.eq(k)

        if self.policy == "priority":
            prefer(list(range(self.n)))
            forward_packets(m, inputs, self.o, choice, any_valid)
        else:
            last_grant = Signal(range(self.n), init=self.n - 1)
            with m.Switch(last_grant):
                for g in range(self.n):
                    with m.Case(g):
                        prefer([(g + 1 + j) % self.n for j in range(self.n)])
            start = forward_packets(m, inputs, self.o, choice, any_valid)
            with m.If(start):
                m.d.sync += last_grant.eq(choice)
        return m
