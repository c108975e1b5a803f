"""The decoder's network in eager PyTorch against the same graph exported to ONNX Runtime, side by side.

The issue on speed asks whether an exported graph runs the decoder faster than eager PyTorch, as basic-pitch's
ONNX model runs the transcriber. The network measured is what rendering runs
(WaveNetDecoder._folded_features: each FiLM folded into its convolution for one timbre, the shipped weights),
on the note check's window (8 s of conditioning plus the receptive field) for 1, 4 and 8 voices. The export
(torch.onnx, opset 17) has the folded weights as constants, so it is made once per timbre; its time and the
session's creation are shown too. Outputs are compared (largest absolute difference).

Needs the `onnx` package, which hybrid does not depend on:
    uv run --frozen --with onnx python benchmarks/bench_decoder_onnx.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOW_FRAMES = 8 * 250 + 200  # the note check's 8 s at 250 frames per second, and some context


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SystemExit(
            "needs the onnx package: uv run --frozen --with onnx python " + " ".join(sys.argv)
        ) from None
    import onnxruntime as ort
    import torch

    from hybrid.neural.renderer import Renderer

    decoder = Renderer.load(None, "cpu").decoder.requires_grad_(False)
    rng = np.random.default_rng(0)
    emb = torch.tensor(rng.standard_normal((1, decoder.cfg.embedding_dim)), dtype=torch.float32)
    emb = emb / emb.norm()

    class Folded(torch.nn.Module):
        """features_for's folding, for one timbre, as a module torch.onnx can trace."""

        def __init__(self) -> None:
            super().__init__()
            with torch.no_grad():
                g, b = decoder.inp_film(emb)[0].chunk(2)
                self.first = (decoder.inp.weight * (1 + g)[:, None, None], decoder.inp.bias * (1 + g) + b)
                self.layers = []
                for layer in decoder.layers:
                    gamma, beta = layer.film(emb)[0].chunk(2)
                    self.layers.append(
                        (
                            layer.conv.weight * (1 + gamma)[:, None, None],
                            layer.conv.bias * (1 + gamma) + beta,
                            torch.cat([layer.res.weight * 0.7071, layer.skip.weight]),
                            torch.cat([layer.res.bias * 0.7071, layer.skip.bias]),
                            int(layer.conv.padding[0]),
                            int(layer.conv.dilation[0]),
                        )
                    )

        def forward(self, cond: torch.Tensor) -> torch.Tensor:
            return decoder._folded_features(cond, self.first, self.layers)

    folded = Folded().eval()
    cond0 = torch.tensor(
        rng.standard_normal((4, decoder.cfg.cond_channels, WINDOW_FRAMES)), dtype=torch.float32
    )
    t0 = time.perf_counter()
    buf = io.BytesIO()
    torch.onnx.export(
        folded,
        (cond0,),
        buf,
        input_names=["cond"],
        output_names=["features"],
        dynamic_axes={"cond": {0: "voices", 2: "frames"}},
        opset_version=17,
        dynamo=False,
    )
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    session_s = time.perf_counter() - t0

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, ", end=""
    )
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}\n")
    print(f"Export (once per timbre): {export_s:.2f} s; ONNX Runtime session: {session_s:.3f} s.\n")
    print("| voices x frames | eager PyTorch (ms) | ONNX Runtime (ms) | speed-up | largest difference |")
    print("|---|---|---|---|---|")
    for voices in (1, 4, 8):
        cond = torch.tensor(
            rng.standard_normal((voices, decoder.cfg.cond_channels, WINDOW_FRAMES)), dtype=torch.float32
        )
        with torch.inference_mode():
            eager = folded(cond).numpy()
            t_torch = best_of(lambda: folded(cond), args.repeats)  # noqa: B023
        feed = {"cond": cond.numpy()}
        exported = session.run(None, feed)[0]
        t_ort = best_of(lambda: session.run(None, feed), args.repeats)  # noqa: B023
        diff = float(np.abs(exported - eager).max())
        print(
            f"| {voices} x {WINDOW_FRAMES} | {t_torch * 1e3:.0f} | {t_ort * 1e3:.0f} | "
            f"{t_torch / t_ort:.2f}x | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
