#!/usr/bin/env python3
"""Checks that the #include lines follow docs/architecture.md's module table.

Every file under src/<module>/ and include/ohm/<module>/ may include headers of its own module
and of the modules the table says it depends on (transitively); anything else is a layering
violation, reported with file and line. A module directory the table does not list fails too.
Exit status 0 when clean. Run by ctest (layers).
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table(doc: Path):
    deps = {}
    for line in doc.read_text().splitlines():
        m = re.match(r"^\| `(\w+)` \|.*\| ([^|]*) \|\s*$", line)
        if m:
            raw = m.group(2).strip()
            deps[m.group(1)] = None if raw == "everything" else \
                [d.strip() for d in raw.split(",") if d.strip() not in ("", "—", "-")]
    return deps


def closure(deps, m, seen=None):
    seen = set() if seen is None else seen
    for d in deps.get(m) or []:
        if d not in seen:
            seen.add(d)
            closure(deps, d, seen)
    return seen


def module_of(f: Path, inc: str):
    """The module a quoted include names: "ohm/<m>/..." or a relative path resolved from the
    including file into src/<m>/ or include/ohm/<m>/ (None: not a module header)."""
    m = re.match(r"ohm/(\w+)/", inc)
    if m:
        return m.group(1)
    p = (f.parent / inc).resolve()
    for base in (ROOT / "src", ROOT / "include" / "ohm"):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return rel.parts[0] if len(rel.parts) > 1 else None
    return None


def main():
    deps = table(ROOT / "docs" / "architecture.md")
    modules = sorted({p.name for p in (ROOT / "src").iterdir() if p.is_dir()} |
                     {p.name for p in (ROOT / "include" / "ohm").iterdir() if p.is_dir()})
    errors = []
    for m in modules:
        if m not in deps:
            errors.append(f"module '{m}' (src/{m} or include/ohm/{m}) is not in docs/architecture.md's table")
            continue
        allowed = None if deps[m] is None else closure(deps, m) | {m}
        files = [p for base in (ROOT / "src" / m, ROOT / "include" / "ohm" / m) if base.exists()
                 for p in base.rglob("*") if p.suffix in (".h", ".hpp", ".cpp", ".inc")]
        for f in files:
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                inc = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not inc:
                    continue
                target = module_of(f, inc.group(1))
                if target is None:
                    continue
                if allowed is not None and target not in allowed:
                    errors.append(f"{f.relative_to(ROOT)}:{n}: {m} includes {target} "
                                  f"(docs/architecture.md: {m} depends on {', '.join(deps[m]) or 'nothing'})")
    for e in errors:
        print(e)
    print(f"check_layers: {len(modules)} modules, {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
