"""Face detection."""

import streamlit as st

from pages._shared import coming_next

st.title("Face detection")
coming_next("Viola-Jones, HOG, MTCNN and YuNet, tuned live and compared.")
