"""Sentence embeddings on ONNX Runtime: the same vectors as torch, int8 cached apart."""

import numpy as np
import pytest
from mixline.curation.embed import Embedder, cached_embeddings

from mixline.errors import ConfigError

TEXTS = ["The cat sat on the mat and looked out of the window.",
         "Quarterly revenue rose by twelve percent on strong cloud sales.",
         "Le chat est assis sur le tapis.",
         "x"]


@pytest.fixture(scope="module")
def torch_vecs():
    return Embedder(device="cpu").encode(TEXTS)


@pytest.mark.slow
def test_onnx_gives_torchs_vectors(torch_vecs, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_CACHE_DIR", str(tmp_path))
    vecs = Embedder(backend="onnx").encode(TEXTS)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    assert np.allclose((vecs * torch_vecs).sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # Exported once, from the shipped weights, into the cache folder.
    assert [p.name for p in tmp_path.glob("onnx/*/*.onnx")] == ["model.onnx"]
    # Order within a batch does not change a text's vector.
    again = Embedder(backend="onnx").encode(TEXTS[::-1])[::-1]
    assert np.allclose(again, vecs, atol=1e-5)


@pytest.mark.slow
def test_int8_is_close_and_cached_under_its_own_name(store, torch_vecs, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_CACHE_DIR", str(tmp_path))
    emb = Embedder(backend="onnx-int8")
    assert emb.cache_name == "all-MiniLM-L6-v2+int8"
    vecs = cached_embeddings(store, emb, ["h1", "h2", "h3", "h4"], TEXTS)
    cos = (vecs * torch_vecs).sum(axis=1)
    assert (cos > 0.95).all() and (cos < 1 - 1e-6).any()  # close, and not the fp32 vectors
    assert store.execute("SELECT DISTINCT model FROM embeddings").fetchall() == [("all-MiniLM-L6-v2+int8",)]
    # An fp32 embedder finds nothing of int8's in the cache.
    fp32 = Embedder(device="cpu")
    cached_embeddings(store, fp32, ["h1"], TEXTS[:1])
    assert fp32.embedded == 1


def test_unknown_backend_and_non_folder_models_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="backend 'tensorrt' is not one of torch, onnx, onnx-int8"):
        Embedder(backend="tensorrt")
    from mixline.curation.onnx_embed import check_exportable

    with pytest.raises(ConfigError, match="export from a local model folder"):
        check_exportable(object(), tmp_path / "missing")
