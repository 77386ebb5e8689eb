"""Register descriptions and their exports: Markdown, C header, Python dict, command line.

Every exporter test reads the generated text back (by parsing it, or through the C
preprocessor) and compares it with the description it came from.
"""

import ast
import contextlib
import io
import re
import shutil
import subprocess
import sys

import pytest

from amnic.csr import (
    HEADER_SIZE,
    Access,
    Field,
    Register,
    RegisterBlock,
    as_dict,
    fourcc,
    render,
    render_c_header,
    render_markdown,
    version,
)
from amnic.csr.export import main
from amnic.mac.stats import REGISTERS as MAC_STATS


def _example_block():
    return RegisterBlock(
        "example", fourcc("EXMP"), version(2, 7), [
            Register("ctrl", 0x10, Access.RW, "Control | with a pipe.", init=0x5, fields=(
                Field("enable", 0, 1, "Enable."),
                Field("mode", 4, 3, "Mode select."),
            )),
            Register("irq", 0x14, Access.W1C, "Interrupt flags.", fields=(
                Field("rx", 0, 1, "Receive."), Field("tx", 1, 1, "Transmit."),
            )),
            Register("kick", 0x18, Access.WO, "Doorbell."),
            Register("start", 0x2C, Access.W1S, "Start an action.", fields=(
                Field("go", 0, 1, "Write 1 to start; reads 1 until done."),)),
            Register("events", 0x1C, Access.RC, "Events since last read."),
            Register("stamp", 0x20, Access.RO, "Time stamp.", width=64,
                     init=0x1234_5678_9ABC_DEF0, fields=(Field("frac", 0, 16, "Fraction."),
                                                         Field("secs", 32, 32, "Seconds."))),
        ], "An example block.")


BLOCKS = [_example_block(), MAC_STATS]
IDS = ["example", "mac_stats"]


# -- description --------------------------------------------------------------------------------

def test_fourcc_and_version():
    assert fourcc("MSTA") == int.from_bytes(b"MSTA", "big")
    assert fourcc("MSTA").to_bytes(4, "big") == b"MSTA"
    assert version(1, 2) == 0x0001_0002
    with pytest.raises(ValueError):
        fourcc("TOOLONG")
    with pytest.raises(ValueError):
        version(1 << 16, 0)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_header(block):
    header = [(r.name, r.offset, r.access, r.init) for r in block.registers[:3]]
    assert header == [
        ("type_id", 0x0, Access.RO, block.type_id),
        ("version", 0x4, Access.RO, block.version),
        ("size", 0x8, Access.RO, block.size),
    ]
    assert all(r.offset >= HEADER_SIZE for r in block.registers[3:])
    assert block.size & (block.size - 1) == 0
    assert block.size >= max(r.offset + r.size for r in block.registers)
    assert block.size // 2 < max(r.offset + r.size for r in block.registers)
    assert 1 << block.addr_width == block.size


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_word_lookup_covers_each_register_once(block):
    seen = {}
    for offset in range(0, block.size, 4):
        hit = block.word_at(offset)
        if hit is not None:
            reg, half = hit
            assert reg.words[half] == offset
            seen.setdefault(reg.name, []).append(half)
    assert seen == {r.name: list(range(r.width // 32)) for r in block.registers}


def test_lookup_by_name():
    block = _example_block()
    assert block["stamp"].words == (0x20, 0x24)
    assert "kick" in block and "nothing" not in block
    assert [r.offset for r in block] == sorted(r.offset for r in block)
    assert len(block) == 3 + 6


@pytest.mark.parametrize("make, match", [
    (lambda: Register("a", 0x12, Access.RO, ""), "aligned"),
    (lambda: Register("a", 0x14, Access.RO, "", width=64), "aligned"),
    (lambda: Register("a", 0x10, Access.RO, "", width=16), "width"),
    (lambda: Register("a", 0x10, Access.RO, "", init=1 << 32), "fit"),
    (lambda: Register("Bad", 0x10, Access.RO, ""), "lower_snake_case"),
    (lambda: Register("a", 0x10, "RO", ""), "Access"),
    (lambda: Register("a", 0x10, Access.RO, "", fields=(Field("f", 30, 4, ""),)), "exceeds"),
    (lambda: Register("a", 0x10, Access.RO, "",
                      fields=(Field("f", 0, 4, ""), Field("g", 3, 2, ""))), "overlaps"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x8, Access.RO, "")], ""), "header"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x10, Access.RO, ""),
                                       Register("c", 0x10, Access.RO, "")], ""), "overlaps"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x10, Access.RO, "", width=64),
                                       Register("c", 0x14, Access.RO, "")], ""), "overlaps"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x10, Access.RO, ""),
                                       Register("a", 0x14, Access.RO, "")], ""), "duplicate"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x10, Access.RO, "")], "", size=0x18),
     "power of two"),
    (lambda: RegisterBlock("b", 0, 0, [Register("a", 0x40, Access.RO, "")], "", size=0x40),
     "power of two"),
    (lambda: RegisterBlock("b", 1 << 32, 0, [], ""), "fit"),
])
def test_bad_descriptions_are_refused(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# -- Markdown ---------------------------------------------------------------------------------

_ROW = re.compile(r"^\| 0x([0-9A-F]+) \| `(\w+)` \| (\d+) \| (\w+) \| `0x([0-9A-F]+)` \| (.*) \|$")


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_markdown_table_matches_description(block):
    text = render_markdown(block)
    rows = [_ROW.match(line) for line in text.splitlines()]
    rows = [r for r in rows if r]
    assert len(rows) == len(block.registers)
    for row, reg in zip(rows, block.registers, strict=True):
        offset, name, width, access, init, doc = row.groups()
        assert (int(offset, 16), name, int(width), access, int(init, 16)) == \
            (reg.offset, reg.name, reg.width, reg.access.value, reg.init)
        assert doc.replace("\\|", "|") == " ".join(reg.doc.split())
    assert f"`0x{block.type_id:08X}`" in text
    assert f"Window: {block.size:#x} bytes" in text


def test_markdown_lists_fields():
    block = _example_block()
    text = render_markdown(block)
    for reg in block.registers:
        for f in reg.fields:
            bits = f"{f.offset}" if f.width == 1 else f"{f.offset + f.width - 1}:{f.offset}"
            assert f"| {bits} | `{f.name}` |" in text
    assert "### `ctrl` fields" in text and "### `kick` fields" not in text


# -- C header ---------------------------------------------------------------------------------

def _expected_defines(block, prefix="AMNIC"):
    base = f"{prefix}_{block.name}".upper()
    want = {
        f"{base}_TYPE_ID_VALUE": block.type_id,
        f"{base}_VERSION_VALUE": block.version,
        f"{base}_SIZE_VALUE": block.size,
    }
    for reg in block.registers:
        name = f"{base}_{reg.name.upper()}"
        want[f"{name}_OFFSET"] = reg.offset
        want[f"{name}_RESET"] = reg.init
        if reg.width == 64:
            want[f"{name}_HI_OFFSET"] = reg.offset + 4
        for f in reg.fields:
            want[f"{name}_{f.name.upper()}_SHIFT"] = f.offset
            want[f"{name}_{f.name.upper()}_MASK"] = ((1 << f.width) - 1) << f.offset
    return want


def _c_int(text):
    return int(re.sub(r"[uUlL]+$", "", text), 0)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_c_header_text_matches_description(block):
    text = render_c_header(block)
    defines = dict(re.findall(r"^#define (\w+)[ \t]+(\S+)", text, re.M))
    guard = f"AMNIC_{block.name.upper()}_H"
    assert f"#ifndef {guard}\n#define {guard}\n" in text
    assert {k: _c_int(v) for k, v in defines.items()} == _expected_defines(block)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_c_header_through_the_c_compiler(block, tmp_path):
    header = tmp_path / f"{block.name}.h"
    header.write_text(render_c_header(block))
    want = _expected_defines(block)
    # Each value must survive a real compile with its integer suffix, checked at compile time.
    checks = "".join(f"_Static_assert({name} == {value}ull, \"{name}\");\n"
                     for name, value in want.items())
    source = tmp_path / "check.c"
    source.write_text(f'#include "{header.name}"\n#include "{header.name}"\n{checks}')
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", str(source)],
                   check=True, cwd=tmp_path)
    macros = subprocess.run(["gcc", "-E", "-dM", str(header)], check=True, text=True,
                            capture_output=True).stdout
    ours = {name: value for name, value in re.findall(r"^#define (AMNIC_\w+) (\S+)$", macros,
                                                      re.M)}
    assert f"AMNIC_{block.name.upper()}_H" not in ours  # the guard has no value
    assert {k: _c_int(v) for k, v in ours.items()} == want


def test_c_header_prefix():
    text = render_c_header(_example_block(), prefix="ACME")
    assert "#define ACME_EXAMPLE_CTRL_OFFSET" in text and "AMNIC" not in text


# -- Python dict and command line ---------------------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_dict_matches_description(block):
    d = as_dict(block)
    assert (d["name"], d["type_id"], d["version"], d["size"]) == \
        (block.name, block.type_id, block.version, block.size)
    assert list(d["registers"]) == [r.name for r in block.registers]
    for reg in block.registers:
        entry = d["registers"][reg.name]
        assert (entry["offset"], entry["width"], entry["access"], entry["init"]) == \
            (reg.offset, reg.width, reg.access.value, reg.init)
        assert entry["fields"] == {f.name: {"offset": f.offset, "width": f.width}
                                   for f in reg.fields}
        assert Access(entry["access"]) is reg.access


def test_render_dispatch():
    block = _example_block()
    assert render(block, "markdown") == render_markdown(block)
    assert render(block, "c") == render_c_header(block)
    assert ast.literal_eval(render(block, "python")) == as_dict(block)
    with pytest.raises(ValueError):
        render(block, "yaml")


def test_cli_main_python_format():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["amnic.mac.stats:REGISTERS", "--format", "python"]) == 0
    assert ast.literal_eval(out.getvalue()) == as_dict(MAC_STATS)


def test_cli_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "amnic.csr", "amnic.mac.stats:REGISTERS",
                             "--format", "c"], check=True, capture_output=True, text=True)
    assert result.stdout == render_c_header(MAC_STATS)
    assert result.stderr == ""
