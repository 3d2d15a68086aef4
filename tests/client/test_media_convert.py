"""wl.Image / wl.Histogram / wl.Table conversion, without a server: what the sender
thread encodes equals what was given (PNG decoded by Pillow, bins by numpy, tables
through Arrow)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from PIL import Image as PILImage

import wanllm_jupyter as wl
from wanllm_jupyter._media import MediaError
from wanllm_jupyter.core.errors import UsageError

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)


def decode(png: bytes) -> np.ndarray:
    image = PILImage.open(io.BytesIO(png))
    image.load()
    return np.asarray(image)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_uint8_arrays_round_trip(channels: int) -> None:
    pixels = RNG.integers(0, 256, size=(9, 11, channels), dtype=np.uint8)
    got = decode(wl.Image(pixels).encode().png)
    assert np.array_equal(got.reshape(9, 11, channels), pixels)


def test_grey_float_bool_and_int_arrays() -> None:
    grey = RGB[:, :, 0]
    assert np.array_equal(decode(wl.Image(grey).encode().png), grey)
    floats = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]])
    assert decode(wl.Image(floats).encode().png).tolist() == [[0, 128, 255, 255, 0, 0]]
    assert decode(wl.Image(np.array([[True, False]])).encode().png).tolist() == [[255, 0]]
    assert decode(wl.Image(np.array([[-5, 300]], dtype=np.int32)).encode().png).tolist() == [
        [0, 255]
    ]


def test_the_array_is_copied_when_constructed() -> None:
    pixels = RGB.copy()
    image = wl.Image(pixels)
    pixels[:] = 0
    assert np.array_equal(decode(image.encode().png), RGB)


def test_pil_torch_and_files(tmp_path: Path) -> None:
    pil = PILImage.fromarray(RGB)
    assert np.array_equal(decode(wl.Image(pil).encode().png), RGB)
    assert np.array_equal(
        decode(wl.Image(pil.convert("P")).encode().png), np.asarray(pil.convert("P").convert("RGB"))
    )
    chw = torch.from_numpy(RGB).permute(2, 0, 1).float() / 255
    assert np.array_equal(decode(wl.Image(chw).encode().png), RGB)
    png_path = tmp_path / "a.png"
    pil.save(png_path)
    assert wl.Image(png_path).encode().png == png_path.read_bytes()  # stored as it is
    bmp_path = tmp_path / "a.bmp"
    pil.save(bmp_path)
    assert np.array_equal(decode(wl.Image(str(bmp_path)).encode().png), RGB)
    with pytest.raises(UsageError, match="cannot read"):
        wl.Image(tmp_path / "missing.png")
    png_path.write_bytes(png_path.read_bytes()[:-20])  # cut short: no IEND
    with pytest.raises(MediaError, match="not a valid PNG file"):
        wl.Image(png_path).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (np.zeros((5, 5, 5), np.uint8), "not an image"),
        (np.zeros((2, 3, 4, 3), np.uint8), "not an image"),
        (np.zeros((0, 4), np.uint8), "no pixels"),
        (np.array([["a"]]), "not a pixel type"),
        ("not-a-file.png", None),
        (object(), "is not an image"),
        (PILImage.new("F", (2, 2)), "mode 'F'"),
        (np.broadcast_to(np.uint8(0), (7000, 6000)), "6000x7000 pixels, over the"),
    ],
)
def test_bad_images_say_why(data: object, reason: str | None) -> None:
    if reason is None:
        with pytest.raises(UsageError):
            wl.Image(data)
        return
    with pytest.raises(MediaError, match=reason):
        wl.Image(data).encode()


def test_caption_checked() -> None:
    with pytest.raises(UsageError, match="caption"):
        wl.Image(RGB, caption=3)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="NUL"):
        wl.Image(RGB, caption="a\x00b").encode()
    assert wl.Image(RGB, caption="cat").encode().caption == "cat"


def test_histogram_bins_equal_numpy() -> None:
    values = RNG.normal(size=10_001)
    values[::100] = np.nan  # non-finite values are left out
    finite = values[np.isfinite(values)]
    for bins in (1, 7, 64, 512):
        counts, edges = np.histogram(finite, bins=bins)
        got = wl.Histogram(values, num_bins=bins).encode()
        assert got.counts == counts.astype(float).tolist()
        assert got.edges == edges.tolist()
    given = wl.Histogram(np_histogram=(counts, edges)).encode()
    assert given.counts == counts.astype(float).tolist()
    assert wl.Histogram([3, 3, 3], num_bins=2).encode().edges == [2.5, 3.0, 3.5]


def test_torch_histogram_counts_every_value() -> None:
    t = torch.randn(5000)
    got = wl.Histogram(t, num_bins=32).encode()
    assert sum(got.counts) == 5000
    assert got.edges[0] == pytest.approx(float(t.min())) and len(got.edges) == 33


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"sequence": []}, "no finite values"),
        ({"sequence": [np.nan, np.inf]}, "no finite values"),
        ({"sequence": ["a", "b"]}, "not numeric"),
        ({"np_histogram": ([1, 2], [0, 1])}, "2 edges for 2 counts"),
        ({"np_histogram": ([1, 2], [0, 2, 1])}, "strictly increasing"),
        ({"np_histogram": ([1, -2], [0, 1, 2])}, "counts must be >= 0"),
    ],
)
def test_bad_histograms_say_why(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        wl.Histogram(**kwargs).encode()  # type: ignore[arg-type]


def test_histogram_arguments() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        wl.Histogram()
    with pytest.raises(UsageError, match="num_bins"):
        wl.Histogram([1.0], num_bins=513)


def read_arrow(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(data).read_all().to_pandas()


def test_tables_round_trip_through_arrow() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "label": ["a", "b", None], "p": [0.5, np.nan, 1.0]})
    pd.testing.assert_frame_equal(read_arrow(wl.Table(dataframe=frame).encode().arrow), frame)
    table = wl.Table(columns=["x", "y"], data=[[1, "one"]])
    table.add_data(2, "two")
    got = read_arrow(table.encode().arrow)
    assert got.to_dict("list") == {"x": [1, 2], "y": ["one", "two"]}


def test_bad_tables() -> None:
    with pytest.raises(MediaError, match="column 'x' does not hold one type"):
        wl.Table(columns=["x"], data=[[1], ["a"]]).encode()
    mixed = pd.DataFrame({"m": [1, "a"]})
    with pytest.raises(MediaError, match="one type"):
        wl.Table(dataframe=mixed).encode()
    with pytest.raises(UsageError, match="2 values for 1 columns"):
        wl.Table(columns=["x"], data=[[1, 2]])
    with pytest.raises(UsageError, match="not both"):
        wl.Table(data=[[1]], dataframe=pd.DataFrame({"a": [1]}))


def test_a_batch_is_cut_at_the_item_limit() -> None:
    """More (key, step) items than one media/batch may hold go as several batches."""
    from wanllm_jupyter._media import Histogram
    from wanllm_jupyter._media_batch import media_batches
    from wanllm_jupyter.core.limits import MAX_MEDIA_ITEMS_PER_BATCH

    n = MAX_MEDIA_ITEMS_PER_BATCH + 5
    pending = [("h", step, 0.0, [Histogram([1.0, 2.0])]) for step in range(n)]
    batches = list(media_batches("r", pending, lambda key, why: None, {}))
    assert [len(b.items) for b in batches] == [MAX_MEDIA_ITEMS_PER_BATCH, 5]
