"""Reference equivalence and round-trips of the multi-exit model."""

import pytest
import torch
from transformers import BertForSequenceClassification

from costeff_same.core.modeling import (
    EXIT_STYLES,
    MultiExitBertConfig,
    MultiExitBertForSequenceClassification,
    from_backbone,
    gradient_rescale,
)


@pytest.fixture
def batch(tokenizer):
    return tokenizer(["a gripping, well acted film", "dull", "neither good nor bad, just long"],
                     padding=True, return_tensors="pt")


def test_last_exit_equals_bert_for_sequence_classification(tiny_backbone, batch):
    model = from_backbone(tiny_backbone.model, 2, "deebert").eval()
    reference = BertForSequenceClassification(tiny_backbone.model.config).eval()
    reference.bert.load_state_dict(tiny_backbone.model.state_dict())
    reference.bert.pooler.load_state_dict(model.poolers[-1].state_dict())
    reference.classifier.load_state_dict(model.classifiers[-1].state_dict())
    with torch.no_grad():
        ours = model(**batch)
        theirs = reference(**batch)
    assert ours.exit_logits.shape == (4, 3, 2)
    torch.testing.assert_close(ours.logits, theirs.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.exit_logits[-1], theirs.logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("style", EXIT_STYLES)
def test_save_load_round_trip_is_exact(tmp_path, tiny_backbone, batch, style):
    model = from_backbone(tiny_backbone.model, 3, style).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = MultiExitBertForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.exit_style == style
    with torch.no_grad():
        assert torch.equal(model(**batch).exit_logits, loaded(**batch).exit_logits)


def test_exit_head_styles_have_their_parameters(tiny_backbone):
    pools = {s: len(from_backbone(tiny_backbone.model, 2, s).poolers) for s in EXIT_STYLES}
    assert pools == {"deebert": 4, "pabee": 1, "costeff": 0}


def test_costeff_exit_is_parameter_free_tanh(tiny_backbone, batch):
    model = from_backbone(tiny_backbone.model, 2, "costeff").eval()
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        h = out.hidden_states[2][:, 0]
        expected = model.classifiers[1](torch.tanh(h))
    torch.testing.assert_close(out.exit_logits[1], expected)


def test_gradient_rescale_scales_only_the_gradient():
    x = torch.ones(3, requires_grad=True)
    y = gradient_rescale(x, 0.25)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), 0.25))


def test_gradient_equilibrium_changes_gradients_not_outputs(tiny_backbone, batch):
    labels = torch.tensor([1, 0, 1])
    grads, logits = [], []
    for equilibrium in (False, True):
        model = from_backbone(tiny_backbone.model, 2, "deebert", gradient_equilibrium=equilibrium, seed=0)
        model.train()
        model.dropout.p = 0.0
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        out = model(**batch, labels=labels)
        out.loss.backward()
        logits.append(out.exit_logits.detach())
        grads.append(model.bert.encoder.layer[0].output.dense.weight.grad.clone())
    torch.testing.assert_close(logits[0], logits[1])
    assert not torch.allclose(grads[0], grads[1])


def _exit_gradients(model, batch, exit_index):
    """Gradients of exit ``exit_index``'s logit sum at the word vectors and at every layer's weights."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    embeds = model.bert.embeddings.word_embeddings(batch["input_ids"]).detach().requires_grad_(True)
    out = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    model.zero_grad()
    out.exit_logits[exit_index].sum().backward()
    return embeds.grad, [layer.output.dense.weight.grad.clone() for layer in model.bert.encoder.layer]


@pytest.mark.parametrize("exit_index", [0, 1, 3])
def test_gradient_equilibrium_weighs_each_exit_one_over_its_readers(tiny_backbone, batch, exit_index):
    """Layer i's output is read by L - i exits: each of them reaches it with weight 1/(L - i)."""
    plain = from_backbone(tiny_backbone.model, 2, "costeff", gradient_equilibrium=False, seed=0)
    balanced = from_backbone(tiny_backbone.model, 2, "costeff", gradient_equilibrium=True, seed=0)
    depth = plain.num_layers
    g_plain, layers_plain = _exit_gradients(plain, batch, exit_index)
    g_bal, layers_bal = _exit_gradients(balanced, batch, exit_index)
    assert g_plain.abs().sum() > 0
    torch.testing.assert_close(g_bal, g_plain / depth)
    for i in range(exit_index + 1):       # the layers exit ``exit_index`` reads
        torch.testing.assert_close(layers_bal[i], layers_plain[i] / (depth - i))


def test_regression_has_one_output_and_mse_loss(tiny_backbone, batch):
    model = from_backbone(tiny_backbone.model, 1, "pabee")
    labels = torch.tensor([0.5, 4.0, 2.5])
    out = model(**batch, labels=labels)
    assert out.exit_logits.shape == (4, 3, 1)
    by_hand = sum(((z.squeeze(-1) - labels) ** 2).mean() for z in out.exit_logits)   # sum over exits of the MSE
    torch.testing.assert_close(out.loss, by_hand)


def test_bad_exit_style_and_shape_are_refused():
    with pytest.raises(ValueError, match="unknown exit_style 'highway'.*deebert"):
        MultiExitBertConfig(exit_style="highway")
    with pytest.raises(ValueError, match="heads_per_layer"):
        MultiExitBertConfig(num_hidden_layers=2, heads_per_layer=[12])


def test_mean_pooling_exit_ignores_padding(tiny_backbone, tokenizer):
    model = from_backbone(tiny_backbone.model, 2, "pabee", exit_pooling="mean").eval()
    short = tokenizer(["a fine film"], return_tensors="pt")
    padded = tokenizer(["a fine film"], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**short).exit_logits, model(**padded).exit_logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="needs the \\(batch, seq_len\\) attention_mask"):
        model.exit_forward(0, torch.zeros(1, 4, 32))
    with pytest.raises(ValueError, match="unknown exit_pooling 'max'; accepted: cls, mean"):
        MultiExitBertConfig(exit_pooling="max")


def test_mask_dropout_keeps_the_distribution_of_dropout_and_replaces_every_dropout(tiny_model):
    from costeff_same.core.modeling import MaskDropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    drop = MaskDropout(0.1).train()
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.9) < 0.005                                  # each element kept with probability 0.9
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(MaskDropout(1.0).train()(x), torch.zeros_like(x))
    assert not [m for m in tiny_model.modules() if type(m) is torch.nn.Dropout]
    assert sum(isinstance(m, MaskDropout) for m in tiny_model.modules()) >= 1 + 3 * tiny_model.num_layers
