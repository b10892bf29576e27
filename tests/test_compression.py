"""COST-EFF compression: slenderization, importance, distillation losses, FLOPs and parameter counts."""

import math

import numpy as np
import pytest
import torch
from conftest import slender_flops_by_hand

from costeff_same.compression.distill import (
    LossSpec,
    distillation_loss,
    exit_mapping,
    hidden_mse,
    prediction_loss,
    soft_cross_entropy,
)
from costeff_same.compression.evaluate import deployed_parameters
from costeff_same.compression.importance import Importance, taylor_importance
from costeff_same.compression.slenderize import (
    Shape,
    factorise_embedding,
    kept_units,
    prune_schedule,
    shape_of,
    slenderize,
    truncate_depth,
)
from costeff_same.core.metrics import count_parameters, cumulative_flops, flops_table
from costeff_same.core.modeling import (
    MultiExitBertConfig,
    MultiExitBertForSequenceClassification,
    from_backbone,
)
from costeff_same.foundations.config import ConfigError


@pytest.fixture
def batch(tokenizer):
    return tokenizer(["a gripping, well acted film", "dull", "neither good nor bad, just long"],
                     padding=True, return_tensors="pt")


@pytest.fixture
def costeff_model(tiny_backbone):
    return from_backbone(tiny_backbone.model, 2, "costeff", gradient_equilibrium=True, seed=0).eval()


def random_importance(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = shape_of(model)
    return Importance([torch.rand(h, generator=g) for h in shape.heads],
                      [torch.rand(f, generator=g) for f in shape.ffn])


# -- slenderization ---------------------------------------------------------------------------

@pytest.mark.parametrize("with_scores", [False, True])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_keep_all_slenderization_is_the_identity(tiny_backbone, batch, with_scores, pooling):
    model = from_backbone(tiny_backbone.model, 2, "costeff", gradient_equilibrium=True, seed=0,
                          exit_pooling=pooling).eval()
    scores = random_importance(model) if with_scores else None
    slender = slenderize(model, scores, shape_of(model))
    assert slender is not model and slender.config.exit_pooling == pooling
    with torch.no_grad():
        assert torch.equal(model(**batch).exit_logits, slender(**batch).exit_logits)


def test_slenderize_is_pure_and_keeps_the_best_units(costeff_model):
    before = {k: v.clone() for k, v in costeff_model.state_dict().items()}
    scores = Importance([torch.tensor([0.1, 0.9, 0.5, 0.3])] * 4, [torch.arange(64.0)] * 4)
    slender = slenderize(costeff_model, scores, Shape((2,) * 4, (16,) * 4, None))
    assert all(torch.equal(before[k], v) for k, v in costeff_model.state_dict().items())
    d = costeff_model.config.attention_head_size
    src, dst = costeff_model.bert.encoder.layer[0], slender.bert.encoder.layer[0]
    kept = torch.cat([torch.arange(1 * d, 2 * d), torch.arange(2 * d, 3 * d)])   # heads 1 and 2, in order
    assert torch.equal(dst.attention.self.query.weight, src.attention.self.query.weight[kept])
    assert torch.equal(dst.attention.output.dense.weight, src.attention.output.dense.weight[:, kept])
    assert torch.equal(dst.intermediate.dense.weight, src.intermediate.dense.weight[48:])   # top-16 neurons
    assert torch.equal(dst.output.dense.weight, src.output.dense.weight[:, 48:])


def test_slenderize_rejects_growth_and_missing_scores(costeff_model):
    with pytest.raises(ValueError, match="pruning only removes"):
        slenderize(costeff_model, random_importance(costeff_model), Shape((5,) * 4, (64,) * 4, None))
    with pytest.raises(ValueError, match="needs importance scores"):
        slenderize(costeff_model, None, Shape((2,) * 4, (64,) * 4, None))
    with pytest.raises(ValueError, match="4 layers"):
        slenderize(costeff_model, None, Shape((2,) * 3, (64,) * 3, None))


def test_factorised_embedding_is_the_truncated_svd():
    torch.manual_seed(0)
    weight = torch.randn(50, 8)
    rows, projection = factorise_embedding(weight, 8)
    torch.testing.assert_close(rows @ projection, weight, rtol=0, atol=1e-5)
    rows3, projection3 = factorise_embedding(weight, 3)
    s = torch.linalg.svdvals(weight.double())
    err = torch.linalg.matrix_norm((rows3 @ projection3 - weight).double())
    torch.testing.assert_close(err, s[3:].pow(2).sum().sqrt())      # Eckart-Young: the best rank-3 error
    with pytest.raises(ValueError, match="rank 9"):
        factorise_embedding(weight, 9)


def test_slender_model_round_trips_through_save_and_load(tmp_path, costeff_model, batch):
    model = costeff_model
    for shape in prune_schedule(shape_of(model), 2, 32, 16, model.config.hidden_size):
        model = slenderize(model, random_importance(model), shape)
    model.save_pretrained(tmp_path / "slender")
    loaded = MultiExitBertForSequenceClassification.from_pretrained(tmp_path / "slender").eval()
    assert shape_of(loaded) == Shape((2,) * 4, (32,) * 4, 16)
    assert loaded.config.gradient_equilibrium and loaded.config.exit_style == "costeff"
    with torch.no_grad():
        assert torch.equal(model.eval()(**batch).exit_logits, loaded(**batch).exit_logits)


def test_prune_schedule_is_linear_one_head_per_event():
    start = Shape((12,) * 6, (1536,) * 6, None)
    shapes = prune_schedule(start, 2, 256, 64, 384)
    assert len(shapes) == 10
    assert [s.heads[0] for s in shapes] == list(range(11, 1, -1))
    assert [s.ffn[0] for s in shapes] == [round(1536 - 128 * e) for e in range(1, 11)]
    assert [s.embedding_rank for s in shapes] == [384 - 32 * e for e in range(1, 11)]
    assert prune_schedule(start, 12, 1536, None, 384) == []
    assert len(prune_schedule(start, 12, 768, None, 384)) == 1
    with pytest.raises(ValueError, match="exceed"):
        prune_schedule(Shape((4,) * 2, (64,) * 2, None), 5, 64, None, 32)


def test_kept_units_breaks_ties_toward_lower_index():
    assert kept_units(torch.tensor([1.0, 3.0, 3.0, 0.0]), 2) == [1, 2]
    assert kept_units(torch.tensor([2.0, 2.0, 2.0]), 1) == [0]
    with pytest.raises(ValueError, match="cannot keep 4 of 3"):
        kept_units(torch.ones(3), 4)


def test_truncate_depth_keeps_the_first_layers_and_exits(tiny_model, batch):
    short = truncate_depth(tiny_model, 2).eval()
    assert short.num_layers == 2 and len(short.poolers) == 2
    with torch.no_grad():
        assert torch.equal(short(**batch).exit_logits, tiny_model(**batch).exit_logits[:2])
    with pytest.raises(ValueError, match="layers=5"):
        truncate_depth(tiny_model, 5)


# -- parameters and FLOPs against an independent count ---------------------------------------------

SLENDER = dict(heads_per_layer=[2, 1, 3, 2], ffn_per_layer=[16, 32, 8, 64], embedding_rank=8)


def slender_config(**extra):
    return MultiExitBertConfig(exit_style="costeff", vocab_size=1100, hidden_size=32, num_hidden_layers=4,
                               num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                               num_labels=3, **{**SLENDER, **extra})


def test_parameter_count_of_a_slender_model_matches_a_hand_count():
    model = MultiExitBertForSequenceClassification(slender_config())
    V, H, P, T, C, d, r = 1100, 32, 64, 2, 3, 8, 8
    embeddings = V * r + r * H + P * H + T * H + 2 * H
    layers = 0
    for heads, ffn in zip(SLENDER["heads_per_layer"], SLENDER["ffn_per_layer"]):
        w = heads * d
        layers += 3 * (H * w + w) + (w * H + H) + 2 * H + (H * ffn + ffn) + (ffn * H + H) + 2 * H
    exits = 4 * (H * C + C)
    assert count_parameters(model) == embeddings + layers + exits
    assert count_parameters(model, embeddings=False) == layers + exits
    assert deployed_parameters(model, static=True) == embeddings + layers + (H * C + C)


@pytest.mark.parametrize("seq_len", [1, 7, 20])
def test_flops_of_a_slender_model_match_a_hand_count(seq_len):
    """``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add of every matmul.

    The counter does not register PyTorch's CPU attention kernel
    (``_scaled_dot_product_flash_attention_for_cpu``), so on CPU the attention-score and
    attention-value products (``4 * heads * n^2 * head_size`` per layer) are not in the
    measured count; the hand count below leaves them out too.
    """
    model = MultiExitBertForSequenceClassification(slender_config()).eval()
    expected = slender_flops_by_hand(SLENDER["heads_per_layer"], SLENDER["ffn_per_layer"], seq_len, 32, 3, 8, 8)
    assert cumulative_flops(model, seq_len).tolist() == expected


def test_flops_fall_with_width_and_the_table_interpolates_exactly(costeff_model):
    slender = costeff_model
    for shape in prune_schedule(shape_of(slender), 1, 16, 8, 32):
        slender = slenderize(slender, random_importance(slender), shape)
    lengths = np.array([3, 5, 8, 9, 12, 17, 25, 31])
    for model in (costeff_model, slender):
        table = flops_table(model, lengths)
        for n in (5, 9, 25):
            assert table[n].tolist() == cumulative_flops(model, n).tolist()
    assert flops_table(slender, lengths)[17][-1] < flops_table(costeff_model, lengths)[17][-1] / 2


# -- importance --------------------------------------------------------------------------------------

def test_importance_ranks_a_zeroed_head_and_neuron_last(costeff_model, tokenizer):
    model = costeff_model
    d = model.config.attention_head_size
    layer = model.bert.encoder.layer[1]
    with torch.no_grad():
        layer.attention.self.value.weight[2 * d:3 * d] = 0          # head 2 of layer 1 contributes nothing
        layer.attention.self.value.bias[2 * d:3 * d] = 0
        layer.attention.output.dense.weight[:, 2 * d:3 * d] = 0
        layer.intermediate.dense.weight[5] = 0                      # FFN neuron 5 of layer 1 too
        layer.output.dense.weight[:, 5] = 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    texts = ["a gripping, well acted film", "dull", "long and slow", "a joy", "not good at all", "fine"]
    batches = [tokenizer(texts[i:i + 3], padding=True, return_tensors="pt") for i in (0, 3)]
    labels = [torch.tensor([1, 0, 0]), torch.tensor([1, 0, 1])]

    def loss_fn(m, i):
        logits = m(**batches[i]).exit_logits
        return sum(torch.nn.functional.cross_entropy(z, labels[i]) for z in logits)

    scores = taylor_importance(model, [0, 1], loss_fn)
    assert scores.batches == 2
    assert scores.head_ranking(1)[-1] == 2
    assert float(scores.heads[1][2]) == 0.0 and bool((scores.heads[1][[0, 1, 3]] > 0).all())
    assert int(scores.neurons[1].argmin()) == 5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_importance_is_the_taylor_score_of_the_summed_gradient(costeff_model, batch):
    model = costeff_model
    labels = torch.tensor([1, 0, 1])

    def loss_fn(m, _):
        return torch.nn.functional.cross_entropy(m(**batch).logits, labels)

    scores = taylor_importance(model, [0, 1], loss_fn)
    model.zero_grad()
    (2 * loss_fn(model, 0)).backward()
    w = model.bert.encoder.layer[0].attention.output.dense.weight
    d = model.config.attention_head_size
    expected = (w * w.grad).abs().view(w.shape[0], -1, d).sum(dim=(0, 2))
    torch.testing.assert_close(scores.heads[0], expected)
    with pytest.raises(ValueError, match="at least one batch"):
        taylor_importance(model, [], loss_fn)


# -- distillation losses on hand-computed values ----------------------------------------------------

def test_soft_cross_entropy_hand_values():
    student = torch.tensor([[0.0, math.log(3.0)]])          # softmax (0.25, 0.75)
    teacher = torch.tensor([[0.0, 0.0]])                    # softmax (0.5, 0.5)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_cross_entropy(student, teacher).item() == pytest.approx(expected)
    # at T = 2 the student's softmax is (1, sqrt 3) / (1 + sqrt 3)
    p = 1 / (1 + math.sqrt(3))
    expected = -(0.5 * math.log(p) + 0.5 * math.log(1 - p))
    assert soft_cross_entropy(student, teacher, 2.0).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="temperature=0"):
        soft_cross_entropy(student, teacher, 0)


def test_hidden_mse_is_masked_and_summed_over_layers():
    s0 = torch.tensor([[[1.0, 3.0], [10.0, 10.0]]])         # (batch 1, seq 2, hidden 2); token 2 is padding
    s1 = torch.tensor([[[2.0, 2.0], [-5.0, 7.0]]])
    t = torch.zeros(1, 2, 2)
    mask = torch.tensor([[1, 0]])
    # layer 0: mean(1, 9) = 5; layer 1: mean(4, 4) = 4; over 1 real token
    assert hidden_mse([s0, s1], [t, t, t], mask).item() == pytest.approx(9.0)
    two = torch.tensor([[[1.0, 1.0], [3.0, 3.0]]])
    assert hidden_mse([two], [t], torch.tensor([[1, 1]])).item() == pytest.approx((1 + 9) / 2)
    with pytest.raises(ValueError, match="deeper than its teacher"):
        hidden_mse([s0, s1], [t], mask)


def test_exit_mappings():
    assert exit_mapping(4, 4, "exit_to_exit") == [0, 1, 2, 3]
    assert exit_mapping(3, 6, "exit_to_final") == [5, 5, 5]
    with pytest.raises(ValueError, match="accepted: exit_to_exit, exit_to_final"):
        exit_mapping(3, 3, "layerwise")
    with pytest.raises(ValueError, match="at most 2"):
        exit_mapping(3, 2, "exit_to_exit")


def test_prediction_loss_mixes_soft_and_hard_over_the_trained_exits():
    ln3 = math.log(3.0)
    student = torch.tensor([[[0.0, ln3]], [[ln3, 0.0]]])   # (L 2, batch 1, C 2)
    teacher = torch.tensor([[[0.0, 0.0]], [[0.0, 5.0]]])
    labels = torch.tensor([1])
    def ce(p):
        return -math.log(p)
    soft_uniform = 0.5 * ce(0.25) + 0.5 * ce(0.75)
    pt = 1 / (1 + math.exp(-5.0))
    # exit_to_exit: exit 0 vs teacher exit 0 (uniform), exit 1 vs teacher exit 1
    soft1 = -((1 - pt) * math.log(0.75) + pt * math.log(0.25))
    hard0, hard1 = ce(0.75), ce(0.25)
    got = prediction_loss(student, teacher, labels, "exit_to_exit", "all", soft_weight=0.9)
    assert got.item() == pytest.approx(0.9 * soft_uniform + 0.1 * hard0 + 0.9 * soft1 + 0.1 * hard1)
    # exit_to_final: both exits learn from teacher exit 1
    soft0_final = -((1 - pt) * math.log(0.25) + pt * math.log(0.75))
    got = prediction_loss(student, teacher, labels, "exit_to_final", "all", soft_weight=0.5)
    assert got.item() == pytest.approx(0.5 * (soft0_final + hard0) + 0.5 * (soft1 + hard1))
    # a static model: only the last exit
    got = prediction_loss(student, teacher, labels, "exit_to_final", "final", soft_weight=1.0)
    assert got.item() == pytest.approx(soft1)
    with pytest.raises(ValueError, match="soft_weight=1.5"):
        prediction_loss(student, teacher, labels, soft_weight=1.5)


def test_distillation_loss_adds_the_parts():
    student = torch.zeros(2, 1, 2)
    teacher = torch.zeros(2, 1, 2)
    states = [torch.ones(1, 3, 4)] * 3
    zeros = [torch.zeros(1, 3, 4)] * 3
    mask = torch.ones(1, 3)
    spec = LossSpec(soft_weight=1.0, hidden_weight=2.0)
    loss, parts = distillation_loss(student, states, teacher, zeros, torch.tensor([0]), mask, spec)
    assert parts == pytest.approx({"representation": 3.0, "prediction": 2 * math.log(2)})
    assert loss.item() == pytest.approx(2 * 3.0 + 2 * math.log(2))
    with pytest.raises(ValueError, match="needs the representation or the prediction"):
        LossSpec(representation=False, prediction=False)
    with pytest.raises(ValueError, match="accepted: all, final"):
        LossSpec(exits="middle")


# -- configs --------------------------------------------------------------------------------------

def test_chapter_config_rejects_bad_input_by_name():
    from costeff_same.chapters.costeff import costeff_config

    with pytest.raises(ConfigError, match="unknown parameter.*'heads'"):
        costeff_config(heads=2)
    with pytest.raises(ConfigError, match="unknown ta init 'student'; accepted: teacher, backbone"):
        costeff_config(backbone="tiny-random", ta_init="student")
    with pytest.raises(ConfigError, match="static_heads entry 0"):
        costeff_config(backbone="tiny-random", static_heads=[0])
    with pytest.raises(ConfigError, match="static_ffn_scales=\\[0.0\\] must be a non-empty list of fractions"):
        costeff_config(backbone="tiny-random", static_ffn_scales=[0.0])
    with pytest.raises(ConfigError, match="must differ in shape"):
        costeff_config(backbone="tiny-random", static_ffn_scales=[1.0, 1.0])
    cfg = costeff_config(backbone="tiny-random", target_heads=2, target_ffn=32, target_embedding_rank=16,
                         static_heads=[2, 1], static_ffn_scales=[1.0], depth_layers=[1])
    assert list(cfg.models()) == ["teacher", "ta", "costeff", "no_ta", "final_importance", "static_h2",
                                  "static_h1", "depth_1"]
    static1 = cfg.static[1].slenderize
    assert (static1.heads, static1.ffn, static1.embedding_rank, static1.exits) == (1, 16, 8, "final")
    # each shape also at half its FFN: four static budgets
    cfg = costeff_config(backbone="tiny-random", target_heads=2, target_ffn=32, target_embedding_rank=16,
                         static_heads=[2, 1], static_ffn_scales=[1.0, 0.5], depth_layers=[1])
    names = [n for n, (kind, _) in cfg.models().items() if kind == "static"]
    assert names == ["static_h2", "static_h2_f16", "static_h1", "static_h1_f8", "depth_1"]
    assert [s.slenderize.ffn for s in cfg.static] == [32, 16, 16, 8]
    assert cfg.no_ta.slenderize.mapping == "exit_to_final" and cfg.costeff.slenderize.mapping == "exit_to_exit"


# -- the resumable distillation trainer --------------------------------------------------------------

@pytest.mark.parametrize("fail_at", [4, 6, 8])   # after the prune, at a segment boundary, mid-recovery
def test_interrupted_slenderization_resumes_to_the_same_weights(tmp_path, tiny_backbone, monkeypatch, fail_at):
    from datasets import Dataset

    from costeff_same.compression import pipeline
    from costeff_same.compression.pipeline import Prune, distill, distill_segment
    from costeff_same.compression.stages import DistillConfig
    from costeff_same.compression.teacher import TeacherOutputs
    from costeff_same.core.encoding import Encoded

    texts = ["a gripping film", "dull and long", "a joy", "not good", "fine work", "bad", "great", "slow"] * 2
    ds = Dataset.from_dict({"text": texts, "label": [1, 0, 1, 0, 1, 0, 1, 0] * 2})
    data = {"train": Encoded(ds, tiny_backbone.tokenizer, 16), "validation": Encoded(ds, tiny_backbone.tokenizer, 16)}
    teacher = from_backbone(tiny_backbone.model, 2, "costeff", seed=1).eval()
    optim = DistillConfig(batch_size=4, learning_rate=1e-3, checkpoint_every=2)
    both = LossSpec()

    def run(workdir):
        student = from_backbone(tiny_backbone.model, 2, "costeff", gradient_equilibrium=True, seed=0)
        outputs = TeacherOutputs(teacher, data["train"], precompute=True)
        segments = [distill_segment("event 1", 3, 1e-3, both, outputs, data["train"], first_steps=1,
                                    first_spec=LossSpec(prediction=False),
                                    prune=Prune(Shape((3,) * 4, (48,) * 4, 24), both, 8, 0), batch_size=4),
                    distill_segment("recovery", 4, 1e-3, both, outputs, data["train"], evaluations=2)]
        return distill(student, segments, data, optim, workdir, "accuracy")

    reference, history, best = run(tmp_path / "a")
    assert shape_of(reference) == Shape((3,) * 4, (48,) * 4, 24)
    assert best is not None and [h["event"] for h in history if "event" in h].count("evaluate") == 2

    real, calls = pipeline.batch_loss, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:  # calls 1-2: the importance pass; 3-5: event 1; 6-9: recovery
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "batch_loss", flaky)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    assert (tmp_path / "b" / "checkpoint" / "state.pt").exists()
    monkeypatch.setattr(pipeline, "batch_loss", real)
    resumed, _, _ = run(tmp_path / "b")
    for (k, v), (k2, v2) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert not (tmp_path / "b" / "checkpoint").exists()


# -- the command line and the summary -----------------------------------------------------------------

def test_compress_command_help_errors_and_offline_paper_profile(capsys):
    import json
    import time

    from costeff_same.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["compress", "--help"])
    assert exit_info.value.code == 0 and "--model" in capsys.readouterr().out
    assert main(["compress", "--profile", "smoke", "--model", "student"]) == 2
    assert "unknown model 'student'; accepted: teacher, ta, costeff" in capsys.readouterr().err
    assert main(["compress", "--profile", "smoke", "--set", "target_heads=0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert main(["compress", "--profile", "smoke", "--workers", "0"]) == 2
    assert "workers=0 must be >= 1" in capsys.readouterr().err
    start = time.time()
    assert main(["compress", "--profile", "paper", "--model", "ta"]) == 2
    assert "must come from the Hugging Face hub" in capsys.readouterr().err
    assert time.time() - start < 10
    assert main(["summary", "--profile", "smoke", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["costeff"]["status"] == "not run"
