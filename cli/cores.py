"""The registry of cores that ``amnic generate`` can turn into Verilog.

Each entry is a :class:`CoreSpec`: a name, a one-line description, a table of :class:`Param`
(typed, with defaults and allowed values), a factory that builds the
:class:`~amaranth.lib.wiring.Component` from those parameters, the Verilog top-level module
name and the clock domains to hand to :func:`amnic.cli.export.export_verilog`.

Adding a core
-------------
Write a decorated factory in this module; import the core *inside* the factory, so that a core
whose module is broken or missing only makes that one entry unavailable::

    @core(
        "mac_10g",
        "10G/25G Ethernet MAC: AXI4-Stream <-> 64-bit XGMII",
        module="amnic.mac.mac_10g",
        params=[
            Param("flow_control", "bool", True, "PAUSE/PFC (IEEE 802.3 annex 31B, 802.1Qbb)"),
        ],
        top="amnic_mac_10g",
        domains=[("tx", "MAC transmit clock"), ("rx", "MAC receive clock")],
    )
    def _mac_10g(flow_control):
        from amnic.mac.mac_10g import Mac10G

        return Mac10G(flow_control=flow_control)

``top`` may be a format string over the parameters (as above) or a callable taking the
parameter dict; ``domains`` may likewise be a callable. ``module`` names the module the factory
imports; ``amnic list`` uses it to say whether the core is available without building it.
An explicit ``register(CoreSpec(...))`` call does the same as the decorator.

Parameter values reach the factory already validated and converted (``int``, ``str``,
``bool``, or the matching ``choices`` entry). A factory may still raise :class:`ValueError`
for a combination it rejects; the CLI reports that as a usage error.
"""

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ParamError",
    "Param",
    "CoreSpec",
    "REGISTRY",
    "register",
    "core",
    "get",
    "names",
    "all_specs",
]

_KINDS = ("int", "str", "bool", "choice")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ParamError(ValueError):
    """A parameter name or value the user gave is not acceptable; the message says why."""


@dataclass(frozen=True)
class Param:
    """One generator parameter of a core.

    Parameters
    ----------
    name : str
        Keyword passed to the factory and the name used in ``-p name=value``.
    kind : str
        ``"int"``, ``"str"``, ``"bool"`` or ``"choice"``.
    default
        Value used when the parameter is not given (already of the converted type).
    help : str
        One line: what the parameter sets.
    choices : tuple
        Allowed values of a ``"choice"`` parameter (any type; matched by their ``str``).
    min, max : int, optional
        Inclusive range of an ``"int"`` parameter.
    multiple_of : int, optional
        An ``"int"`` parameter must be a multiple of this.
    """

    name: str
    kind: str
    default: object
    help: str
    choices: tuple = ()
    min: int | None = None
    max: int | None = None
    multiple_of: int | None = None

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise TypeError(f"parameter {self.name!r}: kind must be one of {_KINDS}")
        if self.kind == "choice" and not self.choices:
            raise TypeError(f"parameter {self.name!r}: a choice parameter needs choices")
        self.check(self.default)

    def allowed(self):
        """A short description of the allowed values, for help text and docs."""
        if self.kind == "choice":
            return ", ".join(str(c) for c in self.choices)
        if self.kind == "bool":
            return "true, false"
        if self.kind == "int":
            parts = []
            if self.min is not None and self.max is not None:
                parts.append(f"{self.min}..{self.max}")
            elif self.min is not None:
                parts.append(f">= {self.min}")
            elif self.max is not None:
                parts.append(f"<= {self.max}")
            if self.multiple_of:
                parts.append(f"multiple of {self.multiple_of}")
            return ", ".join(parts) or "any integer"
        return "any text"

    def check(self, value):
        """Raise :class:`ParamError` unless ``value`` (already converted) is allowed."""
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamError(f"parameter {self.name!r} must be an integer, not {value!r}")
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ParamError(
                    f"parameter {self.name!r} = {value} out of range ({self.allowed()})"
                )
            if self.multiple_of and value % self.multiple_of:
                raise ParamError(
                    f"parameter {self.name!r} = {value} must be a multiple of {self.multiple_of}"
                )
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"parameter {self.name!r} must be true or false, not {value!r}")
        elif self.kind == "choice":
            if value not in self.choices:
                raise ParamError(
                    f"parameter {self.name!r} = {value!r} not allowed; choose from: "
                    f"{self.allowed()}"
                )
        elif not isinstance(value, str):
            raise ParamError(f"parameter {self.name!r} must be text, not {value!r}")

    def parse(self, text):
        """Convert the command-line ``text`` to this parameter's type and check it."""
        if self.kind == "int":
            try:
                value = int(text, 0)
            except ValueError:
                raise ParamError(
                    f"parameter {self.name!r} must be an integer, not {text!r}"
                ) from None
        elif self.kind == "bool":
            low = text.strip().lower()
            if low not in _TRUE + _FALSE:
                raise ParamError(f"parameter {self.name!r} must be true or false, not {text!r}")
            value = low in _TRUE
        elif self.kind == "choice":
            matches = [c for c in self.choices if str(c) == text]
            if not matches:
                raise ParamError(
                    f"parameter {self.name!r} = {text!r} not allowed; choose from: "
                    f"{self.allowed()}"
                )
            value = matches[0]
        else:
            value = text
        self.check(value)
        return value

    def format(self, value):
        """``value`` as it would be written on the command line."""
        if self.kind == "bool":
            return "true" if value else "false"
        return str(value)


@dataclass(frozen=True)
class CoreSpec:
    """A core that ``amnic generate`` can build.

    Parameters
    ----------
    name : str
        Command-line name (lower case, ``[a-z0-9_]``).
    description : str
        One line shown by ``amnic list``.
    factory : callable
        ``factory(**params)`` returns the :class:`~amaranth.lib.wiring.Component`.
    params : sequence of Param
    top : str or callable
        Verilog module name: a format string over the parameters (``"amnic_crc32_w{width}"``)
        or ``top(params) -> str``.
    domains : sequence of (str, str) or callable
        Clock domains ``(domain, description)`` for
        :func:`~amnic.cli.export.export_verilog`, or ``domains(params)`` returning them.
    module : str, optional
        The module the factory imports; :meth:`unavailable` imports it to report whether the
        core can be built.
    """

    name: str
    description: str
    factory: Callable
    params: Sequence[Param] = ()
    top: str | Callable = ""
    domains: Sequence | Callable = (("sync", "core clock"),)
    module: str | None = None
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"core name {self.name!r} must match [a-z][a-z0-9_]*")
        object.__setattr__(self, "params", tuple(self.params))
        by_name = {p.name: p for p in self.params}
        if len(by_name) != len(self.params):
            raise ValueError(f"core {self.name!r} has duplicate parameter names")
        object.__setattr__(self, "_by_name", by_name)

    def param(self, name):
        """The :class:`Param` called ``name``; :class:`ParamError` if there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise ParamError(
                f"core {self.name!r} has no parameter {name!r}; its parameters: {known}"
            ) from None

    def defaults(self):
        """The parameter dict with every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def resolve(self, given=None):
        """Validate ``given`` (name -> command-line text, or already-typed values) and return the
        complete parameter dict, defaults filled in."""
        values = self.defaults()
        for name, value in (given or {}).items():
            p = self.param(name)
            if isinstance(value, str) and p.kind != "str":
                values[name] = p.parse(value)
            else:
                p.check(value)
                values[name] = value
        return values

    def top_name(self, values):
        """The Verilog module name for the parameter dict ``values``."""
        if callable(self.top):
            return self.top(values)
        return (self.top or f"amnic_{self.name}").format(**values)

    def clock_domains(self, values):
        """The ``(domain, description)`` pairs for the parameter dict ``values``."""
        domains = self.domains(values) if callable(self.domains) else self.domains
        return tuple((d, what) for d, what in domains)

    def unavailable(self):
        """``None`` when the core's module imports, else a one-line reason."""
        if self.module is None:
            return None
        try:
            importlib.import_module(self.module)
        except Exception as exc:  # any import failure just makes this one core unavailable
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    def build(self, values):
        """Construct the component for the (resolved) parameter dict ``values``."""
        return self.factory(**values)


#: All registered cores, by name, in registration order.
REGISTRY: dict[str, CoreSpec] = {}


def register(spec):
    """Add ``spec`` to :data:`REGISTRY` (a name may be registered only once); returns it."""
    if spec.name in REGISTRY:
        raise ValueError(f"core {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def core(name, description, *, params=(), top="", domains=(("sync", "core clock"),), module=None):
    """Decorator form of :func:`register`: the decorated function is the factory."""

    def decorate(factory):
        register(CoreSpec(name, description, factory, params, top, domains, module))
        return factory

    return decorate


def get(name):
    """The :class:`CoreSpec` called ``name``; :class:`KeyError` with a helpful message if none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"core {name!r} unknown; choose from: {', '.join(names())}") from None


def names():
    """Registered core names, sorted."""
    return sorted(REGISTRY)


def all_specs():
    """Registered cores, sorted by name."""
    return [REGISTRY[n] for n in names()]


# --------------------------------------------------------------------------------------------
# Shared parameter definitions.


def _width_param(default=64, help="packet data width in bits"):
    return Param("width", "int", default, help, min=8, max=1024, multiple_of=8)


def _user_width_param(default=1):
    return Param("user_width", "int", default, "width of the tuser sideband", min=0, max=64)


# --------------------------------------------------------------------------------------------
# The cores.


@core(
    "crc32",
    "Parallel CRC-32 (IEEE 802.3 clause 3.2.9) over a word of 1..width/8 bytes per cycle",
    module="amnic.mac.crc",
    params=[_width_param(64, "data width in bits")],
    top="amnic_crc32_w{width}",
)
def _crc32(width):
    from amnic.mac.crc import Crc32

    return Crc32(width=width)


@core(
    "skid_buffer",
    "Two-entry registered pipeline stage for packet streams: every port from a flip-flop",
    module="amnic.stream.skid",
    params=[_width_param(), _user_width_param()],
    top="amnic_skid_buffer_w{width}",
)
def _skid_buffer(width, user_width):
    from amnic.stream.skid import SkidBuffer

    return SkidBuffer(width, user_width)


_FIFO_PARAMS = [
    _width_param(),
    _user_width_param(),
    Param("depth", "int", 16, "capacity in beats (a power of two when store-and-forward)",
          min=1, max=1 << 16),
    Param("store_and_forward", "bool", False, "release a packet only once its last beat is in"),
    Param("drop_bad", "bool", False, "discard packets whose last beat has user bit 0 set"),
    Param("drop_when_full", "bool", False,
          "store-and-forward: never back-pressure, discard a packet that meets a full FIFO"),
]


def _fifo_top(prefix):
    def top(p):
        mode = "_saf" if p["store_and_forward"] or p["drop_bad"] else ""
        return f"{prefix}_w{p['width']}_d{p['depth']}{mode}"

    return top


@core(
    "packet_fifo",
    "Packet FIFO, cut-through or store-and-forward with bad-packet and overflow drop",
    module="amnic.stream.fifo",
    params=_FIFO_PARAMS,
    top=_fifo_top("amnic_packet_fifo"),
)
def _packet_fifo(width, user_width, depth, store_and_forward, drop_bad, drop_when_full):
    from amnic.stream.fifo import PacketFifo

    return PacketFifo(width, user_width, depth, store_and_forward=store_and_forward,
                      drop_bad=drop_bad, drop_when_full=drop_when_full)


@core(
    "async_packet_fifo",
    "Packet FIFO between two clock domains (Gray-code pointers), optionally store-and-forward",
    module="amnic.stream.fifo",
    params=[*_FIFO_PARAMS,
            Param("sync_stages", "int", 2, "synchronizer flip-flops per crossing", min=2, max=8)],
    top=_fifo_top("amnic_async_packet_fifo"),
    domains=[("write", "input (s_axis) clock"), ("read", "output (m_axis) clock")],
)
def _async_packet_fifo(width, user_width, depth, store_and_forward, drop_bad, drop_when_full,
                       sync_stages):
    from amnic.stream.fifo import AsyncPacketFifo

    return AsyncPacketFifo(width, user_width, depth, r_domain="read", w_domain="write",
                           store_and_forward=store_and_forward, drop_bad=drop_bad,
                           drop_when_full=drop_when_full, sync_stages=sync_stages)


def _converter_params(in_width, out_width, relation):
    return [
        Param("in_width", "int", in_width, f"input data width in bits ({relation})",
              min=8, max=1024, multiple_of=8),
        Param("out_width", "int", out_width, "output data width in bits",
              min=8, max=1024, multiple_of=8),
        _user_width_param(),
    ]


@core(
    "width_up",
    "Packs narrow packet beats into wide ones (out_width = n * in_width)",
    module="amnic.stream.width",
    params=_converter_params(64, 256, "out_width is a multiple of it"),
    top="amnic_width_up_{in_width}_to_{out_width}",
)
def _width_up(in_width, out_width, user_width):
    from amnic.stream.width import WidthUpConverter

    return WidthUpConverter(in_width, out_width, user_width)


@core(
    "width_down",
    "Cuts wide packet beats into narrow ones (in_width = n * out_width)",
    module="amnic.stream.width",
    params=_converter_params(256, 64, "a multiple of out_width"),
    top="amnic_width_down_{in_width}_to_{out_width}",
)
def _width_down(in_width, out_width, user_width):
    from amnic.stream.width import WidthDownConverter

    return WidthDownConverter(in_width, out_width, user_width)


def _ports_param(what):
    return Param("n", "int", 2, f"number of {what}", min=1, max=64)


@core(
    "packet_arbiter",
    "Merges packets from n inputs, one grant per packet (round-robin or fixed priority)",
    module="amnic.stream.arbiter",
    params=[_width_param(), _user_width_param(), _ports_param("inputs"),
            Param("policy", "choice", "round_robin", "who goes first",
                  choices=("round_robin", "priority"))],
    top="amnic_packet_arbiter_w{width}_n{n}",
)
def _packet_arbiter(width, user_width, n, policy):
    from amnic.stream.arbiter import PacketArbiter

    return PacketArbiter(width, user_width, n, policy)


@core(
    "packet_mux",
    "Forwards packets from the input chosen by sel, switching only between packets",
    module="amnic.stream.mux",
    params=[_width_param(), _user_width_param(), _ports_param("inputs")],
    top="amnic_packet_mux_w{width}_n{n}",
)
def _packet_mux(width, user_width, n):
    from amnic.stream.mux import PacketMux

    return PacketMux(width, user_width, n)


@core(
    "packet_demux",
    "Routes each packet to the output chosen by sel at its first beat",
    module="amnic.stream.mux",
    params=[_width_param(), _user_width_param(), _ports_param("outputs")],
    top="amnic_packet_demux_w{width}_n{n}",
)
def _packet_demux(width, user_width, n):
    from amnic.stream.mux import PacketDemux

    return PacketDemux(width, user_width, n)


@core(
    "axil_to_regbus",
    "AXI4-Lite slave to the amnic register bus, one access in flight",
    module="amnic.stream.axil",
    params=[Param("addr_width", "int", 16, "address width in bits", min=1, max=64),
            Param("data_width", "choice", 32, "data width in bits", choices=(32, 64))],
    top="amnic_axil_to_regbus_a{addr_width}_d{data_width}",
)
def _axil_to_regbus(addr_width, data_width):
    from amnic.stream.axil import AxiLiteToRegisterBus

    return AxiLiteToRegisterBus(addr_width, data_width)


#: Clock domains of the cores built on the 10G/25G MAC.
_XGMII_DOMAINS = (("tx", "XGMII transmit clock (156.25 MHz 10G, 390.625 MHz 25G)"),
                  ("rx", "XGMII receive clock"))


@core(
    "mac_10g",
    "10G/25G Ethernet MAC on a 64-bit XGMII (IEEE 802.3 clauses 4, 46): AXI4-Stream TX/RX, "
    "pad/FCS, DIC, checks, PAUSE/PFC",
    module="amnic.mac.mac_10g",
    params=[Param("flow_control", "bool", True,
                  "include 802.3x PAUSE and 802.1Qbb PFC")],
    top="amnic_mac_10g",
    domains=_XGMII_DOMAINS,
)
def _mac_10g(flow_control):
    from amnic.mac.mac_10g import Mac10G

    return Mac10G(flow_control=flow_control)


@core(
    "mac_1g",
    "1G Ethernet MAC on 8-bit GMII or RGMII (per-edge halves for the board's DDR registers)",
    module="amnic.mac.mac_1g",
    params=[Param("phy", "choice", "gmii", "PHY interface", choices=("gmii", "rgmii"))],
    top="amnic_mac_1g_{phy}",
    domains=[("tx", "GMII transmit clock, 125 MHz"), ("rx", "GMII receive clock, 125 MHz")],
)
def _mac_1g(phy):
    from amnic.mac.mac_1g import Mac1G

    return Mac1G(phy=phy)


@core(
    "mac_stats",
    "MAC statistics counters (RMON bins, errors by reason, PAUSE/PFC) behind a register bus",
    module="amnic.mac.stats",
    params=[],
    top="amnic_mac_stats",
)
def _mac_stats():
    from amnic.mac.stats import MacStatistics

    return MacStatistics()


@core(
    "mac_10g_ptp",
    "10G/25G MAC with IEEE 1588 timestamps at the SFD: TX timestamps with tags, RX timestamps "
    "in tuser",
    module="amnic.mac.mac_10g_ptp",
    params=[
        Param("ts_format", "choice", "tod96", "timestamp format", choices=("tod96", "ns64")),
        Param("flow_control", "bool", True, "include 802.3x PAUSE and 802.1Qbb PFC"),
    ],
    top="amnic_mac_10g_ptp_{ts_format}",
    domains=_XGMII_DOMAINS,
)
def _mac_10g_ptp(ts_format, flow_control):
    from amnic.mac.mac_10g_ptp import Mac10GPtp

    return Mac10GPtp(ts_format=ts_format, flow_control=flow_control)


@core(
    "mac_port_10g",
    "10G/25G Ethernet port: MAC + clock-crossing store-and-forward FIFOs + statistics on "
    "AXI4-Lite",
    module="amnic.mac.port_10g",
    params=[
        Param("tx_fifo_depth", "int", 2048, "transmit FIFO depth in 64-bit beats", min=16),
        Param("rx_fifo_depth", "int", 2048, "receive FIFO depth in 64-bit beats", min=16),
        Param("rx_drop_bad", "bool", True, "discard bad received frames in the FIFO"),
        Param("flow_control", "bool", True, "include 802.3x PAUSE and 802.1Qbb PFC"),
    ],
    top="amnic_mac_port_10g",
    domains=[("sync", "user clock"), *_XGMII_DOMAINS],
)
def _mac_port_10g(tx_fifo_depth, rx_fifo_depth, rx_drop_bad, flow_control):
    from amnic.mac.port_10g import MacPort10G

    return MacPort10G(tx_fifo_depth=tx_fifo_depth, rx_fifo_depth=rx_fifo_depth,
                      rx_drop_bad=rx_drop_bad, flow_control=flow_control)


@core(
    "match_action",
    "Match-action pipeline: parser, ACL with tenant isolation, cuckoo flow table, RSS, meters, "
    "VLAN/VXLAN/DSCP-ECN rewrites, mirror; AXI4-Stream ports, AXI4-Lite registers",
    module="amnic.flow.core",
    params=[
        Param("width", "choice", 64, "packet data width in bits (64: 10G/25G, 512: 100G)",
              choices=(64, 128, 256, 512)),
        Param("port_width", "int", 8, "bits of the ingress port in s_axis_ingress_tuser[8:1]",
              min=1, max=8),
        Param("max_packet", "int", 9600, "longest packet in bytes", min=64, max=65535),
        Param("flow_entries", "int", 65536, "flow-table slots (a power of two)", min=16,
              max=1 << 20),
        Param("flow_ram", "choice", "auto", "flow-table memory: auto, block RAM or UltraRAM",
              choices=("auto", "block", "ultra")),
        Param("acl_rules", "int", 64, "ACL rule slots", min=2, max=1024),
        Param("rss_entries", "int", 128, "RSS indirection-table entries", min=2, max=4096),
        Param("meters", "int", 256, "token-bucket meters (a power of two)", min=2, max=256),
    ],
    top="amnic_match_action_w{width}",
)
def _match_action(width, port_width, max_packet, flow_entries, flow_ram, acl_rules, rss_entries,
                  meters):
    from amnic.flow.core import MatchActionCore

    return MatchActionCore(width, port_width=port_width, max_packet=max_packet,
                           flow_entries=flow_entries,
                           flow_ram_style=None if flow_ram == "auto" else flow_ram,
                           acl_rules=acl_rules, rss_entries=rss_entries, meters=meters)


# The straddle choices and the PcieDmaCore argument each gives (None: the width's default).
_STRADDLE = {"auto": None, "on": True, "off": False}


@core(
    "pcie_dma",
    "PCIe DMA core on the UltraScale+ integrated block (hard-IP port names): BAR0 completer, "
    "DMA read/write engines, descriptor and completion queues, MSI-X with moderation, AXI4 "
    "host-memory port, AXI4-Lite application window",
    module="amnic.dma.core",
    params=[
        Param("width", "choice", 256, "PCIe user interface width (256: Gen3 x8, 512: Gen3 x16)",
              choices=(256, 512)),
        Param("bar_bits", "int", 20, "log2 of the BAR0 size in bytes", min=17, max=30),
        Param("msix_vectors", "int", 64, "MSI-X table entries", min=1, max=2048),
        Param("read_tags", "choice", 256, "outstanding DMA reads (256 needs extended tags)",
              choices=(32, 64, 128, 256)),
        Param("tx_queues", "int", 256, "TX descriptor queues", min=1, max=4096),
        Param("rx_queues", "int", 256, "RX descriptor queues", min=1, max=4096),
        Param("completion_queues", "int", 256, "completion queues", min=1, max=4096),
        Param("rq_straddle", "choice", "auto", "two TLPs per RQ beat, as the hard IP's RQ "
              "straddle option (auto: on at 512 bit; 512 bit only)", choices=_STRADDLE),
        Param("rc_straddle", "choice", "auto", "two TLPs per RC beat, as the hard IP's RC "
              "straddle option (auto: on at 512 bit)", choices=_STRADDLE),
    ],
    top="amnic_pcie_dma_w{width}",
)
def _pcie_dma(width, bar_bits, msix_vectors, read_tags, tx_queues, rx_queues,
              completion_queues, rq_straddle, rc_straddle):
    from amnic.dma.core import PcieDmaCore

    return PcieDmaCore(width, bar_bits=bar_bits, msix_vectors=msix_vectors,
                       read_tags=read_tags, tx_queues=tx_queues, rx_queues=rx_queues,
                       completion_queues=completion_queues,
                       rq_straddle=_STRADDLE[rq_straddle], rc_straddle=_STRADDLE[rc_straddle])


# --------------------------------------------------------------------------------------------
# Packet processing blocks (amnic.net) and the flow blocks (amnic.flow) on their own. The flow
# blocks' register buses are behind AXI4-Lite slaves (amnic.flow.axil_cores); their register
# maps are in docs/registers/.


def _datapath_width_param(default=64):
    return Param("width", "choice", default, "packet data width in bits (64: 10G/25G, "
                 "512: 100G)", choices=(64, 128, 256, 512))


def _tag_width_param(default, minimum=0):
    return Param("tag_width", "int", default, "bits of the tag carried from request to result",
                 min=minimum, max=64)


@core(
    "packet_parser",
    "Header parser (Ethernet, VLAN/QinQ, IPv4/IPv6, TCP/UDP, VXLAN, RoCEv2): packets pass "
    "through, one ParseResult record per packet on meta",
    module="amnic.net.parser",
    params=[
        _datapath_width_param(),
        _user_width_param(),
        Param("window", "int", 192, "bytes of each packet decoded (rounded up to whole beats)",
              min=64, max=1024),
        Param("ipv6_ext", "int", 3, "IPv6 extension headers stepped over per level",
              min=0, max=8),
    ],
    top="amnic_packet_parser_w{width}",
)
def _packet_parser(width, user_width, window, ipv6_ext):
    from amnic.net.parser import PacketParser

    return PacketParser(width, user_width, window=window, ipv6_ext=ipv6_ext)


@core(
    "checksum_inserter",
    "Transmit checksum offload: TCP/UDP (partial, CHECKSUM_PARTIAL style) and IPv4 header "
    "checksums inserted per request, store-and-forward",
    module="amnic.net.checksum",
    params=[
        _datapath_width_param(),
        _user_width_param(),
        Param("max_packet", "int", 16384, "longest packet in bytes that gets checksums",
              min=1, max=65535),
    ],
    top="amnic_checksum_inserter_w{width}",
)
def _checksum_inserter(width, user_width, max_packet):
    from amnic.net.checksum import ChecksumInserter

    return ChecksumInserter(width, user_width, max_packet)


@core(
    "packet_editor",
    "Streaming packet editor: insert, remove and overwrite bytes per packet command "
    "(VLAN push/pop, VXLAN encap/decap, DSCP rewrite)",
    module="amnic.net.editor",
    params=[
        _datapath_width_param(),
        Param("user_width", "int", 1, "width of the tuser sideband (bit 0: bad packet)",
              min=1, max=64),
        Param("max_insert", "int", 64, "largest insert in bytes", min=1, max=256),
        Param("max_remove", "int", 128, "largest removal in bytes", min=1, max=1024),
        Param("overwrites", "int", 2, "two-byte overwrite patches per command", min=0, max=8),
        Param("position_width", "int", 16, "bits of offsets and patch positions", min=4,
              max=16),
    ],
    top="amnic_packet_editor_w{width}",
)
def _packet_editor(width, user_width, max_insert, max_remove, overwrites, position_width):
    from amnic.net.editor import PacketEditor

    return PacketEditor(width, user_width, max_insert, max_remove, overwrites, position_width)


@core(
    "flow_table",
    "Exact-match flow table (two-bank bucketised cuckoo hash) with per-entry counters; "
    "AXI4-Lite slot commands",
    module="amnic.flow.axil_cores",
    params=[
        Param("entries", "int", 65536, "slots (a power of two)", min=16, max=1 << 20),
        Param("ways", "choice", 4, "slots per bucket", choices=(1, 2, 4, 8)),
        Param("action_width", "int", 32, "bits of an entry's action word", min=1, max=128),
        _tag_width_param(8),
        Param("ram", "choice", "auto", "table memory: auto, block RAM or UltraRAM",
              choices=("auto", "block", "ultra")),
    ],
    top="amnic_flow_table_e{entries}",
)
def _flow_table(entries, ways, action_width, tag_width, ram):
    from amnic.flow.axil_cores import FlowTableCore

    return FlowTableCore(entries, action_width, ways=ways, tag_width=tag_width,
                         ram_style=None if ram == "auto" else ram)


@core(
    "acl",
    "Priority-ordered ternary ACL over the flow key: ALLOW/DENY and a tenant queue range; "
    "AXI4-Lite rule registers",
    module="amnic.flow.axil_cores",
    params=[
        Param("rules", "int", 64, "rule slots (rule 0 has the highest priority)",
              min=2, max=1024),
        _tag_width_param(16, minimum=1),
    ],
    top="amnic_acl_r{rules}",
)
def _acl(rules, tag_width):
    from amnic.flow.axil_cores import AclCore

    return AclCore(rules, tag_width=tag_width)


@core(
    "rss",
    "Receive-Side Scaling: Toeplitz hash of the flow key and indirection table to a queue; "
    "AXI4-Lite key/table registers",
    module="amnic.flow.axil_cores",
    params=[
        Param("entries", "int", 128, "indirection-table entries (a power of two)",
              min=2, max=1 << 16),
        Param("queue_bits", "int", 12, "width of a queue number", min=1, max=16),
        _tag_width_param(8),
    ],
    top="amnic_rss_e{entries}",
)
def _rss(entries, queue_bits, tag_width):
    from amnic.flow.axil_cores import RssCore

    return RssCore(entries=entries, queue_bits=queue_bits, tag_width=tag_width)


@core(
    "meters",
    "Token-bucket policers (RFC 2697 committed bucket), green/red counters; AXI4-Lite "
    "rate/burst registers",
    module="amnic.flow.axil_cores",
    params=[
        Param("meters", "int", 256, "number of meters (a power of two)", min=2, max=4096),
        _tag_width_param(16, minimum=1),
    ],
    top="amnic_meters_m{meters}",
)
def _meters(meters, tag_width):
    from amnic.flow.axil_cores import MeterCore

    return MeterCore(meters, tag_width=tag_width)


@core(
    "vxlan_encap",
    "VXLAN outer-header generator (RFC 7348): template table on AXI4-Lite, template index "
    "in, 50/70-byte Ethernet+IPv4/IPv6+UDP+VXLAN header out",
    module="amnic.flow.axil_cores",
    params=[Param("templates", "int", 64, "encapsulation templates", min=1, max=64)],
    top="amnic_vxlan_encap",
)
def _vxlan_encap(templates):
    from amnic.flow.axil_cores import VxlanEncapCore

    return VxlanEncapCore(templates)
