"""Train a CNN: the deck's small Keras CNN on 28x28 images, live curves, evaluation, and your own digit."""

import uuid

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from pages._shared import (UPLOAD_TYPES, decode_photo, ensure_ready, friendly_errors, guarded_fragment, keep, start_page,
                           settings_widgets, tabbed, workspace)
from vision_backend.intake import ImageIntakeError
from vision_backend.small_cnn import data, networks, training
from vision_backend.small_cnn.digits import prepare_digit

NETWORKS = {"deck": "The deck's CNN", "improved": "Improved"}


@st.cache_resource(max_entries=3, show_spinner="Reading the data set…")
def dataset(name: str):
    """One copy per process for every session (the arrays are only read)."""
    return data.load(name)


def dataset_label(key: str) -> str:
    d = data.DATASETS[key]
    return d.title + ("" if d.card.ready() else " — not on this machine")


KEEP_MODELS = 8
"""Trained CNNs kept per workspace (the newest; older sessions' files go)."""


def model_stem(dataset_name: str, preset: str) -> str:
    """This session's model's name in the person's workspace: a short id kept for the session in it, so two
    sessions (two tabs, two people on the local workspace) never overwrite each other's model."""
    session = st.session_state.setdefault("cnn_session", uuid.uuid4().hex[:8])
    return f"cnn_{dataset_name}_{preset}_{session}"


def curves(history: dict) -> go.Figure:
    """Loss and accuracy per epoch; markers so that a one-epoch run shows as points, not nothing."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    for column, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, dash in (("", "solid"), ("val_", "dash")):
            if prefix + metric in history:
                figure.add_trace(go.Scatter(x=epochs, y=history[prefix + metric], mode="lines+markers",
                                            name=f"{'validation' if prefix else 'train'} {metric}",
                                            line={"dash": dash}), row=1, col=column)
    figure.update_xaxes(title_text="epoch", dtick=1)
    return figure.update_layout(height=320, margin={"t": 40})


@st.cache_data(max_entries=4, show_spinner=False)
def network_table(preset: str, classes: int) -> pd.DataFrame:
    """The network's layers, built once to be described (each Train builds a fresh one, from a random start)."""
    return pd.DataFrame(networks.summary(networks.build(preset, classes)))


def training_settings(train_images: int) -> dict:
    params = training.settings_for(train_images)
    count = params[-1]
    if st.session_state.get("_kept", {}).get("cnn_count", count.default) not in count.options:
        st.session_state.pop("cnn_count", None)  # a size kept from a bigger data set
        st.session_state["_kept"]["cnn_count"] = count.default
    return settings_widgets(params, lambda p: f"cnn_{p.name}", columns=4)


def data_preview(x_train: np.ndarray, y_train: np.ndarray, test_images: int, classes: tuple[str, ...]) -> None:
    st.caption(f"{len(x_train):,} training and {test_images:,} test images of {len(classes)} classes: "
               + ", ".join(classes))
    for k, column in enumerate(st.columns(len(classes))):
        column.image(x_train[np.flatnonzero(y_train == k)[0]], width="stretch", clamp=True)
        column.caption(classes[k])


def finish(run: dict) -> None:
    """Evaluate the run on the test set and save it as this session's file (also after a stopped run)."""
    _, (x_test, y_test) = dataset(run["dataset"])
    run["evaluation"] = training.evaluate(run["model"], x_test, y_test)
    kept = workspace().trained_cnns()
    saved = kept.save_written(model_stem(run["dataset"], run["preset"]), run["model"].save,
                              {"dataset": run["dataset"], "preset": run["preset"],
                               "test_accuracy": run["evaluation"].accuracy},
                              ".keras")
    run["path"] = saved.path
    kept.keep_newest(KEEP_MODELS)


def train_now(run: dict, train_set: tuple[np.ndarray, np.ndarray], settings: dict) -> None:
    """Train with a progress bar and curves redrawn every epoch; the run is kept as it goes."""
    st.caption("Any click in the page stops training after the current epoch; the model so far is kept.")
    epochs = settings["epochs"]
    progress = st.progress(0.0, "Epoch 1…")
    chart = st.empty()
    st.session_state.cnn = run

    def on_epoch(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            if key != "learning_rate":
                run["history"].setdefault(key, []).append(float(value))
        progress.progress((epoch + 1) / epochs, f"Epoch {epoch + 1}/{epochs}: accuracy {logs['accuracy']:.3f}"
                          + (f", validation {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""))
        chart.plotly_chart(curves(run["history"]), width="stretch", key=f"cnn_curves_{epoch}")

    x, y = data.subset(*train_set, settings["count"])
    training.train(run["model"], x, y, epochs, settings["batch_size"], settings["validation"],
                   [training.epoch_callback(on_epoch), *training.schedule(run["preset"], epochs)])
    finish(run)
    test_images = len(run["evaluation"].predicted)
    progress.progress(1.0, f"Done: test accuracy {run['evaluation'].accuracy:.2%} on {test_images:,} test images")


def train_tab() -> None:
    c1, c2 = st.columns(2)
    name = c1.selectbox("Data set", list(data.DATASETS), format_func=dataset_label,
                        key=keep("cnn_data", "fashion_mnist"))
    preset = c2.radio("Network", list(NETWORKS), horizontal=True, key=keep("cnn_preset", "deck"),
                      format_func=NETWORKS.get)
    if preset == "improved":
        with c2.expander("What changes, and why"):
            st.table(pd.DataFrame(networks.IMPROVEMENTS, columns=["change", "why it helps"]))
    if not ensure_ready(data.DATASETS[name].card):
        return
    (x_train, y_train), (x_test, _) = dataset(name)
    classes = data.DATASETS[name].classes
    data_preview(x_train, y_train, len(x_test), classes)  # first: it needs no TensorFlow, the network does
    settings = training_settings(len(x_train))
    table = network_table(preset, len(classes))
    with st.expander(f"The network: {len(table)} layers, {int(table['parameters'].sum()):,} parameters"):
        st.dataframe(table, hide_index=True, width="stretch")
    if st.button("Train", type="primary", key="cnn_train", icon=":material/play_arrow:"):
        start = int(np.random.default_rng().integers(2**31))  # each Train a network of its own, not a replay
        run = {"model": networks.build(preset, len(classes), seed=start), "history": {}, "dataset": name,
               "preset": preset, "classes": classes, "evaluation": None, "images": settings["count"], "path": None}
        train_now(run, (x_train, y_train), settings)
    elif "cnn" in st.session_state:
        st.plotly_chart(curves(st.session_state.cnn["history"]), width="stretch")


def mistakes(run: dict, x_test: np.ndarray, y_test: np.ndarray) -> None:
    st.markdown("**The most confident mistakes**")
    result, names = run["evaluation"], run["classes"]
    columns = st.columns(8)
    for i, index in enumerate(result.misclassified(y_test, 16)):
        with columns[i % 8]:
            st.image(x_test[index], width="stretch", clamp=True)
            st.caption(f"{names[y_test[index]]} → {names[result.predicted[index]]}")


@guarded_fragment
def evaluate_tab() -> None:
    run = st.session_state.get("cnn")
    if not run:
        st.info("Train a network first (the Train tab).", icon=":material/info:")
        return
    with friendly_errors():
        if run["evaluation"] is None:  # training was stopped part-way: evaluate and keep what there is
            finish(run)
        _, (x_test, y_test) = dataset(run["dataset"])
        result, names = run["evaluation"], list(run["classes"])
        m1, m2, m3 = st.columns(3)
        m1.metric("Test accuracy", f"{result.accuracy:.2%}")
        m2.metric("Epochs trained", len(run["history"].get("loss", [])))
        m3.metric("Training images", f"{run['images']:,}")
        st.caption(f"Test accuracy {result.accuracy:.4f} on {len(y_test):,} test images "
                   f"({data.DATASETS[run['dataset']].title}, {run['preset']} network)")
        heat = px.imshow(result.confusion, x=names, y=names, text_auto=True, color_continuous_scale="Blues",
                         labels={"x": "predicted", "y": "true", "color": "images"}, title="Confusion matrix")
        st.plotly_chart(heat.update_layout(height=520), width="stretch")
        mistakes(run, x_test, y_test)
        if run.get("path") is not None and run["path"].is_file():
            st.download_button("Download the model (.keras)", run["path"].read_bytes(),
                               f"cnn_{run['dataset']}_{run['preset']}.keras", "application/octet-stream",
                               on_click="ignore")


def canvas_drawing() -> np.ndarray | None:
    """The drawing canvas (a Streamlit component) or None where it cannot be shown."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # noqa: BLE001 — the component only registers under `streamlit run`
        return None
    drawn = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#FFFFFF", height=280, width=280,
                      drawing_mode="freedraw", key="cnn_canvas", return_image_data=True)
    return drawn.image_data


def your_digit() -> tuple[np.ndarray | None, str | None]:
    """A drawing on the canvas or an uploaded photo (the photo wins when there is one), and the photo's name."""
    st.markdown("Draw a digit (black on white), or upload a photo of one:")
    st.space("medium")  # the canvas's toolbar appears above it on hover: keep it off the text
    drawn = canvas_drawing()
    upload = st.file_uploader("Photo of a digit", type=UPLOAD_TYPES, key="cnn_digit_upload")
    if upload is None:
        return drawn, None
    try:
        photo = decode_photo(upload.getvalue(), upload.name)
    except ImageIntakeError as error:
        st.error(str(error), icon=":material/broken_image:")
        return None, None
    if photo.note:
        st.info(photo.note, icon=":material/filter_frames:")
    return photo.image, upload.name


@guarded_fragment
def try_tab() -> None:
    run = st.session_state.get("cnn")
    if not run:
        st.info("Train a network first; a digit data set (MNIST test digits works offline) for digits.",
                icon=":material/info:")
        return
    with friendly_errors():
        left, right = st.columns(2)
        with left:
            image, source = your_digit()
        digit = prepare_digit(image) if image is not None else None
        if digit is None:
            right.info(f"No digit found in {source}: dark ink on a plain light page (or light on dark) works best."
                       if source else "Nothing drawn yet.", icon=":material/draw:")
            return
        probabilities = training.predict(run["model"], digit[None])[0]
        best = int(probabilities.argmax())
        right.image(digit, width=140, clamp=True)
        right.caption("What the network sees: 28x28, white ink on black, centred by mass as MNIST is")
        right.caption(f"It says **{run['classes'][best]}** ({probabilities[best]:.0%})")
        frame = pd.DataFrame({"class": list(run["classes"]), "probability": probabilities})
        right.plotly_chart(px.bar(frame, x="class", y="probability", range_y=[0, 1], height=300), width="stretch")


start_page("Train a CNN", "The deck's network: two convolution + pooling blocks, then two dense layers. Train it "
           "here on real 28x28 images and watch it learn, epoch by epoch.")
tabbed({"Train": train_tab, "Evaluate": evaluate_tab, "Try it: draw a digit": try_tab})
