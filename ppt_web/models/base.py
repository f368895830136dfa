"""Shared column and query helpers."""
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class rare(FunctionElement):
    """A condition few rows meet although its column has few values, such as the open statuses among
    ten years of done ones. SQLite's statistics know only the average rows per value, so there it is
    wrapped in unlikely() and the planner takes the status index instead of reading the table.
    PostgreSQL keeps the real frequencies: there it is the plain condition."""
    name = "rare"  # typeless: a Boolean type would make SQLite's WHERE read "unlikely(...) = 1"
    inherit_cache = True


@compiles(rare)
def _rare(element, compiler, **kw) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(rare, "sqlite")
def _rare_sqlite(element, compiler, **kw) -> str:
    return f"unlikely({compiler.process(element.clauses, **kw)})"


class unindexed(FunctionElement):
    """A column that SQLite's planner must not look up by its index here (SQLite's unary +), so that
    it takes the index of a condition it believes less selective, such as the few failed jobs among
    the jobs of a common family name. PostgreSQL weighs its real statistics: the plain column."""
    name = "unindexed"
    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"
