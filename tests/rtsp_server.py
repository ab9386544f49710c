"""A real RTSP server for tests: GStreamer's RTSP server streaming a folder of JPEGs as H.264.

Run it with Debian's ``/usr/bin/python3`` (the one with ``gi``)::

    /usr/bin/python3 tests/rtsp_server.py --frames DIR --port 8554 --fps 10 [--user U --password P]

``DIR`` holds ``frame-00000.jpg``, ``frame-00001.jpg``, ... (all the same size); they loop for ever
at ``--fps``. With ``--freeze`` the stream is a frozen camera instead: GStreamer's ``imagefreeze``
decodes ``frame-00000.jpg`` once and pushes that same buffer again and again at ``--fps``.
The stream is ``rtsp://127.0.0.1:PORT/stream``. Once listening, the server prints
``READY <port>`` on stdout. With ``--user``/``--password`` it requires HTTP Basic authentication.
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=Path, required=True, help="folder of frame-%%05d.jpg")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--freeze", action="store_true", help="repeat the buffer of the first frame for ever")
    args = parser.parse_args()

    Gst.init(None)
    if args.freeze:
        first = str(args.frames.resolve() / "frame-00000.jpg")
        source = f'filesrc location="{first}" ! jpegdec ! imagefreeze is-live=true ! video/x-raw,framerate={args.fps}/1'
    else:
        location = str(args.frames.resolve() / "frame-%05d.jpg")
        source = (
            f'multifilesrc location="{location}" index=0 loop=true caps="image/jpeg,framerate={args.fps}/1" ! jpegdec'
        )
    launch = (
        f"( {source} ! videoconvert ! video/x-raw,format=I420 "
        f"! openh264enc gop-size={args.fps} complexity=low ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print(f"could not listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1

    loop = GLib.MainLoop()

    def stop(*_: object) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, stop)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    # Exit at once, like a crashed camera: a clean GStreamer shutdown can hang while clients stream.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
