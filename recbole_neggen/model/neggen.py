r"""NegGen: training on generated negatives with a causal module and modality balance.

Inputs per item i (from the negative bank, aligned to RecBole ids; items without an entry have none):
x⁺_i = (text feature, visual-description feature) of the item, and for each of its K generated variants
x⁻_{i,k}, tagged text-only / visual-only / both. Both spaces are first reduced by a fixed PCA fitted on
the catalogue (``neggen_feature_dim``), so the per-batch cost stays small.

Equations (d = embedding size, ū / Ī the layer means of the backbone, ⟨·,·⟩ inner product):

    modality tokens   T(x) = [W_t x_t + b_t ; W_v x_v + b_v]                          [2, d]
    modal encoding    m(x) = mean_tokens T    (attention: mha → mean_tokens( T + MHA(T, T, T) ))
    causal effect     c_{i,k} = clip(P(m(x⁺_i) − m(x⁻_{i,k}))),  P(z) = W₂ ReLU(z + b₁) + b₂ (the
                      encoder's linear maps act as P's first layer: a separate W₁ would only
                      multiply them by another linear map),
                      clip(z) = z / max(1, ‖z‖)  (bounded: the content term cannot outgrow the ID term)
    item term         c̄_i = mean over i's variants of c_{i,k}   (0 for items without variants)
    item (layer l)    h_i^l = I_i^l + λ c̄_i
    generated (l)     g_{i,k}^l = I_i^l + λ (c̄_i − c_{i,k})
so that s(u, g_{i,k}) = s(u, i) − λ⟨ū, c_{i,k}⟩: the collaborative part and the irrelevant attributes
shared by an item and its generated negative cancel, and only the effect of the intervened key features
separates them. Without attention m is affine, so m(x⁺) − m(x⁻) = ½ (W_t Δ_t + W_v Δ_v) with Δ = x⁺ − x⁻
is computed from the feature difference Δ (precomputed per item and variant; one product instead of two passes), and since
ḡ_{i,k} = Ī_i + λ(c̄_i − c_{i,k}), choices and L_NCE use layer means [B, K, d]; only the chosen generated
negative is built layer by layer. With ``causal: False`` (ablation) the item term is λ clip(P(m(x⁺_i))) and the generated
negative is I_i + λ clip(P(m(x⁻_{i,k}))): no difference is formed.

Per batch (u, i, real candidates j_1..j_M):
    generated choice  per row draw a variant type uniformly among the types the item has (balance), take
                      its hardest variant argmax_k ⟨ū, ḡ_{i,k}⟩ (balance off: hardest over all variants)
    negative n        the ``neggen`` strategy: the generated one with probability gen_ratio, else the
                      real choice (``real: dns | ahns``; other strategies: real candidates only).
                      Candidates are scored with the item term refreshed once per epoch; the chosen
                      real negative enters the loss as h_j = I_j + λ c̄_j with a fresh term and its
                      gradient (a strategy whose choice needs every candidate's gradient,
                      ``choice_input: grad``, keeps the per-epoch term)
    L_BPR = mean softplus(⟨ū, n̄⟩ − ⟨ū, h̄_i⟩)
    L_NCE = −mean log( e^{s⁺/τ} / (e^{s⁺/τ} + e^{s_n/τ} + Σ_k w_k e^{s⁻_k/τ}) ),  s⁻_k = ⟨ū, ḡ_{i,k}⟩
            w_k = K_i / (T_i · count of k's type)  (each of the T_i present types gets equal total weight;
            balance off: w_k = 1). Bounded below by 0, unlike the stub's ratio of two exponentials.
    L = L_BPR + α L_NCE + reg_weight (‖u⁰‖² + ‖i⁰‖² + ‖n⁰‖²) / (2B)
Ranking score: ⟨ū, h̄_i⟩. Each epoch logs, per variant type, mean softplus(s⁻_k − s⁺) and (on the
first batch) the gradient norm of that loss w.r.t. the modal encoder, so imbalance is visible.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recbole_neggen.data.dataloader import NEG_CAND
from recbole_neggen.generation.templates import TAGS
from recbole_neggen.model import MODELS
from recbole_neggen.model.nsrec import LossTerms, NSRec
from recbole_neggen.sampling import Selection
from recbole_neggen.sampling.base import chosen_rows, index_rows, row_dots
from recbole_neggen.sampling.neggen import NegGen as NegGenStrategy

logger = logging.getLogger(__name__)
GEN_MODALITIES = ("text", "visual", "both")


def ensure_bank(config: Any) -> Any:
    """Open the configured negative bank, generating it first when absent or incomplete (cached under the
    prepared dataset, the same directory ``run_recbole_neggen.py generate --dataset=<name>`` writes)."""
    from recbole_neggen.generation.pipeline import bank_from_items_file, build_backend, default_bank_dir

    data_dir = Path(config["data_path"])
    items_file = data_dir / f"{config['dataset']}.items.jsonl"
    backend_name = config["neggen_backend"] or "attribute"
    encoder = config["neggen_encoder"] or "minilm"
    k, seed = int(config["neggen_k"]), int(config["neggen_seed"])
    bank_dir = Path(config["neggen_bank"] or default_bank_dir(data_dir, backend_name, encoder, k, seed))
    if not items_file.is_file():
        raise FileNotFoundError(
            f"NegGen needs item texts to generate negatives: {items_file} does not exist "
            f"(prepare the dataset with items.jsonl, or set neggen_bank to an existing bank)"
        )
    if backend_name == "attribute" and not config["neggen_model"]:
        logger.info("NegGen: no generation model configured; using the attribute backend (no LLM)")
    backend = build_backend(backend_name, model=config["neggen_model"], base_url=config["neggen_base_url"])
    logger.info("NegGen: negative bank %s (built now if missing or incomplete, reused otherwise)", bank_dir)
    return bank_from_items_file(items_file, backend, bank_dir, encoder=encoder, k=k, seed=seed,
                                progress=config["show_progress"] is not False)


def clip_norm(z: Tensor) -> Tensor:
    """``z / max(1, ‖z‖)`` over the last axis: vectors longer than 1 are scaled back to norm 1."""
    return z / z.norm(dim=-1, keepdim=True).clamp(min=1.0)


def _pca(features: np.ndarray, mask: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and top-``dim`` principal directions [D, dim] of the rows where ``mask`` holds."""
    rows = torch.from_numpy(features[mask]).double()
    mean = rows.mean(0)
    _, _, v = torch.linalg.svd(rows - mean, full_matrices=False)
    return mean.float().numpy(), v[: min(dim, v.shape[0])].T.float().numpy()


class Projector(nn.Module):
    """``P(z) = W₂ ReLU(z + b₁) + b₂``: ``[..., d]`` -> ``[..., d]``."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(d))
        self.out = nn.Linear(d, d)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(F.relu(z + self.bias))


class ModalEncoder(nn.Module):
    """``m(x)`` of the module docstring: ``text [N, r]``, ``visual [N, r]`` -> ``[N, d]``."""

    def __init__(self, in_dim: int, d: int, attention: bool, heads: int) -> None:
        super().__init__()
        self.text = nn.Linear(in_dim, d)
        self.visual = nn.Linear(in_dim, d)
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True) if attention else None

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        tokens = torch.stack([self.text(text), self.visual(visual)], dim=-2)  # [N, 2, d]
        if self.attention is not None:
            tokens = tokens + self.attention(tokens, tokens, tokens, need_weights=False)[0]
        return tokens.mean(-2)

    def difference(self, pos_text: Tensor, pos_visual: Tensor, neg_text: Tensor, neg_visual: Tensor) -> Tensor:
        """``m(x⁺) − m(x⁻_k)``: positives ``[N, r]``, variants ``[N, K, r]`` -> ``[N, K, d]`` (two passes)."""
        n, k = neg_text.shape[:2]
        m_neg = self(neg_text.flatten(0, 1), neg_visual.flatten(0, 1)).view(n, k, -1)
        return self(pos_text, pos_visual).unsqueeze(1) - m_neg

    def feature_difference(self, delta: Tensor) -> Tensor:
        """``m(x⁺) − m(x⁻)`` of an affine ``m`` (no attention) from the feature differences ``delta [..., 2r]``
        (text then visual): the biases cancel, one product ``½ [W_t W_v] delta`` -> ``[..., d]``. The ½ scales
        the ``[d, 2r]`` weight, not the ``[..., d]`` product (the same bits: halving is exact barring underflow)."""
        if self.attention is not None:
            raise ValueError("feature_difference needs an affine encoder (neggen_attention: none)")
        return F.linear(delta, torch.cat([self.text.weight, self.visual.weight], dim=1) / 2)


@MODELS.register("NegGen")
class NegGen(NSRec):
    """NegGen on any backbone (``backbone``); see the module docstring for the exact equations."""

    def __init__(self, config: Any, dataset: Any) -> None:
        super().__init__(config, dataset)
        d = self.backbone.embedding_size
        self.lam = float(config["neggen_lambda"])
        self.alpha = float(config["neggen_alpha"])
        self.tau = float(config["neggen_tau"])
        self.causal = bool(config["neggen_causal"])
        self.balance = bool(config["neggen_balance"])
        use = tuple(config["neggen_modalities"] or GEN_MODALITIES)
        unknown = sorted(set(use) - set(GEN_MODALITIES))
        if unknown or not use:
            raise ValueError(f"neggen_modalities must be a non-empty subset of {GEN_MODALITIES}, got {list(use)}")
        self.use_generated = bool(config["neggen_generated"]) and self.alpha + float(
            getattr(self.strategy.args, "gen_ratio", 0.0)) > 0
        self._load_bank(ensure_bank(config), dataset, int(config["neggen_feature_dim"]), use)
        self.encoder = ModalEncoder(self.pos_text.shape[1], d, config["neggen_attention"] != "none",
                                    int(config["neggen_heads"]))
        self.projector = Projector(d)
        if self.causal and self.encoder.attention is None:  # Δ = x⁺ − x⁻ [n_items, K, 2r], fixed
            delta = torch.cat([self.pos_text.unsqueeze(1) - self.neg_text, self.pos_visual.unsqueeze(1) - self.neg_visual], -1)
            self.register_buffer("delta", delta, persistent=False)
        else:
            self.delta = None
        self._item_term: Tensor | None = None  # c̄ (or P(m⁺)) for every item, no grad, refreshed per epoch

    # ------------------------------------------------------------------ bank
    def _load_bank(self, bank: Any, dataset: Any, dim: int, use: tuple[str, ...]) -> None:
        tokens = list(dataset.field2id_token[dataset.iid_field])
        spaces = {space: bank.aligned(space, tokens) for space in ("text", "visual")}
        text = spaces["text"]  # modality tags and masks are shared by both spaces
        mask = text.mask & np.isin(text.modality, [TAGS.index(m) for m in use])
        has_pos = mask.any(1)
        buffers: dict[str, np.ndarray] = {}
        for name, aligned in spaces.items():
            mean, basis = _pca(aligned.positive, aligned.mask.any(1), dim)
            buffers[f"pos_{name}"] = (aligned.positive - mean) @ basis * has_pos[:, None]
            buffers[f"neg_{name}"] = (aligned.negatives - mean) @ basis * mask[..., None]
        for name, value in buffers.items():
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value, np.float32)), persistent=False)
        self.register_buffer("gen_mask", torch.from_numpy(mask), persistent=False)  # [n_items, K]
        self.register_buffer("gen_type", torch.from_numpy(text.modality.astype(np.int64)), persistent=False)
        changes = np.zeros(mask.shape, np.float32)  # intervened attributes per variant, aligned like gen_mask
        for i, token in enumerate(tokens):
            entry = bank.entry(token)
            for j, variant in enumerate(entry.variants if entry is not None else ()):
                changes[i, j] = len(variant.changes)
        self.register_buffer("n_changes", torch.from_numpy(changes * mask), persistent=False)  # [n_items, K]
        n_with = int(mask.any(1)[1:].sum())
        logger.info("NegGen bank: %d / %d items have generated negatives (types %s); the others get c̄ = 0",
                    n_with, len(tokens) - 1, list(use))
        self.bank_coverage = n_with / max(1, len(tokens) - 1)

    # ------------------------------------------------------------------ causal terms
    def _terms(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """``items [N]`` -> item term ``[N, d]`` (λ already applied) and generated offsets ``[N, K, d]``
        such that h = I + item term, g_k = I + offset_k (module docstring). Each distinct item is
        encoded once (a batch repeats popular items)."""
        unique, inverse = items.unique(return_inverse=True)
        term, offsets = self._unique_terms(unique)
        return index_rows(term, inverse), index_rows(offsets, inverse)

    def _unique_terms(self, items: Tensor) -> tuple[Tensor, Tensor]:
        mask = index_rows(self.gen_mask, items)  # [N, K]
        if self.causal:
            if self.delta is not None:
                diff = self.encoder.feature_difference(index_rows(self.delta, items))
            else:
                diff = self.encoder.difference(*(index_rows(x, items) for x in (
                    self.pos_text, self.pos_visual, self.neg_text, self.neg_visual)))
            effect = clip_norm(self.projector(diff))  # c_{i,k} [N, K, d]
            weight = mask.float()
            mean = (effect * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True).clamp(min=1)
            return self.lam * mean, self.lam * (mean.unsqueeze(1) - effect)
        pos_t, pos_v, neg_t, neg_v = (index_rows(x, items) for x in (self.pos_text, self.pos_visual, self.neg_text, self.neg_visual))
        n, k = mask.shape
        m_neg = self.encoder(neg_t.flatten(0, 1), neg_v.flatten(0, 1)).view(n, k, -1)  # [N, K, d]
        has = mask.any(1, keepdim=True).float()
        return (self.lam * clip_norm(self.projector(self.encoder(pos_t, pos_v))) * has,
                self.lam * clip_norm(self.projector(m_neg)))

    def _refresh_item_term(self) -> Tensor:
        with torch.no_grad():
            all_items = torch.arange(self.n_items, device=self.gen_mask.device)
            self._item_term = torch.cat([self._terms(chunk)[0] for chunk in all_items.split(8192)])
        return self._item_term

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self._refresh_item_term()
        self._epoch_stats.update({"served_generated": 0.0, "rows": 0.0})
        self._epoch_stats.update({f"loss_{t}": 0.0 for t in GEN_MODALITIES})
        self._epoch_stats.update({f"pairs_{t}": 0.0 for t in GEN_MODALITIES})
        self._grad_probe = True

    def epoch_log(self) -> dict[str, float]:
        stats = self._epoch_stats
        out = {"served_generated_share": stats.get("served_generated", 0.0) / max(1.0, stats.get("rows", 0.0))}
        for t in GEN_MODALITIES:
            if stats.get(f"pairs_{t}"):
                out[f"loss_{t}"] = stats[f"loss_{t}"] / stats[f"pairs_{t}"]
            if f"grad_{t}" in stats:
                out[f"grad_norm_{t}"] = stats[f"grad_{t}"]
        return out

    # ------------------------------------------------------------------ training
    def _choose_generated(self, s_gen: Tensor, mask: Tensor, types: Tensor) -> tuple[Tensor, Tensor]:
        """Per row one variant index ``[B]`` (balanced type draw, then hardest by ``s_gen [B, K]``) and
        whether the row has any variant ``[B]``."""
        with torch.no_grad():
            scores = s_gen.masked_fill(~mask, float("-inf"))  # [B, K]
            if self.balance:
                present = torch.stack([(mask & (types == t)).any(1) for t in range(len(TAGS))], 1)  # [B, 3]
                weights = present.float() + (~present.any(1, keepdim=True)).float()  # rows without: any
                drawn = torch.multinomial(weights, 1, generator=self.generator).squeeze(1)  # [B]
                scores = scores.masked_fill(types != drawn.unsqueeze(1), float("-inf"))
            return scores.argmax(1), mask.any(1)

    def _balance_weights(self, mask: Tensor, types: Tensor) -> Tensor:
        """``w_k`` of L_NCE ``[B, K]`` (0 where no variant)."""
        if not self.balance:
            return mask.float()
        per_type = torch.stack([(mask & (types == t)).sum(1) for t in range(len(TAGS))], 1).float()  # [B, 3]
        n_types = (per_type > 0).sum(1, keepdim=True).clamp(min=1).float()
        count = per_type.gather(1, types.clamp(min=0))  # [B, K]
        return torch.where(mask, mask.sum(1, keepdim=True).float() / (n_types * count.clamp(min=1)), 0.0)

    def calculate_loss(self, interaction: Any) -> Tensor:
        users_all, items_all = self.backbone.layer_embeddings()
        users, pos_ids, cand_ids = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[NEG_CAND]
        if self._item_term is None:
            self._refresh_item_term()
        user = index_rows(users_all, users)  # [B, L+1, d]
        pos_term, offsets = self._terms(pos_ids)  # [B, d], [B, K, d]
        item = index_rows(items_all, pos_ids)  # I_i  [B, L+1, d]
        pos = item + pos_term.unsqueeze(1)  # h_i
        table = items_all + self._item_term.unsqueeze(1)  # per-epoch h̃_j = I_j + sg(λ c̄_j) [n_items, L+1, d]
        mask, types = self.gen_mask[pos_ids], self.gen_type[pos_ids]
        u = user.mean(1)
        s_gen = row_dots(item.mean(1).unsqueeze(1) + offsets, u)  # ⟨ū, ḡ_{i,k}⟩ [B, K]
        generated = None
        if isinstance(self.strategy, NegGenStrategy) and self.use_generated:
            index, has = self._choose_generated(s_gen, mask, types)
            chosen = item + offsets[torch.arange(len(index), device=index.device), index].unsqueeze(1)  # [B, L+1, d]
            generated = (chosen, has)
        selection = self._select(user, pos, table, cand_ids, items_all, generated)
        neg = selection.neg
        self.last_terms = LossTerms(user, pos, selection)
        s_pos, s_neg = (u * pos.mean(1)).sum(-1), (u * neg.mean(1)).sum(-1)
        loss = F.softplus(s_neg - s_pos).mean()
        reg = (user[:, 0].pow(2).sum() + pos[:, 0].pow(2).sum() + neg[:, 0].pow(2).sum()) / (2 * len(u))
        loss = loss + self.reg_weight * reg
        if self.use_generated and self.alpha > 0:
            weights = self._balance_weights(mask, types)
            logits = torch.cat([s_pos[:, None], s_neg[:, None], s_gen + weights.clamp(min=1e-30).log()], 1) / self.tau
            logits[:, 2:] = logits[:, 2:].masked_fill(~mask, float("-inf"))
            loss = loss + self.alpha * (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
            self._log_modalities(s_pos, s_gen, mask, types)
        return loss

    def _select(self, user: Tensor, pos: Tensor, table: Tensor, cand_ids: Tensor, items_all: Tensor,
                generated: tuple[Tensor, Tensor] | None) -> Selection:
        """The strategy's choice among the real candidates ``cand_ids`` (rows of the per-epoch ``table``) and,
        for ``neggen``, the row's ``generated`` negative (``[B, L+1, d]`` and whether it exists ``[B]``).
        Unless the strategy needs candidates with gradient, the real choice is rebuilt with gradient from
        its rows of ``items_all`` plus a fresh item term, h_j = I_j + λ c̄_j: without the content term's
        gradient on negatives, BPR could raise every score through the content term alone."""

        def fresh_rows(ids: Tensor) -> Tensor:  # [B] or per layer [B, L+1] -> [B, L+1, d]
            term = self._terms(ids.reshape(-1))[0].view(*ids.shape, -1)
            return chosen_rows(items_all, ids) + (term.unsqueeze(1) if ids.dim() == 1 else term)

        extra = {} if generated is None else {"gen": generated[0], "gen_mask": generated[1]}
        selection = self._negative(user, pos, table, cand_ids, fresh_rows, **extra)
        if self._epoch_stats:
            self._epoch_stats["rows"] += float(len(pos))
            if selection.generated is not None:
                self._epoch_stats["served_generated"] += float(selection.generated.sum())
            self._epoch_stats["ahns_clamped"] += float(selection.clamped)
        return selection

    def _log_modalities(self, s_pos: Tensor, s_gen: Tensor, mask: Tensor, types: Tensor) -> None:
        if not self._epoch_stats:
            return
        pair_loss = F.softplus(s_gen - s_pos.unsqueeze(1))  # [B, K]
        params = [p for p in list(self.encoder.parameters()) + list(self.projector.parameters()) if p.requires_grad]
        for t, name in enumerate(TAGS):
            sel = mask & (types == t)
            if not sel.any():
                continue
            self._epoch_stats[f"loss_{name}"] += float(pair_loss[sel].detach().sum())
            self._epoch_stats[f"pairs_{name}"] += float(sel.sum())
            if getattr(self, "_grad_probe", False):
                grads = torch.autograd.grad(pair_loss[sel].mean(), params, retain_graph=True, allow_unused=True)
                self._epoch_stats[f"grad_{name}"] = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        self._grad_probe = False

    # ------------------------------------------------------------------ ranking
    def pooled(self) -> tuple[Tensor, Tensor]:
        if self._cache is None or self.training:
            users_all, items_all = self.backbone.layer_embeddings()
            term = self._refresh_item_term() if not self.training else self._item_term
            cache = (users_all.mean(1), items_all.mean(1) + (term if term is not None else 0.0))
            if self.training:
                return cache
            self._cache = cache
        return self._cache
