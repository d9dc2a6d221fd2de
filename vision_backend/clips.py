"""Sample video clips: real footage for tracking and counting, registered as data sets like the demo photos.

A clip is a card (source, licence, sha256, size, public address), so ``python -m vision_backend.models seed DIR``
copies it from the team's shared folder, ``fetch`` downloads it where the internet is, and the Video page offers it
once it is here. Each clip says in a line what happens in it, so a person knows what the counts should be.
"""

from __future__ import annotations

from dataclasses import dataclass

from vision_backend.cards import ModelCard, shared_file

CAR_CLIP = ModelCard(
    name="car_clip", title="Car park from above (Intel IoT sample videos)", task="tracking and counting",
    kind="dataset", seedable=True, licence="CC BY 4.0",
    files=(shared_file("datasets/vision_lab/video/car-detection.mp4",
                       "d31e0ebf194cc16e50eea784e7c3b0b1bb7976a4fb9b3fec26cb92a6704cca34", 2_811_553,
                       "https://github.com/intel-iot-devkit/sample-videos/raw/master/car-detection.mp4"),),
    input="MP4, H.264 768x432, 12.5 fps, 377 frames (30 s)",
    note="Credit: “car-detection.mp4” from Intel IoT Devkit sample-videos, CC BY 4.0. A fixed camera looks straight "
         "down on a car park lane; 4 cars cross the middle of the frame, 2 up and 2 down.",
    accuracy="a line across the middle counts 4 crossings, 2 each way",
)


@dataclass(frozen=True)
class Clip:
    """A sample clip: its card and what happens in it (what a line across the middle should count)."""

    card: ModelCard
    story: str


CLIPS: dict[str, Clip] = {CAR_CLIP.name: Clip(CAR_CLIP, "a camera looking straight down on a car park lane: 4 cars "
                                                        "cross the middle, 2 up and 2 down")}
"""The sample clips by card name, in the order the Video page offers them."""
