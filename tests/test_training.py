"""Training regimes, determinism, and resuming a killed run."""

import os

import pytest
import torch

from costeff_same.core.data import load_task, subsample
from costeff_same.core.encoding import Encoded
from costeff_same.core.metrics import per_exit_metric
from costeff_same.core.modeling import from_backbone
from costeff_same.engine.training import (
    TrainingInterrupted,
    collect_exit_logits,
    exit_weights,
    train,
)
from costeff_same.foundations.config import TrainConfig


@pytest.fixture(scope="module")
def splits(tokenizer):
    task = load_task("rotten_tomatoes", seed=0)
    return (Encoded(subsample(task.splits["train"], 40, 0), tokenizer, 32),
            Encoded(subsample(task.splits["test"], 24, 0), tokenizer, 32))


def _fresh(tiny_backbone, style):
    return from_backbone(tiny_backbone.model, 2, style, seed=0)


def test_weighted_regime_is_pabee():
    assert torch.allclose(exit_weights("weighted", 3), torch.tensor([1, 2, 3]) / 6.0)
    assert torch.equal(exit_weights("joint", 3), torch.ones(3))


@pytest.mark.parametrize("regime,style", [("two_stage", "deebert"), ("weighted", "pabee"), ("joint", "costeff")])
def test_killed_run_resumes_to_the_same_weights_and_metrics(tmp_path, tiny_backbone, splits, regime, style):
    train_data, test_data = splits
    cfg = TrainConfig(backbone="tiny-random", exit_style=style, regime=regime, epochs=2, exit_epochs=1,
                      batch_size=8, learning_rate=1e-3, exit_learning_rate=1e-3, checkpoint_every=2)
    reference = _fresh(tiny_backbone, style)
    train(reference, train_data, cfg, tmp_path / "a")

    resumed = _fresh(tiny_backbone, style)
    with pytest.raises(TrainingInterrupted):
        train(resumed, train_data, cfg, tmp_path / "b", interrupt_after=3)
    killed = _fresh(tiny_backbone, style)  # a new process: nothing survives but the checkpoint
    with pytest.raises(TrainingInterrupted):
        train(killed, train_data, cfg, tmp_path / "b", interrupt_after=5)
    final = _fresh(tiny_backbone, style)
    train(final, train_data, cfg, tmp_path / "b")
    assert not (tmp_path / "b" / "checkpoint").exists()

    for (name, a), (_, b) in zip(reference.state_dict().items(), final.state_dict().items()):
        assert torch.equal(a, b), name
    metrics = [per_exit_metric("accuracy", collect_exit_logits(m, test_data), test_data.labels)
               for m in (reference, final)]
    assert metrics[0] == metrics[1]
    assert reference.state_dict()["classifiers.0.weight"].ne(_fresh(tiny_backbone, style)
                                                              .state_dict()["classifiers.0.weight"]).any()


def test_a_run_killed_in_deeberts_stage_two_resumes_bit_identically(tmp_path, tiny_backbone, splits):
    """Stage 2 clips only the exits' gradients: the frozen encoder's stale stage-1 gradients,
    which a resumed process does not have, must not enter the clipping norm."""
    train_data, _ = splits
    cfg = TrainConfig(backbone="tiny-random", exit_style="deebert", regime="two_stage", epochs=1, exit_epochs=2,
                      batch_size=8, learning_rate=1e-3, exit_learning_rate=5e-2, checkpoint_every=2)
    reference = _fresh(tiny_backbone, "deebert")
    train(reference, train_data, cfg, tmp_path / "a")
    killed = _fresh(tiny_backbone, "deebert")
    with pytest.raises(TrainingInterrupted):  # stage 1 has 5 steps: this stops at step 3 of stage 2
        train(killed, train_data, cfg, tmp_path / "b", interrupt_after=8)
    final = _fresh(tiny_backbone, "deebert")
    train(final, train_data, cfg, tmp_path / "b")
    for (name, a), (_, b) in zip(reference.state_dict().items(), final.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_diverging_run_stops_with_a_clear_error(tmp_path, tiny_backbone, splits):
    from costeff_same.engine.trainer import TrainingDiverged

    train_data, _ = splits
    model = _fresh(tiny_backbone, "pabee")
    with torch.no_grad():
        model.classifiers[0].weight.fill_(float("nan"))
    cfg = TrainConfig(backbone="tiny-random", exit_style="pabee", regime="weighted", epochs=1, batch_size=8)
    with pytest.raises(TrainingDiverged, match="diverged .* step 0: loss nan"):
        train(model, train_data, cfg, tmp_path / "a")


def test_two_stage_freezes_the_backbone_in_stage_two(tmp_path, tiny_backbone, splits):
    train_data, _ = splits
    cfg = TrainConfig(backbone="tiny-random", regime="two_stage", epochs=1, exit_epochs=1, batch_size=8,
                      learning_rate=1e-3, exit_learning_rate=1e-2)
    trained, stage1_only = _fresh(tiny_backbone, "deebert"), _fresh(tiny_backbone, "deebert")
    train(trained, train_data, cfg, tmp_path / "a")
    train(stage1_only, train_data, cfg.replace(exit_epochs=0), tmp_path / "b")  # no stage 2
    a, b = trained.state_dict(), stage1_only.state_dict()
    frozen = [k for k in a if k.startswith("bert.") or k.startswith(("classifiers.3.", "poolers.3."))]
    assert all(torch.equal(a[k], b[k]) for k in frozen)
    assert not torch.equal(a["classifiers.0.weight"], b["classifiers.0.weight"])
    assert not torch.equal(a["poolers.1.dense.weight"], b["poolers.1.dense.weight"])


def test_stage_two_loss_runs_only_the_layers_below_the_deepest_trained_exit(tiny_backbone, splits):
    """Stage 2 skips the layers above its deepest trained exit; the loss equals the one of a
    full frozen pass (every layer in eval mode, then the trained exits), bit for bit."""
    from costeff_same.core.modeling import task_loss
    from costeff_same.engine.training import stage_loss, stages_for

    train_data, _ = splits
    model = _fresh(tiny_backbone, "deebert")
    cfg = TrainConfig(backbone="tiny-random", regime="two_stage", epochs=1, exit_epochs=1, batch_size=8)
    stage = stages_for(cfg, model.num_layers)[1]
    batch = train_data.batch(list(range(8)))
    calls = []
    hook = model.bert.encoder.layer[-1].register_forward_hook(lambda *args: calls.append(1))
    torch.manual_seed(3)
    loss = stage_loss(model, batch, stage)
    hook.remove()
    assert not calls                                   # the last layer feeds only the frozen last exit
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.bert.eval()
    with torch.no_grad():
        states = model(**inputs, output_hidden_states=True).hidden_states[1:]
    model.bert.train()
    torch.manual_seed(3)
    expected = sum(task_loss(model.exit_forward(i, h, inputs["attention_mask"]), batch["labels"], 2)
                   for i, h in enumerate(states) if stage.weights[i] > 0)
    assert torch.equal(loss, expected)


def test_training_is_deterministic(tmp_path, tiny_backbone, splits):
    train_data, _ = splits
    cfg = TrainConfig(backbone="tiny-random", regime="joint", epochs=1, batch_size=8, learning_rate=1e-3)
    a, b = _fresh(tiny_backbone, "pabee"), _fresh(tiny_backbone, "pabee")
    train(a, train_data, cfg, tmp_path / "a")
    train(b, train_data, cfg, tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_bf16_training_runs_its_forward_under_autocast_and_stays_close_to_fp32(tmp_path, tiny_backbone, splits):
    """bf16 autocast changes the numbers a little, not the outcome: the same data order and
    dropout masks, the weights stay float32, and the trained exits' metric is close."""
    train_data, test_data = splits
    seen = []
    models = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(backbone="tiny-random", regime="joint", epochs=2, batch_size=8, learning_rate=1e-3,
                          precision=precision)
        model = _fresh(tiny_backbone, "pabee")
        layer = model.bert.encoder.layer[0].intermediate.dense
        hook = layer.register_forward_hook(lambda m, i, o: seen.append((precision, o.dtype)))
        train(model, train_data, cfg, tmp_path / precision)
        hook.remove()
        models[precision] = model
    assert {dtype for p, dtype in seen if p == "fp32"} == {torch.float32}
    assert {dtype for p, dtype in seen if p == "bf16"} == {torch.bfloat16}
    assert all(v.dtype == torch.float32 for v in models["bf16"].state_dict().values() if v.is_floating_point())
    a, b = (models[p].state_dict() for p in ("fp32", "bf16"))
    assert not all(torch.equal(a[k], b[k]) for k in a)
    drift = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert drift < 0.05                                      # learning rate 1e-3, 10 steps: a small drift


def test_an_unknown_precision_is_refused_with_the_accepted_ones():
    from costeff_same.compression.stages import DistillConfig
    from costeff_same.foundations.config import ConfigError

    with pytest.raises(ConfigError, match="precision.*fp16.*accepted: fp32, bf16"):
        TrainConfig(precision="fp16")
    with pytest.raises(ConfigError, match="precision.*fp16.*accepted: fp32, bf16"):
        DistillConfig(precision="fp16")


# -- checkpoints that cannot run code -----------------------------------------------------------

class _Planted:
    """Unpickling this runs ``touch <marker>``: what an attacker would plant as a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _reference(tiny_backbone, train_data, cfg, workdir):
    model = _fresh(tiny_backbone, "deebert")
    train(model, train_data, cfg, workdir)
    return model


def test_a_planted_pickle_is_refused_without_running_and_the_stage_restarts(tmp_path, tiny_backbone, splits):
    from costeff_same.engine.checkpoint import CorruptCheckpointWarning

    train_data, _ = splits
    cfg = TrainConfig(backbone="tiny-random", regime="two_stage", epochs=1, exit_epochs=1, batch_size=8,
                      learning_rate=1e-3, checkpoint_every=2)
    marker = tmp_path / "pwned"
    state = tmp_path / "b" / "checkpoint" / "state.pt"
    state.parent.mkdir(parents=True)
    torch.save({"model": _Planted(marker)}, state)
    planted = _fresh(tiny_backbone, "deebert")
    with pytest.warns(CorruptCheckpointWarning, match="set aside"):
        train(planted, train_data, cfg, tmp_path / "b")
    assert not marker.exists()
    reference = _reference(tiny_backbone, train_data, cfg, tmp_path / "a")
    for (name, a), (_, b) in zip(reference.state_dict().items(), planted.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_truncated_checkpoint_restarts_the_stage_from_its_beginning(tmp_path, tiny_backbone, splits):
    from costeff_same.engine.checkpoint import CorruptCheckpointWarning

    train_data, _ = splits
    cfg = TrainConfig(backbone="tiny-random", regime="joint", exit_style="deebert", epochs=2, batch_size=8,
                      learning_rate=1e-3, checkpoint_every=2)
    with pytest.raises(TrainingInterrupted):
        train(_fresh(tiny_backbone, "deebert"), train_data, cfg, tmp_path / "b", interrupt_after=4)
    state = tmp_path / "b" / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    resumed = _fresh(tiny_backbone, "deebert")
    with pytest.warns(CorruptCheckpointWarning):
        train(resumed, train_data, cfg, tmp_path / "b")
    reference = _reference(tiny_backbone, train_data, cfg, tmp_path / "a")
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
