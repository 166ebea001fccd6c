"""The one training loop: teacher pre-training and adaptation, scratch, distilled and online students.

:func:`fit` trains a model (and optionally a second one, ``co_model``, in the same loop):
AdamW with a warmup-cosine schedule (:mod:`ecodistill.training.optim`), bf16 autocast on CUDA,
gradient clipping, early stopping on validation loss, exact resume from atomic checkpoints
(:mod:`ecodistill.training.resume`), a tqdm progress bar and data parallelism under ``torchrun``
(:mod:`ecodistill.training.distributed`). What is learned is decided by the loss only,
``loss_fn(y_hat, batch, ctx) -> scalar`` with ``batch`` a :class:`~ecodistill.data.batch.Batch`
and ``ctx`` a :class:`~ecodistill.training.objectives.LossContext` (teacher output and features, the
co-model's detached output, latitude weights), so output, feature/hint, online and
self-distillation all use this one loop (:mod:`ecodistill.training.objectives` builds the losses).

Explained in book/generated/02_teacher.ipynb ("Training").
"""
from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..data.batch import Batch, check_batch, to_device
from ..utils import seed_everything
from . import distributed
from .objectives import LossContext, LossFn
from .optim import cosine_schedule, make_optimizer, planned_steps
from .resume import LoopState, StopSignals, load_state, rng_state, save_state, set_rng_state


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one dict per epoch: epoch, step, train_loss, val_loss, lr, seconds
            (+ co_train_loss, co_val_loss with a co-model).
        best_val: lowest validation loss (NaN without a validation loader).
        best_epoch: its epoch (the last epoch without a validation loader).
        stopped_early: True when patience ran out.
        steps: optimizer steps taken in total (across resumes).
        stop_reason: done | early_stop | max_steps | budget | interrupt.
        planned_steps: the steps the configuration asks for (``epochs * steps_per_epoch``,
            capped by ``max_steps``); ``steps < planned_steps`` means a budget cut the run.
    """

    history: list[dict] = field(default_factory=list)
    best_val: float = float("nan")
    best_epoch: int = -1
    stopped_early: bool = False
    steps: int = 0
    stop_reason: str = "done"
    planned_steps: int = 0


def _tree(fn: Callable[[torch.Tensor], torch.Tensor], obj: Any) -> Any:
    """Apply ``fn`` to every tensor in a nest of lists/tuples/dicts."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _tree(fn, v) for k, v in obj.items()}
    return obj


def _lat_tensor(lat_weights: Any, device: torch.device) -> torch.Tensor | None:
    """``(h,)`` or ``(h, w)`` non-negative weights -> ``(1, 1, h, 1|w)`` with mean 1."""
    if lat_weights is None:
        return None
    w = torch.as_tensor(np.asarray(lat_weights, dtype=np.float32))
    if w.ndim not in (1, 2) or (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("fit: lat_weights must be finite, non-negative, shape (h,) or (h, w); "
                         "use ecodistill.evaluate.latitude_weights(lat)")
    w = w / w.mean()
    return (w[:, None] if w.ndim == 1 else w)[None, None].to(device)


def _call(module: nn.Module, x: torch.Tensor, want: bool) -> tuple[torch.Tensor, Any]:
    """``(y_hat, features)``; features only when ``want`` (via ``return_features=True``)."""
    if not want:
        return module(x), None
    params = inspect.signature(distributed.unwrap(module).forward).parameters
    if "return_features" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        raise TypeError(f"{type(distributed.unwrap(module)).__name__}.forward has no return_features "
                        "argument, which this feature loss needs: add it, returning (y_hat, features)")
    out, feats = module(x, return_features=True)
    return out, feats


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's (batch) sampler which epoch it serves, so resumed runs replay it."""
    for name in ("batch_sampler", "sampler"):
        sampler = getattr(loader, name, None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
            return


class _Loop:
    """State and steps of one :func:`fit` call (kept in a class so each step stays small)."""

    def __init__(self, model: nn.Module, train_loader: Any, val_loader: Any, loss_fn: LossFn,
                 cfg: TrainConfig, kw: dict) -> None:
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"fit: cfg must be a TrainConfig, got {type(cfg).__name__}")
        dev = torch.device(kw["device"])
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("fit: device='cuda' but CUDA is not available here; pass device='cpu'")
        self.rank, self.world = distributed.init_distributed(dev)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", distributed.dist_env()[2] if self.world > 1 else torch.cuda.current_device())
        self.device, self.cfg = dev, cfg
        seed_everything(cfg.seed)
        self.train_loader, self.val_loader = train_loader, val_loader
        co_model = kw["co_model"]
        self.models = [m.to(dev) for m in (model, co_model) if m is not None]
        self.loss_fns = [loss_fn] + ([kw["co_loss_fn"] or loss_fn] if co_model is not None else [])
        self.val_fns = [kw["val_loss_fn"] or f for f in self.loss_fns]
        self.loss_mods = list({id(f): f.to(dev) for f in self.loss_fns + self.val_fns
                               if isinstance(f, nn.Module)}.values())
        self.want = [bool(getattr(f, "want_features", False)) for f in self.loss_fns]
        self.teacher = kw["teacher"].to(dev).eval() if kw["teacher"] is not None else None
        self.lat = _lat_tensor(kw["lat_weights"], dev)
        self.per_epoch, self.total = planned_steps(train_loader, cfg)
        self.opt = make_optimizer(self.models + self.loss_mods, cfg)
        self.sched = cosine_schedule(self.opt, self.total, cfg.warmup_frac)
        self.ckpt = Path(kw["ckpt_path"]) if kw["ckpt_path"] else None
        self.budget_s, self.log, self.progress = kw["budget_s"], kw["log"], kw["progress"]
        self.checkpoint_every_s = kw["checkpoint_every_s"]
        self.state = LoopState(loss_sums=[0.0] * len(self.models))
        self.best_state: list[dict] | None = None
        self.rng_epoch = self.rng_now = rng_state()
        if self.ckpt is not None and self.ckpt.is_file():
            self._load()
        self.nets = [distributed.wrap(m, dev) for m in self.models]
        if kw["compile_model"]:
            self.nets = [torch.compile(n) for n in self.nets]
        self.checked, self.sums, self.loss_checked = False, None, False
        self.n_loss_params = self._n_loss_params()
        self.last_save = time.monotonic()

    def _n_loss_params(self) -> int:
        return sum(1 for m in self.loss_mods for p in m.parameters() if p.requires_grad)

    # -- checkpoints
    def _load(self) -> None:
        loaded = load_state(self.ckpt, self.cfg, self.models, self.loss_mods, self.opt, self.sched)
        if loaded["world_size"] != self.world:
            warnings.warn(f"{self.ckpt} was written by {loaded['world_size']} process(es), resumed by "
                          f"{self.world}: the data order differs from an uninterrupted run", stacklevel=3)
        self.state, self.best_state = loaded["state"], loaded["best_state"]
        self.rng_epoch, self.rng_now = loaded["rng_epoch"], loaded["rng_now"]
        set_rng_state(self.rng_now)

    def _save(self) -> None:
        """Checkpoint everything needed to continue exactly (rank 0 only)."""
        if self.ckpt is None or self.rank != 0:
            return
        if self.sums is not None:  # interrupted mid-epoch: sums up to the last completed step
            self.state.loss_sums = [float(v) for v in self.sums]
        best = None if self.best_state is None else [{k: v.cpu() for k, v in sd.items()} for sd in self.best_state]
        save_state(self.ckpt, self.cfg, self.world, self.models, self.loss_mods, self.opt, self.sched,
                   self.state, best, self.rng_epoch, self.rng_now)
        self.last_save = time.monotonic()

    def _save_if_due(self) -> None:
        """Periodic checkpoints (``checkpoint_every_s``) so a killed process loses little."""
        every = self.checkpoint_every_s
        if every is not None and time.monotonic() - self.last_save >= every:
            self._save()

    # -- one step
    def _autocast(self) -> Any:
        if self.device.type == "cuda" and self.cfg.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _grid_weights(self, x: torch.Tensor) -> torch.Tensor | None:
        """Latitude weights as the ``(1, 1, h, w)`` losses take (expanded once)."""
        if self.lat is not None and self.lat.shape[-2:] != x.shape[-2:]:
            if self.lat.shape[-2] != x.shape[-2] or self.lat.shape[-1] != 1:
                raise ValueError(f"fit: lat_weights {tuple(self.lat.shape[-2:])} do not fit the grid "
                                 f"{tuple(x.shape[-2:])}: give one weight per latitude row (h,) or (h, w)")
            self.lat = self.lat.expand(1, 1, *x.shape[-2:]).contiguous()
        return self.lat

    def _forward(self, batch: Batch, training: bool) -> tuple[list[torch.Tensor], list[LossContext]]:
        x, want_any = batch.x, any(self.want)
        lat = self._grid_weights(x)
        t_out, t_feat = batch.teacher_pred, None
        with self._autocast():
            if self.teacher is not None:
                with torch.no_grad():
                    t_out, t_feat = _call(self.teacher, x, want_any)
            outs = [_call(net, x, w) for net, w in zip(self.nets, self.want)]
        to32 = torch.Tensor.float  # losses run in fp32, outside autocast
        outs = [(o.float(), _tree(to32, f)) for o, f in outs]
        t_out, t_feat = _tree(to32, t_out), _tree(to32, t_feat)
        ctxs = []
        for i, (_, feats) in enumerate(outs):
            other = outs[1 - i] if len(outs) == 2 else (None, None)
            ctxs.append(LossContext(
                lat_weights=lat, features=feats, teacher_out=t_out, teacher_features=t_feat,
                other_out=_tree(torch.Tensor.detach, other[0]), other_features=_tree(torch.Tensor.detach, other[1]),
                want_features=self.want[i], training=training, step=self.state.step, epoch=self.state.epoch))
        return [o for o, _ in outs], ctxs

    def _step(self, batch: Any) -> list[torch.Tensor]:
        batch = to_device(batch, self.device)
        if not self.checked:
            check_batch(batch)
            self.checked = True
        outs, ctxs = self._forward(batch, training=True)
        losses = [f(o, batch, c) for f, o, c in zip(self.loss_fns, outs, ctxs)]
        if not self.loss_checked and self._n_loss_params() != self.n_loss_params:
            raise ValueError("fit: a loss module created parameters during its first call, so the optimizer "
                             "would not train them; build adapters before fit (e.g. from one batch)")
        self.loss_checked = True
        self.opt.zero_grad(set_to_none=True)
        sum(losses).backward()
        distributed.average_gradients([p for m in self.loss_mods for p in m.parameters() if p.requires_grad])
        if self.cfg.grad_clip and self.cfg.grad_clip > 0:
            groups = [list(self.models[0].parameters()) + [p for m in self.loss_mods for p in m.parameters()]]
            groups += [list(m.parameters()) for m in self.models[1:]]
            for params in groups:  # per model, so one model's large gradients don't shrink the other's
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        return [loss.detach() for loss in losses]

    # -- epochs
    def _stop_requested(self, t0: float, sig: StopSignals) -> str | None:
        over = self.budget_s is not None and time.monotonic() - t0 >= self.budget_s
        flags = distributed.all_reduce([float(sig.flag), float(over)], self.device, op="max")
        return "interrupt" if flags[0] else ("budget" if flags[1] else None)

    def _start_epoch(self) -> Any:
        """An iterator over this epoch's remaining batches (replaying the order on resume)."""
        st = self.state
        if st.batch == 0:
            self.rng_epoch, st.loss_sums, st.epoch_seconds = rng_state(), [0.0] * len(self.models), 0.0
        else:  # resuming mid-epoch: replay the epoch's data order, then the RNG of the last step
            set_rng_state(self.rng_epoch)
        _set_epoch(self.train_loader, st.epoch)
        it = iter(self.train_loader)
        for _ in range(st.batch):
            next(it)
        if st.batch:
            set_rng_state(self.rng_now)
        return it

    def _train_epoch(self, t0: float, sig: StopSignals) -> str | None:
        """Train until the epoch ends; returns "budget"/"interrupt" when asked to stop mid-epoch."""
        from tqdm import tqdm

        st = self.state
        for m in self.models + self.loss_mods:
            m.train()
        it = self._start_epoch()
        self.sums = sums = [torch.tensor(v, dtype=torch.float64, device=self.device) for v in st.loss_sums]
        start = time.monotonic() - st.epoch_seconds
        bar = tqdm(total=self.per_epoch, initial=st.batch, desc=f"epoch {st.epoch}", leave=False,
                   disable=not self.progress or self.rank != 0)
        stop = None
        while st.batch < self.per_epoch and st.step < self.total:
            batch = next(it, None)
            if batch is None:
                break
            for i, loss in enumerate(self._step(batch)):
                sums[i] += loss.double()
            st.step += 1
            st.batch += 1
            self.rng_now = rng_state()
            bar.update(1)
            if self.progress and self.rank == 0 and st.step % 10 == 0:
                bar.set_postfix(loss=f"{float(sums[0]) / st.batch:.4g}")
            if self.world == 1 or st.step % 10 == 0:  # under DDP the check is a collective: not every step
                stop = self._stop_requested(t0, sig)
            if stop:
                break
            self._save_if_due()
        bar.close()
        st.loss_sums, st.epoch_seconds = [float(v) for v in sums], time.monotonic() - start
        self.sums = None
        return stop

    @torch.no_grad()
    def _validate(self) -> list[float] | None:
        if self.val_loader is None:
            return None
        for m in self.models + self.loss_mods:
            m.eval()
        sums, n = [0.0] * len(self.models), 0
        for batch in self.val_loader:
            batch = to_device(batch, self.device)
            outs, ctxs = self._forward(batch, training=False)
            for i, (f, o, c) in enumerate(zip(self.val_fns, outs, ctxs)):
                sums[i] += float(f(o, batch, c)) * len(batch)
            n += len(batch)
        *sums, n = distributed.all_reduce(sums + [float(n)], self.device)
        if n == 0:
            raise ValueError("fit: the validation loader is empty; pass val_loader=None to skip validation")
        return [v / n for v in sums]

    def _end_epoch(self) -> None:
        st, cfg = self.state, self.cfg
        train = distributed.all_reduce([v / max(1, st.batch) for v in st.loss_sums], self.device)
        train = [v / self.world for v in train]
        val = self._validate()
        if not all(math.isfinite(v) for v in train + (val or [])):
            raise FloatingPointError(f"fit: training diverged (train/val loss {train}/{val} at epoch "
                                     f"{st.epoch}); lower TrainConfig.lr or check the inputs")
        rec = {"epoch": st.epoch, "step": st.step, "train_loss": train[0],
               "val_loss": val[0] if val else float("nan"), "lr": self.opt.param_groups[0]["lr"],
               "seconds": st.epoch_seconds}
        if len(self.models) == 2:
            rec.update(co_train_loss=train[1], co_val_loss=val[1] if val else float("nan"))
        st.history.append(rec)
        if val is None:
            st.best_epoch = st.epoch
        elif val[0] < st.best_val:
            st.best_val, st.best_epoch, st.epochs_since_best = val[0], st.epoch, 0
            self.best_state = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.models]
        else:
            st.epochs_since_best += 1
            if cfg.patience and cfg.patience > 0 and st.epochs_since_best >= cfg.patience:
                st.finished, st.stopped_early, st.stop_reason = True, True, "early_stop"
        st.epoch, st.batch, st.epoch_seconds = st.epoch + 1, 0, 0.0
        if not st.finished and st.step >= self.total:
            capped = cfg.max_steps is not None and st.step >= cfg.max_steps
            st.finished, st.stop_reason = True, "max_steps" if capped else "done"
        st.finished = st.finished or st.epoch >= cfg.epochs
        self.rng_now = rng_state()
        if self.log is not None and self.rank == 0:
            self.log(dict(rec))
        if st.finished:
            self._save()
        else:
            self._save_if_due()

    def run(self) -> FitResult:
        t0 = time.monotonic()
        st = self.state
        if not st.finished:
            st.stop_reason = "done"
        sig = StopSignals()
        with sig:
            try:
                while not st.finished:
                    stop = self._stop_requested(t0, sig) if st.batch == 0 and st.step else None
                    stop = stop or self._train_epoch(t0, sig)
                    if stop:
                        st.stop_reason = stop
                        self._save()
                        break
                    self._end_epoch()
            except KeyboardInterrupt:
                st.stop_reason = "interrupt"
                self._save()  # state as of the last completed step
                raise
        if st.stop_reason == "interrupt":
            raise KeyboardInterrupt(f"fit: interrupted; state saved to {self.ckpt}")
        if self.best_state is not None:
            for m, sd in zip(self.models, self.best_state):
                m.load_state_dict(sd)
        best_val = st.best_val if math.isfinite(st.best_val) else float("nan")
        return FitResult(history=[dict(r) for r in st.history], best_val=best_val, best_epoch=st.best_epoch,
                         stopped_early=st.stopped_early, steps=st.step, stop_reason=st.stop_reason,
                         planned_steps=self.total)


def fit(model: nn.Module, train_loader: Any, val_loader: Any, loss_fn: LossFn, cfg: TrainConfig, *,
        lat_weights: Any = None, ckpt_path: str | Path | None = None, teacher: nn.Module | None = None,
        co_model: nn.Module | None = None, co_loss_fn: LossFn | None = None,
        val_loss_fn: LossFn | None = None, device: str | torch.device = "cpu",
        budget_s: float | None = None, log: Callable[[dict], Any] | None = None,
        progress: bool = True, checkpoint_every_s: float | None = 600.0,
        compile_model: bool = False) -> FitResult:
    """Train ``model`` (and ``co_model``) with one loop; resume from ``ckpt_path`` if it exists.

    Every step: ``y_hat = model(x)`` (``model(x, return_features=True) -> (y_hat, feats)``
    when ``loss_fn.want_features`` is True), ``loss = loss_fn(y_hat, batch, ctx)``; with a
    co-model, ``co_loss_fn(co_y_hat, batch, co_ctx)`` is added and each context carries the
    other model's detached output (deep mutual learning {cite:p}`zhang2018deep`). A
    ``loss_fn`` that is an ``nn.Module`` (e.g. FitNets adapters {cite:p}`romero2015fitnets`)
    has its parameters trained and checkpointed too.

    Args:
        model: maps ``x`` ``(b, c_in, h, w)`` to ``(b, c_out, h, w)``; moved to ``device``.
            Its initial weights are the caller's (seed before building it); ``cfg.seed``
            fixes the data order, dropout and everything else inside the loop.
        train_loader, val_loader: yield :class:`~ecodistill.data.batch.Batch` es (or dicts
            with the same keys); ``val_loader=None`` skips validation and early stopping.
            Under torchrun each rank's loaders yield its shard of every global batch.
        loss_fn: ``(y_hat, batch, ctx) -> scalar``, e.g. ``objectives.truth_loss("mse")``.
        cfg: epochs, batch size, lr, weight decay, warmup, clipping, patience, step caps, seed.
        lat_weights: ``(h,)`` or ``(h, w)`` cell weights (normalised to mean 1 here).
        ckpt_path: checkpoint file, written atomically when the run ends or a budget, Ctrl-C
            or SIGTERM stops it (and every ``checkpoint_every_s`` seconds); resumed from when
            present (same ``cfg`` required). A finished run returns at once.
        teacher: a live teacher (eval mode, no grad) whose output goes to ``ctx.teacher_out``.
        co_model, co_loss_fn: a second model trained in the same steps (``co_loss_fn``
            defaults to ``loss_fn``).
        val_loss_fn: the validation loss (default: each model's training loss); pass
            ``objectives.truth_loss("mse")`` to select distilled students on truth only.
        device: ``"cpu"``, ``"cuda"`` (``cuda:LOCAL_RANK`` under torchrun) or a device.
        budget_s: wall-clock budget; when reached, the state is saved and fit returns with
            ``stop_reason="budget"`` (call again with the same ``ckpt_path`` to continue).
        log: called with each epoch's history record (rank 0).
        progress: show a tqdm bar (rank 0).
        checkpoint_every_s: also checkpoint after this many seconds (None: only at the end).
        compile_model: run the model through ``torch.compile`` (pays off on GPUs for long runs).

    Returns:
        :class:`FitResult`; the models hold the best-validation weights.

    Raises:
        KeyboardInterrupt: after saving the state, on Ctrl-C or SIGTERM (the first waits for the step).
        ValueError: for a bad batch, config or checkpoint (the message says what to change).
    """
    kw = {"lat_weights": lat_weights, "ckpt_path": ckpt_path, "teacher": teacher, "co_model": co_model,
          "co_loss_fn": co_loss_fn, "val_loss_fn": val_loss_fn, "device": device, "budget_s": budget_s,
          "log": log, "progress": progress, "checkpoint_every_s": checkpoint_every_s,
          "compile_model": compile_model}
    return _Loop(model, train_loader, val_loader, loss_fn, cfg, kw).run()
