"""Train a CNN: the deck's small Keras CNN on 28x28 images, live curves, evaluation, and your own digit."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from pages._shared import UPLOAD_TYPES, decode_upload, friendly_errors
from vision_backend import models, paths, small_cnn
from vision_backend.intake import ImageIntakeError

st.title("Train a CNN")
st.caption("The deck's network: two convolution + pooling blocks, then two dense layers. Train it here on real "
           "28x28 images and watch it learn, epoch by epoch.")


@st.cache_data(max_entries=3, show_spinner="Reading the data set…")
def dataset(name: str):
    return small_cnn.load(name)


def dataset_label(key: str) -> str:
    d = small_cnn.DATASETS[key]
    return d.title + ("" if models.card(d.card).ready() else " — not on this machine")


def curves(history: dict) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(1, len(history.get("loss", [])) + 1))
    for column, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, dash in (("", "solid"), ("val_", "dash")):
            if prefix + metric in history:
                figure.add_trace(go.Scatter(x=epochs, y=history[prefix + metric], name=f"{prefix or 'train '}{metric}"
                                            .replace("val_", "validation "), line={"dash": dash}), row=1, col=column)
    figure.update_xaxes(title_text="epoch", dtick=1)
    return figure.update_layout(height=320, margin={"t": 40})


train_tab, result_tab, try_tab = st.tabs(["Train", "Evaluate", "Try it: draw a digit"])

with train_tab, friendly_errors():
    c1, c2 = st.columns(2)
    data_name = c1.selectbox("Data set", list(small_cnn.DATASETS), format_func=dataset_label, key="cnn_data")
    preset = c2.radio("Network", list(small_cnn.PRESETS), horizontal=True, key="cnn_preset",
                      format_func={"deck": "The deck's CNN", "improved": "Improved"}.get)
    if preset == "improved":
        with c2.expander("What changes, and why"):
            st.table(pd.DataFrame(small_cnn.IMPROVEMENTS, columns=["change", "why it helps"]))
    (x_train, y_train), (x_test, y_test) = dataset(data_name)
    classes = small_cnn.DATASETS[data_name].classes
    w1, w2, w3, w4 = st.columns(4)
    epochs = w1.slider("Epochs", 1, 30, 3, key="cnn_epochs", help="The deck trains 10.")
    batch_size = w2.select_slider("Batch size", [16, 32, 50, 64, 128, 256], 50, key="cnn_batch")
    validation = w3.slider("Validation split", 0.0, 0.4, 0.2, 0.05, key="cnn_val")
    sizes = sorted({n for n in (1000, 3000, 6000, 12000, 30000) if n < len(x_train)} | {len(x_train)})
    count = w4.select_slider("Training images", sizes, min(6000, len(x_train)), key="cnn_count",
                             help="Fewer for a quick demo; all of them for the deck's figure.")
    model = small_cnn.build(preset, len(classes))
    table = pd.DataFrame(small_cnn.summary(model))
    with st.expander(f"The network: {len(table)} layers, {int(table['parameters'].sum()):,} parameters"):
        st.dataframe(table, hide_index=True, width="stretch")
    st.caption(f"{len(x_train):,} training and {len(x_test):,} test images of {len(classes)} classes: "
               + ", ".join(classes))
    gallery = st.columns(10)
    for k, column in enumerate(gallery):
        column.image(x_train[np.flatnonzero(y_train == k)[0]], width="stretch", clamp=True)
        column.caption(classes[k])

    if st.button("Train", type="primary", key="cnn_train", icon=":material/play_arrow:"):
        st.caption("Any click in the page stops training after the current epoch; the model so far is kept.")
        progress = st.progress(0.0, "Epoch 1…")
        chart = st.empty()
        run = {"model": model, "history": {}, "dataset": data_name, "preset": preset, "classes": classes,
               "evaluation": None, "images": count}
        st.session_state.cnn = run

        def on_epoch(epoch: int, logs: dict) -> None:
            for key, value in logs.items():
                if key != "learning_rate":
                    run["history"].setdefault(key, []).append(float(value))
            progress.progress((epoch + 1) / epochs, f"Epoch {epoch + 1}/{epochs}: accuracy {logs['accuracy']:.3f}"
                              + (f", validation {logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""))
            chart.plotly_chart(curves(run["history"]), width="stretch", key=f"cnn_curves_{epoch}")

        pick = np.random.default_rng(0).permutation(len(x_train))[:count]
        schedule = [small_cnn.cosine_decay(epochs)] if preset == "improved" else []
        small_cnn.train(model, x_train[pick], y_train[pick], epochs, batch_size, validation,
                        [small_cnn.epoch_callback(on_epoch), *schedule])
        run["evaluation"] = small_cnn.evaluate(model, x_test, y_test)
        path = paths.app_dir("models") / f"cnn_{data_name}_{preset}.keras"
        model.save(path)
        run["path"] = path
        progress.progress(1.0, f"Done: test accuracy {run['evaluation'].accuracy:.2%} on {len(x_test):,} test images")
    elif "cnn" in st.session_state:
        st.plotly_chart(curves(st.session_state.cnn["history"]), width="stretch")

with result_tab, friendly_errors():
    run = st.session_state.get("cnn")
    if not run:
        st.info("Train a network first (the Train tab).", icon=":material/info:")
    else:
        if run["evaluation"] is None:  # training was stopped part-way: evaluate what there is
            (_, _), (x_eval, y_eval) = dataset(run["dataset"])
            run["evaluation"] = small_cnn.evaluate(run["model"], x_eval, y_eval)
        (_, _), (x_test, y_test) = dataset(run["dataset"])
        result = run["evaluation"]
        names = list(run["classes"])
        m1, m2, m3 = st.columns(3)
        m1.metric("Test accuracy", f"{result.accuracy:.2%}")
        m2.metric("Epochs trained", len(run["history"].get("loss", [])))
        m3.metric("Training images", f"{run['images']:,}")
        st.caption(f"Test accuracy {result.accuracy:.4f} on {len(y_test):,} test images "
                   f"({small_cnn.DATASETS[run['dataset']].title}, {run['preset']} network)")
        heat = px.imshow(result.confusion, x=names, y=names, text_auto=True, color_continuous_scale="Blues",
                         labels={"x": "predicted", "y": "true", "color": "images"}, title="Confusion matrix")
        st.plotly_chart(heat.update_layout(height=520), width="stretch")
        st.markdown("**The most confident mistakes**")
        wrong = result.misclassified(y_test, 16)
        columns = st.columns(8)
        for i, index in enumerate(wrong):
            with columns[i % 8]:
                st.image(x_test[index], width="stretch", clamp=True)
                st.caption(f"{names[y_test[index]]} → {names[result.predicted[index]]}")
        if run.get("path") and run["path"].is_file():
            st.download_button("Download the model (.keras)", run["path"].read_bytes(), run["path"].name,
                               "application/octet-stream")


def canvas_drawing():
    """The drawing canvas (a Streamlit component) or None where it cannot be shown."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # noqa: BLE001 — the component only registers under `streamlit run`
        return None
    drawn = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#FFFFFF", height=280, width=280,
                      drawing_mode="freedraw", key="cnn_canvas", return_image_data=True)
    return drawn.image_data


with try_tab, friendly_errors():
    run = st.session_state.get("cnn")
    if not run:
        st.info("Train a network first; a digit data set (MNIST test digits works offline) for digits.",
                icon=":material/info:")
    else:
        left, right = st.columns(2)
        with left:
            st.markdown("Draw a digit (black on white), or upload a photo of one:")
            drawn = canvas_drawing()
            upload = st.file_uploader("Photo of a digit", type=UPLOAD_TYPES, key="cnn_digit_upload")
            image = None
            if upload is not None:
                try:
                    image = decode_upload(upload.getvalue(), upload.name)
                except ImageIntakeError as error:
                    st.error(str(error), icon=":material/broken_image:")
            elif drawn is not None:
                image = drawn
        with right:
            digit = small_cnn.prepare_digit(image) if image is not None else None
            if digit is None:
                st.info("Nothing drawn yet.", icon=":material/draw:")
            else:
                probabilities = run["model"].predict(small_cnn.scale(digit[None]), verbose=0)[0]
                st.image(digit, width=140, clamp=True)
                st.caption("What the network sees: 28x28, white ink on black, centred by mass as MNIST is")
                best = int(probabilities.argmax())
                st.caption(f"It says **{run['classes'][best]}** ({probabilities[best]:.0%})")
                frame = pd.DataFrame({"class": list(run["classes"]), "probability": probabilities})
                st.plotly_chart(px.bar(frame, x="class", y="probability", range_y=[0, 1], height=300),
                                width="stretch")
