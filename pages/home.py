"""Home: what each topic shows, which models are ready, and the shared photo."""

import pandas as pd
import streamlit as st

from pages._api import project_example
from pages._cards import get_everything
from pages._shared import current_photo, friendly_errors, preview, start_page, workspace
from vision_backend import measured, models, samples

TOPICS = [  # (page, title, its navigation icon, what it shows)
    ("pages/cnn_basics.py", "CNN basics", ":material/grid_on:",
     "Convolution kernels, feature maps and pooling on your own photo."),
    ("pages/train_cnn.py", "Train a CNN", ":material/show_chart:",
     "Build the classic small Keras CNN and train it on 28x28 images, live."),
    ("pages/pretrained.py", "Pretrained CNNs", ":material/label:",
     "ImageNet top-5 with MobileNetV2, VGG16, ResNet50 and more, and where each one looked."),
    ("pages/transfer_learning.py", "Transfer learning", ":material/model_training:",
     "Label your own classes and train a head on a frozen base."),
    ("pages/face_detection.py", "Face detection", ":material/face:", "Viola-Jones, HOG, MTCNN and YuNet side by side."),
    ("pages/face_recognition.py", "Face recognition", ":material/badge:",
     "Face embeddings: enrol, recognise, verify, LFW accuracy."),
    ("pages/object_detection.py", "Object detection", ":material/directions_bike:",
     "Selective search, IoU, NMS and COCO detectors with masks."),
    ("pages/own_objects.py", "Your own objects", ":material/crop_free:",
     "Draw boxes for your own classes, train a detector (R-CNN step by step, or a fast one for the live camera)."),
    ("pages/video.py", "Video", ":material/movie:", "Track objects through a video, count them across a line and in zones."),
    ("pages/live.py", "Live camera", ":material/videocam:",
     "Your webcam through any detector, recogniser or classifier, frame by frame."),
]


def models_table() -> None:
    """Every card's status with its headline figure measured here; picking a row opens its card."""
    table = pd.DataFrame(models.status())
    figures = measured.latest()
    table["measured here"] = [measured.headline(name, figures) for name in table["name"]]
    st.caption(f"{int(table['ready'].sum())} of {len(table)} ready. Missing ones are fetched the first time a page "
               "needs them, or say the command that gets them. Pick a row for its card.")
    picked = st.dataframe(table[["status", "title", "task", "kind", "licence", "accuracy", "measured here",
                                 "get it with"]], hide_index=True, width="stretch", key="home_cards",
                          on_select="rerun", selection_mode="single-row",
                          column_config={"status": st.column_config.TextColumn(width="small")})
    if picked.selection.rows:
        st.switch_page("pages/models.py", query_params={"card": table["name"].iloc[picked.selection.rows[0]]})


start_page(":material/biotech: Vision Lab", "A hands-on tour of the classic computer-vision pipeline on real "
           "pretrained models. Pick a photo in the sidebar (a sample, an upload or your camera); every topic works on it.")

left, right = st.columns([3, 2])
with left:
    st.subheader("Topics")
    for path, title, icon, line in TOPICS:  # the line as a caption: a link label is cut to one line on a projector
        st.page_link(path, label=f"**{title}** →", icon=icon)
        st.caption(line)
with right:
    name, image = current_photo()
    st.subheader("Current photo")
    st.image(preview(image), caption=f"{samples.title(name)} · {image.shape[1]}x{image.shape[0]} px",
             width="stretch")

st.subheader("Models and data")
st.page_link("pages/models.py", label="Model cards: sources, licences, hashes, and what was measured here",
             icon=":material/inventory_2:")
get_everything("home_get_everything")
models_table()

st.subheader("From your programs")
with friendly_errors():
    project_example(workspace(), "home_api_project")
