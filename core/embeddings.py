"""Project encoder embeddings from the command line and export them: `python -m core.embeddings`."""

from __future__ import annotations

import argparse
import sys
import time

from core import paths
from core.analysis.embeddings import (
    ENCODERS,
    MAX_POINTS,
    METHODS,
    cluster_quality,
    compute,
    coordinates_table,
    kmeans,
    load_split,
    project,
    projector_files,
)
from core.analysis.projector_export import write_projector
from core.errors import DigitsError
from core.io import atomic_write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m core.embeddings", description="Project encoder embeddings; export to CSV."
    )
    p.add_argument("--weights", default=str(paths.DEFAULT_WEIGHTS), help="checkpoint (default: weights/default.pt)")
    p.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test", help="which split (default: test)")
    p.add_argument("--encoder", choices=ENCODERS, default="image", help="which embedding (default: image)")
    p.add_argument("--n", type=int, default=1000, help=f"number of points, at most {MAX_POINTS} (default: 1000)")
    p.add_argument("--method", choices=METHODS, default="tsne", help="projection (default: tsne)")
    p.add_argument("--dims", type=int, choices=[2, 3], default=2, help="2D or 3D (default: 2)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default: 30)")
    p.add_argument("--neighbors", type=int, default=15, help="UMAP n_neighbors (default: 15)")
    p.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist (default: 0.1)")
    p.add_argument("--k", type=int, default=10, help="k-means clusters (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quality", action="store_true", help="print ARI/NMI/silhouette for every encoder and exit")
    p.add_argument("--out", default=None, help="CSV to write (default: print to stdout)")
    p.add_argument(
        "--projector",
        default=None,
        metavar="DIR",
        help="also write the embedding in TensorBoard "
        "Projector's format (tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt) into DIR; "
        "without --out, only that",
    )
    args = p.parse_args(argv)
    try:
        model, _, data = load_split(args.weights, paths.data_dir(args.data_dir), args.split)
        if args.quality:
            for enc in ENCODERS:
                if enc == "fused" and len(model.modalities) < 2 or enc != "fused" and enc not in model.modalities:
                    continue
                e = compute(model, data, enc, args.n, args.seed)
                q = cluster_quality(e.vectors, e.meta["digit"].to_numpy(), args.k, args.seed)
                print(f"{enc:>6}: " + "  ".join(f"{k} {v:.3f}" for k, v in q.items()) + f"  (n={len(e.meta)})")
            return 0
        e = compute(model, data, args.encoder, args.n, args.seed)
        clusters = kmeans(e.vectors, args.k, args.seed)
        if args.projector:
            written = write_projector(args.projector, projector_files(e, clusters))
            print(f"wrote {', '.join(p.name for p in written)} to {args.projector}", file=sys.stderr)
            if not args.out:
                return 0
        start = time.perf_counter()
        xy = project(e.vectors, args.method, args.dims, args.perplexity, args.neighbors, args.min_dist, args.seed)
        print(f"{args.method} of {len(xy)} points in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    except (DigitsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = coordinates_table(e.meta, xy, clusters)
    if args.out:
        atomic_write(args.out, lambda f: table.to_csv(f, index=False), mode="w")
    else:
        table.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
