"""Write the benchmark tables of the docs from the JSON the benchmarks wrote.

Each table in ``docs/`` (and the README) sits between ``<!-- begin: NAME.json -->`` and ``<!-- end: NAME.json -->``
and is ``benchmarks/NAME.py``'s ``table(results)`` of ``benchmarks/results/NAME.json``, so
no figure in the docs is typed by hand. A mode of a benchmark writes ``NAME_MODE.json``
(``batched.py --protocol``: ``batched_protocol.json``), which ``benchmarks/NAME.py`` renders
when there is no ``benchmarks/NAME_MODE.py``. After rerunning a benchmark with
``--json benchmarks/results/NAME.json``:

    python benchmarks/docs.py          # rewrite the tables in docs/
    python benchmarks/docs.py --check  # exit 1 if a table differs from its JSON (the tests run this)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"
README = HERE.parent / "README.md"
BLOCK = re.compile(r"(<!-- begin: (?P<name>[\w-]+)\.json -->\n)(?P<body>.*?)(<!-- end: (?P=name)\.json -->)", re.S)


def script(name: str) -> Path:
    """The benchmark that renders ``benchmarks/results/<name>.json``: ``<name>.py``, else for a mode's
    results (``<benchmark>_<mode>.json``) ``<benchmark>.py``.

    Examples:
        >>> script("one_pass").name, script("batched_protocol").name
        ('one_pass.py', 'batched.py')
    """
    path = HERE / f"{name}.py"
    if not path.exists() and "_" in name:
        path = HERE / f"{name.rsplit('_', 1)[0]}.py"
    return path


def render(name: str) -> str:
    """The Markdown that ``benchmarks/<name>.py`` makes of ``benchmarks/results/<name>.json``."""
    spec = importlib.util.spec_from_file_location(f"_benchmark_{name}", script(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((RESULTS / f"{name}.json").read_text())
    return module.table(results).rstrip("\n") + "\n"


def refresh(text: str) -> str:
    """``text`` with every benchmark block rendered anew."""
    return BLOCK.sub(lambda m: m.group(1) + "\n" + render(m["name"]) + "\n" + m.group(4), text)


def pages() -> list[Path]:
    """The docs pages and the README that hold a benchmark block."""
    return sorted(p for p in [*DOCS.rglob("*.md"), README] if BLOCK.search(p.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text()
        new = refresh(text)
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    for page in stale:
        print(f"{page.relative_to(HERE.parent)}: {'differs from' if args.check else 'rewritten from'} its JSON")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
