"""Drop samples whose source URL is on a banned list (for example MMLU's banned_urls.txt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts

from mixline.errors import ConfigError


@dataclass(frozen=True)
class BannedUrlParams(StepParams):
    file: str = ""
    urls: tuple[str, ...] = ()


def url_key(url: str) -> str:
    """Scheme-less, lowercase host plus path without a trailing slash or query."""
    u = urlsplit(url if "://" in url else f"http://{url}")
    host = (u.hostname or "").lower().removeprefix("www.")
    return f"{host}{u.path.rstrip('/')}"


class BannedUrls(Filter):
    """Exact (normalised) URL matches, and any URL under a banned prefix."""

    name = "banned_urls"
    Params = BannedUrlParams
    columns = ("url",)

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: BannedUrlParams = self.params  # type: ignore[assignment]
        urls = list(p.urls)
        if p.file:
            path = Path(p.file)
            if not path.is_file():
                raise ConfigError(f"step banned_urls: file {p.file!r} not found; give a text file with one URL per line")
            urls += [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
        if not urls:
            raise ConfigError("step banned_urls needs `file` or `urls`")
        self._banned = {url_key(u) for u in urls}

    def decide(self, batch: pa.Table) -> Verdicts:
        reasons: list[str | None] = []
        for url in batch.column("url").to_pylist():
            reason = None
            if url:
                key = url_key(url)
                parts = key.split("/")
                for i in range(len(parts), 0, -1):
                    if "/".join(parts[:i]) in self._banned:
                        reason = f"banned_url:{'/'.join(parts[:i])}"
                        break
            reasons.append(reason)
        return Verdicts.from_reasons(reasons)
