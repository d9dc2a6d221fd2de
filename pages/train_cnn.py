"""Train a CNN."""

import streamlit as st

from pages._shared import coming_next

st.title("Train a CNN")
coming_next("Train the deck's small CNN on Fashion-MNIST and MNIST with live curves.")
