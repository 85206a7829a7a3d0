"""Train a small localization model on a heimdall-synth dataset and compare it with the
classical TDOA baseline (issue 13, item 5).

    python examples/train_localizer.py DATASET [--epochs 20] [--batch-size 32] [--json]

Reads the stable ``train`` split with ``HeimdallDataset`` (IQ + features; every IQ read is
checked against its sha256), validates on the ``val`` split, and reports the validation
CEP50 next to the baseline's on the same split (``heimdall_synth.baseline_run``, not
recorded). Needs the ``train`` extra (PyTorch, CPU is enough) and, for iq_raw datasets,
``HEIMDALL_S3_*``; the database from ``HEIMDALL_DATABASE_URL``.

The model is deliberately small (a DeepSets network over receivers): per receiver, its
position relative to the network centre (km), its estimated features (NaN -> 0 plus a
"missing" flag) and a few log-power statistics of its IQ; a masked mean over receivers; an
MLP to the transmitter's east/north offset (km) from the centre. It is an example of the
loading path, not a state-of-the-art localizer.

``--json`` prints one object: per-epoch training loss, the sample indices read per epoch
(so a test can check every train sample is read exactly once per epoch, expanded samples
included), the validation CEP50 / CEP90 (m) and the baseline's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from heimdall_synth import HeimdallDataset
from heimdall_synth.baseline import horizontal_error_m
from heimdall_synth.baseline_run import run_baseline
from worker import db

EARTH_M_PER_DEG = 111_195.0


def iq_stats(iq: np.ndarray) -> np.ndarray:
    """(R, 2, L) float32 IQ -> (R, 4): log10 mean power, log10 peak power, spread of the
    log power over 8 segments, and the segment of the peak (0..1)."""
    p = iq[:, 0] ** 2 + iq[:, 1] ** 2
    seg = p[:, : p.shape[1] // 8 * 8].reshape(p.shape[0], 8, -1).mean(axis=2)
    lp = np.log10(seg + 1e-30)
    return np.stack([np.log10(p.mean(axis=1) + 1e-30), np.log10(p.max(axis=1) + 1e-30), lp.std(axis=1),
                     np.argmax(seg, axis=1) / 7.0], axis=1).astype(np.float32)


class Encoded:
    """A split's items as tensors-to-be: inputs (N, R, D), mask (N, R), target (N, 2) km."""

    def __init__(self, items: list[dict], centre: tuple[float, float]) -> None:
        lat0, lon0 = centre
        kx = EARTH_M_PER_DEG * math.cos(math.radians(lat0)) / 1000.0
        ky = EARTH_M_PER_DEG / 1000.0
        x, masks, targets = [], [], []
        for it in items:
            rx = it["rx_positions"]
            pos = np.stack([(rx[:, 1] - lon0) * kx, (rx[:, 0] - lat0) * ky], axis=1) / 100.0
            f = it["features"].astype(np.float32)
            missing = np.isnan(f).astype(np.float32)
            f = np.nan_to_num(f, nan=0.0)
            # scale features to O(1): dBm/dB by 1/100, Hz by 1/1e4, seconds (tdoa) by 1e3
            scale = np.array([1e-2, 1e-2, 1e-2, 1e-4, 1e-4, 1e3, 1.0, 1e-4, 1e-4, 1e3, 1e3, 1e-1, 1e5],
                             np.float32)[: f.shape[1]]
            parts = [pos, f * scale, missing]
            if "iq" in it:
                parts.append(iq_stats(it["iq"]) / np.array([10.0, 10.0, 1.0, 1.0], np.float32))
            x.append(np.concatenate(parts, axis=1) * it["mask"][:, None])
            masks.append(it["mask"].astype(np.float32))
            t = it["target"]
            targets.append([(t[1] - lon0) * kx, (t[0] - lat0) * ky])
        self.x = np.stack(x).astype(np.float32)
        self.mask = np.stack(masks)
        self.target = np.asarray(targets, np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        import torch
        from torch import nn
    except ImportError:
        print("error: this example needs PyTorch: pip install 'heimdall-synth[train]'", file=sys.stderr)
        return 1
    torch.manual_seed(a.seed)

    # cache_size=0: every epoch reads (and sha256-checks) every sample's IQ again
    train = HeimdallDataset(a.dataset, split="train", cache_size=0)
    val = HeimdallDataset(a.dataset, split="val", cache_size=0, max_receivers=train.r_max)
    if len(train) == 0 or len(val) == 0:
        print(f"error: dataset {a.dataset!r} has {len(train)} train and {len(val)} val samples: too few",
              file=sys.stderr)
        return 1
    rx0 = train[0]["rx_positions"]
    centre = (float(np.mean(rx0[train[0]["mask"], 0])), float(np.mean(rx0[train[0]["mask"], 1])))
    val_enc = Encoded([val[i] for i in range(len(val))], centre)
    dim = val_enc.x.shape[2]

    phi = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    rho = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    params = list(phi.parameters()) + list(rho.parameters())
    opt = torch.optim.Adam(params, lr=a.lr)

    def forward(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = phi(x) * m[:, :, None]
        pooled = h.sum(dim=1) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
        return rho(pooled) * 100.0                      # km

    losses, seen_per_epoch = [], []
    rng = np.random.default_rng(a.seed)
    for _epoch in range(a.epochs):
        order = rng.permutation(len(train))
        seen, total, count = [], 0.0, 0
        for start in range(0, len(order), a.batch_size):
            idx = order[start:start + a.batch_size]
            items = [train[int(i)] for i in idx]        # reads and verifies the IQ
            seen.extend(int(it["sample_idx"]) for it in items)
            enc = Encoded(items, centre)
            x, m = torch.from_numpy(enc.x), torch.from_numpy(enc.mask)
            y = torch.from_numpy(enc.target)
            loss = torch.mean(torch.sum((forward(x, m) - y) ** 2, dim=1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
            count += len(idx)
        losses.append(total / count)
        seen_per_epoch.append(sorted(seen))

    with torch.no_grad():
        pred = forward(torch.from_numpy(val_enc.x), torch.from_numpy(val_enc.mask)).numpy()
    lat0, lon0 = centre
    kx = EARTH_M_PER_DEG * math.cos(math.radians(lat0)) / 1000.0
    ky = EARTH_M_PER_DEG / 1000.0
    p_lat, p_lon = lat0 + pred[:, 1] / ky, lon0 + pred[:, 0] / kx
    t_lat, t_lon = lat0 + val_enc.target[:, 1] / ky, lon0 + val_enc.target[:, 0] / kx
    err = horizontal_error_m(p_lat, p_lon, t_lat, t_lon)

    with db.Database().connect() as conn:
        base = run_baseline(conn, a.dataset, split="val", record=False).figures
    out = {
        "dataset": a.dataset, "train_samples": len(train), "val_samples": len(val),
        "train_sample_indices": [int(i) for i in train.sample_indices],
        "epochs": a.epochs, "loss_km2": losses, "seen_per_epoch": seen_per_epoch,
        "val_cep50_m": float(np.percentile(err, 50)), "val_cep90_m": float(np.percentile(err, 90)),
        "baseline_val_cep50_m": base["overall"]["cep50_m"], "baseline_val_fraction_solved": base["fraction_solved"],
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{a.dataset}: {len(train)} train / {len(val)} val samples, {a.epochs} epochs, "
              f"loss {losses[0]:.1f} -> {losses[-1]:.1f} km^2")
        b = out["baseline_val_cep50_m"]
        print(f"val CEP50 {out['val_cep50_m']:.0f} m (model) vs "
              f"{'n/a' if b is None else f'{b:.0f} m'} (TDOA baseline, {base['fraction_solved']:.0%} solved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
