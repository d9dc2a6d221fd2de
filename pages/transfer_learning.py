"""Transfer learning."""

import streamlit as st

from pages._shared import coming_next

st.title("Transfer learning")
coming_next("Label your own classes and train a head on a frozen pretrained CNN.")
