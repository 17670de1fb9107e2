"""Rule-based travel preference extraction from one chat message.

Six categories (budget, accommodation, dietary, pace, interests, travel_style); each match gives a canonical value,
a confidence in [0, 1] and the words that matched. Confidence starts from the rule's base and rises with explicit
wording ("I prefer", "always", "must"), falls with hedging ("maybe", "might"); a negated mention ("I don't like
hostels", "no museums") is not a preference for that value and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("budget", "accommodation", "dietary", "pace", "interests", "travel_style")


@dataclass(frozen=True)
class Preference:
    category: str
    value: str
    confidence: float
    evidence: str

    def describe(self) -> str:
        """The long-term memory's content for this preference."""
        label = self.category.replace("_", " ")
        return f"User prefers {self.value} ({label})"


@dataclass(frozen=True)
class _Rule:
    category: str
    value: str
    pattern: re.Pattern[str]
    base: float


def _rule(category: str, value: str, words: str, base: float = 0.6) -> _Rule:
    return _Rule(category, value, re.compile(rf"\b(?:{words})\b", re.IGNORECASE), base)


RULES: tuple[_Rule, ...] = (
    _rule(
        "budget",
        "budget",
        r"cheap(?:est)?|on a budget|budget[- ](?:friendly|travel|trips?|hotels?|options?)|affordable|inexpensive|"
        r"low[- ]cost|save money|on a shoestring",
    ),
    _rule("budget", "mid-range", r"mid[- ]range|moderate(?:ly priced)?|reasonably priced"),
    _rule("budget", "luxury", r"luxur(?:y|ious)|high[- ]end|five[- ]star|5[- ]star|splurge|premium|first class"),
    _rule("accommodation", "hotel", r"hotels?"),
    _rule("accommodation", "boutique hotel", r"boutique hotels?", 0.7),
    _rule("accommodation", "hostel", r"hostels?"),
    _rule("accommodation", "vacation rental", r"airbnbs?|apartments?|vacation rentals?|holiday rentals?"),
    _rule("accommodation", "resort", r"resorts?|all[- ]inclusive"),
    _rule("accommodation", "camping", r"camping|campsites?|tents?"),
    _rule("accommodation", "bed and breakfast", r"b&b|bed and breakfasts?|guesthouses?"),
    _rule("dietary", "vegetarian", r"vegetarian", 0.75),
    _rule("dietary", "vegan", r"vegan", 0.75),
    _rule("dietary", "gluten-free", r"gluten[- ]free|coeliac|celiac", 0.75),
    _rule("dietary", "halal", r"halal", 0.75),
    _rule("dietary", "kosher", r"kosher", 0.75),
    _rule("dietary", "pescatarian", r"pescatarian", 0.75),
    _rule("dietary", "dairy-free", r"lactose[- ]intolerant|dairy[- ]free", 0.75),
    _rule("dietary", "nut allergy", r"nut allerg(?:y|ies)|allergic to (?:pea)?nuts", 0.8),
    _rule("pace", "relaxed", r"relax(?:ed|ing)?|slow(?:[- ]paced)?|leisurely|laid[- ]back|take it easy|unhurried"),
    _rule("pace", "packed", r"packed|fast[- ]paced|busy schedule|see as much as|action[- ]packed|jam[- ]packed"),
    _rule("interests", "museums", r"museums?|galler(?:y|ies)"),
    _rule("interests", "art", r"art|paintings?"),
    _rule("interests", "history", r"history|historic(?:al)?|ruins|castles?"),
    _rule("interests", "hiking", r"hik(?:e|es|ing)|trekking|trails?"),
    _rule("interests", "beaches", r"beach(?:es)?|snorkel(?:l?ing)?|surf(?:ing)?"),
    _rule("interests", "food", r"food(?:ie)?|cuisine|restaurants?|street food|cooking class(?:es)?|wine tasting"),
    _rule("interests", "nightlife", r"nightlife|bars|clubs|clubbing|live music"),
    _rule("interests", "nature", r"nature|national parks?|wildlife|mountains?|lakes?"),
    _rule("interests", "shopping", r"shopping|markets?"),
    _rule("interests", "architecture", r"architecture|cathedrals?|temples?"),
    _rule("travel_style", "backpacking", r"backpack(?:ing|er)"),
    _rule("travel_style", "luxury travel", r"luxury (?:travel|trip|vacation|holiday)"),
    _rule("travel_style", "family", r"family|kids|children|with my (?:son|daughter)"),
    _rule("travel_style", "solo", r"solo|by myself|on my own|alone"),
    _rule("travel_style", "adventure", r"adventure|adventurous|off the beaten path|extreme sports?"),
    _rule("travel_style", "romantic", r"romantic|honeymoon|anniversary|couples?"),
    _rule("travel_style", "business", r"business trip|conference|work trip"),
    _rule("travel_style", "road trip", r"road ?trip|drive around|rent(?:ing)? a car"),
)

_STRONG = re.compile(
    r"\b(?:i (?:really )?(?:prefer|love|adore|always|only|need|must|want)|we (?:prefer|love|always|only|need|want)|"
    r"must|always|definitely|strictly|favou?rite)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(r"\b(?:maybe|might|perhaps|possibly|not sure|could be|or so)\b", re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(?:no|not|never|don'?t|do not|doesn'?t|hate|avoid|dislike|without|rather not|can'?t stand)\b"
    r"(?:\W+\w+){0,3}\W*$",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[,;:]|\bbut\b|\band\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_AMOUNT = re.compile(r"(?:[$€£]\s?(\d[\d,]*)|(\d[\d,]*)\s?(?:dollars|usd|euros?|eur|pounds|gbp))", re.IGNORECASE)


def extract(text: str) -> list[Preference]:
    """The preferences `text` states, one per (category, value), strongest evidence kept."""
    found: dict[tuple[str, str], Preference] = {}
    for sentence_match in _SENTENCE.finditer(text):
        sentence = sentence_match.group(0)
        strong = bool(_STRONG.search(sentence))
        hedged = bool(_HEDGE.search(sentence))
        for rule in RULES:
            for match in rule.pattern.finditer(sentence):
                clause = _CLAUSE_BREAK.split(sentence[: match.start()])[-1]
                if _NEGATION.search(clause):
                    continue
                confidence = rule.base + (0.25 if strong else 0.0) - (0.2 if hedged else 0.0)
                preference = Preference(
                    rule.category, rule.value, round(min(0.95, max(0.1, confidence)), 2), match.group(0)
                )
                key = (rule.category, rule.value)
                if key not in found or found[key].confidence < preference.confidence:
                    found[key] = preference
        for amount in _AMOUNT.finditer(sentence):
            if not re.search(r"\bbudget|spend|afford|under|max(?:imum)?|up to\b", sentence, re.IGNORECASE):
                continue
            value = int((amount.group(1) or amount.group(2)).replace(",", ""))
            preference = Preference("budget", _budget_band(value), 0.8 if strong else 0.7, amount.group(0))
            key = ("budget", preference.value)
            if key not in found or found[key].confidence < preference.confidence:
                found[key] = preference
    # "boutique hotel" is the more specific reading of "hotel" in the same words.
    if ("accommodation", "boutique hotel") in found:
        found.pop(("accommodation", "hotel"), None)
    return sorted(found.values(), key=lambda p: (CATEGORIES.index(p.category), p.value))


def _budget_band(amount: int) -> str:
    """A stated total budget as a band (per trip, in the stated currency)."""
    if amount < 1500:
        return "budget"
    if amount < 5000:
        return "mid-range"
    return "luxury"
