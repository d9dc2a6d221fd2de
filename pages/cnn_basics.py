"""CNN basics."""

import streamlit as st

from pages._shared import coming_next

st.title("CNN basics")
coming_next("Convolution kernels, feature maps and pooling on your photo.")
