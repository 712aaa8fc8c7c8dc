"""MiniLM (or any sentence-transformers BERT) on ONNX Runtime: fp32, or int8 per channel.

The ONNX file is exported once from the model's own weights, on this machine, and kept
under `MIXLINE_CACHE_DIR` (default `~/.cache/mixline`) keyed by the weights' hash, so
nothing is downloaded and every worker reads the same file. fp32 gives the vectors the
torch model gives (cosine 1.0 to four places), about 1.5x faster on a CPU core; int8
quantises every weight matrix per output channel, about 2.8x (benchmarks/RESULTS.md,
semantic dedup).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp32", "int8")


def cache_dir() -> Path:
    """MIXLINE_CACHE_DIR, else mixline's folder in the user cache, as the lake extensions use."""
    env = os.environ.get("MIXLINE_CACHE_DIR")
    return Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mixline"


def _weights_id(model_dir: Path) -> str:
    """A short hash of the weights and config, which names the exported file."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_dir / name
        if p.exists():
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def check_exportable(st_model: Any, model_dir: Path) -> None:
    """An ONNX backend needs a local model folder and a BERT-style encoder with mean pooling."""
    from mixline.errors import ConfigError

    if not model_dir.is_dir():
        raise ConfigError(f"embedding model {str(model_dir)!r}: the onnx backends export from a local model folder; "
                          "pass the folder's path, or use backend torch")
    modes = [str(m.pooling_mode) for m in st_model if hasattr(m, "pooling_mode")]
    kinds = [type(m).__name__ for m in st_model]
    if modes != ["mean"] or not set(kinds) <= {"Transformer", "Pooling", "Normalize"} or "token_type_ids" not in st_model.tokenizer.model_input_names:
        raise ConfigError(f"embedding model {str(model_dir)!r}: the onnx backends support BERT-style encoders with "
                          f"mean pooling (this one is {' + '.join(kinds)}, pooling {modes or 'otherwise'}); use backend torch")


def onnx_file(st_model: Any, model_dir: Path, precision: str) -> Path:
    """The exported (and, for int8, quantised) ONNX file of a SentenceTransformer's encoder."""
    if precision not in PRECISIONS:
        from mixline.errors import ConfigError

        raise ConfigError(f"semantic_dedup: precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    out = cache_dir() / "onnx" / f"{model_dir.name}-{_weights_id(model_dir)}"
    fp32, int8 = out / "model.onnx", out / "model.int8.onnx"
    if not fp32.exists():
        _export(st_model, fp32)
    if precision == "int8" and not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_suffix(f".{os.getpid()}.tmp")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, int8)  # atomic: a worker that races another sees a whole file
    return int8 if precision == "int8" else fp32


def _export(st_model: Any, path: Path) -> None:
    import warnings

    import torch

    bert = st_model[0].auto_model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    ex = st_model.tokenizer(["a b", "c"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(), (ex["input_ids"], ex["attention_mask"], ex["token_type_ids"]), str(tmp),
                          input_names=["ids", "mask", "types"], output_names=["hidden"],
                          dynamic_axes={"ids": axes, "mask": axes, "types": axes, "hidden": axes},
                          opset_version=17, dynamo=False)
    os.replace(tmp, path)


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an ONNX encoder, one CPU session."""

    def __init__(self, st_model: Any, model_dir: Path, precision: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.tokenizer = st_model.tokenizer
        self.max_len = int(st_model.max_seq_length)
        opts = ort.SessionOptions()
        n = threads or int(os.environ.get("MIXLINE_THREADS") or 0)
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_file(st_model, model_dir, precision)), opts,
                                            providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        # Longest first, so each batch pads to lengths close to its own.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        parts = [self._batch([texts[j] for j in order[i:i + batch_size]]) for i in range(0, len(texts), batch_size)]
        out = np.empty((len(texts), parts[0].shape[1]), np.float32)
        out[order] = np.concatenate(parts)
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="np")
        mask = enc["attention_mask"].astype(np.int64)
        hidden = self.session.run(None, {"ids": enc["input_ids"].astype(np.int64), "mask": mask,
                                         "types": enc["token_type_ids"].astype(np.int64)})[0]
        m = mask[..., None].astype(np.float32)
        v = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return (v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
