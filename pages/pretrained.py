"""Pretrained CNNs."""

import streamlit as st

from pages._shared import coming_next

st.title("Pretrained CNNs")
coming_next("ImageNet classification (top-5) on Keras, ONNX Runtime and TFLite.")
