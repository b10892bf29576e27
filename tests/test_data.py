"""Task registry: packaged data, local files, GLUE offline, and every bad input."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from costeff_same.core.data import DataError, Encoded, load_local, load_task, stratified_split


def test_rotten_tomatoes_split_is_seeded_stratified_and_recorded():
    a, b = load_task("rotten_tomatoes", seed=0), load_task("rotten_tomatoes", seed=0)
    assert a.split_record["sizes"] == {"train": 6824, "validation": 853, "test": 853}
    assert a.split_record["index_sha256"] == b.split_record["index_sha256"]
    assert a.split_record["index_sha256"] != load_task("rotten_tomatoes", seed=1).split_record["index_sha256"]
    for split in ("train", "validation", "test"):
        labels = np.asarray(a.splits[split]["label"])
        assert abs(labels.mean() - 0.5) < 0.01


def test_split_indices_are_disjoint_and_cover_everything():
    labels = np.array([0, 1] * 50)
    parts = stratified_split(labels, seed=3)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(100))


def test_imdb_truncation_is_counted(tokenizer):
    task = load_task("imdb", seed=0)
    assert task.split_record["sizes"]["train"] == 20000
    short = task.splits["test"].select(range(40))
    enc = Encoded(short, tokenizer, max_length=64)
    assert 0 < enc.truncated <= 40
    assert enc.lengths.max() == 64
    assert Encoded(short, tokenizer, max_length=128).truncated < enc.truncated


def _write(path, rows, kind):
    if kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        sep = "\t" if kind == "tsv" else ","
        keys = list(rows[0])
        lines = [sep.join(keys)] + [sep.join(str(r[k]) for k in keys) for r in rows]
        path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_local_files_load(tmp_path, kind):
    rows = [{"text": f"review number {i}", "text_pair": f"other {i}", "label": i % 3} for i in range(30)]
    task = load_local(_write(tmp_path / f"d.{kind}", rows, kind), seed=0)
    assert task.num_labels == 3 and task.has_pairs
    assert sum(task.split_record["sizes"].values()) == 30


def test_local_file_errors(tmp_path):
    rows = [{"text": f"t {i}", "label": i % 2} for i in range(20)]
    with pytest.raises(DataError, match="does not exist"):
        load_local(tmp_path / "missing.csv", 0)
    with pytest.raises(DataError, match=r"suffix '.xlsx'; accepted: .csv, .tsv, .jsonl"):
        load_local(tmp_path / "d.xlsx", 0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": 1}\n{not json')
    with pytest.raises(DataError, match="cannot be parsed"):
        load_local(bad, 0)
    layouts = r"accepted layouts \(text\[, pair\], label\): text/text_pair/label; text/label; .*sentence/label"
    with pytest.raises(DataError, match=r"no known column layout; found columns \['text', 'y'\]; " + layouts):
        load_local(_write(tmp_path / "nolabel.csv", [{"text": "x", "y": 1}] * 20, "csv"), 0)
    with pytest.raises(DataError, match="label 5 at row 3 is outside the label set; accepted: an integer in 0..1"):
        load_local(_write(tmp_path / "l.csv", rows[:3] + [{"text": "x", "label": 5}] + rows[4:], "csv"), 0,
                   num_labels=2)
    with pytest.raises(DataError, match="label -1"):
        load_local(_write(tmp_path / "neg.jsonl", rows[:5] + [{"text": "x", "label": -1}] + rows[6:], "jsonl"), 0)
    empty = rows[:4] + [{"text": "   ", "label": 0}] + rows[5:]
    with pytest.raises(DataError, match=r"empty or whitespace-only 'text' at row\(s\) \[4\]"):
        load_local(_write(tmp_path / "e.jsonl", empty, "jsonl"), 0)


@pytest.mark.parametrize("layout", [("sentence", None, "label"), ("sentence1", "sentence2", "label"),
                                    ("question", "sentence", "label"), ("question1", "question2", "label"),
                                    ("question1", "question2", "is_duplicate"), ("premise", "hypothesis", "label"),
                                    ("#1 String", "#2 String", "Quality")])
@pytest.mark.parametrize("kind", ["tsv", "csv"])
def test_glue_layouts_load_by_their_column_names_with_a_byte_order_mark(tmp_path, layout, kind):
    text, pair, label = layout
    rows = [{"id": i, text: f'he said "first {i}', **({pair: f"second {i}'s"} if pair else {}), label: i % 2}
            for i in range(20)]
    if kind == "csv":                              # a csv quotes by its rules; GLUE's tsv files quote nothing
        rows = [{k: v.replace('"', "") if isinstance(v, str) else v for k, v in r.items()} for r in rows]
    path = _write(tmp_path / f"glue.{kind}", rows, kind)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())    # GLUE's files start with a UTF-8 BOM
    task = load_local(path, seed=0)
    assert task.has_pairs == (pair is not None)
    assert task.split_record["columns"] == {"text": text, "text_pair": pair, "label": label}
    texts = sorted(t for split in task.splits.values() for t in split["text"])
    assert texts == sorted(str(r[text]) for r in rows)                 # quotes kept, nothing lost to the BOM
    if pair:
        assert sorted(p for split in task.splits.values() for p in split["text_pair"]) == \
            sorted(r[pair] for r in rows)


MRPC = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue" / "MRPC" / "dev.tsv"


@pytest.mark.skipif(not MRPC.is_file(), reason=f"the shared MRPC files are not beside the project ({MRPC})")
def test_glues_own_mrpc_file_loads():
    task = load_local(MRPC, seed=0)
    assert task.has_pairs and task.num_labels == 2
    assert task.split_record["n_total"] == 408
    labels = [y for split in task.splits.values() for y in split["label"]]
    assert sum(labels) == 279                                         # the README's 279 paraphrases
    assert not any(t.startswith("\ufeff") for split in task.splits.values() for t in split["text"])


def test_unknown_task_names_the_accepted_ones():
    with pytest.raises(DataError, match="unknown task 'sst3'; accepted: rotten_tomatoes, imdb, sst2"):
        load_task("sst3")
    with pytest.raises(DataError, match="needs data_file"):
        load_task("local")


def test_glue_offline_fails_at_once_naming_the_task():
    start = time.time()
    with pytest.raises(DataError, match="GLUE task 'mrpc' must come from the Hugging Face hub, which is unreachable"):
        load_task("mrpc")
    assert time.time() - start < 5


def test_max_length_beyond_the_model_limit_is_refused(tokenizer):
    """The limit is the backbone's position embeddings: 512 for MiniLM, 128 for tiny-random
    (whose tokenizer is MiniLM's, capped at its own positions)."""
    from costeff_same.core.backbones import load_tokenizer

    task = load_task("rotten_tomatoes")
    with pytest.raises(DataError, match="max_length=1024 is outside 8..512"):
        Encoded(task.splits["test"].select(range(4)), load_tokenizer("minilm-l6"), 1024)
    with pytest.raises(DataError, match="max_length=256 is outside 8..128"):
        Encoded(task.splits["test"].select(range(4)), tokenizer, 256)
