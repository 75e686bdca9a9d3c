"""A synthetic classroom for the mock IP camera: desks, a board, a moving pupil and a clock.

Tests may paint polygons in a vivid colour over the scene (for example the area a
privacy mask must hide) to check that not one of those pixels reaches a viewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Point = tuple[float, float]


@dataclass(frozen=True)
class Paint:
    """A polygon in fractions of the width and height (0..1), filled with a BGR colour."""

    points: tuple[Point, ...]
    colour: tuple[int, int, int] = (255, 0, 255)


def polygon_pixels(points: tuple[Point, ...], width: int, height: int) -> npt.NDArray[np.int32]:
    return np.array(
        [(round(x * (width - 1)), round(y * (height - 1))) for x, y in points], dtype=np.int32
    )


class ClassroomScene:
    """Draws frame after frame of the same room; only the pupil, the clock and paint change."""

    def __init__(self, width: int, height: int, paint: tuple[Paint, ...] = ()) -> None:
        if width < 64 or height < 48:
            raise ValueError("the scene needs at least 64x48 pixels")
        self.width = width
        self.height = height
        self.paint = paint
        self._background = self._draw_background()

    def _draw_background(self) -> Image:
        w, h = self.width, self.height
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[:] = (190, 215, 225)  # a pale wall
        cv2.rectangle(img, (0, int(h * 0.62)), (w, h), (90, 120, 150), -1)  # floor
        cv2.rectangle(
            img, (int(w * 0.25), int(h * 0.12)), (int(w * 0.75), int(h * 0.42)), (60, 80, 50), -1
        )  # the board
        cv2.rectangle(
            img, (int(w * 0.82), int(h * 0.1)), (int(w * 0.96), int(h * 0.4)), (230, 200, 150), -1
        )  # a window
        for i in range(3):
            x0 = int(w * (0.1 + 0.3 * i))
            cv2.rectangle(
                img, (x0, int(h * 0.72)), (x0 + int(w * 0.2), int(h * 0.8)), (40, 90, 160), -1
            )  # desks
        scale = w / 640
        cv2.putText(
            img,
            "a b c  1 2 3",
            (int(w * 0.3), int(h * 0.3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.9 * scale,
            (240, 240, 240),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
        return img

    def render(self, number: int, now: datetime) -> Image:
        img = self._background.copy()
        w, h = self.width, self.height
        t = number / 10.0
        x = int((0.5 + 0.4 * math.sin(t * 0.7)) * w)
        y = int((0.68 + 0.05 * abs(math.sin(t * 2.1))) * h)
        r = max(4, h // 12)
        cv2.circle(img, (x, y - r), r, (60, 60, 200), -1)  # a pupil walking about
        cv2.circle(img, (x, y - 2 * r - r // 2), r // 2, (150, 180, 230), -1)
        self._draw_clock(img, number, now)
        for p in self.paint:
            cv2.fillPoly(img, [polygon_pixels(p.points, w, h)], p.colour)
        return img

    def _draw_clock(self, img: Image, number: int, now: datetime) -> None:
        scale = self.width / 640
        label = f"{now:%H:%M:%S}.{now.microsecond // 10000:02d}  #{number}"
        cv2.putText(
            img,
            label,
            (int(8 * scale), int(28 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8 * scale,
            (20, 20, 20),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
        cx, cy, radius = int(self.width * 0.12), int(self.height * 0.3), int(self.height * 0.08)
        cv2.circle(img, (cx, cy), radius, (250, 250, 250), -1)
        angle = (now.second + now.microsecond / 1e6) / 60 * 2 * math.pi
        tip = (cx + int(radius * 0.9 * math.sin(angle)), cy - int(radius * 0.9 * math.cos(angle)))
        cv2.line(img, (cx, cy), tip, (0, 0, 0), max(1, int(2 * scale)), cv2.LINE_AA)
