"""The ``amnic`` command-line tool and the Verilog export of the cores."""
