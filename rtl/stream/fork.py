"""Handshake helpers for one stream feeding several consumers, and several streams joined.

These are building blocks for pipelines that send a request to several blocks at once and
later combine their answers; the payloads stay with the caller, only the handshake is built.
"""

from amaranth.hdl import Signal

__all__ = ["eager_fork", "join"]


def eager_fork(m, valid, readies, name="fork"):
    """Offer one transfer to several consumers; each takes it once, in any cycle.

    Consumer *k* sees ``valids[k]`` until it has taken the transfer (``valids[k] & readies[k]``
    in some cycle); the source's transfer completes (``ready`` high) in the cycle the last
    consumer takes it. No consumer's ``valid`` waits on another's ``ready``, so the streams
    keep the rule that ``valid`` never depends on ``ready``.

    Parameters
    ----------
    m : Module
    valid : Value
        The source's ``valid``.
    readies : list of Value
        The consumers' ``ready``.

    Returns
    -------
    (list of Value, Value)
        The consumers' ``valid`` and the source's ``ready``.
    """
    done = Signal(len(readies), name=f"{name}_done")
    valids = [valid & ~done[k] for k in range(len(readies))]
    taken = [done[k] | (valids[k] & readies[k]) for k in range(len(readies))]
    all_taken = Signal(name=f"{name}_all")
    m.d.comb += all_taken.eq(valid & _and(taken))
    with m.If(all_taken):
        m.d.sync += done.eq(0)
    with m.Elif(valid):
        for k in range(len(readies)):
            m.d.sync += done[k].eq(taken[k])
    return valids, all_taken


def join(m, valids, ready, name="join"):
    """Combine one transfer of each of several streams into one transfer.

    Parameters
    ----------
    valids : list of Value
        The sources' ``valid``.
    ready : Value
        The consumer's ``ready``.

    Returns
    -------
    (Value, Value)
        The joined ``valid`` and the ``ready`` to give every source (they all transfer in the
        same cycle).
    """
    joined = Signal(name=f"{name}_valid")
    fire = Signal(name=f"{name}_fire")
    m.d.comb += [joined.eq(_and(valids)), fire.eq(joined & ready)]
    return joined, fire


def _and(values):
    out = values[0]
    for v in values[1:]:
        out = out & v
    return out
