"""CPU cost of reading a camera stream: OpenCV's FFmpeg capture (the reader before) vs PyAV (the reader now).

    python scripts/bench_camera_decode.py [--seconds 20] [--sample-fps 2]

Writes an H.264 recording of real photographs at 1280x720 and 1920x1080, 25 fps, then reads each
file as fast as it decodes, as a camera reader does: every frame is decoded (the stream must not
back up), and the frames due at ``--sample-fps`` of stream time are converted to BGR. Prints the
process CPU time per decoded frame and per converted frame for both bindings, on this machine.
Both link their own FFmpeg build (OpenCV's wheel and PyAV's wheel), so the figures compare the
bindings as shipped, not FFmpeg against itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.streams import photographs, write_video

STREAM_FPS = 25


def opencv_read(path: Path, sample_every: int) -> tuple[int, int]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    decoded = converted = 0
    while capture.grab():
        if decoded % sample_every == 0:
            ok, _ = capture.retrieve()
            converted += ok
        decoded += 1
    capture.release()
    return decoded, converted


def pyav_read(path: Path, sample_every: int) -> tuple[int, int]:
    import av

    decoded = converted = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if decoded % sample_every == 0:
                frame.to_ndarray(format="bgr24")
                converted += 1
            decoded += 1
    return decoded, converted


def cpu_per_frame(read: Callable[[Path, int], tuple[int, int]], path: Path, sample_every: int) -> tuple[float, int]:
    started = time.process_time()
    decoded, _ = read(path, sample_every)
    return (time.process_time() - started) / decoded, decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each recording, seconds")
    parser.add_argument("--sample-fps", type=float, default=2.0, help="frames per second converted to BGR")
    args = parser.parse_args()
    sample_every = max(1, round(STREAM_FPS / args.sample_fps))
    frames = int(args.seconds * STREAM_FPS)
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((1280, 720), (1920, 1080)):
            scenes = photographs((width, height))
            path = write_video(
                Path(tmp) / f"{height}p.mp4", [scenes[i * len(scenes) // frames] for i in range(frames)], STREAM_FPS
            )
            for name, read in (("OpenCV", opencv_read), ("PyAV", pyav_read)):
                read(path, sample_every)  # warm-up: codec init, page cache
                seconds, decoded = cpu_per_frame(read, path, sample_every)
                print(
                    f"{width}x{height} H.264, {decoded} frames, BGR every {sample_every}: "
                    f"{name:6s} {seconds * 1000:6.2f} ms CPU per decoded frame"
                )


if __name__ == "__main__":
    main()
