"""The rolling window of one source: its last N frames, count-based, O(1) per frame."""

from __future__ import annotations

from collections import deque

from vision_service.drift.frame_values import FrameSignals


class RollingWindow:
    """The last ``size`` frames of a source. Not thread-safe: the tracker holds the lock.

    A count-based window covers a time span that depends on the frame rate: 500 frames are
    under a minute of a 10 fps camera and hours of sporadic uploads.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        self.size = size
        self._frames: deque[FrameSignals] = deque(maxlen=size)
        self.seen = 0  # frames ever appended; identifies the window's contents for caching

    def __len__(self) -> int:
        return len(self._frames)

    def append(self, frame: FrameSignals) -> None:
        self._frames.append(frame)
        self.seen += 1

    def snapshot(self) -> list[FrameSignals]:
        """The frames now in the window, oldest first (a copy; frames themselves are never mutated)."""
        return list(self._frames)
