"""A tiny sentence-transformers model built from a corpus: the real loading code, nothing downloaded."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocabulary(texts: list[str], size: int) -> list[str]:
    """Special tokens, every character (alone and as a continuation), then the commonest words."""
    words = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    chars = sorted({c for w in words for c in w})
    vocab = [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]
    return vocab + [w for w, _ in words.most_common(max(0, size - len(vocab))) if w not in vocab]


def build_tiny_sentence_transformer(
    path: Path, texts: list[str], hidden_size: int = 32, vocab_size: int = 2000, seed: int = 0
) -> Path:
    """Save a small randomly initialised BERT with a WordPiece vocabulary drawn from `texts`, wrapped
    as a sentence-transformers model (mean pooling), and return its path. Loading it by path
    exercises the same code as any hub model, with nothing downloaded."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    vocab = wordpiece_vocabulary(texts, vocab_size)
    bert_dir = Path(path) / "bert"
    bert_dir.mkdir(parents=True, exist_ok=True)
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt"), do_lower_case=True).save_pretrained(
        bert_dir
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=128)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model_dir = Path(path) / "model"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(model_dir))
    return model_dir


def build_tiny_ner_pipeline(path: Path, entities: dict[str, list[str]], lang: str = "en") -> Path:
    """Save a small spaCy pipeline whose entity ruler knows `entities` (label -> phrases), and return
    its path: `spacy.load(path)` then runs the same code as any downloaded pipeline."""
    import spacy

    nlp = spacy.blank(lang)
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns(
        [
            {"label": label, "pattern": phrase}
            for label, phrases in entities.items()
            for phrase in phrases
        ]
    )
    nlp.to_disk(path)
    return Path(path)


def build_tiny_sentiment_model(
    path: Path,
    texts: list[str],
    labels: tuple[str, ...] = ("negative", "neutral", "positive"),
    seed: int = 0,
) -> Path:
    """Save a small randomly initialised BERT sequence classifier with the given labels and a
    WordPiece vocabulary from `texts`: loading it by path runs the real transformers pipeline code."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(seed)
    vocab = wordpiece_vocabulary(texts, 2000)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path
