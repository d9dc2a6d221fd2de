"""Tracking: following detected objects from frame to frame, and counting them.

``kalman`` is ByteTrack's constant-velocity Kalman filter; ``bytetrack`` the tracker (``ByteTrack``: boxes in,
boxes with ``tracker_id`` out); ``zones`` counts tracks crossing a line (``LineCounter``) and occupying an area
(``PolygonZone``); ``trails`` keeps each track's recent points for drawing its path.
"""

from vision_backend.tracking.bytetrack import PARAMS, ByteTrack, Track
from vision_backend.tracking.trails import Trails
from vision_backend.tracking.zones import (
           ANCHORS,
           Crossing,
           LineCounter,
           PolygonZone,
           anchor_points,
)

__all__ = ["ANCHORS", "PARAMS", "ByteTrack", "Crossing", "LineCounter", "PolygonZone", "Track", "Trails",
           "anchor_points"]
