"""Several TLP sources onto one stream (the requester request stream takes the write engine's
memory writes and the read engine's read requests)."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ports import round_robin_grant

__all__ = ["TlpArbiter"]


class TlpArbiter(wiring.Component):
    """Merge whole TLPs from ``n`` sources, round robin.

    The grant is chosen when no TLP is in progress, among the inputs whose ``valid`` is high,
    starting after the most recently granted input, and held until the granted TLP's last beat
    has moved, so TLPs never interleave. The arbiter adds no cycle and no register: a TLP's
    first beat may follow the previous TLP's last beat directly.

    Parameters
    ----------
    signature : stream.Signature
        The stream of every port: TLP beats with a ``last`` member, e.g.
        :func:`~amnic.dma.axis.TlpStreamSignature` or
        :func:`~amnic.dma.rq_framer.RequestStreamSignature`.
    n : int
        Number of sources.

    Attributes
    ----------
    i0 ... i<n-1> : In(signature)
    o : Out(signature)
    """

    def __init__(self, signature, n=2):
        if n < 1:
            raise ValueError(f"need at least one input, not {n}")
        self.n = n
        members = {f"i{k}": In(signature) for k in range(n)}
        members["o"] = Out(signature)
        super().__init__(members)

    @property
    def inputs(self):
        return [getattr(self, f"i{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        inputs = self.inputs
        busy = Signal()  # a TLP is in progress on `held`
        held = Signal(range(self.n))
        last = Signal(range(self.n), init=self.n - 1)
        choice, _ = round_robin_grant(m, Cat(port.valid for port in inputs), last, "tlp")
        grant = Signal(range(self.n))
        m.d.comb += grant.eq(choice)
        with m.If(busy):
            m.d.comb += grant.eq(held)
        for k, port in enumerate(inputs):
            with m.If(grant == k):
                m.d.comb += [
                    self.o.payload.eq(port.payload),
                    self.o.valid.eq(port.valid),
                    port.ready.eq(self.o.ready),
                ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [busy.eq(~self.o.payload.last), held.eq(grant), last.eq(grant)]
        return m
