"""Languages and scripts: what each sample is written in, and the per-language profiles the rules read.

- `scripts`: the writing system of a text (ISO 15924 codes), and the scripts written without spaces.
- `identify`: a language for every text (ISO 639-1, or 639-3 where there is none; `und` when
  unknown, `zxx` for code and text with no letters), its script, a confidence and the share of
  other languages in a mixed document.
- `profiles`: per-language values derived from reference text (stop words, word lengths,
  punctuated lines), shipped as `profiles.json` and rebuilt by `python -m mixline.curation.lang.derive`.
"""
