"""postgres_changes filters, PostgREST style: `column=[not.]op.value`, comma-joined for AND.

Operators, as Supabase Realtime has them since PRs #1912 (comma AND), #1966/#1985 (the rest), verified against
supabase/realtime `lib/extensions/postgres_cdc_rls/subscriptions.ex` (parsing) and the tenant SQL
`realtime.check_equality_op`, `realtime.subscription_check_filters` and `realtime.is_visible_through_filters`
(`priv/repo/tenant_schema/realtime/functions/`, migration 20260626120000_readd_postgrest_filter_ops):

- `eq neq lt lte gt gte` (`= != < <= > >=`), `in.(a,b)` (`= any('{a,b}')`, at most 100 members), `isdistinct`
  (`IS DISTINCT FROM`): the value is cast to the column's type when the channel joins.
- `like` / `ilike` (`LIKE` / `ILIKE`, `%` and `_` wildcards, `\\` escapes; `*` is NOT a wildcard: unlike PostgREST's
  URLs the server passes the pattern through) on text, char(n), name and citext columns (those with a `~~`
  operator of their own type: not varchar, as on Supabase).
- `match` / `imatch` (`~` / `~*`, PostgreSQL's regular expressions) on text and citext columns.
- `is.null|true|false|unknown` (`IS NULL` ...; true/false/unknown only on bool columns).
- `not.` before any operator negates it: `NOT (...)` for the comparisons, `IS NOT` and `IS NOT DISTINCT FROM`.

Values may be double-quoted (`name=eq."a,b"`, `\\` escapes the next character) so they can hold `, ( ) " \\`; an
in-list is a PostgreSQL array literal (`in.("a,b",c)`, unquoted NULL is a null member).

NULLs: a comparison that is NULL in SQL (a NULL column value, or an in-list with a NULL member that does not
match) does not pass, negated or not: the server sums only true results (`is_visible_through_filters`). So
`status=not.eq.x` does not pass a NULL status; `is.null`, `not.is.true` and `isdistinct` are the NULL-aware forms.
A column absent from the row (DELETE's old record without REPLICA IDENTITY FULL) fails every filter.

Everything is evaluated in Python: a filter never becomes SQL text. LIKE and regular expressions run in this
module's own linear-time matchers (no backtracking), with the case folding of a C-collation database (ASCII
letters only) and ASCII character classes. Regular expressions support PostgreSQL's ARE syntax except
back-references, lookaround constraints, embedded options and collating elements, which are rejected when the
channel joins (PostgreSQL accepts them); patterns are limited to 1,000 characters.
"""

from __future__ import annotations

import datetime as dt
import decimal
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct")
ORDERED = {"lt", "lte", "gt", "gte"}
IS_VALUES = ("null", "true", "false", "unknown")
# Column types with a LIKE operator of their own (pg_operator `~~` with oprleft = the type), and with `~`/`~*`
# taking the type on both sides: the checks of realtime.subscription_check_filters.
LIKE_TYPES = frozenset({"text", "bpchar", "name", "citext"})
REGEX_TYPES = frozenset({"text", "citext"})
MAX_IN_VALUES = 100
MAX_PATTERN = 1000
MAX_PROGRAM = 20_000  # regular expression instructions after expanding {m,n}
DUP_MAX = 255  # PostgreSQL's largest repetition count


class FilterError(ValueError):
    """A filter that cannot be applied to the table."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"t", "true", "y", "yes", "on", "1"}:
        return True
    if lowered in {"f", "false", "n", "no", "off", "0"}:
        return False
    raise ValueError(f"invalid input syntax for type boolean: {text!r}")


def _integer(text: str) -> int:
    return int(text.strip())


def _number(text: str) -> decimal.Decimal:
    value = decimal.Decimal(text.strip())
    if not value.is_finite():
        raise ValueError(f"invalid number {text!r}")
    return value


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text.strip())


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text.strip())


def _timestamptz(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)


def _text(text: str) -> str:
    return text


# pg type name -> (cast of a filter value or of a row's JSON value, whether lt/lte/gt/gte apply)
CASTS: dict[str, tuple[Callable[[str], Any], bool]] = {
    "int2": (_integer, True),
    "int4": (_integer, True),
    "int8": (_integer, True),
    "float4": (_number, True),
    "float8": (_number, True),
    "numeric": (_number, True),
    "bool": (_boolean, False),
    "uuid": (_uuid, False),
    "date": (_date, True),
    "timestamptz": (_timestamptz, True),
    "timestamp": (_timestamp, True),
    "text": (_text, True),
    "varchar": (_text, True),
    "bpchar": (_text, True),
    "citext": (_text, True),
    "name": (_text, True),
}


def _row_value(type_name: str, value: Any) -> Any:
    """A row's JSON value (from to_jsonb) in the type the filter's values were cast to."""
    if value is None:
        return None
    cast, _ = CASTS[type_name]
    if isinstance(value, bool):
        return value if type_name == "bool" else cast(str(value).lower())
    return cast(str(value))


# --- case folding and character classes of a C-collation database ---------------------------------------------

_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_ASCII_SWAP = {**_ASCII_LOWER, **{code + 32: code for code in range(ord("A"), ord("Z") + 1)}}


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _swapcase(char: str) -> str:
    return char.translate(_ASCII_SWAP)


_CLASSES: dict[str, frozenset[str]] = {
    "alpha": frozenset(string.ascii_letters),
    "upper": frozenset(string.ascii_uppercase),
    "lower": frozenset(string.ascii_lowercase),
    "digit": frozenset(string.digits),
    "xdigit": frozenset(string.hexdigits),
    "alnum": frozenset(string.ascii_letters + string.digits),
    "punct": frozenset(string.punctuation),
    "space": frozenset(" \t\n\r\f\v"),
    "blank": frozenset(" \t"),
    "cntrl": frozenset(chr(code) for code in [*range(32), 127]),
    "graph": frozenset(chr(code) for code in range(33, 127)),
    "print": frozenset(chr(code) for code in range(32, 127)),
}
_WORD = _CLASSES["alnum"] | {"_"}
_CLASS_ESCAPES = {"d": _CLASSES["digit"], "s": _CLASSES["space"], "w": _WORD}
_CHAR_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


# --- LIKE --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LikePattern:
    """A LIKE pattern: `%` any run, `_` one character, a backslash makes the next character literal.

    Matched segment by segment (leftmost occurrence of each part between `%`s), so the time is bounded by
    len(text) x len(pattern), never exponential."""

    parts: tuple[tuple[str | None, ...], ...]  # between the %s; None stands for `_`
    fold: bool

    @classmethod
    def compile(cls, pattern: str, *, fold: bool) -> LikePattern:
        if len(pattern) > MAX_PATTERN:
            raise FilterError(f"a pattern is limited to {MAX_PATTERN} characters")
        parts: list[tuple[str | None, ...]] = []
        current: list[str | None] = []
        chars = iter(pattern)
        for char in chars:
            if char == "\\":
                escaped = next(chars, None)
                if escaped is None:
                    raise FilterError("LIKE pattern must not end with escape character")
                current.append(_fold(escaped) if fold else escaped)
            elif char == "%":
                parts.append(tuple(current))
                current = []
            elif char == "_":
                current.append(None)
            else:
                current.append(_fold(char) if fold else char)
        parts.append(tuple(current))
        return cls(tuple(parts), fold=fold)

    @staticmethod
    def _at(part: tuple[str | None, ...], text: str, start: int) -> bool:
        if start + len(part) > len(text):
            return False
        return all(char is None or char == text[start + index] for index, char in enumerate(part))

    def matches(self, text: str) -> bool:
        if self.fold:
            text = _fold(text)
        parts = self.parts
        if len(parts) == 1:
            return len(parts[0]) == len(text) and self._at(parts[0], text, 0)
        first, *middle, last = parts
        if not self._at(first, text, 0):
            return False
        position = len(first)
        for part in middle:
            while position + len(part) <= len(text) and not self._at(part, text, position):
                position += 1
            if position + len(part) > len(text):
                return False
            position += len(part)
        end = len(text) - len(last)
        return end >= position and self._at(last, text, end)


# --- regular expressions (PostgreSQL ARE subset, Thompson NFA) --------------------------------------------------

Node = tuple[Any, ...]


class _RegexParser:
    def __init__(self, pattern: str, fold: bool) -> None:
        self.pattern = pattern
        self.fold = fold
        self.pos = 0

    def error(self, reason: str) -> FilterError:
        return FilterError(f"invalid regular expression: {reason}")

    def peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.pattern[index] if index < len(self.pattern) else None

    def take(self) -> str:
        char = self.pattern[self.pos]
        self.pos += 1
        return char

    def parse(self) -> Node:
        node = self.alternation()
        if self.pos < len(self.pattern):  # only a `)` stops an alternation early
            raise self.error("parentheses () not balanced")
        return node

    def alternation(self) -> Node:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.take()
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _quantifier_ahead(self) -> bool:
        char = self.peek()
        next_char = self.peek(1)
        return char in ("*", "+", "?") or (char == "{" and next_char is not None and next_char.isdigit())

    def concatenation(self) -> Node:
        items: list[Node] = []
        while self.peek() not in (None, "|", ")"):
            if self._quantifier_ahead():
                raise self.error("quantifier operand invalid")
            atom = self.atom()
            if self._quantifier_ahead():
                if atom[0] == "assert":
                    raise self.error("quantifier operand invalid")
                low, high = self.quantifier()
                if self.peek() == "?":  # non-greedy: the same strings match
                    self.take()
                if self._quantifier_ahead():
                    raise self.error("quantifier operand invalid")
                atom = ("rep", atom, low, high)
            items.append(atom)
        return ("cat", items)

    def quantifier(self) -> tuple[int, int | None]:
        char = self.take()
        if char == "*":
            return 0, None
        if char == "+":
            return 1, None
        if char == "?":
            return 0, 1
        end = self.pattern.find("}", self.pos)
        if end < 0:
            raise self.error("braces {} not balanced")
        body = self.pattern[self.pos : end]
        self.pos = end + 1
        low_text, comma, high_text = body.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            raise self.error("invalid repetition count(s)")
        low = int(low_text)
        high = None if comma and not high_text else int(high_text) if comma else low
        if low > DUP_MAX or (high is not None and (high > DUP_MAX or high < low)):
            raise self.error("invalid repetition count(s)")
        return low, high

    def atom(self) -> Node:
        char = self.take()
        if char == "(":
            if self.peek() == "?":
                if self.peek(1) != ":":
                    raise FilterError("lookaround constraints and embedded options are not supported")
                self.pos += 2
            node = self.alternation()
            if self.peek() != ")":
                raise self.error("parentheses () not balanced")
            self.take()
            return node
        if char == "[":
            return self.bracket()
        if char == ".":
            return ("char", _any)
        if char == "^":
            return ("assert", "start")
        if char == "$":
            return ("assert", "end")
        if char == "\\":
            return self.escape()
        return ("char", self.literal(char))

    def literal(self, char: str) -> Callable[[str], bool]:
        if self.fold and _swapcase(char) != char:
            folded = _fold(char)
            return lambda c: _fold(c) == folded
        return lambda c: c == char

    def char_set(self, members: frozenset[str], ranges: tuple[tuple[str, str], ...], negated: bool) -> Node:
        def inside(c: str) -> bool:
            return c in members or any(low <= c <= high for low, high in ranges)

        if self.fold:
            return ("char", lambda c: (inside(c) or inside(_swapcase(c))) != negated)
        return ("char", lambda c: inside(c) != negated)

    def escape(self) -> Node:
        if self.peek() is None:
            raise self.error("invalid escape \\ sequence")
        char = self.take()
        if char in _CLASS_ESCAPES:
            return self.char_set(_CLASS_ESCAPES[char], (), negated=False)
        if char.lower() in _CLASS_ESCAPES:
            return self.char_set(_CLASS_ESCAPES[char.lower()], (), negated=True)
        asserts = {"A": "start", "Z": "end", "m": "word_start", "M": "word_end", "y": "boundary", "Y": "inside"}
        if char in asserts:
            return ("assert", asserts[char])
        if char.isdigit():
            raise FilterError("back-references are not supported in match/imatch filters")
        return ("char", self.literal(self.escaped_char(char)))

    def escaped_char(self, char: str) -> str:
        """The character a `\\x` escape stands for (anything but a class or a constraint)."""
        if char in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[char]
        if char in ("x", "u", "U"):
            width = {"x": 8, "u": 4, "U": 8}[char]
            digits = ""
            while len(digits) < width and (self.peek() or "") in string.hexdigits and self.peek():
                digits += self.take()
            if not digits or (char != "x" and len(digits) != width):
                raise self.error("invalid escape \\ sequence")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code == 0:
                raise self.error("invalid escape \\ sequence")
            return chr(code)
        if char == "c":
            if self.peek() is None:
                raise self.error("invalid escape \\ sequence")
            return chr(ord(self.take()) & 0x1F)
        if char.isalnum():
            raise self.error("invalid escape \\ sequence")
        return char

    def bracket(self) -> Node:
        negated = self.peek() == "^"
        if negated:
            self.take()
        members: set[str] = set()
        ranges: list[tuple[str, str]] = []
        first = True
        while True:
            char = self.peek()
            if char is None:
                raise self.error("brackets [] not balanced")
            if char == "]" and not first:
                self.take()
                break
            first = False
            if char == "[" and self.peek(1) == ":":
                end = self.pattern.find(":]", self.pos + 2)
                if end < 0:
                    raise self.error("brackets [] not balanced")
                name = self.pattern[self.pos + 2 : end]
                if name not in _CLASSES:
                    raise self.error("invalid character class")
                members |= _CLASSES[name]
                self.pos = end + 2
                continue
            if char == "[" and self.peek(1) in (".", "="):
                raise FilterError("collating elements and equivalence classes are not supported")
            low = self.bracket_char()
            if isinstance(low, frozenset):
                members |= low
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", None):
                self.take()
                high = self.bracket_char()
                if isinstance(high, frozenset) or high < low:
                    raise self.error("invalid character range")
                ranges.append((low, high))
            else:
                members.add(low)
        return self.char_set(frozenset(members), tuple(ranges), negated)

    def bracket_char(self) -> str | frozenset[str]:
        char = self.take()
        if char != "\\":
            return char
        if self.peek() is None:
            raise self.error("brackets [] not balanced")
        escaped = self.take()
        if escaped in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[escaped]
        if escaped in ("D", "S", "W") or escaped.isdigit():
            raise self.error("invalid escape \\ sequence")
        return self.escaped_char(escaped)


def _any(char: str) -> bool:
    return True


def _emit(node: Node, program: list[Any]) -> None:
    if len(program) > MAX_PROGRAM:
        raise FilterError("invalid regular expression: regular expression is too complex")
    kind = node[0]
    if kind in ("char", "assert"):
        program.append(node)
    elif kind == "cat":
        for item in node[1]:
            _emit(item, program)
    elif kind == "alt":
        jumps = []
        for branch in node[1][:-1]:
            split = len(program)
            program.append(None)
            _emit(branch, program)
            jumps.append(len(program))
            program.append(None)
            program[split] = ("split", split + 1, len(program))
        _emit(node[1][-1], program)
        for jump in jumps:
            program[jump] = ("jmp", len(program))
    else:  # rep
        _, sub, low, high = node
        for _ in range(low):
            _emit(sub, program)
        if high is None:
            split = len(program)
            program.append(None)
            _emit(sub, program)
            program.append(("jmp", split))
            program[split] = ("split", split + 1, len(program))
        else:
            for _ in range(high - low):
                split = len(program)
                program.append(None)
                _emit(sub, program)
                program[split] = ("split", split + 1, len(program))
    if len(program) > MAX_PROGRAM:
        raise FilterError("invalid regular expression: regular expression is too complex")


def _word(char: str | None) -> bool:
    return char is not None and char in _WORD


def _holds(kind: str, text: str, pos: int) -> bool:
    before = text[pos - 1] if pos > 0 else None
    after = text[pos] if pos < len(text) else None
    if kind == "start":
        return pos == 0
    if kind == "end":
        return pos == len(text)
    if kind == "word_start":
        return not _word(before) and _word(after)
    if kind == "word_end":
        return _word(before) and not _word(after)
    if kind == "boundary":
        return _word(before) != _word(after)
    return _word(before) == _word(after)  # inside


@dataclass(frozen=True)
class Regex:
    """A compiled regular expression: `~` (or `~*` with fold), found anywhere in the text, in linear time."""

    program: tuple[Any, ...]

    @classmethod
    def compile(cls, pattern: str, *, fold: bool) -> Regex:
        if len(pattern) > MAX_PATTERN:
            raise FilterError(f"a pattern is limited to {MAX_PATTERN} characters")
        program: list[Any] = []
        _emit(_RegexParser(pattern, fold).parse(), program)
        program.append(("match",))
        return cls(tuple(program))

    def _add(self, states: list[int], seen: set[int], pc: int, text: str, pos: int) -> bool:
        """Adds the states reachable from `pc` without consuming a character; True once `match` is reached."""
        stack = [pc]
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            instruction = self.program[pc]
            kind = instruction[0]
            if kind == "match":
                return True
            if kind == "jmp":
                stack.append(instruction[1])
            elif kind == "split":
                stack.extend((instruction[2], instruction[1]))
            elif kind == "assert":
                if _holds(instruction[1], text, pos):
                    stack.append(pc + 1)
            else:
                states.append(pc)
        return False

    def search(self, text: str) -> bool:
        states: list[int] = []
        seen: set[int] = set()
        for pos in range(len(text) + 1):
            if self._add(states, seen, 0, text, pos):  # a match may start anywhere
                return True
            if pos == len(text):
                return False
            char = text[pos]
            following: list[int] = []
            following_seen: set[int] = set()
            for pc in states:
                if self.program[pc][1](char) and self._add(following, following_seen, pc + 1, text, pos + 1):
                    return True
            states, seen = following, following_seen
        return False


# --- parsing -----------------------------------------------------------------------------------------------------


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quoted values (so `a=in.(1,2),b=eq."x,y"` is two filters).

    As the server: a double quote opens a quoted value only right after `.`, `(` or `,`, and a backslash inside
    one escapes the next character."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    previous = ""
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if quoted:
            current.append(char)
            if char == "\\" and index < len(text):
                current.append(text[index])
                index += 1
            elif char == '"':
                quoted = False
            previous = char
            continue
        if char == '"' and previous in (".", "(", ","):
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            previous = ""
            continue
        current.append(char)
        previous = char
    parts.append("".join(current))
    return parts


def unquote(value: str) -> str:
    """A PostgREST double-quoted value without its quotes and escapes; anything else (including an unterminated
    quote or characters after the closing one) is taken literally."""
    if not value.startswith('"'):
        return value
    result: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            result.append(value[index + 1])
            index += 2
        elif char == '"':
            return "".join(result) if index == len(value) - 1 else value
        else:
            result.append(char)
            index += 1
    return value


def array_members(text: str) -> list[str | None]:
    """The members of an in-list `(a,"b,c",NULL)`, read as PostgreSQL reads the array literal `{a,"b,c",NULL}`."""
    if len(text) < 2 or not (text.startswith("(") and text.endswith(")")):
        raise FilterError("`in` filter value must be wrapped by parentheses")
    inner = text[1:-1]
    malformed = FilterError(f"malformed array literal: {'{' + inner + '}'!r}")
    if inner.strip(" \t\n\r\v\f") == "":
        return []
    members: list[str | None] = []
    index = 0
    while True:
        while index < len(inner) and inner[index].isspace():
            index += 1
        chars: list[str] = []
        if index < len(inner) and inner[index] == '"':
            index += 1
            while True:
                if index >= len(inner):
                    raise malformed
                char = inner[index]
                index += 1
                if char == "\\":
                    if index >= len(inner):
                        raise malformed
                    chars.append(inner[index])
                    index += 1
                elif char == '"':
                    break
                else:
                    chars.append(char)
            while index < len(inner) and inner[index].isspace():
                index += 1
            members.append("".join(chars))
        else:
            kept = 0  # length of chars up to the last escaped or non-space character (trailing spaces are trimmed)
            escaped_any = False
            while index < len(inner) and inner[index] != ",":
                char = inner[index]
                index += 1
                if char in '{}"':
                    raise malformed
                if char == "\\":
                    if index >= len(inner):
                        raise malformed
                    chars.append(inner[index])
                    index += 1
                    kept = len(chars)
                    escaped_any = True
                else:
                    chars.append(char)
                    if not char.isspace():
                        kept = len(chars)
            member = "".join(chars[:kept])
            if not member and not escaped_any:
                raise malformed
            members.append(None if not escaped_any and member.upper() == "NULL" else member)
        if index >= len(inner):
            return members
        if inner[index] != ",":
            raise malformed
        index += 1


@dataclass(frozen=True)
class Condition:
    column: str
    type_name: str
    op: str
    values: tuple[Any, ...]
    negate: bool = False
    matcher: LikePattern | Regex | None = field(default=None, compare=False, repr=False)

    def evaluate(self, row: Mapping[str, Any]) -> bool | None:
        """The SQL truth value of the condition for the row (None for SQL NULL), before any negation."""
        raw = row[self.column]
        if self.op == "is":
            wanted = self.values[0]
            if wanted in ("null", "unknown"):
                return raw is None
            return raw is (wanted == "true")
        value = _row_value(self.type_name, raw)
        if self.op == "isdistinct":
            other = self.values[0]
            return value is None or bool(value != other)
        if value is None:
            return None
        if self.op == "in":
            if value in self.values:
                return True
            return None if None in self.values else False
        if self.op in ("like", "ilike"):
            assert isinstance(self.matcher, LikePattern)
            return self.matcher.matches(value)
        if self.op in ("match", "imatch"):
            assert isinstance(self.matcher, Regex)
            return self.matcher.search(value)
        other = self.values[0]
        if self.op == "eq":
            return bool(value == other)
        if self.op == "neq":
            return bool(value != other)
        if self.op == "lt":
            return bool(value < other)
        if self.op == "lte":
            return bool(value <= other)
        if self.op == "gt":
            return bool(value > other)
        return bool(value >= other)

    def matches(self, row: Mapping[str, Any]) -> bool:
        if self.column not in row:
            return False
        try:
            result = self.evaluate(row)
        except (ValueError, ArithmeticError, TypeError):  # an unreadable value; naive vs aware datetimes
            return False
        if result is None:  # SQL NULL passes neither the condition nor its negation
            return False
        return result != self.negate


def _condition(part: str, columns: Mapping[str, str]) -> Condition:
    segment = part.strip()
    if not segment:
        raise FilterError("filter must not contain empty segments (check for extra commas)")
    column, sep, rest = segment.partition("=")
    column = column.strip()
    negate = rest.startswith("not.")
    if negate:
        rest = rest[len("not.") :]
    op, dot, value = rest.partition(".")
    if not sep or not dot or not column:
        raise FilterError(f"{segment!r} is not column=operator.value")
    if op not in OPERATORS:
        raise FilterError(f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")
    if column not in columns:
        raise FilterError(f"invalid column for filter {column}")
    type_name = columns[column]
    if op == "is":
        if value not in IS_VALUES:
            raise FilterError("invalid value for is filter: must be null, true, false, or unknown")
        if value != "null" and type_name != "bool":
            raise FilterError(f"is {value} filter requires a boolean column, got {type_name}")
        return Condition(column, type_name, op, (value,), negate)
    if type_name not in CASTS:
        raise FilterError(f"filters on column {column!r} of type {type_name} are not supported")
    cast, orderable = CASTS[type_name]
    if op in ORDERED and not orderable:
        raise FilterError(f"operator {op} does not apply to type {type_name}")
    if op in ("like", "ilike", "match", "imatch"):
        allowed = LIKE_TYPES if op in ("like", "ilike") else REGEX_TYPES
        if type_name not in allowed:
            raise FilterError(f"operator {op} requires a text-compatible column type, got {type_name}")
        pattern = unquote(value)
        fold = op in ("ilike", "imatch") or type_name == "citext"
        matcher: LikePattern | Regex
        if op in ("like", "ilike"):
            # The pattern is cast to the column's type: char(n) drops trailing spaces.
            matcher = LikePattern.compile(pattern.rstrip(" ") if type_name == "bpchar" else pattern, fold=fold)
        else:
            try:
                matcher = Regex.compile(pattern, fold=fold)
            except FilterError as error:
                raise FilterError(f"invalid regular expression for {op} filter: {error}") from error
        return Condition(column, type_name, op, (pattern,), negate, matcher)
    raw_values: list[str | None] = array_members(value) if op == "in" else [unquote(value)]
    if op == "in" and len(raw_values) > MAX_IN_VALUES:
        raise FilterError(f"too many values for `in` filter. Maximum {MAX_IN_VALUES}")
    try:
        values = tuple(None if item is None else cast(item) for item in raw_values)
    except (ValueError, ArithmeticError) as error:
        raise FilterError(f"invalid value for column {column!r} of type {type_name}: {error}") from error
    return Condition(column, type_name, op, values, negate)


def parse(text: str | None, columns: Mapping[str, str]) -> tuple[Condition, ...]:
    """The conditions of a binding's `filter` for a table whose columns (name -> pg type name) are given."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise FilterError("filter must be a string")
    if text.strip() == "":
        return ()
    return tuple(_condition(part, columns) for part in split_top_level(text.strip()))


def matches(conditions: tuple[Condition, ...], row: Mapping[str, Any] | None) -> bool:
    if not conditions:
        return True
    if row is None:
        return False
    return all(condition.matches(row) for condition in conditions)
