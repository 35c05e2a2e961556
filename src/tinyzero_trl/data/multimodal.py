"""Multimodal (image + question) tasks: CLEVR counting and geometry from the hub, local files, and synthetic shapes.

Every row ends up as TRL 1.16's GRPOTrainer expects vision data: a conversational ``prompt`` whose user turn
holds an ``{"type": "image"}`` placeholder before the question text, an ``image`` column (one PIL image per
row, which TRL puts into the placeholder), and ``solution``, the bare gold answer the rewards read
(``count_accuracy`` for counting, ``math_accuracy`` for geometry).
"""

from __future__ import annotations

import hashlib
import inspect
import random
import re
from pathlib import Path

import datasets

from tinyzero_trl.data.sources import (
    DataError,
    check_columns,
    check_local,
    first_rows,
    load_hub,
    load_local,
    local_split_files,
    refuse_draw_options,
    require_columns,
)
from tinyzero_trl.data.tasks import Task, register_task

CLEVR_DATASET = "leonardPKU/clevr_cogen_a_train"  # R1-V's CLEVR-70k: image, problem, solution ("<answer> N </answer>")
# R1-V src/r1-v/src/open_r1/grpo.py QUESTION_TEMPLATE, less "{Question}" (two spaces are R1-V's own).
COUNT_INSTRUCTION = "  Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."
DEFAULT_NUM_TEST = 200  # rows held out of a hub or local set that ships one split (ours; no source split them)
DEFAULT_NUM_TRAIN_GENERATED = 1000
COLUMNS = ["image", "problem", "solution"]
PROMPT_COLUMN = "input"  # data.template=dataset: the row's whole question text, no instruction added

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square", "triangle")
QUESTIONS = ("all", "color", "shape")  # what a generated scene may be asked: every object, one color, one shape
SIDES = ("train", "test")
HELDOUT_SHARE = 5  # one scene in 5 (by a stable hash of its objects) is on the held-out side
MAX_DRAWS = 10_000  # draws of a scene before its side is judged unreachable (a real space needs ~5)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def gold_answer(solution) -> str:
    """The bare gold answer: the text of the last ``<answer>...</answer>`` (R1-V's form), else the value itself."""
    text = str(solution)
    found = _ANSWER_RE.findall(text)
    return (found[-1] if found else text).strip()


def _draw(draw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def render_scene(objects: list[tuple[str, str, int]], *, size: int = 56, grid: int = 3, background=(235, 235, 235)):
    """Draw ``(color, shape, cell)`` objects on a ``grid`` x ``grid`` layout; cells never overlap, so counts are exact."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    cell = size / grid
    margin = max(1, int(cell * 0.15))
    for color, shape, index in objects:
        row, col = divmod(index, grid)
        box = (int(col * cell) + margin, int(row * cell) + margin,
               int((col + 1) * cell) - margin - 1, int((row + 1) * cell) - margin - 1)
        _draw(draw, shape, box, COLORS[color])
    return image


def scene_is_heldout(objects) -> bool:
    """Whether a scene (its ``(color, shape, cell)`` objects, in any order) is on the held-out side of the split.

    A stable hash of the sorted objects, so the same scene lands on the same side whatever seed, size or question
    drew it: training and held-out scenes never overlap, as countdown's and math's ``is_heldout`` split their tasks.
    """
    key = ";".join(f"{cell}:{color}:{shape}" for color, shape, cell in sorted(objects, key=lambda o: o[2]))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % HELDOUT_SHARE == 0


def draw_scene(rng: random.Random, *, grid: int, min_objects: int, max_objects: int, colors, shapes,
               side: str | None = None) -> list[tuple[str, str, int]]:
    """A random scene of ``min_objects``..``max_objects`` ``(color, shape, cell)`` objects in distinct cells, on
    ``side`` of the split (``"train"``, ``"test"``; None: either): scenes of the other side are drawn again, up
    to ``MAX_DRAWS`` times (a tiny scene space may hold no scene of one side at all: then a DataError, not a hang).
    """
    for _ in range(MAX_DRAWS):
        cells = rng.sample(range(grid * grid), rng.randint(min_objects, max_objects))
        objects = [(rng.choice(colors), rng.choice(shapes), cell) for cell in cells]
        if side is None or scene_is_heldout(objects) == (side == "test"):
            return objects
    raise DataError(f"data.generate: no {'held-out' if side == 'test' else 'training'} scene in {MAX_DRAWS:,} draws "
                    f"(grid={grid}, {min_objects}..{max_objects} objects, colors={list(colors)}, "
                    f"shapes={list(shapes)}); one scene in {HELDOUT_SHARE} is held out, so the scene space is too "
                    "small to split: raise grid or max_objects, or give more colors or shapes")


def ask(objects, kind: str, rng: random.Random) -> tuple[str, int, str, str]:
    """A counting question about ``objects``: (question, count, asked color, asked shape).

    ``kind`` is one of ``QUESTIONS``; a color or shape asked about is one in the scene, so counts are >= 1 as in
    CLEVR's counting questions.
    """
    if kind == "color":
        color = rng.choice(objects)[0]
        return f"How many {color} objects are there?", sum(o[0] == color for o in objects), color, ""
    if kind == "shape":
        shape = rng.choice(objects)[1]
        return f"How many {shape}s are there?", sum(o[1] == shape for o in objects), "", shape
    return "How many objects are there?", len(objects), "", ""


def generate_shapes(num_samples: int, *, seed: int = 0, size: int = 56, grid: int = 3, min_objects: int = 1,
                    max_objects: int = 6, colors: list[str] | None = None, shapes: list[str] | None = None,
                    questions: list[str] | None = None, side: str | None = None,
                    background: list[int] | None = None) -> datasets.Dataset:
    """``num_samples`` synthetic counting scenes with ``image``, ``problem``, ``solution`` (the count as text).

    The same arguments give the same rows. Each scene puts ``min_objects``..``max_objects`` shapes in distinct
    grid cells and asks, with equal odds, one of ``questions`` (default: all objects, one color, one shape); the
    gold count comes from the scene itself. ``side`` keeps to one side of the train/held-out split of scenes
    (``scene_is_heldout``); None draws from both. ``background``: the RGB of the empty canvas (default light grey).
    """
    colors = list(colors or COLORS)
    shapes = list(shapes or SHAPES)
    questions = list(questions or QUESTIONS)
    unknown = [c for c in colors if c not in COLORS] + [s for s in shapes if s not in SHAPES]
    if unknown:
        raise DataError(f"data.generate: unknown colors/shapes {unknown}; known {sorted(COLORS)} and {list(SHAPES)}")
    if not questions or any(q not in QUESTIONS for q in questions):
        raise DataError(f"data.generate.questions={questions}: choose from {list(QUESTIONS)}")
    if side not in (None, *SIDES):
        raise DataError(f"side={side!r}: one of {list(SIDES)} or None")
    if not 1 <= min_objects <= max_objects <= grid * grid:
        raise DataError(f"data.generate: need 1 <= min_objects <= max_objects <= grid*grid ({grid * grid})")
    if background is not None and (len(background) != 3 or not all(0 <= int(v) <= 255 for v in background)):
        raise DataError(f"data.generate.background={background}: an RGB triple of 0..255")
    canvas = {} if background is None else {"background": tuple(int(v) for v in background)}
    rng = random.Random(seed)
    rows: dict[str, list] = {"image": [], "problem": [], "solution": [], "color": [], "shape": []}
    for _ in range(num_samples):
        objects = draw_scene(rng, grid=grid, min_objects=min_objects, max_objects=max_objects, colors=colors,
                             shapes=shapes, side=side)
        question, count, color, shape = ask(objects, rng.choice(questions), rng)
        rows["image"].append(render_scene(objects, size=size, grid=grid, **canvas))
        rows["problem"].append(question)
        rows["solution"].append(str(count))
        rows["color"].append(color)
        rows["shape"].append(shape)
    features = datasets.Features({"image": datasets.Image(), "problem": datasets.Value("string"),
                                  "solution": datasets.Value("string"), "color": datasets.Value("string"),
                                  "shape": datasets.Value("string")})
    return datasets.Dataset.from_dict(rows, features=features)


def multimodal_prompt(problem: str, instruction: str | None = None, system_prompt: str | None = None) -> list[dict]:
    """R1-V's conversation: an optional system turn, then a user turn of an image placeholder and the question.

    Every content is a part list (not a string) so that all rows share one Arrow type; TRL fills the
    ``{"type": "image"}`` placeholder with the row's ``image``.
    """
    text = problem + (COUNT_INSTRUCTION if instruction is None else instruction)
    prompt = [{"role": "system", "content": [{"type": "text", "text": system_prompt}]}] if system_prompt else []
    prompt.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]})
    return prompt


def _load_local_images(path: str) -> datasets.Dataset:
    """A jsonl/json/parquet/csv of ``{image: path, problem, solution}``; relative image paths are from the file's folder."""
    ds = load_local(path, COLUMNS)
    if ds.features["image"] == datasets.Value("string"):
        root = Path(path).expanduser().resolve().parent
        missing = [p for p in ds["image"] if not (root / p).is_file()]
        if missing:
            raise DataError(f"{path}: {len(missing)} image file(s) not found, e.g. {missing[0]!r} (paths are "
                            f"relative to {root})")
        ds = ds.map(lambda p: {"image": str(root / p)}, input_columns=["image"])
        ds = ds.cast_column("image", datasets.Image())
    return ds


def _split(full: datasets.Dataset, num_train: int | None, num_test: int | None, where: str) -> datasets.DatasetDict:
    """The last ``num_test`` rows test, the first ``num_train`` of the rest train (small files keep half for training)."""
    n_test = DEFAULT_NUM_TEST if num_test is None else num_test
    n_test = min(n_test, len(full) // 2)
    n_rest = len(full) - n_test
    n_train = n_rest if num_train is None else min(num_train, n_rest)
    if n_train <= 0:
        raise DataError(f"{where}: {len(full)} rows leave none to train on")
    test = full.select(range(n_rest, len(full))) if n_test else full.select(range(0))
    return datasets.DatasetDict(train=full.select(range(n_train)), test=test)


def _local_splits(data) -> tuple[datasets.Dataset | None, datasets.Dataset | None]:
    if not data.path:
        raise DataError("data.source=local needs data.path=FILE (a .jsonl with image, problem, solution) or a folder "
                        "with train.jsonl and test.jsonl")
    train_file, test_file = local_split_files(data.path, data.test_split)
    return (_load_local_images(str(train_file)) if train_file else None,
            _load_local_images(str(test_file)) if test_file else None)


def load_multimodal(data, processing_class=None, *, seed: int = 0) -> datasets.DatasetDict:
    """Train/test splits for ``data.task == "multimodal"`` with ``prompt``, ``image`` and ``solution`` columns.

    ``data.source``: ``hub`` (``data.name``, default R1-V's CLEVR-70k), ``local`` (a file of image paths,
    problems and solutions, or a folder with one such file per split) or ``generate`` (synthetic shapes from
    ``data.generate``, deterministic in ``seed`` or in ``data.generate.seed`` when given; train and test scenes
    from the two sides of ``scene_is_heldout``). With a test split (``data.test_split`` on the hub, a local
    folder's ``test`` file) its first ``num_test`` rows test (all when unset); otherwise the last ``num_test``
    rows of the train split are held out. ``data.instruction`` follows the question (default: R1-V's counting
    instruction); ``data.template=dataset`` takes each row's ``input`` as the whole question text instead. When
    ``processing_class`` is an image processor-bearing processor, ``data.min_pixels``/``max_pixels`` are
    applied to it, as R1-V passed them to its processor.
    """
    _check_template(data)
    _apply_pixel_limits(processing_class, getattr(data, "min_pixels", None), getattr(data, "max_pixels", None))
    test_split = getattr(data, "test_split", None)
    columns = COLUMNS + [PROMPT_COLUMN] if data.template == "dataset" else COLUMNS
    where = data.path or data.name or CLEVR_DATASET
    if data.source == "generate":
        if test_split is not None:
            raise DataError("data.test_split: generated scenes have no named splits; unset it")
        opts = dict(data.generate or {})
        allowed = set(inspect.signature(generate_shapes).parameters) - {"num_samples", "side"}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise DataError(f"data.generate.{unknown[0]}: not a setting of the generated scenes (the sizes are "
                            f"data.num_train/num_test, the sides come from the split); known: {', '.join(sorted(allowed))}")
        # data.generate.seed fixes the scenes whatever the run's seed (a miniature's held-out set stays the same).
        base_seed = opts.pop("seed", seed)
        n_train = data.num_train if data.num_train is not None else DEFAULT_NUM_TRAIN_GENERATED
        n_test = data.num_test if data.num_test is not None else DEFAULT_NUM_TEST
        # Each split from its own side of the scene split (no held-out scene is trained on), and another seed
        # for the test split, so its questions are not drawn in step with the training stream.
        splits = datasets.DatasetDict(train=generate_shapes(n_train, seed=base_seed, side="train", **opts),
                                      test=generate_shapes(n_test, seed=base_seed + 1_000_003, side="test", **opts))
    elif data.source in ("hub", "local"):
        if data.source == "hub":
            train = load_hub(where, split="train", revision=data.revision)
            test = load_hub(where, split=test_split, revision=data.revision) if test_split is not None else None
        else:
            train, test = _local_splits(data)
        for ds, split in ((train, "train"), (test, test_split or "test")):
            if ds is not None:
                check_columns(ds, columns, where=f"{where} ({split})")
        if test is None:
            splits = _split(train.select_columns(columns), data.num_train, data.num_test, where)
        else:
            test = test.select_columns(columns)
            train = train.select_columns(columns) if train is not None else test.select(range(0))  # evaluation only
            splits = datasets.DatasetDict(train=first_rows(train, data.num_train), test=first_rows(test, data.num_test))
    else:
        raise DataError(f"data.source={data.source!r} is not one of hub, local, generate")
    if data.template == "dataset":
        def build(text, solution):
            return {"prompt": multimodal_prompt(text, "", data.system_prompt), "solution": gold_answer(solution)}
        inputs = [PROMPT_COLUMN, "solution"]
    else:
        def build(problem, solution):
            return {"prompt": multimodal_prompt(problem, data.instruction, data.system_prompt),
                    "solution": gold_answer(solution)}
        inputs = ["problem", "solution"]
    # input_columns: only the text is read, so the images are not decoded and re-encoded by the map.
    return splits.map(build, input_columns=inputs)


def _apply_pixel_limits(processing_class, min_pixels: int | None, max_pixels: int | None) -> None:
    if processing_class is None or (min_pixels is None and max_pixels is None):
        return
    from tinyzero_trl.model.vlm import set_pixel_limits

    set_pixel_limits(processing_class, min_pixels=min_pixels, max_pixels=max_pixels)


# ---------------------------------------------------------------------------------------------------------
# The multimodal task, as the registry knows it.

def _check_template(data) -> None:
    refuse_draw_options(data, "multimodal")
    if data.template not in (None, "dataset"):
        raise DataError(f"data.template={data.template!r}: the multimodal task takes no template but 'dataset' (each "
                        "row's own question text, column 'input'); set data.instruction instead")


def check_task(data) -> None:
    """The template, and a local source's files (image, problem, solution columns; rows), without loading them."""
    _check_template(data)
    columns = COLUMNS + [PROMPT_COLUMN] if data.template == "dataset" else COLUMNS
    check_local(data, lambda found, rows, where: require_columns(found, rows, columns, where=where))


TASK = register_task(Task(
    name="multimodal", load=load_multimodal, check=check_task,
    evaluation_data={"task": "multimodal", "source": "generate"},
    scorer_rewards=("count_accuracy",), images=True,
))
