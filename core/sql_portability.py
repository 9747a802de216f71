"""The portability lint: DuckDB-only SQL outside dbt_project/macros/portable/ fails `make lint`.

The dbt project runs on DuckDB and on Spark (issue #20). A model, snapshot, singular test or
macro may only use SQL both engines read the same way; what differs lives in the dispatched
macros of macros/portable/ (docs/portable-sql.md). This lint reads the SOURCE files (compiled
SQL would hold the DuckDB branches of those macros) with the Jinja blanked out, so every line
keeps its number, and tokenizes them with sqlglot's DuckDB dialect:

- token rules (every file): `qualify`, the `->`/`->>` JSON operators, `* exclude (...)`,
  `varchar`/`text` without a length, `::` casts, `[...]` lists and indexing, a `''''`-style
  doubled quote inside a string, `ignore nulls` inside a call's parentheses, DuckDB structs,
  and a function sqlglot spells otherwise in Spark SQL (a DuckDB name Spark lacks);
- statement rules (models, snapshots, tests, rendered with stub Jinja and parsed):
  `regexp_replace` with DuckDB's options argument, and anything sqlglot cannot write in Spark
  SQL at all.

    python -m core.sql_portability [PATH ...]   # default: the whole dbt project
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.tokens import Token, TokenType

# core.settings's DBT_PROJECT_DIR, without its import of the warehouse (pandas: 0.8 s of a lint
# that should take a second)
DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# where the engine-specific SQL may live: the dispatched macros
PORTABLE_MACROS = Path("macros") / "portable"
# the folders of SQL the engines run, below the dbt project
SQL_FOLDERS = ("models", "snapshots", "tests", "analyses", "macros")
# folders whose files are whole statements (macros are fragments: token rules only)
STATEMENT_FOLDERS = ("models", "snapshots", "tests", "analyses")

# a Jinja comment, statement or expression; quoted strings inside (a hook's "{{ ... }}") skipped
JINJA_BLOCK = re.compile(
    r"""\{#.*?#\}"""
    r"""|\{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}"""
    r"""|\{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}""",
    re.DOTALL,
)
# what a Jinja expression reads as in the token rules
JINJA_VALUE = "jinja_value"
# the SQL a stub macro call renders: valid as a column, a table, a CTE body or a value list
PLACEHOLDER = "(select 1)"
# what a macro of macros/portable/ renders: an expression (it may take a window after it)
PORTABLE_PLACEHOLDER = "portable_macro()"
# dbt's cross-database type macros, as both engines spell the type
DBT_TYPES = {
    "type_string": "string",
    "type_int": "int",
    "type_bigint": "bigint",
    "type_float": "double",
    "type_numeric": "decimal(28, 6)",
    "type_boolean": "boolean",
    "type_timestamp": "timestamp",
}


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    construct: str
    instead: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.construct} is DuckDB-only: {self.instead}"


def _blank(match: re.Match[str]) -> str:
    block = match.group(0)
    newlines = "\n" * block.count("\n")
    # an expression stands for a value (a column, a type, a relation); tags and comments vanish
    if block.startswith("{{"):
        return JINJA_VALUE + newlines
    return re.sub(r"[^\n]", " ", block)


def blank_jinja(text: str) -> str:
    """The source with each Jinja expression as one name, tags and comments as blanks; the
    newlines kept, so a line of SQL keeps its number."""
    return JINJA_BLOCK.sub(_blank, text)


def _closing(tokens: list[Token], opening: int) -> int | None:
    """The index of the parenthesis closing the one at `opening`."""
    depth = 0
    for index in range(opening, len(tokens)):
        if tokens[index].token_type == TokenType.L_PAREN:
            depth += 1
        elif tokens[index].token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return index
    return None


def _spark_spelling(call: str) -> str | None:
    """The name sqlglot gives a DuckDB function call in Spark SQL (None: not a known function)."""
    try:
        node = sqlglot.parse_one(call, read="duckdb")
    except SqlglotError:
        return None
    if not isinstance(node, exp.Func) or isinstance(node, exp.Anonymous):
        return None
    name = node.sql(dialect="spark").split("(", 1)[0].strip().lower()
    return name if name.isidentifier() else None


def _tokens(sql: str) -> list[Token]:
    return sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql)


def token_findings(path: str, text: str) -> Iterator[Finding]:
    """The DuckDB-only syntax in one source file, by line (the Jinja blanked out first)."""
    sql = blank_jinja(text)
    try:
        tokens = _tokens(sql)
    except SqlglotError as error:
        yield Finding(path, 1, "unreadable SQL", f"sqlglot could not tokenize it ({error})")
        return
    previous: Token | None = None
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        kind, word = token.token_type, token.text.lower()
        if kind == TokenType.QUALIFY:
            yield Finding(
                path,
                token.line,
                "qualify",
                "rank in a subquery (row_number() over (...) as _rank) and filter "
                "with `where _rank = 1`",
            )
        elif kind in (TokenType.ARROW, TokenType.DARROW):
            yield Finding(
                path,
                token.line,
                f"the JSON operator {token.text}",
                "{{ json_text(column, 'field') }} or json_text_fields() (macros/portable/json.sql)",
            )
        elif word == "exclude" and previous is not None and previous.token_type == TokenType.STAR:
            yield Finding(
                path,
                token.line,
                "select * exclude (...)",
                "list the columns, or {{ star_except(relation, alias, [columns]) }}",
            )
        elif (
            word in ("varchar", "text", "bpchar")
            and kind != TokenType.VAR
            and not (following is not None and following.token_type == TokenType.L_PAREN)
        ):
            yield Finding(
                path,
                token.line,
                f"the type {word} without a length",
                "{{ dbt.type_string() }} (or `string` in a seed's column_types)",
            )
        elif (
            word == "nulls"
            and previous is not None
            and previous.text.lower() in ("ignore", "respect")
            and following is not None
            and following.token_type == TokenType.R_PAREN
        ):
            yield Finding(
                path,
                token.line,
                f"{previous.text} nulls inside a function's parentheses",
                "{{ last_value_ignoring_nulls(expression) }} (Spark takes it after them)",
            )
        elif kind == TokenType.COLON_EQ or word == "struct_pack" or kind == TokenType.L_BRACE:
            yield Finding(
                path,
                token.line,
                "a DuckDB struct (struct_pack, :=, {...})",
                "{{ struct_of({'field': 'expression', ...}) }}",
            )
        elif (
            kind == TokenType.VAR
            and following is not None
            and following.token_type == TokenType.L_PAREN
            and (closing := _closing(tokens, index + 1)) is not None
            and (spark := _spark_spelling(sql[token.start : tokens[closing].end + 1]))
            and spark != word
        ):
            yield Finding(
                path,
                token.line,
                f"the function {word}",
                f"Spark calls it {spark}: a name both engines know, or a dispatched macro in "
                "macros/portable/",
            )
        elif kind == TokenType.DCOLON:
            yield Finding(path, token.line, "the :: cast", "cast(x as type)")
        elif kind == TokenType.L_BRACKET:
            yield Finding(
                path,
                token.line,
                "a [...] list or index",
                "{{ array_item(array, position) }} (from 1) or a dispatched macro",
            )
        elif kind == TokenType.STRING and "''" in sql[token.start + 1 : token.end]:
            yield Finding(
                path,
                token.line,
                "a quote written '' inside a string",
                "chr(39) (Spark reads '''' as two empty strings)",
            )
        previous = token


class _Stub(jinja2.Undefined):
    """Any macro, variable or attribute the stub context lacks: a placeholder subquery."""

    def __call__(self, *args: object, **kwargs: object) -> str:
        return PLACEHOLDER

    def __getattr__(self, name: str) -> _Stub:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(name=name)

    def __str__(self) -> str:
        return PLACEHOLDER

    def __iter__(self) -> Iterator[object]:
        return iter(())

    def __bool__(self) -> bool:
        return False


class _Dbt:
    """`dbt.<macro>`: the type macros as both engines spell them, other macros a placeholder."""

    def __getattr__(self, name: str) -> object:
        if name in DBT_TYPES:
            return lambda *args, **kwargs: DBT_TYPES[name]
        return lambda *args, **kwargs: PLACEHOLDER


def _portable_macros(project_dir: Path) -> list[str]:
    """The names of the macros in macros/portable/ (expressions: a call renders a function call)."""
    names = []
    for path in sorted((project_dir / PORTABLE_MACROS).glob("*.sql")):
        names += re.findall(r"\{%-?\s*macro\s+(\w+)", path.read_text())
    return [name for name in names if "__" not in name]


def render(text: str, incremental: bool, project_dir: Path = DBT_PROJECT_DIR) -> str:
    """The statement with stub Jinja: refs and sources as names, macro calls as placeholders."""
    environment = jinja2.Environment(undefined=_Stub, extensions=["jinja2.ext.do"])
    portable = {
        name: (lambda *args, **kwargs: PORTABLE_PLACEHOLDER)
        for name in _portable_macros(project_dir)
    }
    context = {
        **portable,
        "config": lambda *args, **kwargs: "",
        "ref": lambda *names, **kwargs: "ref__" + names[-1],
        "source": lambda source, table: f"{source}__{table}",
        "var": lambda *args, **kwargs: "0",
        "env_var": lambda *args, **kwargs: "0",
        "is_incremental": lambda: incremental,
        "this": "this__relation",
        "execute": True,
        "dbt": _Dbt(),
    }
    return environment.from_string(text).render(context)


def _line_of(name: str, text: str) -> int | None:
    """The first line of the source calling `name`, or None (it is spelled otherwise there)."""
    try:
        tokens = _tokens(blank_jinja(text))
    except SqlglotError:
        return None
    for token, following in itertools.pairwise(tokens):
        if token.text.lower() == name.lower() and following.token_type == TokenType.L_PAREN:
            return token.line
    return None


def statement_findings(
    path: str, text: str, project_dir: Path = DBT_PROJECT_DIR
) -> Iterator[Finding]:
    """What sqlglot finds in the rendered statement: both branches of is_incremental()."""
    seen: set[tuple[str, str]] = set()
    for incremental in (False, True):
        try:
            sql = render(text, incremental, project_dir)
        except jinja2.TemplateError as error:
            yield Finding(
                path,
                getattr(error, "lineno", None) or 1,
                "unrenderable Jinja",
                f"the lint's stub context cannot render it ({error})",
            )
            return
        if not sql.strip():
            continue
        try:
            statements = sqlglot.parse(sql, read="duckdb")
        except SqlglotError as error:
            yield Finding(
                path,
                1,
                "SQL sqlglot cannot parse",
                f"write it so sqlglot's DuckDB dialect reads it ({str(error)[:200]})",
            )
            return
        for statement in statements:
            if statement is None:
                continue
            for node in statement.walk():
                if isinstance(node, exp.RegexpReplace) and node.args.get("modifiers"):
                    key = ("regexp", "")
                    if key not in seen:
                        seen.add(key)
                        yield Finding(
                            path,
                            _line_of("regexp_replace", text) or 1,
                            "regexp_replace with DuckDB's options ('g')",
                            "{{ regexp_replace_all(text, pattern, replacement) }}",
                        )
            try:
                statement.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
            except SqlglotError as error:
                key = ("unsupported", str(error))
                if key not in seen:
                    seen.add(key)
                    yield Finding(
                        path,
                        1,
                        "SQL with no Spark equivalent",
                        f"a dispatched macro ({str(error)[:200]})",
                    )


def project_files(project_dir: Path = DBT_PROJECT_DIR) -> list[Path]:
    """Every .sql file the engines run, but the portable macros."""
    files = []
    for folder in SQL_FOLDERS:
        for path in sorted((project_dir / folder).rglob("*.sql")):
            relative = path.relative_to(project_dir)
            if relative.is_relative_to(PORTABLE_MACROS):
                continue
            files.append(path)
    return files


def lint(paths: Iterable[Path], project_dir: Path = DBT_PROJECT_DIR) -> list[Finding]:
    findings: set[Finding] = set()
    for path in paths:
        try:
            shown = str(path.relative_to(project_dir.parent))
            relative = path.relative_to(project_dir)
        except ValueError:
            shown, relative = str(path), path
        text = path.read_text()
        findings.update(token_findings(shown, text))
        if relative.parts and relative.parts[0] in STATEMENT_FOLDERS:
            findings.update(statement_findings(shown, text, project_dir))
    return sorted(findings)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    started = time.perf_counter()
    paths = [Path(argument).resolve() for argument in arguments] or project_files()
    findings = lint(paths)
    for finding in findings:
        print(finding)
    seconds = time.perf_counter() - started
    if findings:
        print(
            f"portability lint: {len(findings)} DuckDB-only construct(s) outside "
            f"macros/portable/ in {len(paths)} files ({seconds:.1f} s); see docs/portable-sql.md"
        )
        return 1
    print(f"portability lint: {len(paths)} files portable ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
