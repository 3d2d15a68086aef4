"""``wl.Image``, ``wl.Histogram`` (``wl.Table``: :mod:`._media_table`): media logged
with ``wl.log`` beside scalars.

Constructing one does only what must happen in the caller: an image's pixels are
copied (a 256×256×3 ``uint8`` array in a few µs), a table's rows are copied, a
file is read. Everything else (checks of values, PNG encoding, binning, Arrow)
happens on the sender thread in :meth:`encode`, which raises :class:`MediaError`
for input the server could not store; the sender then warns naming the key and
logs the rest of the call. Arguments no data could fix (``num_bins=0``, both
``dataframe`` and ``data``, a missing file) raise :class:`UsageError` here, as in
wandb.

A :class:`Histogram` keeps a *reference* to the array or tensor it is given (a
copy of a million values would cost the caller about a millisecond): it is binned
within one send interval of ``log()``; pass a copy if you change it in place
right after logging.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _media_png
from .core.api.media import HistogramIn, ImageIn
from .core.errors import UsageError
from .core.limits import (
    MAX_CAPTION_LENGTH,
    MAX_HISTOGRAM_BINS,
    MAX_IMAGE_PIXELS,
    MAX_MEDIA_ITEM_BYTES,
    text_problem,
)
from .core.media import histogram_problem


class MediaError(ValueError):
    """A logged media value the server could not store (the reason, for the warning)."""


class Media:
    """What the sender recognises as media (``_wanllm_media``) and how much memory it holds."""

    _wanllm_media = True
    kind = ""
    nbytes = 0

    def encode(self) -> Any:
        raise NotImplementedError


class _Buffers:
    """Arrays an encoded image no longer needs, kept (up to :data:`POOL_BYTES`) for the
    next ``wl.Image`` of the same shape to copy into: memory that is already mapped
    (a fresh 192 KiB array costs about 100 µs of page faults on first touch, more
    than the copy)."""

    POOL_BYTES = 32 * 1024 * 1024

    def __init__(self) -> None:
        self._free: dict[tuple[tuple[int, ...], str], list[npt.NDArray[Any]]] = {}
        self._bytes = 0
        self._lock = threading.Lock()  # the caller takes, the sender gives back

    def copy(self, data: npt.NDArray[Any]) -> npt.NDArray[Any]:
        with self._lock:
            free = self._free.get((data.shape, data.dtype.str))
            out = free.pop() if free else None
            if out is not None:
                self._bytes -= out.nbytes
        if out is None:
            return data.copy()
        np.copyto(out, data)
        return out

    def give_back(self, array: npt.NDArray[Any]) -> None:
        with self._lock:
            if array.flags.owndata and self._bytes + array.nbytes <= self.POOL_BYTES:
                self._bytes += array.nbytes
                self._free.setdefault((array.shape, array.dtype.str), []).append(array)


_pool = _Buffers()


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_pil(value: Any) -> bool:
    return hasattr(value, "getbands") and hasattr(value, "mode") and hasattr(value, "copy")


# ------------------------------------------------------------------ images
class Image(Media):
    """An image: a numpy array (HW or HWC with 1–4 channels; ``uint8``, other
    integers clipped to 0–255, bool, or floats in [0, 1] scaled by 255 and clipped),
    a PIL image, a torch tensor (CHW or HW, moved to the CPU), or the path of an image
    file (a PNG is stored as it is, other formats PIL reads are re-encoded as PNG)."""

    kind = "image"
    _file: bytes | None = None  # an image file's bytes
    _chw = False  # the pixels are a tensor's, channels first

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,  # wandb compatibility: the channels give the mode
        caption: str | None = None,
        *,
        file_type: str | None = None,  # wandb compatibility: images are stored as PNG
        normalize: bool = True,
    ) -> None:
        if caption is not None and not isinstance(caption, str):
            raise UsageError(f"Image caption must be a string, got {type(caption).__name__}")
        self.caption, self.normalize = caption, normalize
        data = data_or_path
        if isinstance(data, np.ndarray):  # first: the common case, few steps in the caller
            self._pixels: Any = _pool.copy(data)  # a private copy (or tensor, PIL image)
            self.nbytes = data.nbytes
            return
        self._pixels = None
        if isinstance(data, (str, os.PathLike)):
            try:
                with open(data, "rb") as f:
                    self._file = f.read()
            except OSError as exc:
                raise UsageError(f"Image: cannot read {os.fspath(data)!r}: {exc}") from None
            self.nbytes = len(self._file)
        elif _is_torch(data):
            tensor, self._chw = data.detach(), True
            if tensor.device.type != "cpu":
                self._pixels = tensor.cpu()
            else:
                try:  # into a pooled buffer, as an array
                    self._pixels = _pool.copy(tensor.numpy())
                except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16)
                    self._pixels = tensor.clone()
            self.nbytes = tensor.numel() * tensor.element_size()
        elif _is_pil(data):
            self._pixels = data.copy()
            self.nbytes = len(data.getbands()) * data.width * data.height
        else:
            self._pixels = data  # told at log() time: not an image

    def encode(self) -> ImageIn:
        if self.caption is not None:
            problem = text_problem(self.caption, MAX_CAPTION_LENGTH, allow_empty=True)
            if problem is not None:
                raise MediaError(f"caption {problem}")
        if self._file is not None and self._file.startswith(_media_png.SIGNATURE):
            png = self._file
            _check_pixels(*_verified(png).size)
        else:
            png = _media_png.encode(self.to_pixels())
        if len(png) > MAX_MEDIA_ITEM_BYTES:
            raise MediaError(f"PNG of {len(png)} bytes, over the {MAX_MEDIA_ITEM_BYTES} limit")
        if isinstance(self._pixels, np.ndarray):
            _pool.give_back(self._pixels)
        self._pixels = self._file = None  # the memory goes now, not when the caller drops it
        return ImageIn(png=png, caption=self.caption)

    def to_pixels(self) -> npt.NDArray[np.uint8]:
        """The image as ``uint8`` HWC pixels (``MediaError`` when it is not one)."""
        data = self._pixels
        if self._file is not None:
            data = _open_file(self._file)
        if _is_pil(data):
            data = _pil_array(data)
        elif _is_torch(data):
            data = (data.float() if data.dtype.is_floating_point else data).numpy()
        if self._chw and getattr(data, "ndim", 0) == 3 and data.shape[0] in (1, 2, 3, 4):
            data = data.transpose(1, 2, 0)  # a tensor's CHW -> HWC
        if not isinstance(data, np.ndarray):
            raise MediaError(
                f"{type(data).__name__} is not an image "
                "(a numpy array, PIL image, torch tensor or file path)"
            )
        return _pixels(data, self.normalize)


def _verified(png: bytes) -> Any:
    """The PIL image of a PNG file stored as it is, once Pillow has checked its
    chunks and checksums (``MediaError`` when it would not draw)."""
    from PIL import Image as PILImage

    try:
        image = PILImage.open(io.BytesIO(png))
        image.verify()
    except Exception as exc:
        raise MediaError(f"not a valid PNG file ({exc})") from None
    return image


def _open_file(data: bytes) -> Any:
    from PIL import Image as PILImage

    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()
    except Exception as exc:
        raise MediaError(f"not an image file PIL can read ({exc})") from None
    return image


def _pil_array(image: Any) -> npt.NDArray[Any]:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        alpha = mode in ("PA",) or (mode == "P" and "transparency" in image.info)
        return np.asarray(image.convert("RGBA" if alpha else "RGB"))
    raise MediaError(f"PIL mode {mode!r} is not supported (use L, LA, RGB, RGBA, P or 1)")


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(f"{width}x{height} pixels, over the {MAX_IMAGE_PIXELS} limit")


def _pixels(data: npt.NDArray[Any], normalize: bool) -> npt.NDArray[np.uint8]:
    """``data`` as (height, width, channels) ``uint8``, or ``MediaError`` saying why not."""
    if data.ndim == 3 and data.shape[2] not in (1, 2, 3, 4) and data.shape[0] in (1, 3, 4):
        data = data.transpose(1, 2, 0)  # a CHW numpy array
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in (1, 2, 3, 4):
        raise MediaError(
            f"shape {data.shape} is not an image (HW, or HWC with 1, 2, 3 or 4 channels)"
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise MediaError(f"shape {data.shape} has no pixels")
    _check_pixels(data.shape[1], data.shape[0])
    kind = data.dtype.kind
    if kind == "u" and data.dtype.itemsize == 1:
        return data
    if kind == "b":
        return data.astype(np.uint8) * np.uint8(255)
    if kind in "iu":
        return np.clip(data, 0, 255).astype(np.uint8)
    if kind == "f":
        scaled = np.nan_to_num(data.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if normalize:
            scaled = np.clip(scaled, 0.0, 1.0) * 255.0
        return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    raise MediaError(f"dtype {data.dtype} is not a pixel type (uint8, int, bool or float)")


# ------------------------------------------------------------------ histograms
class Histogram(Media):
    """A distribution: ``sequence`` (numbers: array, tensor or list) binned into
    ``num_bins`` equal bins over its finite values, as ``numpy.histogram`` does, or
    a ready ``np_histogram=(counts, edges)``."""

    kind = "histogram"

    def __init__(
        self,
        sequence: Any = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = 64,
    ) -> None:
        if (sequence is None) == (np_histogram is None):
            raise UsageError("Histogram needs exactly one of sequence= or np_histogram=")
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)):
            raise UsageError(f"num_bins must be an integer, got {num_bins!r}")
        if not 1 <= num_bins <= MAX_HISTOGRAM_BINS:
            raise UsageError(f"num_bins must be between 1 and {MAX_HISTOGRAM_BINS}, got {num_bins}")
        self.num_bins = int(num_bins)
        self._sequence = sequence  # a reference: binned on the sender thread
        self._given: tuple[Any, Any] | None = None
        if np_histogram is not None:
            try:
                counts, edges = np_histogram
            except (TypeError, ValueError):
                raise UsageError("np_histogram must be a pair (counts, edges)") from None
            self._given = (np.array(counts, copy=True), np.array(edges, copy=True))
        self.nbytes = int(getattr(sequence, "nbytes", 0))

    def encode(self) -> HistogramIn:
        if self._given is not None:
            counts, edges = _checked_bins(*self._given)
        else:
            counts, edges = self._bin(self._sequence)
        self._sequence = self._given = None
        return HistogramIn(edges=edges.tolist(), counts=counts.tolist())

    def _bin(self, sequence: Any) -> Bins:
        if _is_torch(sequence):
            from ._watch import tensor_histogram

            return tensor_histogram(sequence, self.num_bins)
        try:
            values = np.asarray(sequence)
        except Exception as exc:
            raise MediaError(f"not a sequence of numbers ({exc})") from None
        if values.dtype.kind not in "biuf":
            raise MediaError(f"dtype {values.dtype} is not numeric")
        values = values.ravel()
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size == 0:
            raise MediaError("no finite values to bin (empty, or all NaN/±Inf)")
        try:
            counts, edges = np.histogram(values, bins=self.num_bins)
        except ValueError as exc:  # a range too wide for float64
            raise MediaError(str(exc)) from None
        return _checked_bins(counts, edges)


Bins = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _checked_bins(counts: Any, edges: Any) -> Bins:
    """``(counts, edges)`` as float arrays, or ``MediaError`` naming what the server
    would refuse (:func:`.core.media.histogram_problem`, the one rule)."""
    try:
        c = np.asarray(counts, dtype=np.float64).ravel()
        e = np.asarray(edges, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise MediaError(f"counts and edges must be numbers ({exc})") from None
    problem = histogram_problem(e, c)
    if problem is not None:
        raise MediaError(f"{problem[0].removeprefix('histogram.')} {problem[1]}")
    return c, e
