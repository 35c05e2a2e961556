#!/usr/bin/env python3
"""Prepare R1-V's SuperCLEVR-200 counting evaluation as a local dataset folder for `tinyzero-trl evaluate`.

What R1-V evaluates (Deep-Agent/R1-V at bbbbe3d, src/eval/test_qwen2vl_counting_superclevr.py):
- the 200 problems of src/eval/prompts/superclevr_test200_counting_problems.jsonl (rows ``image_path``,
  ``question``, ``ground_truth``): images superCLEVR_new_025000.png .. 025199.png (the first 200 of
  Super-CLEVR's last 5k, its test part), each asking "How many different items are there in the image?";
- the images from Super-CLEVR's images.zip, the URL in R1-V's README ("wget ... images.zip; unzip");
- the user turn: the image, then "{question} First output the thinking process in <think> </think> and final
  answer (number) in <answer> </answer> tags."; greedy, 256 new tokens; scored by the first
  ``<answer>\\s*(\\d+)\\s*</answer>`` as an int, exact match (our ``r1v_count_eval``).

This writes OUT/test.jsonl (``image`` path relative to OUT, ``problem``, ``solution``, and ``input``: the whole
question text above) with OUT/images/, and OUT/manifest.json (sources, checksums, image sizes). Then:

    tinyzero-trl evaluate multimodal --model_path Qwen/Qwen2-VL-2B-Instruct --data-source local \\
        --data-path OUT --template dataset --scorer r1v_count_eval --max-new-tokens 256

Usage:
    python prepare_superclevr200.py --out data/superclevr200            # downloads (needs internet)
    python prepare_superclevr200.py --out data/superclevr200 --from-dir DIR
        # DIR holds superclevr_test200_counting_problems.jsonl and the images, as images/*.png or images.zip
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

R1V_COMMIT = "bbbbe3dc1ea6a74ce31c118c1722b1ee73e372ba"
PROBLEMS_NAME = "superclevr_test200_counting_problems.jsonl"
PROBLEMS_URL = f"https://raw.githubusercontent.com/Deep-Agent/R1-V/{R1V_COMMIT}/src/eval/prompts/{PROBLEMS_NAME}"
PROBLEMS_SHA256 = "4ca86120527cd76d6957a33a6b745980bf8d51c3307a4fdbab5e264b89f19b04"  # read at that commit
IMAGES_URL = "https://www.cs.jhu.edu/~zhuowan/zhuowan/SuperCLEVR/to_be_released/images.zip"  # no checksum published
QUESTION_TEMPLATE = ("{Question} First output the thinking process in <think> </think> and final answer (number) in "
                     "<answer> </answer> tags.")
NUM_PROBLEMS = 200
TRAINING_MAX_PIXELS = 401_408  # R1-V's --max_pixels: images above it are resized differently in training and eval


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path) -> Path:
    """Fetch ``url`` to ``dest`` (kept: a second run reuses it), printing progress; partial files are not kept."""
    if dest.is_file():
        print(f"using {dest} (already downloaded)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    print(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
        total, done, shown = int(response.headers.get("Content-Length") or 0), 0, -1
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
            done += len(block)
            if done >> 27 != shown:  # every 128 MiB
                shown = done >> 27
                print(f"  {done / 2**20:,.0f} MiB" + (f" of {total / 2**20:,.0f}" if total else ""), flush=True)
    part.rename(dest)
    return dest


def read_problems(path: Path) -> list[dict]:
    """R1-V's problem rows, checked: ``image_path``, ``question`` and an integer ``ground_truth`` on every line."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            sys.exit(f"{path} line {lineno}: not valid JSON ({err})")
        gold = row.get("ground_truth") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("image_path"), str) \
                or not isinstance(row.get("question"), str) or isinstance(gold, bool) or not isinstance(gold, int):
            sys.exit(f"{path} line {lineno}: expected image_path (text), question (text) and ground_truth (an "
                     f"integer); got {line[:200]!r}")
        rows.append(row)
    if not rows:
        sys.exit(f"{path}: no problems")
    return rows


def _zip_members(archive: Path) -> dict[str, str]:
    with zipfile.ZipFile(archive) as zf:
        return {Path(name).name: name for name in zf.namelist() if not name.endswith("/")}


def collect_images(rows: list[dict], source: Path, images_dir: Path) -> None:
    """Copy each row's image into ``images_dir`` from ``source``: a folder of images or a zip (found by file name)."""
    images_dir.mkdir(parents=True, exist_ok=True)
    names = [Path(r["image_path"]).name for r in rows]
    if source.is_file():
        members = _zip_members(source)
        missing = [n for n in names if n not in members]
        if missing:
            sys.exit(f"{source}: {len(missing)} of {len(names)} images are not in the archive, e.g. {missing[0]}")
        with zipfile.ZipFile(source) as zf:
            for name in names:
                with zf.open(members[name]) as src, (images_dir / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        return
    found = {p.name: p for p in source.rglob("*") if p.is_file() and p.name in set(names)}
    missing = [n for n in names if n not in found]
    if missing:
        sys.exit(f"{source}: {len(missing)} of {len(names)} images not found below it, e.g. {missing[0]}")
    for name in names:
        shutil.copyfile(found[name], images_dir / name)


def write_dataset(rows: list[dict], out: Path, provenance: dict) -> Path:
    """OUT/test.jsonl in our local multimodal form, and OUT/manifest.json; images must already be in OUT/images."""
    from PIL import Image

    records, images, large = [], {}, []
    for row in rows:
        rel = f"images/{Path(row['image_path']).name}"
        with Image.open(out / rel) as image:
            image.verify()  # a truncated or non-image file fails here, not in the middle of an evaluation
        with Image.open(out / rel) as image:
            width, height = image.size
        if width * height > TRAINING_MAX_PIXELS:
            large.append(rel)
        images[rel] = {"sha256": sha256(out / rel), "width": width, "height": height}
        records.append({"image": rel, "problem": row["question"], "solution": str(row["ground_truth"]),
                        "input": QUESTION_TEMPLATE.format(Question=row["question"])})
    path = out / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    manifest = {**provenance, "rows": len(records), "question_template": QUESTION_TEMPLATE,
                "images_over_training_max_pixels": large, "images": images}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if large:
        print(f"note: {len(large)} images exceed {TRAINING_MAX_PIXELS} pixels; a run's data.max_pixels resizes them "
              "where R1-V's evaluation (the processor's defaults) did not")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write test.jsonl, images/ and manifest.json")
    parser.add_argument("--from-dir", type=Path, default=None,
                        help=f"convert already-downloaded files: {PROBLEMS_NAME} and images/ or images.zip")
    parser.add_argument("--keep-zip", action="store_true", help="keep the downloaded images.zip in OUT/.download")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.from_dir is not None:
        src = args.from_dir
        problems = src / PROBLEMS_NAME
        if not problems.is_file():
            sys.exit(f"--from-dir {src}: no {PROBLEMS_NAME} there (R1-V's src/eval/prompts/{PROBLEMS_NAME})")
        images = src / "images.zip" if (src / "images.zip").is_file() else src / "images"
        if not images.exists():
            sys.exit(f"--from-dir {src}: neither images.zip nor an images/ folder")
        provenance = {"source": f"--from-dir {src}", "r1v_commit": R1V_COMMIT}
    else:
        cache = out / ".download"
        problems = download(PROBLEMS_URL, cache / PROBLEMS_NAME)
        images = download(IMAGES_URL, cache / "images.zip")
        provenance = {"source": "download", "r1v_commit": R1V_COMMIT, "problems_url": PROBLEMS_URL,
                      "images_url": IMAGES_URL, "images_zip_sha256": sha256(images)}
    digest = sha256(problems)
    matches = digest == PROBLEMS_SHA256
    if not matches and args.from_dir is None:
        sys.exit(f"{problems}: sha256 {digest} is not R1-V's ({PROBLEMS_SHA256} at {R1V_COMMIT}); delete it and retry")
    rows = read_problems(problems)
    if not matches or len(rows) != NUM_PROBLEMS:
        print(f"WARNING: {problems} is not R1-V's problem file at {R1V_COMMIT} (sha256 {digest}, {len(rows)} rows): "
              "the result is not R1-V's SuperCLEVR-200", file=sys.stderr)
    collect_images(rows, images, out / "images")
    path = write_dataset(rows, out, {**provenance, "problems_sha256": digest, "problems_match_r1v": matches})
    if args.from_dir is None and not args.keep_zip:
        shutil.rmtree(out / ".download")
    print(f"wrote {path} ({len(rows)} problems) and {out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
