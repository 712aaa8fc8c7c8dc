"""Postal addresses in international formats, found as parts and joined into one span.

The parts are a street line (a house number and a street word in either order, as in
"221B Baker Street", "Rua do Arenque 1634", "Vesturgata 66", "Eötvös út 10."), a unit
("Apt. 595", "Suite 286"), a post box or military address ("P.O. Box 101",
"PSC 0413, Box 8144", "APO AA 42323"), and a postcode next to a town, a state or a
country ("10115 Berlin", "Curitiba, PR 80010", "Gabon 66298", "SW1A 1AA"). Parts that
follow each other, with only separators or a town name between them, become one span, and
a span grows over the place names and the house number around it.

A bare "Word 46" is an address only beside another part: alone it is as often "Chapter 46"
or "Windows 10". Places come from the GeoNames lexicon in `curation.pii.lexicon`.
"""

from __future__ import annotations

import re

from mixline.curation.pii.lexicon import fold, lexicons

_W = r"(?:[^\W\d_][\w'’.-]*|\d+(?:st|nd|rd|th)\b)"  # a word that starts with a letter, or an ordinal
_WN = r"(?!(?:Apt|Apartment|Suite|Ste|Flat|Unit|Floor|Room|Box|PO)\b)[^\W\d_][\w'’-]*"  # no abbreviations or unit words
# Street words that follow the name (English) or end a compound name (Germanic, Nordic).
_AFTER = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|"
          r"Parkway|Pkwy|Square|Sq|Highway|Hwy|Trail|Trl|Crescent|Cres|Close|Grove|Gardens|Row|Mews|Walk|Hill|Park|"
          r"Alley|Plaza|Loop|Pike|Expressway|Freeway|Route|út|útja|utca|utcája|u\.|tér|körút|sokak|sokağı|caddesi|cad\.|"
          r"straße|strasse|str\.|gasse|platz|weg|allee|laan|straat|gracht|kade|dijk|plein|gata|gatan|gade|vej|"
          r"vegur|veien|vägen|väg|tie|katu|tee|iela|gatvė|ulica|ul\.")
_SUFFIX = (r"straße|strasse|str\.|gasse|platz|weg|allee|damm|ufer|ring|laan|straat|gracht|kade|dijk|plein|steenweg|"
           r"plaats|gata|gatan|gade|vej|vegur|veien|vägen|väg|tie|katu|tee|iela|gatvė|utca|körút")
# Street words that come first (Romance, Slavic and others).
_BEFORE = (r"Rua|Rue|Via|Viale|Vicolo|Corso|Piazza|Largo|Calle|Carrer|Camino|Camiño|Avenida|Av\.|Avda\.?|Paseo|"
           r"Passeig|Rambla|Ronda|Travessa|Travesía|Praça|Praca|Estrada|Alameda|Rodovia|Chemin|Allée|Impasse|Quai|"
           r"Boulevard|Bd|Place|Strada|Ulica|ul\.|Aleja|al\.|Plac|Ulitsa|Prospekt|Odos|Leoforos|Jalan|Jl\.|Soi|Thanon|"
           r"Avenue|Route|Ruta|Carretera|Trg|Náměstí|Plateia|Πλατεία|Οδός|Λεωφόρος|Улица|ул\.|Проспект")
# English street words that are also common words ("a 2 hour drive", "took place in 1969"): in an
# address they are capitalised, and the line holds a capitalised name.
_ENGLISH_TYPES = frozenset(
    w.lower() for w in ["Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court", "Way", "Place", "Terrace", "Circle", "Parkway", "Square", "Highway", "Trail", "Crescent", "Close", "Grove", "Gardens", "Row", "Mews", "Walk", "Hill", "Park", "Alley", "Plaza", "Loop", "Pike", "Expressway", "Freeway", "Route", "St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Pl", "Ter", "Cir", "Pkwy", "Sq", "Hwy", "Trl", "Cres", "Bd"])
_NUM = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?"
_STATE_CODES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
          "OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP AA AE AP AB BC MB NB NL NS NT NU ON PE QC SK YT")
STATES = frozenset(_STATE_CODES.split())

STREET_LINE = re.compile(
    rf"(?<![\w.]){_NUM},?[ \t]+(?:{_W}[ \t]+){{0,4}}?(?:{_AFTER})(?![\w])\.?(?:[ \t]+{_NUM}(?![\w]))?"
    rf"|(?<![\w])(?:{_BEFORE})[ \t]+(?:{_W}[ \t]+){{0,5}}?{_NUM}(?![\w])"
    rf"|(?<![\w.]){_NUM},?[ \t]+(?:{_BEFORE})[ \t]+(?:{_W}[ \t]+){{0,3}}{_W}"
    rf"|(?<![\w])(?:{_W}[ \t]+){{0,2}}?(?:{_AFTER})[ \t]+{_NUM}(?![\w])\.?"
    rf"|(?<![\w])[^\W\d_]{{3,}}(?:{_SUFFIX})[ \t]+{_NUM}(?![\w])",
    re.IGNORECASE)
# Every street line holds one of its street words: lines are matched only in windows around them.
_KEYWORDS = frozenset(w.replace("\\", "").replace("?", "").rstrip(".").lower() for w in f"{_AFTER}|{_BEFORE}".split("|"))
_SUFFIXES = tuple(w.replace("\\", "").rstrip(".") for w in _SUFFIX.split("|"))
_TOKEN = re.compile(r"[^\W\d_][\w'’.-]*")
# Words of the other strong parts (units, boxes, military mail, labelled postcodes), and the
# postcodes that are strong without one: five digits, British and Canadian codes.
_PART_WORDS = frozenset(["apt", "apartment", "suite", "ste", "flat", "box", "psc", "cmr", "apo", "fpo", "dpo", "usns", "usnv", "uss", "uscgc", "zip", "postal", "post"])
_STRONG_CODE = re.compile(r"(?<!\d)\d{5}(?!\d)|[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d")
# The same test, an alternative at a time: patterns that start with a character class are
# searched quickly; the five digits are looked for without the lookarounds first.
_FIVE_DIGITS = re.compile(r"\d{5}")
_STRONG_PARTS = (re.compile(r"(?<!\d)\d{5}(?!\d)"), re.compile(r"[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}"),
                 re.compile(r"[A-Z]\d[A-Z]\s?\d[A-Z]\d"))


def _strong_code(text: str) -> bool:
    """Whether _STRONG_CODE finds anything in the text."""
    five, uk, ca = _STRONG_PARTS
    return bool((_FIVE_DIGITS.search(text) and five.search(text)) or uk.search(text) or ca.search(text))
_THEN_NUMBER = re.compile(r"[ \t]+\d")
UNIT = re.compile(r"(?<![\w])(?:Apt|Apartment|Suite|Ste|Flat)\.?\s*#?\s*\d{1,5}[A-Za-z]?(?![\w])", re.IGNORECASE)
WEAK_UNIT = re.compile(r"(?<![\w])(?:Unit|Floor|Fl|Room|Rm|Bldg|Building|Block|Door)\.?\s*#?\s*\d{1,5}[A-Za-z]?(?![\w])",
                       re.IGNORECASE)
BOX = re.compile(
    r"(?<![\w])(?i:P\.?\s?O\.?\s*Box)\s+\d{1,6}(?![\w])"

    r"|(?<![\w])(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{1,5}(?![\w])"
    r"|(?<![\w])(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5}(?![\w])"
    r"|(?<![\w])(?:USNS|USNV|USS|USCGC)\s+[A-Z][a-z]+(?![\w])")
ZIP_LABEL = re.compile(r"(?i:(?<![\w])(?:zip|postal|post)(?:[ -]?code)?(?:[ \t]+is)?[ \t]*:?[ \t]*)(\d{5}(?:-\d{4})?|\d{4})(?![\w-])")
POSTCODE = re.compile(
    r"(?<![\w])[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}(?![\w])"  # UK
    r"|(?<![\w])[A-Z]\d[A-Z]\s?\d[A-Z]\d(?![\w])"  # Canada
    r"|(?<![\w(+.-])\d{5}(?:-\d{4})?(?![\w-])"  # five digits (US ZIP, most of Europe)
    r"|(?<![\w(+.-])\d{2}-\d{3}(?![\w-])|(?<![\w(+.-])\d{4}(?![\w-])")
# "87 Jakobi 69", "Allika 46": a name and a number, only as the continuation of an address.
WEAK_STREET = re.compile(rf"(?<![\w]){_NUM}[ \t]+(?:{_W}[ \t]+){{0,3}}{_W}(?:[ \t]+{_NUM})?(?![\w])"
                         rf"|(?<![\w])(?:{_WN}[ \t]+){{0,2}}{_WN}[ \t]+{_NUM}(?![\w])")
_DIGIT = re.compile(r"\d")
_NUMBER_RUN = re.compile(r"\d+")
_GAP = re.compile(r"^[\s,;:>|/()\-–—?]*$")
_WORDS_GAP = re.compile(rf"^[\s,;>|\-–—]*(?:{_W}[\s,;>|\-–—]+){{1,4}}$")
_PLACE_WORD = re.compile(r"[\s,;>|\-–—]*([^\W\d_][\w'’.-]*)")


def _place_at(text: str, pos: int) -> int:
    """End of a known place name (up to 4 words) starting at the first word at or after pos, or -1."""
    lex = lexicons()
    words: list[tuple[int, str]] = []
    p = pos
    for _ in range(4):
        m = _PLACE_WORD.match(text, p)
        if not m:
            break
        words.append((m.end(), fold(m.group(1).rstrip("."))))
        p = m.end()
    best = -1
    for n in range(1, len(words) + 1):
        if tuple(w for _, w in words[:n]) in lex.places:
            best = words[n - 1][0]
    # A lowercase common word is not a place ("mobile", "nice", "in case").
    if best > 0 and any(w.islower() and _common(w) for w in re.findall(r"[^\W\d_][\w'’.-]*", text[pos:best])):
        return -1
    return best


def _is_place(name: str) -> bool:
    """A known place, and not a lowercase English word that is also a place name ("to", "nice")."""
    toks = tuple(fold(w.rstrip(".")) for w in name.split())
    if name.islower() and any(_common(w) for w in name.split()):
        return False
    return bool(toks) and toks in lexicons().places


def _postcode_parts(text: str, weak: bool = True) -> list[tuple[int, int, bool]]:
    """Postcodes beside a place or a state code: (start, end, strong). A five-digit code after a place is strong.

    Four-digit codes (weak: as often a year) are looked at only when `weak`, that is beside other parts.
    """
    out = []
    for m in POSTCODE.finditer(text):
        a, b = m.span()
        if not weak and len(m.group()) == 4 and m.group().isdigit():
            continue
        before = text[max(0, a - 40):a]
        state = re.search(r"(?:^|[\s,])([A-Z]{2})[\s,]+$", before)
        if state and state.group(1) in STATES:
            start = a - len(before) + state.start(1)
            town = re.search(rf"((?:{_W}\s+){{0,2}}{_W})[\s,]+$", text[max(0, start - 40):start])
            out.append((start - (len(town.group(0)) if town else 0), b, True))
            continue
        prev = re.search(rf"((?:{_W}\s+){{0,3}}{_W})[\s,]*$", before)
        if prev:
            words = prev.group(1).split()
            for n in range(len(words), 0, -1):
                name = " ".join(words[-n:])
                if _is_place(name):
                    start = a - len(before) + prev.start(1) + len(" ".join(words[:-n])) + (1 if len(words) > n else 0)
                    out.append((start, b, len(m.group(0)) >= 5 or not m.group(0).isdigit()))
                    break
            else:
                prev = None
        if not prev:
            end = _place_at(text, b)
            if end > 0:
                out.append((a, end, not m.group(0).isdigit() or len(m.group(0)) >= 5))
            elif not m.group(0).isdigit():
                out.append((a, b, False))
    return out


def _common(word: str) -> bool:
    """A common English word, inflections included ("refers", "lived", "meeting")."""
    w = word.lower().rstrip(".")
    words = lexicons().words
    return w in _GLUE or any(w.endswith(suf) and w[: len(w) - len(suf)] + add in words
                             for suf, add in (("", ""), ("s", ""), ("es", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
                                              ("ing", "e"), ("ies", "y"), ("d", "")))


_LEAD_WORD = re.compile(r"([^\W\d_][\w'’.-]*)[ \t]+")


def _trim(text: str, a: int, b: int) -> int:
    """Start of a part without the common English words before its name ("lives at", "refers to")."""
    while a < b:
        m = _LEAD_WORD.match(text, a, b)
        if not m or not _common(m.group(1)):
            break
        a = m.end()
    return a


_GLUE = frozenset({"at", "to", "on", "in", "of", "is", "the", "and", "my", "our", "his", "her", "their", "address",
                   "lives", "live", "moved", "from"})


def _town_gap(gap: str) -> bool:
    """Only town or region names between two parts: no common lowercase English word, no blank line."""
    if len(gap) > 40 or "\n\n" in gap or not _WORDS_GAP.match(gap):
        return False
    return all(not (w.islower() and _common(w)) and w.lower() not in _GLUE
               for w in re.findall(r"[^\W\d_][\w'’.-]*", gap))


def _scan(text: str) -> tuple[list[list[int]], bool]:
    """One pass over the words: windows around street words that have a digit within reach,
    and whether a unit, box or postcode word occurs."""
    windows: list[list[int]] = []
    part_word = False
    seen = 0
    # Every part holds a number, with its words a few words away: only the words near numbers are read.
    for n in _NUMBER_RUN.finditer(text):
        start, end = max(seen, n.start() - 100), min(len(text), n.end() + 60)
        seen = max(seen, end)
        for m in _TOKEN.finditer(text, start, end):
            word = m.group().rstrip(".").lower()
            if word in _PART_WORDS:
                part_word = True
            if word not in _KEYWORDS and not (_THEN_NUMBER.match(text, m.end()) and word.endswith(_SUFFIXES)):
                continue
            lo, hi = max(0, m.start() - 160), min(len(text), m.end() + 80)
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = hi
            else:
                windows.append([lo, hi])
    return windows, part_word


def _street_lines(text: str, windows: list[list[int]]) -> list[re.Match[str]]:
    """STREET_LINE's matches, searched only within reach of a street word (the full search is 10x slower)."""
    out: list[re.Match[str]] = []
    for lo, hi in windows:
        while lo > 0 and not text[lo - 1].isspace():
            lo -= 1
        while hi < len(text) and not text[hi].isspace():
            hi += 1
        out.extend(STREET_LINE.finditer(text, lo, hi))
    return out


def _street_ok(line: str) -> bool:
    """A street line with a capitalised name word, and no English street word in lowercase."""
    words = re.findall(r"[^\W\d_][\w'’-]*", line)
    return (any(w[0].isupper() and w.lower() not in _ENGLISH_TYPES for w in words)
            and not any(w.islower() and w in _ENGLISH_TYPES for w in words))


def find_addresses(text: str) -> list[tuple[int, int]]:
    """Address spans in a text, each the union of adjacent address parts."""
    parts: list[tuple[int, int, int]] = []  # start, end, 2 strong / 1 weak unit or postcode / 0 weak street
    if not _DIGIT.search(text):
        return []
    windows, part_word = _scan(text)
    if not (windows or part_word or _strong_code(text)):
        return []  # no part that could make an address: most text with numbers ends here
    for m in _street_lines(text, windows):
        if _street_ok(m.group()):
            parts.append((_trim(text, m.start(), m.end()), m.end(), 2))
    for rx in (UNIT, BOX):
        parts.extend((m.start(), m.end(), 2) for m in rx.finditer(text))
    parts.extend((m.start(), m.end(), 1) for m in WEAK_UNIT.finditer(text))
    parts.extend((m.start(1), m.end(1), 2) for m in ZIP_LABEL.finditer(text))
    parts.extend((a, b, 2 if strong else 1) for a, b, strong in _postcode_parts(text, weak=bool(parts)))
    if not any(k == 2 for *_, k in parts):
        return []
    for m in WEAK_STREET.finditer(text):
        a = _trim(text, m.start(), m.end())
        if any(w[0].isupper() for w in re.findall(r"[^\W\d_][\w'’-]*", text[a:m.end()])):
            parts.append((a, m.end(), 0))
    parts.sort(key=lambda p: (p[0], -p[1]))
    chains: list[list[int]] = []  # start, end, strongest kind, last part's kind
    for a, b, kind in parts:
        if a >= b:
            continue
        if chains:
            last = chains[-1]
            gap = text[last[1]:a] if a > last[1] else ""
            if a <= last[1] or (len(gap) <= 6 and _GAP.match(gap)) or ((kind or last[3]) and _town_gap(gap)):
                last[1] = max(last[1], b)
                last[2] = max(last[2], kind)
                last[3] = kind
                continue
        chains.append([a, b, kind, kind])
    out = []
    for a, b, best, _ in chains:
        if best < 2:
            continue
        # Grow over the place names that follow ("Apt. 787 Reykjavík Benin") and a leading house number.
        while True:
            end = _place_at(text, b)
            if end < 0 or "\n\n" in text[b:end]:
                break
            b = end
        lead = re.search(rf"(?<![\w.]){_NUM}[ \t]+$", text[max(0, a - 12):a])
        if lead:
            a -= len(lead.group(0))
        out.append((a, b))
    return out
