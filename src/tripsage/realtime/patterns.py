"""LIKE patterns and PostgreSQL regular expressions (ARE), matched in Python in linear time.

The realtime filters `like`/`ilike` and `match`/`imatch` evaluate rows here instead of in SQL. Both matchers
simulate all states at once (no backtracking), so a hostile pattern such as `(a+)+$` cannot stall the gateway.
Case folding and character classes are those of a C-collation database (ASCII letters only). Regular expressions
support PostgreSQL's ARE syntax except back-references, lookaround constraints, embedded options and collating
elements, which are refused (PostgreSQL accepts them); patterns are limited to MAX_PATTERN characters.
`tests/integration/realtime/test_filters_agree_with_postgres.py` checks both against PostgreSQL itself.

Why not google-re2 under `match`/`imatch` (it is linear-time and refuses back-references too): PostgreSQL's word
constraints `\\m` (start of a word) and `\\M` (end of a word) have no RE2 equivalent (RE2 has only `\\b`/`\\B` and no
lookaround to build them from); and RE2's `(?i)` folds Unicode letters (`É` and `é`) where a C-collation database
folds ASCII only. Using it would mean translating every pattern with a parser of ARE's syntax
anyway, and still carrying this matcher for the patterns RE2 cannot express.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

MAX_PATTERN = 1000  # characters
MAX_PROGRAM = 20_000  # regular expression instructions after expanding {m,n}
DUP_MAX = 255  # PostgreSQL's largest repetition count


class PatternError(ValueError):
    """A pattern that cannot be compiled (or that this matcher does not support)."""


# --- case folding and character classes of a C-collation database ---------------------------------------------

_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_ASCII_SWAP = {**_ASCII_LOWER, **{code + 32: code for code in range(ord("A"), ord("Z") + 1)}}


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as lower() does in a C-ctype database."""
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
            raise PatternError(f"a pattern is limited to {MAX_PATTERN} characters")
        parts: list[tuple[str | None, ...]] = []
        current: list[str | None] = []
        chars = iter(pattern)
        for char in chars:
            if char == "\\":
                escaped = next(chars, None)
                if escaped is None:
                    raise PatternError("LIKE pattern must not end with escape character")
                current.append(ascii_lower(escaped) if fold else escaped)
            elif char == "%":
                parts.append(tuple(current))
                current = []
            elif char == "_":
                current.append(None)
            else:
                current.append(ascii_lower(char) if fold else char)
        parts.append(tuple(current))
        return cls(tuple(parts), fold=fold)

    @staticmethod
    def _at(part: tuple[str | None, ...], text: str, start: int) -> bool:
        if start + len(part) > len(text):
            return False
        return all(char is None or char == text[start + index] for index, char in enumerate(part))

    def matches(self, text: str) -> bool:
        if self.fold:
            text = ascii_lower(text)
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

# The parse tree (Char, Assert, Cat, Alt, Rep) compiles to a program of instructions (Char, Assert, Split, Jump,
# Match) that a Thompson simulation runs: every state advanced at once, never backtracking.

AssertKind = Literal["start", "end", "word_start", "word_end", "boundary", "inside"]


@dataclass(frozen=True, slots=True)
class Char:
    """One character that passes `test` (a node, and the instruction it compiles to)."""

    test: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Assert:
    """A zero-width constraint at the current position (a node, and its instruction)."""

    kind: AssertKind


@dataclass(frozen=True, slots=True)
class Cat:
    items: list[Node]


@dataclass(frozen=True, slots=True)
class Alt:
    branches: list[Node]


@dataclass(frozen=True, slots=True)
class Rep:
    """`sub` from `low` to `high` times (None: unbounded)."""

    sub: Node
    low: int
    high: int | None


@dataclass(frozen=True, slots=True)
class Split:
    """Continue at both `first` and `second` (first preferred)."""

    first: int
    second: int


@dataclass(frozen=True, slots=True)
class Jump:
    target: int


@dataclass(frozen=True, slots=True)
class Match:
    pass


Node = Char | Assert | Cat | Alt | Rep
Instruction = Char | Assert | Split | Jump | Match


class _RegexParser:
    def __init__(self, pattern: str, fold: bool) -> None:
        self.pattern = pattern
        self.fold = fold
        self.pos = 0

    def error(self, reason: str) -> PatternError:
        return PatternError(f"invalid regular expression: {reason}")

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
        return branches[0] if len(branches) == 1 else Alt(branches)

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
                if isinstance(atom, Assert):
                    raise self.error("quantifier operand invalid")
                low, high = self.quantifier()
                if self.peek() == "?":  # non-greedy: the same strings match
                    self.take()
                if self._quantifier_ahead():
                    raise self.error("quantifier operand invalid")
                atom = Rep(atom, low, high)
            items.append(atom)
        return Cat(items)

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
                    raise PatternError("lookaround constraints and embedded options are not supported")
                self.pos += 2
            node = self.alternation()
            if self.peek() != ")":
                raise self.error("parentheses () not balanced")
            self.take()
            return node
        if char == "[":
            return self.bracket()
        if char == ".":
            return Char(_any)
        if char == "^":
            return Assert("start")
        if char == "$":
            return Assert("end")
        if char == "\\":
            return self.escape()
        return Char(self.literal(char))

    def literal(self, char: str) -> Callable[[str], bool]:
        if self.fold and _swapcase(char) != char:
            folded = ascii_lower(char)
            return lambda c: ascii_lower(c) == folded
        return lambda c: c == char

    def char_set(self, members: frozenset[str], ranges: tuple[tuple[str, str], ...], negated: bool) -> Node:
        def inside(c: str) -> bool:
            return c in members or any(low <= c <= high for low, high in ranges)

        if self.fold:
            return Char(lambda c: (inside(c) or inside(_swapcase(c))) != negated)
        return Char(lambda c: inside(c) != negated)

    def escape(self) -> Node:
        if self.peek() is None:
            raise self.error("invalid escape \\ sequence")
        char = self.take()
        if char in _CLASS_ESCAPES:
            return self.char_set(_CLASS_ESCAPES[char], (), negated=False)
        if char.lower() in _CLASS_ESCAPES:
            return self.char_set(_CLASS_ESCAPES[char.lower()], (), negated=True)
        asserts: dict[str, AssertKind] = {
            "A": "start",
            "Z": "end",
            "m": "word_start",
            "M": "word_end",
            "y": "boundary",
            "Y": "inside",
        }
        if char in asserts:
            return Assert(asserts[char])
        if char.isdigit():
            raise PatternError("back-references are not supported in match/imatch filters")
        return Char(self.literal(self.escaped_char(char)))

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
                raise PatternError("collating elements and equivalence classes are not supported")
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


def _emit(node: Node, program: list[Instruction | None]) -> None:
    if len(program) > MAX_PROGRAM:
        raise PatternError("invalid regular expression: regular expression is too complex")
    match node:
        case Char() | Assert():
            program.append(node)
        case Cat(items):
            for item in items:
                _emit(item, program)
        case Alt(branches):
            jumps = []
            for branch in branches[:-1]:
                split = len(program)
                program.append(None)
                _emit(branch, program)
                jumps.append(len(program))
                program.append(None)
                program[split] = Split(split + 1, len(program))
            _emit(branches[-1], program)
            for jump in jumps:
                program[jump] = Jump(len(program))
        case Rep(sub, low, high):
            for _ in range(low):
                _emit(sub, program)
            if high is None:
                split = len(program)
                program.append(None)
                _emit(sub, program)
                program.append(Jump(split))
                program[split] = Split(split + 1, len(program))
            else:
                for _ in range(high - low):
                    split = len(program)
                    program.append(None)
                    _emit(sub, program)
                    program[split] = Split(split + 1, len(program))
    if len(program) > MAX_PROGRAM:
        raise PatternError("invalid regular expression: regular expression is too complex")


def _word(char: str | None) -> bool:
    return char is not None and char in _WORD


def _holds(kind: AssertKind, text: str, pos: int) -> bool:
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

    program: tuple[Instruction, ...]

    @classmethod
    def compile(cls, pattern: str, *, fold: bool) -> Regex:
        if len(pattern) > MAX_PATTERN:
            raise PatternError(f"a pattern is limited to {MAX_PATTERN} characters")
        program: list[Instruction | None] = []
        _emit(_RegexParser(pattern, fold).parse(), program)
        program.append(Match())
        complete = [instruction for instruction in program if instruction is not None]
        assert len(complete) == len(program), "every placeholder is patched by _emit"
        return cls(tuple(complete))

    def _add(self, states: list[int], seen: set[int], pc: int, text: str, pos: int) -> bool:
        """Adds the states reachable from `pc` without consuming a character; True once `match` is reached."""
        stack = [pc]
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            match self.program[pc]:
                case Match():
                    return True
                case Jump(target):
                    stack.append(target)
                case Split(first, second):
                    stack.extend((second, first))
                case Assert(kind):
                    if _holds(kind, text, pos):
                        stack.append(pc + 1)
                case Char():
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
                # Only Char instructions are ever added to `states`.
                if cast(Char, self.program[pc]).test(char) and self._add(
                    following, following_seen, pc + 1, text, pos + 1
                ):
                    return True
            states, seen = following, following_seen
        return False
