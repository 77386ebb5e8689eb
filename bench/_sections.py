"""Benchmarks made of sections: each section measures rows, the runner prints them as Markdown
tables, writes them as JSON and fails when a row says its result did not check out.

A benchmark module lists its :class:`Section` objects and calls :func:`run` from its ``main``;
``--quick`` skips the sections marked ``full_only``, ``--section NAME`` runs only some, and a
section that raises is reported as failed while the others still run.
"""

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Column", "Section", "text_column", "render", "failed", "run"]


@dataclass(frozen=True)
class Column:
    """A table column: the row key, its heading and a format spec (``None`` prints as -)."""

    key: str
    heading: str
    fmt: str = ""
    align: str = "---:"

    def cell(self, row):
        value = row.get(self.key)
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return format(value, self.fmt)


@dataclass(frozen=True)
class Section:
    """A part of a benchmark: ``rows(quick)`` measures, the rest describes the table."""

    name: str
    title: str
    rows: object
    columns: tuple
    note: str = ""
    full_only: bool = False  #: skipped with ``--quick``


def text_column(key, heading):
    """A left-aligned column of text."""
    return Column(key, heading, "", "---")


def render(results, sections):
    """The Markdown tables of ``results`` (``{section name: rows}``) for ``sections``; a failed
    section (``{"error": text}``) prints its error, a skipped one its reason."""
    lines = []
    for section in sections:
        rows = results.get(section.name)
        if rows is None:
            continue
        lines += [f"## {section.title}", ""]
        if section.note:
            lines += [section.note, ""]
        if isinstance(rows, dict):
            lines += [f"FAILED: {rows['error']}" if "error" in rows else rows["skipped"], ""]
            continue
        cols = section.columns
        lines.append("| " + " | ".join(c.heading for c in cols) + " |")
        lines.append("|" + "|".join(c.align for c in cols) + "|")
        for row in rows:
            lines.append("| " + " | ".join(c.cell(row) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def failed(results):
    """Whether a section raised or a row has ``ok`` false."""
    for name, rows in results.items():
        if name in ("elapsed_s", "quick"):
            continue
        if isinstance(rows, dict) and "error" in rows:
            return True
        if isinstance(rows, list) and any(row.get("ok") is False for row in rows):
            return True
    return False


def run(name, doc, sections, argv, *, quick_help, progress):
    """Parse ``argv``, run the chosen ``sections``, print and write the results; returns the
    exit status (1 when :func:`failed`)."""
    names = [s.name for s in sections]
    parser = argparse.ArgumentParser(prog=f"amnic bench {name}", description=doc.split("\n")[0])
    parser.add_argument("--json", default=f"build/bench/{name}.json", help="JSON output path")
    parser.add_argument("--markdown", default=None, help="also write the tables to this file")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--section", action="append", choices=names, metavar="NAME",
                        help=f"run only this section (repeatable): {', '.join(names)}")
    args = parser.parse_args(argv)

    chosen = [s for s in sections if not args.section or s.name in args.section]
    results = {"quick": args.quick, "elapsed_s": {}}
    for section in chosen:
        if args.quick and section.full_only:
            results[section.name] = {"skipped": "Skipped with --quick."}
            continue
        start = time.monotonic()
        try:
            results[section.name] = section.rows(args.quick)
        except Exception as e:  # report the section as failed and run the others
            progress(f"section {section.name} failed: {type(e).__name__}: {e}")
            results[section.name] = {"error": f"{type(e).__name__}: {e}"}
        results["elapsed_s"][section.name] = round(time.monotonic() - start, 1)
    table = render(results, sections)
    print(table)
    print("Run time per section (s): " + ", ".join(
        f"{k} {v:g}" for k, v in results["elapsed_s"].items()))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    progress(f"JSON written to {path}")
    return 1 if failed(results) else 0
