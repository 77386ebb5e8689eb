"""Control and status registers: the register bus, register descriptions and their exports.

* :mod:`amnic.csr.regmap` — :class:`Register` / :class:`RegisterBlock`, the one description of
  a block's registers (every block starts with a type id / version / size header);
* :mod:`amnic.csr.export` — that description as Markdown, a C header and a Python dict;
* :mod:`amnic.csr.bus` — the register bus that register blocks speak (AXI4-Lite is adapted to
  it by :class:`amnic.stream.axil.AxiLiteToRegisterBus`), and :class:`RegisterBusDecoder`,
  which places blocks in one address space;
* :mod:`amnic.csr.file` — :class:`RegisterFile`, the storage and decode of a block's
  registers, generated from its description;
* :mod:`amnic.csr.counters` — :class:`CounterBank`, many wide counters in RAM behind one
  read-modify-write engine, for statistics;
* :mod:`amnic.csr.ids` — the type ids of amnic's blocks;
* :mod:`amnic.sim.csr_bus` (in sim/) — testbench coroutines that drive the register bus.
"""

from .bus import RegisterBusDecoder, RegisterBusSignature
from .counters import CounterBank, CounterEventLayout
from .export import as_dict, render, render_c_header, render_markdown
from .file import RegisterFile
from .regmap import HEADER_SIZE, Access, Field, Register, RegisterBlock, fourcc, version

__all__ = [
    "Access", "Field", "Register", "RegisterBlock", "HEADER_SIZE", "fourcc", "version",
    "render_markdown", "render_c_header", "as_dict", "render",
    "RegisterBusSignature", "RegisterBusDecoder", "RegisterFile",
    "CounterBank", "CounterEventLayout",
]
