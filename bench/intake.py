"""Post registration intake throughput: scanned-size PDFs from the sync folder to the inbox, with
page counts and page previews ready, next to two baselines in the same run.

    .venv/bin/python bench/intake.py [--files 500] [--per-file-sample 40]

- "copy + hash floor": the same files only read, hashed and written once (the disk's own cost);
- "intake, one child per file": the check and render in a fresh child process for each file
  (how an upload through a page is checked), on a sample, to show what the long-lived child saves;
- "intake": scan_sync_folder as the worker runs it (one long-lived checking child per pass).

The PDFs are made like a scanner's: one JPEG image per A4 page at 200 dpi, grey, 1 to 3 pages.
Runs on a fresh SQLite instance with its own embedded Redis.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scanned_pdf(n: int, rng: random.Random) -> bytes:
    """A4 at 200 dpi, grey text-like noise per page; unique per n."""
    from PIL import Image, ImageDraw

    pages = []
    for p in range(1 + n % 3):
        img = Image.new("L", (1654, 2339), 245)
        draw = ImageDraw.Draw(img)
        for line in range(60):
            y = 150 + line * 34
            x = 150
            while x < 1500:
                w = rng.randint(20, 120)
                draw.rectangle([x, y, x + w, y + 14], fill=rng.randint(20, 90))
                x += w + rng.randint(10, 25)
        draw.text((150, 80), f"Skann {n} side {p + 1}", fill=0)
        pages.append(img)
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=200, save_all=True, append_images=pages[1:], quality=60)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--per-file-sample", type=int, default=40)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from ppt_web import create_app
    from ppt_web.extensions import db
    from ppt_web.files.pdfcheck import inspect_pdf
    from ppt_web.launcher import EmbeddedRedis
    from ppt_web.models import InboxItem
    from ppt_web.postreg.sync_intake import scan_sync_folder

    base = Path(tempfile.mkdtemp(prefix="ppt-bench-intake-"))
    redis = EmbeddedRedis(base / "redis")
    redis.start()
    try:
        rng = random.Random(1)
        source = base / "source"
        source.mkdir()
        t0 = time.perf_counter()
        pages = 0
        for n in range(args.files):
            (source / f"skann-{n:05d}.pdf").write_bytes(scanned_pdf(n, rng))
            pages += 1 + n % 3
        size = sum(p.stat().st_size for p in source.iterdir())
        print(f"made {args.files} scanned PDFs, {pages} pages, {size / 2**20:.1f} MiB "
              f"(mean {size / args.files / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f} s")

        floor = base / "floor"
        floor.mkdir()
        t0 = time.perf_counter()
        for path in sorted(source.iterdir()):
            data = path.read_bytes()
            (floor / hashlib.sha256(data).hexdigest()).write_bytes(data)
        took = time.perf_counter() - t0
        print(f"copy + hash floor           : {took:7.2f} s  {args.files / took:8.1f} files/s")

        sample = sorted(source.iterdir())[: args.per_file_sample]
        previews = base / "previews"
        t0 = time.perf_counter()
        for path in sample:
            out = previews / path.stem
            out.mkdir(parents=True)
            inspect_pdf(path, preview_dir=out)
        took = time.perf_counter() - t0
        print(f"intake, one child per file  : {took:7.2f} s  {len(sample) / took:8.1f} files/s "
              f"(check + previews only, {len(sample)} files)")

        instance = base / "instance"
        app = create_app({"INSTANCE_PATH": str(instance), "PPT_REDIS_URL": redis.url, "PPT_QUEUE_NAME": "bench",
                          "PPT_SYNC_SETTLE_SECONDS": 0})
        with app.app_context():
            upgrade()
            sync = Path(app.config["PPT_SYNC_DIR"])
            sync.mkdir(parents=True, exist_ok=True)
            for path in source.iterdir():
                shutil.copy(path, sync / path.name)
            t0 = time.perf_counter()
            passes = 0
            while any(sync.iterdir()) and passes < 20:
                scan_sync_folder()
                passes += 1
            took = time.perf_counter() - t0
            count = db.session.scalar(db.select(db.func.count(InboxItem.id)))
            counted = db.session.scalar(db.select(db.func.sum(InboxItem.page_count)))
            rendered = sum(1 for _ in (instance / "previews").rglob("*.jpg"))
        print(f"intake (sync folder->inbox) : {took:7.2f} s  {count / took:8.1f} files/s  "
              f"{counted / took:8.1f} pages/s "
              f"({count} items, {counted} pages counted, {rendered} previews, {passes} passes)")
        assert count == args.files and counted == pages and rendered == pages
    finally:
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
