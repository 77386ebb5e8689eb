"""amnic: an open FPGA SmartNIC in Amaranth HDL.

The import package maps onto the source tree: ``amnic`` (``rtl/``) holds synthesizable cores,
``amnic.sim`` (``sim/``) host-side models and verification helpers, ``amnic.boards``
(``boards/``) board top-levels, ``amnic.cli`` (``cli/``) the command-line tool and Verilog
export, ``amnic.bench`` (``bench/``) the cycle-exact benchmarks.
"""

__version__ = "0.1.0"
