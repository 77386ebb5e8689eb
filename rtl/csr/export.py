"""Render a :class:`~amnic.csr.regmap.RegisterBlock` for people, C programs and Python.

Each renderer reads only the description, so the Markdown reference, the C header and the
driver model's dict cannot drift from the hardware, which decodes the same description.

Command line::

    python -m amnic.csr amnic.mac.stats:REGISTERS --format c > amnic_mac_stats.h

The argument names a module and an attribute holding a ``RegisterBlock`` (or a function that
returns one); ``--format`` is ``markdown`` (default), ``c`` or ``python``.
"""

import argparse
import importlib
import pprint
import sys

from .regmap import RegisterBlock

__all__ = ["render_markdown", "render_c_header", "as_dict", "render", "load_block", "main"]


def _hex(value, width):
    return f"0x{value:0{width // 4}X}"


def _table_text(text):
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(block):
    """A Markdown register reference: a table of every register, then the bit fields."""
    off_digits = max(3, len(f"{block.size - 1:x}"))
    lines = [
        f"## `{block.name}` register block",
        "",
        _table_text(block.doc),
        "",
        f"- Type id: `{_hex(block.type_id, 32)}`",
        f"- Version: {block.version >> 16}.{block.version & 0xFFFF} (`{_hex(block.version, 32)}`)",
        f"- Window: {block.size:#x} bytes",
        "",
        "Offsets are in bytes from the start of the block. A 64-bit register is two words, low "
        "half first; reading the low word latches the high word, which the next read of a high "
        "word returns, so read low then high for a coherent value. Unmapped offsets read 0 "
        "with a bus error.",
        "",
        "| Offset | Name | Width | Access | Reset | Description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in block.registers:
        lines.append(
            f"| 0x{r.offset:0{off_digits}X} | `{r.name}` | {r.width} | {r.access.value} | "
            f"`{_hex(r.init, r.width)}` | {_table_text(r.doc)} |")
    fielded = [r for r in block.registers if r.fields]
    for r in fielded:
        lines += [
            "",
            f"### `{r.name}` fields",
            "",
            "| Bits | Field | Description |",
            "| --- | --- | --- |",
        ]
        for f in sorted(r.fields, key=lambda f: f.offset):
            bits = (f"{f.offset}" if f.width == 1 else f"{f.offset + f.width - 1}:{f.offset}")
            lines.append(f"| {bits} | `{f.name}` | {_table_text(f.doc)} |")
    return "\n".join(lines) + "\n"


def render_c_header(block, prefix="AMNIC"):
    """A C header with one ``#define`` per offset, reset value and field.

    Names are ``<PREFIX>_<BLOCK>_<REGISTER>_OFFSET`` (the low word of a 64-bit register; its
    high word is ``..._HI_OFFSET``), ``..._RESET``, and ``..._<FIELD>_SHIFT`` /
    ``..._<FIELD>_MASK`` (mask in place). The block gets ``..._TYPE_ID_VALUE``,
    ``..._VERSION_VALUE`` and ``..._SIZE_VALUE``.
    """
    base = f"{prefix}_{block.name}".upper() if prefix else block.name.upper()
    guard = f"{base}_H"

    def define(name, value, comment=None):
        text = f"#define {name:<48} {value}"
        return f"{text}  /* {comment} */" if comment else text

    lines = [
        f"/* {block.name} register block: generated from its description; do not edit. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        define(f"{base}_TYPE_ID_VALUE", f"0x{block.type_id:08X}u"),
        define(f"{base}_VERSION_VALUE", f"0x{block.version:08X}u"),
        define(f"{base}_SIZE_VALUE", f"0x{block.size:X}u"),
        "",
    ]
    for r in block.registers:
        name = f"{base}_{r.name.upper()}"
        lines.append(define(f"{name}_OFFSET", f"0x{r.offset:03X}u",
                            f"{r.access.value}, {r.width} bit"))
        if r.width == 64:
            lines.append(define(f"{name}_HI_OFFSET", f"0x{r.words[1]:03X}u"))
        suffix = "ull" if r.width == 64 else "u"
        lines.append(define(f"{name}_RESET", f"0x{r.init:X}{suffix}"))
        for f in r.fields:
            lines.append(define(f"{name}_{f.name.upper()}_SHIFT", f"{f.offset}"))
            lines.append(define(f"{name}_{f.name.upper()}_MASK", f"0x{f.mask:X}{suffix}"))
    lines += ["", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def as_dict(block):
    """The block as plain Python data for the driver model.

    Returns
    -------
    dict
        ``{"name", "type_id", "version", "size", "registers"}`` where ``registers`` maps each
        register name to ``{"offset", "width", "access", "init", "fields"}`` and ``fields``
        maps a field name to ``{"offset", "width"}`` (bit positions). ``access`` is the
        :class:`~amnic.csr.regmap.Access` value string (``"RO"``...).
    """
    return {
        "name": block.name,
        "type_id": block.type_id,
        "version": block.version,
        "size": block.size,
        "registers": {
            r.name: {
                "offset": r.offset,
                "width": r.width,
                "access": r.access.value,
                "init": r.init,
                "fields": {f.name: {"offset": f.offset, "width": f.width} for f in r.fields},
            }
            for r in block.registers
        },
    }


_FORMATS = {
    "markdown": render_markdown,
    "c": render_c_header,
    "python": lambda block: pprint.pformat(as_dict(block), sort_dicts=False) + "\n",
}


def render(block, fmt):
    """Render ``block`` as ``fmt`` (``"markdown"``, ``"c"`` or ``"python"``)."""
    try:
        return _FORMATS[fmt](block)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose from {sorted(_FORMATS)}") from None


def load_block(spec):
    """Import ``"package.module:attribute"`` and return the RegisterBlock it names."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ValueError(f"expected 'module:attribute', not {spec!r}")
    obj = getattr(importlib.import_module(module_name), attr)
    if callable(obj) and not isinstance(obj, RegisterBlock):
        obj = obj()
    if not isinstance(obj, RegisterBlock):
        raise TypeError(f"{spec} is not a RegisterBlock")
    return obj


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m amnic.csr",
                                     description="Render a register block description.")
    parser.add_argument("block", help="module:attribute naming a RegisterBlock")
    parser.add_argument("--format", choices=sorted(_FORMATS), default="markdown")
    args = parser.parse_args(argv)
    sys.stdout.write(render(load_block(args.block), args.format))
    return 0
