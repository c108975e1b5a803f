"""Training hybrid's two networks on NSynth-format notes.

- `config`: TrainConfig, a run's settings (JSON in and out).
- `data`: notes grouped by instrument, phrases, timbre clips, augmentation, decoder items.
- `state`: the resumable training state beside the checkpoint.
- `distributed`: the torchrun process group.
- `loops`: `train()`, its two stages (encoder, then decoder) and the helper both use to log and save.
"""

from hybrid.training.config import TrainConfig, load_train_config
from hybrid.training.loops import train
from hybrid.training.state import load_training_state, read_training_progress, save_training_state

__all__ = [
    "TrainConfig",
    "load_train_config",
    "load_training_state",
    "read_training_progress",
    "save_training_state",
    "train",
]
