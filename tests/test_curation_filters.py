"""Each filter on literal texts: the verdict and the exact rule named."""

import pyarrow as pa
import pytest
from mixline.curation.filters.gopher import GopherQuality, GopherRepetition
from mixline.curation.filters.language import LanguageId
from mixline.curation.filters.rules import Boilerplate, C4Quality, FineWebQuality, Length

from mixline.errors import ConfigError

GOOD = ("The committee met on Tuesday to review the budget and to discuss the plans that have been "
        "proposed for the new library. Members of the public were invited to share their views with "
        "the board, and many of them spoke about the importance of having a quiet place to read and "
        "study. The chair thanked everyone for coming and said that the final decision would be made "
        "next month, after the architects have presented revised drawings. Coffee was served afterwards. Nobody left early.")


def reasons(step, texts):
    return step.decide(pa.table({"text": texts})).reasons


def test_gopher_quality_rules_name_the_rule():
    g = GopherQuality()
    assert reasons(g, [GOOD]) == [None]
    assert reasons(g, ["Too short to be a document."]) == ["short_doc"]
    assert reasons(g, [" ".join(["#tag"] * 60)]) == ["too_many_hashes"]
    no_stop = " ".join(f"word{i} alpha beta gamma" for i in range(20))
    assert reasons(g, [no_stop]) == ["few_stop_words"]
    assert reasons(g, ["\n".join(f"- item {i} of the list and the rest" for i in range(60))]) == ["too_many_bullets"]


def test_gopher_parameters_are_configurable():
    assert reasons(GopherQuality(min_doc_words=5), ["The cat and the dog sat with me."]) == [None]
    with pytest.raises(ConfigError, match="min_doc_word"):
        GopherQuality(min_doc_word=5)


def test_gopher_repetition():
    r = GopherRepetition()
    assert reasons(r, [GOOD]) == [None]
    assert reasons(r, ["\n\n".join(["The same paragraph again and again."] * 5)]) == ["dup_para_frac"]
    spam = " ".join(["buy cheap pills now"] * 40)
    assert reasons(r, [spam])[0] in {"top_2_gram", "top_3_gram", "top_4_gram", "duplicated_5_n_grams"}


def test_c4_fineweb_length_boilerplate():
    assert reasons(C4Quality(), [GOOD]) == [None]
    assert reasons(C4Quality(), [GOOD + " Lorem ipsum dolor sit amet."]) == ["lorem_ipsum"]
    assert reasons(C4Quality(), [GOOD + " function() { return 1; }"]) == ["curly_bracket"]
    assert reasons(C4Quality(), ["One sentence only. Two."]) == ["few_sentences"]
    assert reasons(FineWebQuality(), [GOOD]) == [None]
    assert reasons(FineWebQuality(), ["\n".join(["menu", "home", "about", "contact", "shop"])]) == ["line_punct_ratio"]
    assert reasons(Length(min_chars=10), ["tiny", GOOD]) == ["too_few_chars", None]
    page = "\n".join(["Sign in", "Subscribe to our newsletter", "Privacy policy", "Cookie settings", GOOD])
    assert reasons(Boilerplate(), [page]) == ["boilerplate_lines"]


def test_language_id_keeps_wanted_languages_and_annotates():
    v = LanguageId(keep=("en",)).decide(pa.table({"text": [GOOD, "Der Ausschuss traf sich am Dienstag, um den Haushalt zu prüfen und die Pläne für die neue Bibliothek zu besprechen."]}))
    assert v.reasons == [None, "lang_de"]
    assert v.annotations["lang"] == ["en", "de"]
    with pytest.raises(ConfigError, match="ISO 639-1"):
        LanguageId(keep=("english",))


def test_minhash_verification_cuts_chance_collisions():
    """With a very permissive banding (56 bands of 2 rows) half-similar texts collide;
    checking the signatures' agreement drops those pairs and keeps the true copies."""
    import numpy as np
    from mixline.curation.dedup.minhash import MinHashDedup, MinHashParams

    base = [f"w{i}" for i in range(200)]
    texts = [" ".join(base), " ".join(base[:190] + ["x"] * 10),  # a near copy (Jaccard ~0.9)
             " ".join(base[:100] + [f"z{i}" for i in range(100)])]  # half the same (Jaccard ~0.3)
    ids = ["a", "b", "c"]

    def removed(**kw):
        step = MinHashDedup(MinHashParams(num_perm=112, bands=56, rows=2, **kw))
        v, _ = step.reduce(step.features(pa.table({"sample_id": ids, "text": texts})), np.arange(3))
        return [i for i, k in zip(ids, v.keep.tolist(), strict=True) if not k]

    assert removed(split_chains=False) == ["b", "c"]
    assert removed(split_chains=False, verify_threshold=0.7) == ["b"]
    # The default splits clusters around the kept copy, with the same effect.
    assert removed() == ["b"]


def test_minhash_chains_are_split_around_the_kept_copy():
    """A~B and B~C, but A and C are different documents: only B is dropped, C survives."""
    import numpy as np
    from mixline.curation.dedup.minhash import MinHashDedup

    common = [f"w{i}" for i in range(200)]
    a = common[:]
    b = common[:170] + [f"b{i}" for i in range(30)]
    c = common[:140] + [f"b{i}" for i in range(30)] + [f"c{i}" for i in range(30)]
    step = MinHashDedup()
    ids = ["a", "b", "c"]
    feats = step.features(pa.table({"sample_id": ids, "text": [" ".join(t) for t in (a, b, c)]}))
    labels = np.array([0, 0, 0])
    split = step.split(feats, labels, np.arange(3, dtype=np.float64))
    assert split.tolist()[0] == 0 and split.tolist()[2] != 0
