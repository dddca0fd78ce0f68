"""`python -m core.data download|check`: fetch the datasets, or report what is present and whether it is intact."""

from __future__ import annotations

import argparse
import sys

from core import paths
from core.data.download import FSDD_COMMIT, check_fsdd, download_fsdd, download_mnist, fsdd_manifest
from core.data.fsdd import list_clips
from core.data.mnist import load_mnist
from core.errors import DigitsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data", description=__doc__)
    parser.add_argument("command", choices=["download", "check"], help="download the datasets, or check them")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $DIGITS_DATA_DIR, else data/)")
    parser.add_argument("--only", choices=["mnist", "fsdd"], default=None, help="just one dataset")
    args = parser.parse_args(argv)
    root = paths.data_dir(args.data_dir)
    try:
        if args.command == "download":
            if args.only in (None, "mnist"):
                print(f"MNIST in {download_mnist(root)}")
            if args.only in (None, "fsdd"):
                print(f"FSDD in {download_fsdd(root)}")
        else:
            for split in ("train", "test"):
                images, _ = load_mnist(root, split)
                print(f"MNIST {split}: {len(images)} images")
            folder = root / "fsdd" / "recordings"
            manifest = fsdd_manifest()
            missing, different = check_fsdd(folder, manifest)
            print(
                f"FSDD: {len(list_clips(root))} clips in {folder}; "
                f"{len(manifest) - len(missing) - len(different)} of {len(manifest)} match commit {FSDD_COMMIT[:12]}"
            )
            for label, names in (("missing", missing), ("different from FSDD's", different)):
                if names:
                    print(f"  {len(names)} {label}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
            if missing or different:
                return 1
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
