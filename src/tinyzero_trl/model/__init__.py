"""Finding a model and loading what reads its inputs (tokenizer, or processor for image tasks).

``loading``: the model check that fails early with one line, and the tokenizer/processor every training and
evaluation process loads the same way. ``vlm``: Qwen2-VL-style processors on a machine without torchvision.
Imports transformers lazily, and nothing of this package but ``tinyzero_trl.errors``.
"""
