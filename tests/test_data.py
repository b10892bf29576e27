"""Task registry: packaged data, local files, GLUE offline, and every bad input."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from costeff_same.core.data import DataError, load_local, load_task, stratified_split
from costeff_same.core.encoding import Encoded
from costeff_same.foundations.config import ConfigError, DataConfig


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
    with pytest.raises(DataError, match="needs train_file"):
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


def _sentiment(path, start, n, kind="csv", columns=("text", "label")):
    rows = [{columns[0]: f"Review {i}: a {'fine' if i % 2 else 'dull'} film", columns[1]: i % 2}
            for i in range(start, start + n)]
    return _write(path, rows, kind)


def test_train_validation_and_test_files_and_the_split_made_for_a_missing_one(tmp_path):
    from costeff_same.core.data import load_data

    train, test = _sentiment(tmp_path / "train.csv", 0, 100), _sentiment(tmp_path / "test.tsv", 1000, 30, "tsv")
    task = load_data(DataConfig(task="local", train_file=str(train), test_file=str(test)))
    record = task.split_record
    assert record["sizes"] == {"train": 90, "validation": 10, "test": 30}          # 90/10 of the training file
    assert record["kind"] == "seeded stratified 90/10"
    assert record["sources"]["test"] == str(test) and str(train) in record["sources"]["validation"]
    assert record["train_overlap"]["test"]["in_training_data"] == 0
    val = _sentiment(tmp_path / "val.jsonl", 2000, 20, "jsonl")
    three = load_data(DataConfig(task="local", train_file=str(train), validation_file=str(val), test_file=str(test)))
    assert {s: len(d) for s, d in three.splits.items()} == {"train": 100, "validation": 20, "test": 30}
    assert set(three.split_record["index_sha256"]) == {"train"}


def test_named_columns_and_a_wrong_name_lists_the_columns_found(tmp_path):
    from costeff_same.core.data import load_data

    path = _sentiment(tmp_path / "mine.csv", 0, 40, columns=("review", "stars"))
    task = load_data(DataConfig(task="local", train_file=str(path), text_column="review", label_column="stars"))
    assert task.split_record["columns"] == {"text": "review", "text_pair": None, "label": "stars"}
    with pytest.raises(DataError, match=r"has no column 'body' \(text_column\); found columns \['review', 'stars'\]"):
        load_data(DataConfig(task="local", train_file=str(path), text_column="body", label_column="stars"))
    with pytest.raises(DataError, match="name both"):
        load_data(DataConfig(task="local", train_file=str(path), text_column="review"))


def test_the_metric_parameter_and_a_metric_that_does_not_fit(tmp_path):
    from costeff_same.core.data import load_data

    path = str(_sentiment(tmp_path / "d.csv", 0, 40))
    assert load_data(DataConfig(task="local", train_file=path)).metric == "accuracy"
    assert load_data(DataConfig(task="local", train_file=path, metric="f1")).metric == "f1"
    with pytest.raises(DataError, match="metric 'pearson_spearman' does not fit task 'local' with 2 label.*"
                                        "accepted for it: accuracy, matthews, f1"):
        load_data(DataConfig(task="local", train_file=path, metric="pearson_spearman"))
    with pytest.raises(ConfigError, match="metric 'auc'; accepted: accuracy, f1, matthews, pearson_spearman"):
        DataConfig(metric="auc")


def test_an_evaluation_file_leaves_out_texts_of_the_training_data_unless_kept(tmp_path):
    """Rotten Tomatoes trains; the evaluation file repeats 5 training sentences, changed in
    case, punctuation and spacing only, beside 20 of its own."""
    from costeff_same.core.data import load_data

    train = load_task("rotten_tomatoes").splits["train"]
    repeats = [{"text": "  " + t.upper().replace(",", " ").replace(".", "!") + " ", "label": y}
               for t, y in zip(train["text"][:5], train["label"][:5])]
    own = [{"text": f"an unseen sentence number {i}", "label": i % 2} for i in range(20)]
    path = _write(tmp_path / "other.jsonl", repeats + own, "jsonl")
    task = load_data(DataConfig(eval_file=str(path)))
    assert task.split_record["train_overlap"]["test"] == {"rows": 25, "in_training_data": 5, "left_out": 5,
                                                         "evaluated": 20}
    assert sorted(task.splits["test"]["text"]) == sorted(r["text"] for r in own)
    assert task.split_record["sources"]["test"] == str(path)
    assert len(task.splits["train"]) == len(train)                      # the training data is untouched
    kept = load_data(DataConfig(eval_file=str(path), train_overlap="keep"))
    assert len(kept.splits["test"]) == 25 and kept.split_record["train_overlap"]["test"]["left_out"] == 0
    pairs = _write(tmp_path / "pairs.csv", [{"sentence1": f"a {i}", "sentence2": "b", "label": i % 2}
                                            for i in range(10)], "csv")
    with pytest.raises(DataError, match="has second sentences, and task 'rotten_tomatoes' lacks them"):
        load_data(DataConfig(eval_file=str(pairs)))
    assert DataConfig(eval_file=str(path)).for_training() == DataConfig()
