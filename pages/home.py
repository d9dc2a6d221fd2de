"""Home: what each topic shows, which models are ready, and the shared photo."""

import pandas as pd
import streamlit as st

from pages._shared import current_photo, start_page
from vision_backend import models

TOPICS = [
    ("pages/cnn_basics.py", "CNN basics", "Convolution kernels, feature maps and pooling on your own photo."),
    ("pages/train_cnn.py", "Train a CNN", "Build the classic small Keras CNN and train it on 28x28 images, live."),
    ("pages/pretrained.py", "Pretrained CNNs", "ImageNet top-5 with MobileNetV2, VGG16, ResNet50 and more."),
    ("pages/transfer_learning.py", "Transfer learning", "Label your own classes and train a head on a frozen base."),
    ("pages/face_detection.py", "Face detection", "Viola-Jones, HOG, MTCNN and YuNet side by side."),
    ("pages/face_recognition.py", "Face recognition", "Face embeddings: enrol, recognise, verify, LFW accuracy."),
    ("pages/object_detection.py", "Object detection", "Selective search, IoU, NMS and COCO detectors with masks."),
]

start_page(":material/biotech: Vision Lab", "A hands-on tour of the classic computer-vision pipeline on real "
           "pretrained models. Pick a photo in the sidebar (a sample, an upload or your camera); every topic works on it.")

left, right = st.columns([3, 2])
with left:
    st.subheader("Topics")
    for path, title, line in TOPICS:
        st.page_link(path, label=f"**{title}** — {line}")
with right:
    name, image = current_photo()
    st.subheader("Current photo")
    st.image(image, caption=f"{name} · {image.shape[1]}x{image.shape[0]} px", width="stretch")

st.subheader("Models and data")
table = pd.DataFrame(models.status())
st.caption(f"{int(table['ready'].sum())} of {len(table)} ready. Missing ones are fetched the first time a page "
           "needs them, or say the command that gets them.")
st.dataframe(table[["status", "title", "task", "kind", "licence", "accuracy", "get it with"]], hide_index=True,
             width="stretch", column_config={"status": st.column_config.TextColumn(width="small")})
