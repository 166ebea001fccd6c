"""Checkpoints: the public FourCastNet backbone format, and our own (with the config inside).

**FourCastNet** (NVlabs/FourCastNet, Pathak et al. 2022, {cite}`pathak2022fourcastnet`):
``torch.save({"iters", "epoch", "model_state", "optimizer_state_dict"})`` where
``model_state`` is an ``AFNONet`` state dict saved from DistributedDataParallel, so every
key starts with ``module.``; the public backbone takes 20 ERA5 channels on a 720x1440 grid
with patch 8, embed dim 768, depth 12, 8 AFNO blocks. :func:`load_fourcastnet_backbone`
infers the architecture from the tensor shapes, strips ``module.``, interpolates the
position embedding to a new token grid and swaps the first layer and head for new
channels (as Janetzky et al. 2024, {cite}`janetzky2024global`, do for NDVI). The public
model defines a final ``norm`` LayerNorm that its forward pass never uses; its two
tensors are accepted and dropped.

**Ours**: ``{"model_state", "config": {"model_class", "arch", "run"}, "ecodistill_version",
"extra"}``, written atomically with its SHA-256 beside it (``<file>.sha256``, written after
the checkpoint; :func:`ecodistill.store.integrity.save_verified`); :func:`load_checkpoint` checks
the hash, then rebuilds the model from it.

**What is trusted**: both loaders use ``torch.load(..., weights_only=True)`` (a checkpoint
cannot run code) and turn every failure into one line naming the file (never torch's
``weights_only=False`` hint). A file with a ``.sha256`` sidecar, or loaded with ``sha256=``
(e.g. the published hash of the FourCastNet backbone), must match it. Every float tensor
must be finite and of plausible magnitude (:func:`check_weights`), in a FourCastNet backbone
and in our own checkpoints alike, with or without a sidecar: a damaged file whose flipped
bytes turned a weight of 0.05 into 8083 (or an exponent bit into 4e36) is refused, naming
the tensor.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecodistill import __version__
from ecodistill.store.integrity import load_verified, save_verified

from .afno import AFNONet, adapt_to_new_task
from .students import MODEL_CLASSES

__all__ = ["check_weights", "infer_afno_arch", "load_checkpoint", "load_fourcastnet_backbone",
           "read_state_dict", "save_checkpoint"]

FOURCASTNET_UNUSED = ("norm.weight", "norm.bias")  # defined by the public AFNONet, never used in forward
_REQUIRED = ("pos_embed", "patch_embed.proj.weight", "blocks.0.filter.w1", "blocks.0.mlp.fc1.weight", "head.weight")
# Plausible magnitudes of trained weights: |w| may exceed neither MAX_ABS nor
# OUTLIER x the tensor's 99th percentile of |w| (floored at 0.01, so a near-zero bias may
# hold values up to 10). A flipped exponent bit gives values of 1e3..1e38.
MAX_ABS = 1e3
OUTLIER = 1e3
FIX = "re-download or re-copy the file (checkpoints are never downloaded at run time)"


def _load(path: str | Path, map_location: str | torch.device = "cpu", sha256: str | None = None,
          fix: str = FIX, unverified: str = "allow") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: check the path (checkpoints are "
                                "never downloaded at run time; put the file there first)")
    obj = load_verified(path, map_location, what="checkpoint", fix=fix, sha256=sha256,
                        unverified=unverified)
    if not isinstance(obj, dict):
        # a bad file, not a bad argument type: ValueError like every other content problem
        raise ValueError(  # noqa: TRY004
            f"checkpoint {path} holds a {type(obj).__name__}, not a dict with 'model_state'")
    return obj


def check_weights(state: dict[str, torch.Tensor], path: str | Path,
                  magnitudes: bool = True) -> None:
    """Refuse non-finite weights and (with ``magnitudes``) implausible ones, naming the tensor.

    Raises:
        ValueError: one line naming the file, the tensor, the value and the fix.
    """
    for key, value in state.items():
        if not torch.is_tensor(value) or not value.is_floating_point() and not value.is_complex():
            continue
        v = value.detach().reshape(-1)
        v = torch.view_as_real(v).reshape(-1) if v.is_complex() else v
        if v.numel() == 0:
            continue
        finite = torch.isfinite(v)
        if not bool(finite.all()):
            raise ValueError(f"checkpoint {path}: tensor {key} holds {int((~finite).sum())} "
                             f"NaN/Inf value(s) (damaged, or saved from a diverged run); {FIX}")
        if not magnitudes:
            continue
        a = v.abs().float()
        top = float(a.max())
        sub = a[:: max(1, a.numel() // 1_000_000)]
        p99 = float(torch.quantile(sub, 0.99)) if sub.numel() > 1 else top
        limit = min(MAX_ABS, OUTLIER * max(p99, 0.01))
        if top > limit:
            raise ValueError(f"checkpoint {path}: tensor {key} holds |w| = {top:.4g}, implausible "
                             f"for trained weights (99% of |w| are <= {p99:.3g}; limit "
                             f"{limit:.3g}): the file is damaged; {FIX}")


def read_state_dict(path: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The ``model_state`` of a checkpoint, ``module.`` prefixes (DDP) stripped.

    Args:
        path: the checkpoint.
        sha256: its expected SHA-256 (default: the ``.sha256`` sidecar's, when present).
    """
    obj = _load(path, sha256=sha256)
    if "model_state" not in obj:
        raise ValueError(f"checkpoint {path} has no 'model_state' (keys: {sorted(obj)[:10]}): "
                         "expected the FourCastNet or ecodistill checkpoint layout")
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj["model_state"].items()}


def infer_afno_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """AFNONet hyper-parameters from tensor shapes (``module.`` already stripped).

    Returns:
        ``embed_dim, depth, patch_size, num_blocks, mlp_ratio, in_chans, out_chans, n_tokens``.

    Raises:
        ValueError: when the state dict is not an AFNONet's (lists what is missing).
    """
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"not an AFNO (FourCastNet) state dict: missing {missing}; it has keys "
                         f"like {sorted(state)[:8]}. Use load_checkpoint for ecodistill "
                         "checkpoints of other models.")
    d, c_in, p, p2 = state["patch_embed.proj.weight"].shape
    _, k, s, hid = state["blocks.0.filter.w1"].shape
    if p != p2 or hid != s or k * s != d:
        raise ValueError(f"unsupported AFNO layout: patch {p}x{p2}, filter w1 "
                         f"{tuple(state['blocks.0.filter.w1'].shape)} for embed_dim {d} (need "
                         "square patches and hidden_size_factor 1)")
    depth = 1 + max(int(m.group(1)) for key in state if (m := re.match(r"blocks\.(\d+)\.", key)))
    head_out = state["head.weight"].shape[0]
    if head_out % (p * p):
        raise ValueError(f"head.weight has {head_out} rows, not a multiple of patch^2={p * p}")
    return {"embed_dim": d, "depth": depth, "patch_size": p, "num_blocks": k,
            "mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / d, "in_chans": c_in,
            "out_chans": head_out // (p * p), "n_tokens": state["pos_embed"].shape[1]}


def _state_diff(expected: dict[str, torch.Size], got: dict[str, torch.Size], limit: int = 8) -> str:
    """Human-readable difference between two state-dict layouts ('' when they agree)."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = [f"{k}: expected {tuple(expected[k])}, got {tuple(got[k])}"
              for k in sorted(set(expected) & set(got)) if tuple(expected[k]) != tuple(got[k])]
    parts = []
    for name, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {name}: {items[:limit]}{more}")
    return "; ".join(parts)


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in state.items()}


def _source_grid(n_tokens: int, src_img_size, patch: int) -> tuple[int, int]:
    if src_img_size is not None:
        grid = (src_img_size[0] // patch, src_img_size[1] // patch)
        if grid[0] * grid[1] != n_tokens:
            raise ValueError(f"src_img_size={tuple(src_img_size)} with patch {patch} gives "
                             f"{grid[0]}x{grid[1]} tokens but pos_embed holds {n_tokens}: pass the "
                             "grid the checkpoint was trained on")
        return grid
    h = round((n_tokens / 2) ** 0.5)  # global lat-lon grids are 1:2 (FourCastNet: 90x180 tokens)
    if 2 * h * h == n_tokens:
        return h, 2 * h
    raise ValueError(f"cannot infer the source grid from {n_tokens} tokens (not h x 2h): pass "
                     "src_img_size=(H, W)")


def load_fourcastnet_backbone(path: str | Path, img_size: tuple[int, int], in_chans: int, out_chans: int,
                              src_img_size: tuple[int, int] | None = None, freeze_blocks: int = 0,
                              tanh_head: bool = False, fourcastnet_modes: bool = False,
                              sha256: str | None = None) -> AFNONet:
    """Load a FourCastNet-format checkpoint and adapt it to a new grid and new channels.

    Args:
        path: local checkpoint file (``{"model_state": {"module.pos_embed": ..., ...}}``).
        img_size: the new grid ``(H, W)`` (divisible by the checkpoint's patch size).
        in_chans, out_chans: the new input and output channel counts (new first layer and head).
        src_img_size: the checkpoint's grid; inferred from ``pos_embed`` for 1:2 grids
            (720x1440 at patch 8 -> 90x180 tokens).
        freeze_blocks: freeze the first k AFNO blocks.
        tanh_head: squash the new head's output with tanh.
        fourcastnet_modes: reproduce the public code's Fourier-mode window (see ``AFNO2D``).
        sha256: the file's expected SHA-256 (e.g. the published one); default: the
            ``.sha256`` sidecar's when present. Either way the weights are sanity-checked.

    Raises:
        ValueError: for a damaged or unreadable file (hash mismatch, not a torch file,
            non-finite or implausibly large weights -- naming the file and the tensor), a
            checkpoint of another architecture (lists missing / unexpected keys and shape
            mismatches) or a grid the patch size does not divide.
    """
    state = read_state_dict(path, sha256=sha256)
    check_weights(state, path)
    arch = infer_afno_arch(state)
    for key in FOURCASTNET_UNUSED:
        state.pop(key, None)
    grid = _source_grid(arch["n_tokens"], src_img_size, arch["patch_size"])
    src_size = (grid[0] * arch["patch_size"], grid[1] * arch["patch_size"])
    with torch.device("meta"):
        src = AFNONet(arch["in_chans"], arch["out_chans"], src_size, embed_dim=arch["embed_dim"],
                      depth=arch["depth"], patch_size=arch["patch_size"], num_blocks=arch["num_blocks"],
                      mlp_ratio=arch["mlp_ratio"], fourcastnet_modes=fourcastnet_modes)
    diff = _state_diff(_shapes(src.state_dict()), _shapes(state))
    if diff:
        raise ValueError(f"{path} is not a FourCastNet AFNONet checkpoint of the inferred shape "
                         f"(dim {arch['embed_dim']}, depth {arch['depth']}, patch "
                         f"{arch['patch_size']}): {diff}")
    src.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return adapt_to_new_task(src, in_chans, out_chans, freeze_blocks=freeze_blocks,
                             tanh_head=tanh_head, img_size=tuple(img_size))


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(obj: Any, where: str) -> None:
    """Refuse anything ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(obj, (_PLAIN, torch.Tensor)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; use str keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}: checkpoints hold only "
                    "str/int/float/bool/None, lists, dicts and tensors (convert configs with "
                    "ecodistill.config.to_dict)")


def save_checkpoint(path: str | Path, model: nn.Module, config: dict, extra: dict | None = None) -> Path:
    """Write ``model`` with its architecture and the run config, atomically.

    Args:
        path: destination file (parents are created).
        model: an ecodistill model (DDP / ``torch.compile`` wrappers are unwrapped).
        config: the run's config as a plain dict (e.g. ``to_dict(run_config)``).
        extra: more plain data to keep (epoch, metrics, ...).
    """
    base = _unwrap(model)
    name = type(base).__name__
    if name not in MODEL_CLASSES or not hasattr(base, "arch"):
        raise TypeError(f"save_checkpoint supports {sorted(MODEL_CLASSES)}, got {name}")
    if not isinstance(config, dict):
        raise TypeError("config must be a dict (use ecodistill.config.to_dict), got "
                        f"{type(config).__name__}")
    meta = {"model_class": name, "arch": dict(base.arch), "run": config}
    _check_plain(meta, "config")
    _check_plain(extra or {}, "extra")
    payload = {"model_state": {k: v.detach().cpu() for k, v in base.state_dict().items()},
               "config": meta, "ecodistill_version": __version__, "extra": extra or {}}
    return save_verified(payload, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_checkpoint`.

    Returns:
        ``(model, meta)`` with ``meta = {"model_class", "arch", "run", "ecodistill_version", "extra"}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ecodistill checkpoint, or its weights do not fit its architecture.
    """
    obj = _load(path, map_location, fix="train the model again (delete the file and its .sha256)",
                unverified="warn")
    cfg = obj.get("config")
    if not isinstance(cfg, dict) or "arch" not in cfg or "model_class" not in cfg:
        hint = (" It looks like a FourCastNet checkpoint: use load_fourcastnet_backbone."
                if any(str(k).startswith("module.") for k in obj.get("model_state", {})) else "")
        raise ValueError(f"{path} is not an ecodistill checkpoint (no config/arch inside).{hint}")
    cls = MODEL_CLASSES.get(cfg["model_class"])
    if cls is None:
        raise ValueError(f"{path}: unknown model class {cfg['model_class']!r}; known: "
                         f"{sorted(MODEL_CLASSES)}")
    arch = dict(cfg["arch"])
    if "img_size" in arch:
        arch["img_size"] = tuple(arch["img_size"])
    model = cls(**arch)
    diff = _state_diff(_shapes(model.state_dict()), _shapes(obj["model_state"]))
    if diff:
        raise ValueError(f"{path}: weights do not match the stored {cfg['model_class']} "
                         f"architecture: {diff}")
    check_weights(obj["model_state"], path)  # NaN and implausible magnitudes: ours are checked too
    model.load_state_dict(obj["model_state"])
    meta = {"model_class": cfg["model_class"], "arch": cfg["arch"], "run": cfg.get("run", {}),
            "ecodistill_version": obj.get("ecodistill_version"), "extra": obj.get("extra", {})}
    return model.to(map_location), meta
