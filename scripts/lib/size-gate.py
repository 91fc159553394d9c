#!/usr/bin/env python3
"""Reader-size gates: no production function over 60 lines, no production file over 500, and
README.md at most 150 lines. Production code is `shared/src` and `functions/src` outside
`#[cfg(test)]` items; scripts/lib/size-allow.txt may excuse a path (or path::function) with a
reason, and should stay empty."""
import pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_FN, MAX_FILE, MAX_README = 60, 500, 150
SOURCES = ["shared/src", "functions/src"]


def code_only(text):
    """The text with comments, strings and char literals blanked (newlines kept), so braces
    can be counted."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j): depth += 1; j += 2
                elif text.startswith("*/", j): depth -= 1; j += 2
                else: j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not (text[i-1].isalnum() or text[i-1] == "_")):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1])); i = j + 1
        elif c == "'" and (m := re.compile(r"'(\\.[^']*|[^\\'])'").match(text, i)):
            out.append(" " * (m.end() - i)); i = m.end()
        else:
            out.append(c); i += 1
    return "".join(out)


def block_end(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{": depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0: return j
    return len(code) - 1


def production_spans(code):
    """Line ranges (1-based, inclusive) of `#[cfg(test)]` items, to leave out."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        semi, brace = code.find(";", m.end()), code.find("{", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        end = block_end(code, brace)
        spans.append((code.count("\n", 0, m.start()) + 1, code.count("\n", 0, end) + 1))
    return spans


FN = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))? )?(?:const )?(?:async )?(?:unsafe )?fn (\w+)", re.M)


def check(allowed):
    problems = []
    for base in SOURCES:
        for path in sorted((ROOT / base).rglob("*.rs")):
            rel = str(path.relative_to(ROOT))
            code = code_only(path.read_text())
            skip = production_spans(code)
            in_test = lambda line: any(a <= line <= b for a, b in skip)
            lines = sum(1 for k, _ in enumerate(code.split("\n"), 1) if not in_test(k))
            if lines > MAX_FILE and rel not in allowed:
                problems.append(f"{rel}: {lines} production lines (at most {MAX_FILE})")
            for m in FN.finditer(code):
                start = code.count("\n", 0, m.start()) + 1
                brace, semi = code.find("{", m.end()), code.find(";", m.end())
                if in_test(start) or brace < 0 or (0 <= semi < brace):
                    continue
                length = code.count("\n", 0, block_end(code, brace)) + 2 - start
                name = f"{rel}::{m.group(1)}"
                if length > MAX_FN and name not in allowed:
                    problems.append(f"{name}: {length} lines (at most {MAX_FN})")
    readme = len((ROOT / "README.md").read_text().splitlines())
    if readme > MAX_README:
        problems.append(f"README.md: {readme} lines (at most {MAX_README})")
    return problems


def self_check():
    """The counting itself, on a sample with braces in strings, chars and comments, a raw
    string, and a `#[cfg(test)]` module, so a miscount fails here rather than passing a file."""
    body = "\n".join(f"    let x{i} = 1;" for i in range(59))
    sample = (
        '//! a {\nfn short() { let s = "}}"; let c = \'}\'; /* } */ }\n'
        f"fn long() {{\n{body}\n}}\n"
        'fn raw() { let r = r#"{"#; }\n'
        "#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\n"
    )
    code = code_only(sample)
    lengths = {}
    for m in FN.finditer(code):
        start = code.count("\n", 0, m.start()) + 1
        lengths[m.group(1)] = code.count("\n", 0, block_end(code, code.find("{", m.end()))) + 2 - start
    assert lengths == {"short": 1, "long": 61, "raw": 1, "t": 2}, lengths
    assert production_spans(code) == [(65, 69)], production_spans(code)


def allow_list():
    path = ROOT / "scripts/lib/size-allow.txt"
    allowed = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.strip() and not line.startswith("#"):
            entry, _, why = line.partition(" ")
            if not why.strip():
                sys.exit(f"size-allow.txt: {entry} needs a reason")
            allowed[entry] = why
    return allowed


if __name__ == "__main__":
    self_check()
    problems = check(allow_list())
    for p in problems:
        print(p)
    print(f"size gate: {0 if problems else 1} passed, {1 if problems else 0} failed")
    sys.exit(1 if problems else 0)
