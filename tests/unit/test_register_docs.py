"""The committed register references and C headers are what the descriptions generate."""

import subprocess
from pathlib import Path

from amnic.cli.main import main, write_register_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "registers"


def test_committed_register_docs_are_current(tmp_path):
    written = write_register_docs(tmp_path)
    assert len(written) >= 15
    for path in written:
        committed = DOCS / path.name
        assert committed.exists(), f"{committed} is missing: run amnic generate --registers"
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run amnic generate --registers docs/registers")


def test_every_c_header_compiles_together(tmp_path):
    headers = [p for p in write_register_docs(tmp_path) if p.suffix == ".h"]
    source = tmp_path / "all.c"
    source.write_text("".join(f'#include "{h.name}"\n' for h in headers)
                      + "int main(void) { return (int)AMNIC_MATCH_ACTION_SIZE_VALUE; }\n")
    subprocess.run(["gcc", "-Wall", "-Werror", "-fsyntax-only", str(source)], check=True,
                   cwd=tmp_path)


def test_registers_option_refuses_other_arguments(capsys):
    assert main(["generate", "--registers", "x", "--all"]) == 2
    assert "--registers" in capsys.readouterr().err
