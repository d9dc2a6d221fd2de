"""Video: reading and writing files (``io``, on PyAV) and the tracking pipeline (``pipeline``: decode, detect,
track, count, draw, encode, one frame at a time)."""

from vision_backend.video.io import (
           Frame,
           VideoInfo,
           VideoWriter,
           open_video,
           read_frames,
           video_writer,
)
from vision_backend.video.pipeline import (
           Progress,
           TrackingRun,
           VideoResult,
           track_video,
)

__all__ = ["Frame", "Progress", "TrackingRun", "VideoInfo", "VideoResult", "VideoWriter", "open_video",
           "read_frames", "track_video", "video_writer"]
