"""Writes docs/diagnostics.md from the diagnostic codes: `python -m worker.diagnostics_doc`."""

from __future__ import annotations

import sys
from pathlib import Path

from workflows.dsl.explanations import render_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "diagnostics.md"


def main(argv: list[str] | None = None) -> int:
    """Write the doc to the path given (default docs/diagnostics.md of this checkout)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DOC
    target.write_text(render_markdown(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
