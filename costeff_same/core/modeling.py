"""Multi-exit BERT for sequence classification (DeeBERT, PABEE, COST-EFF exits).

A BERT encoder with an exit (a classifier) after every layer, in the shape of
``transformers``' ``modeling_bert.py``: a config class, blocks in forward order, a
``@dataclass`` output. The encoder reuses HF's ``BertEmbeddings`` and ``BertLayer``.

Exit head styles (the methods page):

- ``deebert`` (Xin et al., 2020): each exit has its own pooler ``tanh(W h_CLS + b)``,
  then dropout and ``Linear(hidden, num_labels)``. The last exit is exactly
  ``BertForSequenceClassification``'s pooler + classifier.
- ``pabee`` (Zhou et al., 2020): one pooler shared by all exits, one linear classifier
  per exit.
- ``costeff`` (Shen et al., 2022): a parameter-free pooler ``tanh(h_CLS)``, dropout and a
  linear classifier per exit.

Exit pooling: every paper above pools the ``[CLS]`` state (``cls``, the default). The
packaged all-MiniLM-L6-v2 is a sentence encoder trained with *mean* pooling: its ``[CLS]``
state below layer 4 is nearly constant across inputs (a linear probe on the fine-tuned
model's layer-1..3 ``[CLS]`` reaches 0.53/0.60/0.50 on Rotten Tomatoes, against
0.75/0.77/0.79 for the mean of the token states), so an exit trained on a frozen
backbone (DeeBERT's stage 2) cannot learn from it. ``exit_pooling="mean"`` feeds each exit
the attention-masked mean of the layer's token states instead; the default profile uses
it, the paper profile keeps ``cls``.

Slender shapes (COST-EFF, Shen et al., 2022, section 3.2): per-layer kept attention heads (head
size unchanged), per-layer FFN width, and an optional factorised word embedding
``Embedding(V, r)`` + ``Linear(r, H, bias=False)``. Depth and residual width are kept.

Gradient equilibrium (Li et al., ICCV 2019; ElasticBERT; COST-EFF): layer ``i``'s output
(0-based) is read by ``L - i`` exits (its own and every deeper one). In the backward pass
its gradient is ``(g_exit_i + (L-i-1) * g_deeper) / (L-i)``: the whole gradient is scaled
by ``1/(L-i)`` and the part from deeper layers, which already is the mean over their
``L-i-1`` exits, by ``L-i-1``. By induction every exit contributes with weight exactly
``1/(L-i)`` at layer ``i`` (``1/L`` at the embeddings), so shallow layers are neither
swamped by the sum of the deeper exits' losses nor captured by their own exit.
Read literally, a summary sentence of the method ("deeper by ``1/(L-i)``, exit branch by
``max(1, L-i-1)``") inverts the two factors; that reading weighs exit 1 ``(L-1) * L!``
times more than the last exit at the embeddings (3,600 times for ``L = 6``) and starves
the deep exits (our first COST-EFF runs: every exit of the slender model stuck near
exit 1's accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import ModelOutput

from costeff_same.foundations.registry import EXIT_POOLINGS, EXIT_STYLES


class MultiExitBertConfig(BertConfig):
    """BERT config plus the exits and the (optional) slender shape.

    Args:
        exit_style: one of ``deebert``, ``pabee``, ``costeff`` (see the module docstring).
        gradient_equilibrium: rescale gradients as ElasticBERT/COST-EFF do.
        heads_per_layer: kept attention heads per layer (length ``num_hidden_layers``);
            None keeps ``num_attention_heads`` everywhere.
        ffn_per_layer: FFN (intermediate) width per layer; None keeps ``intermediate_size``.
        embedding_rank: rank ``r`` of the factorised word embedding; None keeps it whole.
        attention_head_size: size of one head (default ``hidden_size // num_attention_heads``),
            kept when heads are pruned.
        exit_pooling: ``cls`` (the papers) or ``mean`` (masked mean of the token states).
        **kwargs: every ``BertConfig`` argument.

    Raises:
        ValueError: for an unknown exit style or a slender shape of the wrong length or range.
    """

    model_type = "multi_exit_bert"

    def __init__(
        self,
        exit_style: str = "deebert",
        gradient_equilibrium: bool = False,
        heads_per_layer: list[int] | None = None,
        ffn_per_layer: list[int] | None = None,
        embedding_rank: int | None = None,
        attention_head_size: int | None = None,
        exit_pooling: str = "cls",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if exit_style not in EXIT_STYLES:
            raise ValueError(f"unknown exit_style {exit_style!r}; accepted: {', '.join(EXIT_STYLES)}")
        if exit_pooling not in EXIT_POOLINGS:
            raise ValueError(f"unknown exit_pooling {exit_pooling!r}; accepted: {', '.join(EXIT_POOLINGS)}")
        self.exit_pooling = exit_pooling
        self.exit_style = exit_style
        self.gradient_equilibrium = gradient_equilibrium
        self.attention_head_size = attention_head_size or self.hidden_size // self.num_attention_heads
        layers = self.num_hidden_layers
        for name, value, high in (("heads_per_layer", heads_per_layer, self.num_attention_heads),
                                  ("ffn_per_layer", ffn_per_layer, None)):
            if value is not None and (len(value) != layers or min(value) < 1
                                      or (high is not None and max(value) > high)):
                raise ValueError(f"{name}={value} must hold {layers} integers in 1..{high or 'any'}")
        self.heads_per_layer = list(heads_per_layer) if heads_per_layer else None
        self.ffn_per_layer = list(ffn_per_layer) if ffn_per_layer else None
        if embedding_rank is not None and not 1 <= embedding_rank <= self.hidden_size:
            raise ValueError(f"embedding_rank={embedding_rank} must be in 1..{self.hidden_size}")
        self.embedding_rank = embedding_rank

    def layer_heads(self, i: int) -> int:
        """Kept attention heads of layer ``i`` (0-based)."""
        return self.heads_per_layer[i] if self.heads_per_layer else self.num_attention_heads

    def layer_ffn(self, i: int) -> int:
        """FFN width of layer ``i`` (0-based)."""
        return self.ffn_per_layer[i] if self.ffn_per_layer else self.intermediate_size


@dataclass
class MultiExitOutput(ModelOutput):
    """Output of :class:`MultiExitBertForSequenceClassification`.

    Attributes:
        loss: scalar, the sum of every exit's task loss when ``labels`` are given.
        exit_logits: ``(num_exits, batch, num_labels)``, exit ``i`` after layer ``i + 1``.
        logits: ``(batch, num_labels)``, the last exit's logits.
        hidden_states: ``num_layers + 1`` tensors ``(batch, seq_len, hidden)``, embeddings
            first, when ``output_hidden_states=True``.
        exit_layer: ``(batch,)`` exit layer (1..L) taken by each example, for early-exit
            inference (:func:`costeff_same.core.exits.early_exit_forward`); None otherwise.
    """

    loss: torch.Tensor | None = None
    exit_logits: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    exit_layer: torch.Tensor | None = None


class _GradientRescale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``scale`` in the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


def gradient_rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged, with its gradient multiplied by ``scale`` (gradient equilibrium)."""
    return _GradientRescale.apply(x, scale)


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` with its mask drawn as ``rand_like(x) >= p``: the same distribution
    (each element kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``), and a
    faster draw on CPU than ``bernoulli_`` (1.6 ms against 2.8 ms for a ``(32, 40, 384)``
    batch, measured on the project's 2-core machine). Input and output: any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))


def use_mask_dropout(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` inside ``model`` with a :class:`MaskDropout` of the same
    rate (in place; returns ``model``)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, MaskDropout(child.p))
    return model


class FactorisedEmbedding(nn.Module):
    """Word embedding factorised by truncated SVD: ``E ~ (U_r S_r) V_r`` (COST-EFF).

    ``Embedding(vocab, rank)`` followed by ``Linear(rank, hidden, bias=False)``.
    Input ``(batch, seq_len)`` token ids; output ``(batch, seq_len, hidden)``.
    """

    def __init__(self, vocab_size: int, rank: int, hidden_size: int, padding_idx: int | None = None):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, rank, padding_idx=padding_idx)
        self.project = nn.Linear(rank, hidden_size, bias=False)

    @property
    def weight(self) -> torch.Tensor:
        """The effective ``(vocab, hidden)`` embedding matrix ``U V``."""
        return self.embed.weight @ self.project.weight.T

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.embed(input_ids))


def resize_layer(layer: nn.Module, heads: int, ffn: int, head_size: int) -> None:
    """Give a ``BertLayer`` ``heads`` attention heads of ``head_size`` and an FFN of ``ffn``.

    New weights are uninitialised shapes only; :mod:`costeff_same.compression` copies the
    kept rows/columns into them. Changes ``layer`` in place.
    """
    attention = layer.attention.self
    hidden = attention.query.in_features
    width = heads * head_size
    if attention.num_attention_heads != heads or attention.attention_head_size != head_size:
        attention.num_attention_heads = heads
        attention.attention_head_size = head_size
        attention.all_head_size = width
        attention.scaling = head_size**-0.5
        attention.query = nn.Linear(hidden, width)
        attention.key = nn.Linear(hidden, width)
        attention.value = nn.Linear(hidden, width)
        layer.attention.output.dense = nn.Linear(width, hidden)
    if layer.intermediate.dense.out_features != ffn:
        layer.intermediate.dense = nn.Linear(hidden, ffn)
        layer.output.dense = nn.Linear(ffn, hidden)


class ExitPooler(nn.Module):
    """BERT's pooler: ``tanh(W h_CLS + b)``. Input ``(batch, hidden)``, output ``(batch, hidden)``."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(cls_state))


class MultiExitBertForSequenceClassification(BertPreTrainedModel):
    """BERT with an exit after every layer.

    The encoder is ``self.bert`` (a ``BertModel`` without pooler); the exits are
    ``self.poolers`` (per exit for ``deebert``, one shared for ``pabee``, none for
    ``costeff``) and ``self.classifiers`` (one ``Linear(hidden, num_labels)`` per exit).

    The step functions :meth:`embed`, :meth:`attention_bias`, :meth:`layer_forward` and
    :meth:`exit_forward` are what :func:`costeff_same.core.exits.early_exit_forward` drives
    layer by layer; :meth:`forward` composes them over the whole depth.
    """

    config_class = MultiExitBertConfig
    config: MultiExitBertConfig

    def __init__(self, config: MultiExitBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.num_layers = config.num_hidden_layers
        self.bert = BertModel(config, add_pooling_layer=False)
        for i, layer in enumerate(self.bert.encoder.layer):
            resize_layer(layer, config.layer_heads(i), config.layer_ffn(i), config.attention_head_size)
        if config.embedding_rank is not None:
            self.bert.embeddings.word_embeddings = FactorisedEmbedding(
                config.vocab_size, config.embedding_rank, config.hidden_size, config.pad_token_id
            )
        n_poolers = {"deebert": self.num_layers, "pabee": 1, "costeff": 0}[config.exit_style]
        self.poolers = nn.ModuleList(ExitPooler(config.hidden_size) for _ in range(n_poolers))
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleList(
            nn.Linear(config.hidden_size, config.num_labels) for _ in range(self.num_layers)
        )
        use_mask_dropout(self)
        self.post_init()

    # -- the step functions, in forward order ---------------------------------------

    def embed(self, input_ids: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
              inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings ``(batch, seq_len, hidden)`` of ids ``(batch, seq_len)`` or word vectors,
        moved first to the model's device (a no-op on the CPU)."""
        device = self.device
        return self.bert.embeddings(input_ids=_on(input_ids, device), token_type_ids=_on(token_type_ids, device),
                                    inputs_embeds=_on(inputs_embeds, device))

    def attention_bias(self, attention_mask: torch.Tensor | None, embeddings: torch.Tensor):
        """The 4-D attention mask the layers take, from a ``(batch, seq_len)`` 0/1 mask."""
        return create_bidirectional_mask(config=self.config, inputs_embeds=embeddings,
                                         attention_mask=_on(attention_mask, embeddings.device))

    def layer_forward(self, i: int, hidden: torch.Tensor, bias) -> torch.Tensor:
        """Layer ``i`` (0-based): ``(batch, seq_len, hidden)`` -> same shape."""
        return self.bert.encoder.layer[i](hidden, bias)

    def exit_forward(self, i: int, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Exit ``i`` (0-based, after layer ``i + 1``): ``(batch, seq_len, hidden)`` -> ``(batch, num_labels)``.

        Args:
            i: exit index.
            hidden: the layer's output.
            attention_mask: ``(batch, seq_len)`` 0/1, needed for ``exit_pooling="mean"``.

        Raises:
            ValueError: with mean pooling and no attention mask.
        """
        if self.config.exit_pooling == "mean":
            if attention_mask is None:
                raise ValueError("exit_pooling='mean' needs the (batch, seq_len) attention_mask")
            weights = attention_mask.unsqueeze(-1).to(hidden.device, hidden.dtype)
            state = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        else:
            state = hidden[:, 0]
        style = self.config.exit_style
        pooled = torch.tanh(state) if style == "costeff" else self.poolers[i if style == "deebert" else 0](state)
        return self.classifiers[i](self.dropout(pooled))

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        **_unused,
    ) -> MultiExitOutput:
        """Run every layer and every exit.

        Args:
            input_ids: ``(batch, seq_len)`` token ids (or ``inputs_embeds``
                ``(batch, seq_len, hidden)`` word vectors, for gradient-guided attacks).
            attention_mask: ``(batch, seq_len)`` 1 for real tokens, 0 for padding.
            token_type_ids: ``(batch, seq_len)`` segment ids.
            labels: ``(batch,)`` class ids (float targets for regression); gives ``loss``,
                the unweighted sum of exit losses. Training regimes compute their own.
            output_hidden_states: also return the ``L + 1`` hidden states.

        Returns:
            :class:`MultiExitOutput` with ``exit_logits`` ``(L, batch, num_labels)``.
        """
        hidden = self.embed(input_ids, token_type_ids, inputs_embeds)
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        bias = self.attention_bias(attention_mask, hidden)
        states, logits = [hidden], []
        equilibrium = self.config.gradient_equilibrium and self.training and torch.is_grad_enabled()
        depth = self.num_layers
        for i in range(depth):
            hidden = self.layer_forward(i, hidden, bias)
            states.append(hidden)
            if equilibrium and i < depth - 1:       # gradient equilibrium (module docstring)
                hidden = gradient_rescale(hidden, 1.0 / (depth - i))
                logits.append(self.exit_forward(i, hidden, attention_mask))
                hidden = gradient_rescale(hidden, depth - i - 1)
            else:
                logits.append(self.exit_forward(i, hidden, attention_mask))
        exit_logits = torch.stack(logits)
        loss = None
        if labels is not None:
            loss = sum(task_loss(z, labels, self.num_labels) for z in exit_logits)
        return MultiExitOutput(
            loss=loss, exit_logits=exit_logits, logits=exit_logits[-1],
            hidden_states=tuple(states) if output_hidden_states else None,
        )


def _on(x: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """``x`` on ``device`` (itself when it is there already, or None)."""
    return None if x is None else x.to(device)


def task_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Cross-entropy for classification, MSE for regression (``num_labels == 1``).

    Args:
        logits: ``(batch, num_labels)``.
        labels: ``(batch,)`` class ids, or float targets for regression.
    """
    logits = logits.float()  # float32 also under bfloat16 autocast
    labels = labels.to(logits.device)
    if num_labels == 1:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    return nn.functional.cross_entropy(logits, labels)


def from_backbone(backbone: BertModel, num_labels: int, exit_style: str = "deebert",
                  gradient_equilibrium: bool = False, seed: int = 0,
                  exit_pooling: str = "cls") -> MultiExitBertForSequenceClassification:
    """A multi-exit model whose encoder is a copy of ``backbone``'s weights.

    The exits are freshly initialised (seeded); for ``deebert`` and ``pabee`` the
    backbone's pretrained pooler, if any, initialises every pooler.
    """
    config = MultiExitBertConfig(
        exit_style=exit_style, gradient_equilibrium=gradient_equilibrium, num_labels=num_labels,
        exit_pooling=exit_pooling,
        **{k: v for k, v in backbone.config.to_dict().items()
           if k in BertConfig().to_dict() and k not in ("num_labels", "id2label", "label2id",
                                                        "architectures", "model_type", "transformers_version")},
    )
    torch.manual_seed(seed)
    model = MultiExitBertForSequenceClassification(config)
    state = {k: v for k, v in backbone.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ValueError(f"backbone weights do not fit: missing {missing}, unexpected {unexpected}")
    pooler = getattr(backbone, "pooler", None)
    if pooler is not None:
        for exit_pooler in model.poolers:
            exit_pooler.dense.load_state_dict(pooler.dense.state_dict())
    return model
