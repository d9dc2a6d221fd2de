"""Object detection."""

import streamlit as st

from pages._shared import coming_next

st.title("Object detection")
coming_next("Selective search, IoU, non-maximum suppression and COCO detectors.")
