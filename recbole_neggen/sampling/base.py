"""Strategy contract: the :class:`Selection` result, the :class:`Strategy` base module and the registry.

Shapes: B rows, M candidates per row, L+1 layer outputs (layer 0 = ID embedding), d embedding size.
A strategy receives layer-wise embeddings of the user ``[B, L+1, d]``, the positive ``[B, L+1, d]`` and the
candidates ``[B, M, L+1, d]`` and returns one negative ``[B, L+1, d]`` per row. The choice is made under
``torch.no_grad()``; the returned negative keeps the gradient path into the chosen candidate (and, for
mixing strategies, into the positive).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
from torch import Tensor, nn

from recbole_neggen.registry import Registry
from recbole_neggen.sampling.args import StrategyArgs
from recbole_neggen.sampling.candidates import Distribution


@dataclass(frozen=True)
class Selection:
    """Result of :meth:`Strategy.select` (or of :meth:`Strategy.choose`, then :meth:`Strategy.finish`).

    index: ``[B]`` chosen candidate per row, or ``[B, L+1]`` per row and layer (MixGCF, DENS).
    neg: ``[B, L+1, d]`` chosen (or synthesised) negative, differentiable; ``None`` after :meth:`Strategy.choose`
        until :meth:`Strategy.finish` builds it.
    aux_loss: scalar auxiliary loss already weighted by its coefficient (DENS), else ``None``.
    clamped: rows whose AHNS base ``s_pos + alpha`` was clamped up to epsilon (0 for other strategies).
    mix: ``[B, L+1, 1]`` weight of the positive in a mixed negative (MixGCF), else ``None``.
    generated: ``[B]`` rows served a generated negative instead of candidate ``index`` (``neggen``), else ``None``.
    """

    index: Tensor
    neg: Tensor | None = None
    aux_loss: Tensor | None = None
    clamped: int = 0
    mix: Tensor | None = None
    generated: Tensor | None = None

    @staticmethod
    def cat(parts: Sequence["Selection"]) -> "Selection":
        """Choices (no ``neg``, no ``aux_loss``) of consecutive row blocks -> one choice of all rows."""

        def joined(values: list[Tensor | None]) -> Tensor | None:
            return None if values[0] is None else torch.cat(values)  # type: ignore[arg-type]

        return Selection(index=torch.cat([p.index for p in parts]), clamped=sum(p.clamped for p in parts),
                         mix=joined([p.mix for p in parts]), generated=joined([p.generated for p in parts]))

    def item_ids(self, cand_ids: Tensor) -> Tensor:
        """Item ids of the chosen candidates: ``cand_ids [B, M]`` -> ``[B]`` or ``[B, L+1]`` like ``index``."""
        if self.index.dim() == 1:
            return cand_ids.gather(1, self.index.unsqueeze(1)).squeeze(1)
        return cand_ids.gather(1, self.index)


def pool_layers(x: Tensor) -> Tensor:
    """Mean over the layer axis (second to last): ``[..., L+1, d]`` -> ``[..., d]`` (a view when L+1 = 1)."""
    return x.squeeze(-2) if x.shape[-2] == 1 else x.mean(dim=-2)


def row_dots(x: Tensor, y: Tensor) -> Tensor:
    """``⟨x[b, n], y[b]⟩``: ``x [B, N, d]``, ``y [B, d]`` -> ``[B, N]``. A broadcast product and sum: for these
    per-row matrix-vector products it was 2-3× faster on CPU than ``bmm`` (measured at N = 32..96, d = 64)."""
    return (x * y.unsqueeze(1)).sum(-1)


def index_rows(table: Tensor, ids: Tensor) -> Tensor:
    """``table[ids]`` for a row table ``[n, ...]`` and integer ``ids`` of any shape -> ``[*ids.shape, ...]``.
    Uses ``index_select``, whose backward (``index_add_``) is about twice as fast on CPU as the
    accumulating ``index_put_`` behind advanced indexing."""
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, *table.shape[1:])


def chosen_rows(table: Tensor, ids: Tensor) -> Tensor:
    """Rows of ``table [n, L+1, d]`` named by ``ids``: ``[B]`` -> ``table[ids[b]]``, or per layer
    ``[B, L+1]`` -> ``table[ids[b, l], l]``; ``[B, L+1, d]`` either way (keeps grad)."""
    if ids.dim() == 1:
        return index_rows(table, ids)
    layers = table.shape[1]
    return index_rows(table.flatten(0, 1), ids * layers + torch.arange(layers, device=ids.device))


def take_rows(cand: Tensor, index: Tensor) -> Tensor:
    """``cand [B, M, L+1, d]``, ``index [B]`` -> ``cand[b, index[b]]`` as ``[B, L+1, d]`` (keeps grad)."""
    return cand[torch.arange(cand.shape[0], device=cand.device), index]


def take_layerwise(cand: Tensor, index: Tensor) -> Tensor:
    """``cand [B, M, L+1, d]``, ``index [B, L+1]`` -> ``cand[b, index[b, l], l]`` as ``[B, L+1, d]``."""
    expanded = index.unsqueeze(1).unsqueeze(-1).expand(-1, 1, -1, cand.shape[-1])
    return cand.gather(1, expanded).squeeze(1)


def take_chosen(cand: Tensor, index: Tensor) -> Tensor:
    """The chosen candidate rows ``[B, L+1, d]``: :func:`take_rows` for ``index [B]``, :func:`take_layerwise`
    for ``index [B, L+1]``."""
    return take_rows(cand, index) if index.dim() == 1 else take_layerwise(cand, index)


def draw_uniform(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``U[0, 1)`` of ``shape`` in ``like``'s dtype and device, drawn on the generator's own device
    (a CPU generator may drive a model on an accelerator)."""
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def draw_index(high: int, shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Uniform integers in ``[0, high)`` of ``shape`` on ``like``'s device (drawn like :func:`draw_uniform`)."""
    device = generator.device if generator is not None else like.device
    return torch.randint(0, high, shape, generator=generator, device=device).to(like.device)


CHOICE_BLOCK = 1 << 18
"""Floats of gathered candidates per row block in :meth:`Strategy.choose` on CPU (1 MiB): a block stays in
the core's L2 cache between the gather and the scoring. Choosing among [2048, 32, 3, 64] candidates took
43 ms in one block and 15 ms in blocks of this size (MixGCF's scoring; DENS's gates: 95 ms -> 33 ms)."""


def choice_block_rows(table: Tensor, cand_ids: Tensor) -> int:
    """Rows per block of :meth:`Strategy.choose` among the rows ``cand_ids [B, M]`` of ``table [n_items, ...]``:
    about :data:`CHOICE_BLOCK` candidate floats on CPU, all ``B`` rows in one block elsewhere."""
    if table.device.type != "cpu":
        return len(cand_ids)
    return max(1, CHOICE_BLOCK // (cand_ids.shape[1] * table[0].numel()))


class Strategy(nn.Module):
    """Base of all negative-sampling strategies (``nn.Module`` so a model can own one as a submodule).

    Subclasses set ``args_type`` and implement :meth:`_choose` (the choice, without gradient) and, when the
    negative is not the chosen candidate itself, :meth:`negative`. ``n_candidates`` and ``distribution``
    tell the data loader what to draw (``pop_alpha`` is the popularity exponent, used only when
    ``distribution == "popularity"``).
    """

    args_type: ClassVar[type[StrategyArgs]] = StrategyArgs
    #: What the choice needs, so that a model can skip the gradient of all ``[B, M, L+1, d]`` candidates:
    #: ``"means"``: layer means only (:meth:`choose` passes means ``[B, 1, d]``). ``"layers"``: every
    #: layer, but the negative depends on the candidates only through the chosen rows. In both cases the
    #: model calls :meth:`choose`, re-gathers the chosen rows with gradient and calls :meth:`finish` (same
    #: loss and gradients as :meth:`select`). ``"grad"``: the candidates must carry gradient; the model
    #: calls :meth:`select` on all of them (the safe default for a strategy registered from outside).
    choice_input: ClassVar[Literal["means", "layers", "grad"]] = "grad"

    def __init__(self, args: StrategyArgs, embedding_size: int) -> None:
        super().__init__()
        if not isinstance(args, self.args_type):
            raise TypeError(f"{type(self).__name__} needs {self.args_type.__name__}, got {type(args).__name__}")
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size < 1:
            raise ValueError(f"embedding_size must be an int >= 1, got {embedding_size!r}")
        self.args = args
        self.embedding_size = embedding_size

    @property
    def n_candidates(self) -> int:
        """Candidates M the loader must draw per row."""
        return self.args.n_candidates

    @property
    def distribution(self) -> Distribution:
        """Distribution the loader draws candidates from."""
        return "uniform"

    @property
    def pop_alpha(self) -> float:
        """Popularity exponent ``P(j) ∝ f_j^alpha`` (only read when ``distribution == "popularity"``)."""
        return 1.0

    def select(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None = None,
               **extra: Tensor) -> Selection:
        """Choose one negative per row; see the module docstring for shapes. ``extra``: per-row inputs of
        strategies that take more than the candidates (``neggen``'s generated negative and its mask)."""
        self._check_shapes(user, pos, cand)
        with torch.no_grad():
            selection = self._choose(user, pos, cand, generator, **extra, **self._choice_rows(user, pos, generator))
        return self.finish(selection, user, pos, take_chosen(cand, selection.index), **extra)

    def _choose(self, user: Tensor, pos: Tensor, cand: Tensor, generator: torch.Generator | None,
                **extra: Tensor) -> Selection:
        """The choice (``index`` and any ``clamped`` / ``mix`` / ``generated``; no ``neg``) among ``cand``;
        called without gradient."""
        raise NotImplementedError

    def aux_loss(self, user: Tensor, pos: Tensor, neg: Tensor) -> Tensor | None:
        """Auxiliary loss (weighted) of the strategy's own parameters from user / positive / chosen negative
        ``[B, L+1, d]``; ``None`` when it has none (all but DENS)."""
        return None

    def choose(self, user: Tensor, pos: Tensor, table: Tensor, cand_ids: Tensor,
               generator: torch.Generator | None = None, rows_per_block: int | None = None,
               **extra: Tensor) -> Selection:
        """The choice alone, without gradient, for ``user`` / ``pos`` ``[B, L+1, d]`` among the rows
        ``cand_ids [B, M]`` of ``table [n_items, L+1, d]`` (layer means only under ``choice_input ==
        "means"``). Rows are independent, so they are chosen in blocks of ``rows_per_block`` (default: about
        :data:`CHOICE_BLOCK` candidate floats on CPU, one block elsewhere); random draws are made block after
        block in row order, the same stream as one block. Follow with :meth:`finish` on the chosen rows."""
        if self.choice_input == "grad":
            raise ValueError(f"{type(self).__name__} needs every candidate's gradient: call select() instead")
        with torch.no_grad():
            if self.choice_input == "means":
                user, pos, table = (x.mean(1, keepdim=True) for x in (user, pos, table))
            if rows_per_block is None:
                rows_per_block = choice_block_rows(table, cand_ids)
            prepared, per_row = self._choice_table(table), {**extra, **self._choice_rows(user, pos, generator)}
            parts = [self._choose_rows(user[s:s + rows_per_block], pos[s:s + rows_per_block], prepared,
                                       cand_ids[s:s + rows_per_block], generator,
                                       {k: v[s:s + rows_per_block] for k, v in per_row.items()})
                     for s in range(0, len(cand_ids), rows_per_block)]
        return Selection.cat(parts)

    def _choice_table(self, table: Tensor) -> Any:
        """Per-batch item-level inputs of the choice that :meth:`_choose_rows` gathers candidates from
        (no gradient); default: the item table ``[n_items, L+1 or 1, d]`` itself."""
        return table

    def _choice_rows(self, user: Tensor, pos: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Per-batch row-level inputs of the choice, ``[B, ...]`` each, computed once per batch (not once per
        row block) and passed to :meth:`_choose` as keyword arguments, sliced with the rows; none by default."""
        return {}

    def _choose_rows(self, user: Tensor, pos: Tensor, prepared: Any, ids: Tensor,
                     generator: torch.Generator | None, extra: dict[str, Tensor]) -> Selection:
        """One block of :meth:`choose`: candidates ``ids [b, M]`` gathered from ``prepared``, then the choice."""
        cand = index_rows(prepared, ids)
        self._check_shapes(user, pos, cand)
        return self._choose(user, pos, cand, generator, **extra)

    def finish(self, selection: Selection, user: Tensor, pos: Tensor, chosen: Tensor, **extra: Tensor) -> Selection:
        """``selection`` (from :meth:`choose`) with the negative built from the chosen rows ``chosen [B, L+1, d]``
        re-gathered with gradient (:meth:`negative`) and the :meth:`aux_loss` on it; equals :meth:`select`
        on the same rows."""
        neg = self.negative(selection, pos, chosen, **extra)
        return replace(selection, neg=neg, aux_loss=self.aux_loss(user, pos, neg))

    def negative(self, selection: Selection, pos: Tensor, chosen: Tensor, **extra: Tensor) -> Tensor:
        """The negative ``[B, L+1, d]`` from the positive ``[B, L+1, d]`` and the chosen candidate rows
        ``chosen [B, L+1, d]`` (``cand[b, index[b]]``, or ``cand[b, index[b, l], l]`` per layer). Default: the
        chosen rows themselves."""
        return chosen

    def _check_shapes(self, user: Tensor, pos: Tensor, cand: Tensor) -> None:
        name = type(self).__name__
        if user.dim() != 3 or user.shape[-1] != self.embedding_size:
            raise ValueError(f"{name}: user must be [B, L+1, {self.embedding_size}], got {list(user.shape)}")
        if pos.shape != user.shape:
            raise ValueError(f"{name}: pos must have the user's shape {list(user.shape)}, got {list(pos.shape)}")
        b, l1, d = user.shape
        if cand.dim() != 4 or cand.shape[0] != b or cand.shape[2:] != (l1, d):
            raise ValueError(f"{name}: cand must be [{b}, M, {l1}, {d}], got {list(cand.shape)}")
        if cand.shape[1] != self.n_candidates:
            raise ValueError(
                f"{name}: expected M = n_candidates = {self.n_candidates}, got cand with M = {cand.shape[1]}"
            )


STRATEGIES: Registry[type[Strategy]] = Registry("negative strategy")


def build_strategy(name: str, params: Mapping[str, Any], embedding_size: int) -> Strategy:
    """Look ``name`` up in :data:`STRATEGIES`, validate ``params`` against its args dataclass, instantiate."""
    cls = STRATEGIES.get(name)
    try:
        args = cls.args_type.from_dict(params)
    except ValueError as err:
        raise ValueError(f"negative strategy {name!r}: {err}") from None
    return cls(args, embedding_size)
