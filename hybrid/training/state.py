"""The training state beside a checkpoint: optimiser and progress, safetensors + JSON (never pickles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hybrid.errors import HybridError

STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"


def save_training_state(
    out: Path, stage: str, step: int, models: dict[str, Any], optim: Any, extra: dict[str, Any]
) -> None:
    """Optimiser and progress beside the checkpoint, as safetensors + JSON (never pickles)."""
    from safetensors.torch import save_file

    from hybrid.outputs import atomic_path

    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for name, m in models.items():
        for k, v in m.state_dict().items():
            tensors[f"model.{name}.{k}"] = v.detach().cpu().contiguous()
    st = optim.state_dict()
    for pid, s in st["state"].items():
        for k, v in s.items():
            if hasattr(v, "shape"):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous().reshape(v.shape)
            else:
                scalars[f"{pid}.{k}"] = v
    doc = {
        "stage": stage,
        "step": step,
        "optim_scalars": scalars,
        "param_groups": st["param_groups"],
        **extra,
    }
    # One file holds the tensors and, in its metadata, the progress that goes with them: a kill at any moment
    # leaves the old state or the new one, never the tensors of one step with the progress of another.
    # training_state.json is a copy of the progress for people to read.
    with atomic_path(out / STATE_TENSORS) as tmp:
        save_file(tensors, str(tmp), metadata={"state": json.dumps(doc)})
    with atomic_path(out / STATE_JSON) as tmp:
        tmp.write_text(json.dumps(doc))


def read_training_progress(out: Path) -> dict[str, Any]:
    """Stage, step, history and optimiser settings of the saved training state (from the state file itself)."""
    from safetensors import safe_open

    path = out / STATE_TENSORS
    if not path.exists():
        raise HybridError(f"{out}: nothing to resume (no {STATE_TENSORS})")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        # A state saved before the progress moved into the state file has it in the JSON only.
        text = meta["state"] if "state" in meta else (out / STATE_JSON).read_text()
        doc = dict(json.loads(text))
        int(doc["step"]), str(doc["stage"])
    except Exception as exc:
        raise HybridError(
            f"{path}: cannot resume from this training state, it is damaged ({str(exc).splitlines()[0][:100]});"
            " train afresh into another --out"
        ) from None
    return doc


def load_training_state(out: Path, models: dict[str, Any], optim: Any | None) -> dict[str, Any]:
    """Put the saved models' and optimiser's state back; a damaged or foreign state is refused in one line."""
    try:
        return _load_training_state(out, models, optim)
    except HybridError:
        raise
    except Exception as exc:
        raise HybridError(
            f"{out / STATE_TENSORS}: cannot resume from this training state ({str(exc).splitlines()[0][:120]});"
            " train afresh into another --out"
        ) from None


def _load_training_state(out: Path, models: dict[str, Any], optim: Any | None) -> dict[str, Any]:
    from safetensors.torch import load_file

    doc = read_training_progress(out)
    tensors = load_file(str(out / STATE_TENSORS))
    for name, m in models.items():
        prefix = f"model.{name}."
        m.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True
        )
    if optim is not None:
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        for k, v in doc["optim_scalars"].items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        optim.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    return doc


class ParameterHolder:
    """Lets a bare parameter (the classifier's class weights) be saved like a module."""

    def __init__(self, p: Any) -> None:
        self.p = p

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.p.data}

    def load_state_dict(self, d: dict[str, Any], strict: bool = True) -> None:
        self.p.data.copy_(d["weight"])
