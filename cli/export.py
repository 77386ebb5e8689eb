"""Verilog export with industry port names.

A :class:`~amaranth.lib.wiring.Component` converts to Verilog with ports named after its
signature members (``i__payload``...). Vendor flows and cocotbext-axi expect AXI4-Stream names
instead, so :func:`export_verilog` wraps the component in a thin top-level whose ports are:

* packet streams (:class:`amnic.stream.PacketLayout` payload) as ``s_axis_<name>_tdata/tkeep/
  tvalid/tready/tlast/tuser`` when the component receives them and ``m_axis_<name>_...`` when
  it sends them (a member already named ``s_axis_<x>`` / ``m_axis_<x>`` keeps its name);
* any other stream as ``<name>_tdata/tvalid/tready`` (``tready`` omitted when always ready);
* plain signals as their member path joined with ``_`` (``xgmii_txd``, ``stat_rx_fcs_error``);
* one clock/reset pair per clock domain: ``clk``/``rst`` for ``sync``, ``<domain>_clk``/
  ``<domain>_rst`` otherwise (resets are synchronous and active high).

The Verilog file starts with a header that records the generator version, the parameters and
the port list, so a generated file says what it is.
"""

from dataclasses import dataclass

from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

import amnic
from amnic.stream import PacketLayout

__all__ = ["Port", "axi_ports", "export_verilog"]


@dataclass(frozen=True)
class Port:
    """One port of a generated top-level."""

    name: str
    direction: str  # "input" or "output"
    width: int
    role: str  # what the port is, e.g. "rx packet stream data" or "tx clock"


def _flow(member, flipped):
    is_out = (member.flow == Out) != flipped
    return "output" if is_out else "input"


class _Top(Elaboratable):
    def __init__(self, core):
        self.core = core
        self.ports = []  # (Signal, Port)
        self._connect = []  # (top signal, core value, direction)
        self._walk(core.signature.members, core, (), False)

    def _add(self, name, value, direction, role):
        width = len(Value.cast(value))
        sig = Signal(width, name=name)
        self.ports.append((sig, Port(name, direction, width, role)))
        self._connect.append((sig, value, direction))

    def _walk(self, members, obj, path, flipped):
        for key, member in members.items():
            sub = getattr(obj, key)
            here = (*path, key)
            if member.is_port:
                direction = _flow(member, flipped)
                self._add("_".join(here), sub, direction, "_".join(here).replace("_", " "))
                continue
            sig = member.signature
            if isinstance(sig, stream.Signature):
                # A stream declared In is a sink: it is flipped relative to its source view.
                self._stream(here, sub, sig, flipped != (member.flow == In))
            else:
                # member.signature is already flipped for In members, so its members' flows
                # are those seen from the component.
                self._walk(sig.members, sub, here, flipped)

    def _stream(self, path, port, sig, flipped):
        # A stream member declared Out is a source (master) unless flipped.
        source = not flipped
        name = "_".join(path)
        fwd, back = ("output", "input") if source else ("input", "output")
        shape = port.payload.shape()
        if isinstance(shape, PacketLayout):
            prefix = f"{'m' if source else 's'}_axis_"
            # A member already named for its direction (``m_axis_tx``) keeps its name.
            prefix = name if name.startswith(prefix) else prefix + name
            what = f"{name} packet stream"
            self._add(f"{prefix}_tdata", port.payload.data, fwd, f"{what} data")
            self._add(f"{prefix}_tkeep", port.payload.keep, fwd, f"{what} byte enables")
            if not sig.always_valid:
                self._add(f"{prefix}_tvalid", port.valid, fwd, f"{what} valid")
            if not sig.always_ready:
                self._add(f"{prefix}_tready", port.ready, back, f"{what} ready")
            self._add(f"{prefix}_tlast", port.payload.last, fwd, f"{what} last beat")
            if shape.user_width:
                self._add(f"{prefix}_tuser", port.payload.user, fwd, f"{what} user sideband")
        else:
            what = f"{name} stream"
            self._add(f"{name}_tdata", Value.cast(port.payload), fwd, f"{what} payload")
            if not sig.always_valid:
                self._add(f"{name}_tvalid", port.valid, fwd, f"{what} valid")
            if not sig.always_ready:
                self._add(f"{name}_tready", port.ready, back, f"{what} ready")

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        for sig, value, direction in self._connect:
            if direction == "input":
                m.d.comb += value.eq(sig)
            else:
                m.d.comb += sig.eq(value)
        return m


def axi_ports(core, domains=(("sync", "core clock"),)):
    """Return the :class:`Port` list that :func:`export_verilog` gives ``core``."""
    return [p for _, p in _clock_ports(domains)] + [p for _, p in _Top(core).ports]


def _clock_ports(domains):
    out = []
    for domain, what in domains:
        clk = "clk" if domain == "sync" else f"{domain}_clk"
        rst = "rst" if domain == "sync" else f"{domain}_rst"
        out.append((domain, Port(clk, "input", 1, f"{what}, rising edge")))
        out.append((domain, Port(rst, "input", 1, f"{what} synchronous reset, active high")))
    return out


def export_verilog(core, name, *, domains=(("sync", "core clock"),), parameters=None):
    """Convert ``core`` to Verilog under the top-level module ``name`` with AXI port names.

    Parameters
    ----------
    core : wiring.Component
        The component to export.
    name : str
        Verilog module name of the generated top-level.
    domains : sequence of (str, str)
        The clock domains ``core`` uses, each with a description for the port summary.
    parameters : dict, optional
        Generator parameters to record in the file header.

    Returns
    -------
    (str, list of Port)
        The Verilog text and the top-level's ports.
    """
    top = _Top(core)
    m = Module()
    m.submodules.top = top
    fragment_ports = []
    # Amaranth names a domain's signals "clk"/"rst" for sync and "<domain>_clk"/"<domain>_rst"
    # otherwise, which is what _clock_ports() documents.
    for domain, _ in domains:
        cd = ClockDomain(domain, local=False)
        m.domains += cd
        fragment_ports += [cd.clk, cd.rst]
    fragment_ports += [sig for sig, _ in top.ports]
    text = verilog.convert(m, name=name, ports=fragment_ports, emit_src=False)
    ports = [p for _, p in _clock_ports(domains)] + [p for _, p in top.ports]
    return _header(name, parameters or {}, ports) + text, ports


def _header(name, parameters, ports):
    lines = [
        f"// {name}: generated by amnic {amnic.__version__} (amnic generate); do not edit.",
        "// Parameters:",
    ]
    lines += [f"//   {k} = {v}" for k, v in parameters.items()] or ["//   (none)"]
    lines.append("// Ports:")
    for p in ports:
        lines.append(f"//   {p.direction:<6} [{p.width:>3}] {p.name:<32} {p.role}")
    return "\n".join(lines) + "\n"
