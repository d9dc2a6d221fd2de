"""Face recognition."""

import streamlit as st

from pages._shared import coming_next

st.title("Face recognition")
coming_next("Face embeddings, a gallery, recognition in group photos, LFW accuracy.")
