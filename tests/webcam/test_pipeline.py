"""The pipeline on synthetic frames: masks before encoding, watermark, cards, one encode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

import numpy as np
import pytest

from hardware.cameras.base import Frame
from tests.webcam.helpers import decode, split_part
from webcam.pipeline import FrameKind, Mask, Pipeline, PipelineConfig

AT = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
HALF = Mask(((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))


def white_frame(width: int = 320, height: int = 240) -> Frame:
    return Frame(np.full((height, width, 3), 255, np.uint8), AT, 1)


def config(**changes: object) -> PipelineConfig:
    return PipelineConfig(school="École Jules-Ferry", room="CP", **changes)  # type: ignore[arg-type]


def test_masked_area_is_black_and_the_rest_untouched() -> None:
    encoded = Pipeline(config(masks=(HALF,), jpeg_quality=95)).live(white_frame())
    image = decode(encoded.jpeg)
    assert image[:200, :150].max() < 20
    assert image[:200, 175:].min() > 235


def test_mask_fractions_follow_the_frame_size() -> None:
    pipeline = Pipeline(config(masks=(HALF,), jpeg_quality=95))
    pipeline.live(white_frame())
    image = decode(pipeline.live(white_frame(640, 480)).jpeg)
    assert image[:400, :310].max() < 20


def test_watermark_is_drawn_on_every_frame() -> None:
    image = decode(Pipeline(config()).live(white_frame()).jpeg)
    strip = image[-12:, :200]
    assert strip.min() < 30  # the dark band
    assert strip.max() > 200  # the text on it


def test_a_part_is_framed_once_with_its_length_and_kind() -> None:
    encoded = Pipeline(config()).live(white_frame())
    kind, jpeg = split_part(encoded.part)
    assert kind is FrameKind.LIVE
    assert jpeg == encoded.jpeg
    assert jpeg.startswith(b"\xff\xd8")


@pytest.mark.parametrize("kind", [k for k in FrameKind if k is not FrameKind.LIVE])
def test_cards_are_dark_images_of_the_cameras_size(kind: FrameKind) -> None:
    pipeline = Pipeline(config())
    pipeline.live(white_frame(160, 120))
    card = pipeline.card(kind, AT)
    assert card.kind is kind
    image = decode(card.jpeg)
    assert image.shape == (120, 160, 3)
    assert np.median(image) < 80


def test_a_card_is_drawn_once_a_second() -> None:
    pipeline = Pipeline(config())
    first = pipeline.card(FrameKind.PAUSED, AT)
    assert pipeline.card(FrameKind.PAUSED, AT + timedelta(milliseconds=500)) is first
    assert pipeline.card(FrameKind.PAUSED, AT + timedelta(seconds=1)) is not first


def test_quality_changes_the_encoding() -> None:
    low = Pipeline(config(jpeg_quality=20)).live(white_frame())
    high = Pipeline(config(jpeg_quality=95)).live(white_frame())
    assert len(low.jpeg) < len(high.jpeg)


@pytest.mark.parametrize(
    "points",
    [((0.0, 0.0), (1.0, 1.0)), ((0.0, 0.0), (1.5, 0.0), (0.0, 1.0))],
    ids=["two points", "outside the image"],
)
def test_bad_masks_are_refused(points: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError, match="mask"):
        Mask(points)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="quality"):
        config(jpeg_quality=0)
    with pytest.raises(ZoneInfoNotFoundError):
        config(timezone="Mars/Olympus")
