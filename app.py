"""Vision Lab: one server for the pages and the HTTP API, and the pages' navigation. Run with ``streamlit run app.py``.

``streamlit run`` finds ``app`` below, a ``streamlit.starlette.App``: Streamlit's own server (uvicorn) with the
API (``vision_backend.api``) at ``/api``, so an API call and a page visit share the process, its loaded
models and its workspaces. Streamlit then runs this same file as every page visit's script (as ``__main__``),
which draws the navigation; imported by the server, the file only builds ``app``.
"""

from pathlib import Path

from streamlit.starlette import App

if __name__ == "__main__":  # a page visit's run
    import streamlit as st

    from pages._script_runs import light_after_runs
    from pages._sessions import close_expired_sessions
    from pages._shared import account, photo_source, remember_widgets, require_sign_in, restore_visit
    from vision_backend import engines, models

    st.set_page_config(page_title="Vision Lab", page_icon=str(Path(__file__).parent / ".streamlit" / "favicon.png"),
                       layout="wide")
    engines.warm_up(then=models.warm)  # once per process, in the background, before sessions race for them
    close_expired_sessions()  # once per process: a session whose browser left is shut down when its time is up
    light_after_runs()  # once per process: no Keras reset and full collection after every run (pages/_script_runs.py)

    TOPICS = [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/models.py", title="Models and data", icon=":material/inventory_2:", url_path="models"),
        st.Page("pages/cnn_basics.py", title="CNN basics", icon=":material/grid_on:", url_path="cnn_basics"),
        st.Page("pages/train_cnn.py", title="Train a CNN", icon=":material/show_chart:", url_path="train_cnn"),
        st.Page("pages/pretrained.py", title="Pretrained CNNs", icon=":material/label:", url_path="pretrained"),
        st.Page("pages/transfer_learning.py", title="Transfer learning", icon=":material/model_training:",
                url_path="transfer_learning"),
        st.Page("pages/face_detection.py", title="Face detection", icon=":material/face:", url_path="face_detection"),
        st.Page("pages/face_recognition.py", title="Face recognition", icon=":material/badge:",
                url_path="face_recognition"),
        st.Page("pages/object_detection.py", title="Object detection", icon=":material/directions_bike:",
                url_path="object_detection"),
        st.Page("pages/own_objects.py", title="Your own objects", icon=":material/crop_free:", url_path="own_objects"),
        st.Page("pages/video.py", title="Video", icon=":material/movie:", url_path="video"),
        st.Page("pages/live.py", title="Live camera", icon=":material/videocam:", url_path="live"),
        st.Page("pages/api_keys.py", title="API keys", icon=":material/key:", url_path="api_keys"),
    ]

    require_sign_in()
    page = st.navigation(TOPICS, expanded=True)  # every topic in sight: 13 pages would hide three under "View more"
    account()
    restore_visit()  # a new session gets the visitor's photo and settings back (before any widget)
    photo_source()
    page.run()
    remember_widgets()
else:  # imported by the server that `streamlit run app.py` starts
    from starlette.middleware import Middleware

    from pages._shared import leave_folder_mode
    from vision_backend import api
    from vision_backend.visits import VisitCookie

    # Before any visitor: a page URL opened first must run through this script's navigation, never alone in
    # Streamlit's old folder mode (a run that found itself there reran, but eight visitors arriving together
    # raced for the flag and some got a bare page listing every file of pages/).
    leave_folder_mode()

    # The API answers /api/... ahead of Streamlit's own middleware (api.ServedFirst says why); the lifespan sets
    # TCP_NODELAY on the server's socket and stops the API's workers at the end (vision_backend/api/server.py).
    # VisitCookie gives each browser a signed visit cookie on the page's HTML (vision_backend/visits.py).
    app = App(str(Path(__file__).resolve()), middleware=[Middleware(api.ServedFirst), Middleware(VisitCookie)],
              lifespan=api.lifespan)
