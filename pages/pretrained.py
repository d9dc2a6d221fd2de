"""Pretrained CNNs: ImageNet top-5 on Keras, ONNX Runtime and TFLite; compare models; Grad-CAM."""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import (UPLOAD_TYPES, current_photo, decode_upload, friendly_errors, load_saved_model,
                           sample_photo)
from vision_backend import classification as cl
from vision_backend import drawing, projects, samples, transfer
from vision_backend.intake import ImageIntakeError, encode_png

st.title("Pretrained CNNs")
st.caption("Networks trained on ImageNet's 1.2 million photos of 1,000 classes, used as they are: what do they see in "
           "your photo, how sure are they, how fast — and where did they look?")

name, photo = current_photo()
ENGINE_NAMES = {"keras": "Keras", "onnx": "ONNX Runtime", "tflite": "TFLite"}


@st.cache_resource(show_spinner="Loading the model (the first ONNX run converts it once)…")
def runner(classifier: str, engine: str) -> cl.Runner:
    return cl.load_runner(cl.CLASSIFIERS[classifier], engine)


@st.cache_resource(show_spinner=False)
def demo_model():
    bar = st.progress(0.0, "Training the demo flowers classifier once (real MobileNetV2 base)…")
    model, names = transfer.demo_classifier(lambda done, total: bar.progress(done / total, f"Features {done}/{total}"))
    bar.empty()
    return model, names


def label(key: str) -> str:
    c = cl.CLASSIFIERS[key]
    return c.title + ("" if c.card.ready() else " — not on this machine")


def ready_classifiers() -> list[str]:
    return [k for k, c in cl.CLASSIFIERS.items() if c.card.ready()]


def top5_chart(prediction: cl.Prediction, title: str):
    frame = pd.DataFrame([{"class": lab.replace("_", " "), "probability": p} for _, lab, p in prediction.top])
    chart = px.bar(frame, x="probability", y="class", orientation="h", title=title, range_x=[0, 1], height=300,
                   text=frame["probability"].map(lambda p: f"{p:.1%}"))
    return chart.update_yaxes(autorange="reversed", title=None)


classify_tab, batch_tab, compare_tab, cam_tab, zoo_tab = st.tabs(
    ["Classify", "Many photos", "Compare models", "Where did it look? (Grad-CAM)", "The model zoo"])

with classify_tab, friendly_errors():
    keys = list(cl.CLASSIFIERS)
    c1, c2 = st.columns([2, 1])
    chosen = c1.selectbox("Model", keys, format_func=label, key="pt_model")
    classifier = cl.CLASSIFIERS[chosen]
    engine = c2.radio("Engine", classifier.engines, format_func=ENGINE_NAMES.get, horizontal=True, key=f"pt_engine_{chosen}")
    card = classifier.card
    st.caption(f"{card.title} · {card.params or 0:,} parameters · input {card.input} · {card.preprocessing} · "
               f"{card.accuracy} · licence {card.licence}")
    prediction = cl.classify(runner(chosen, engine), [photo])[0]
    left, right = st.columns([1, 1])
    left.image(photo, width="stretch")
    right.plotly_chart(top5_chart(prediction, "Top-5"), width="stretch")
    right.caption(f"Top-1: **{prediction.top[0][1].replace('_', ' ')}** ({prediction.top[0][2]:.1%}) · "
                  f"{ENGINE_NAMES[engine]} · {prediction.ms:.0f} ms")

with batch_tab, friendly_errors():
    st.markdown("Classify many photos at once: upload several, or use the staged sample photos.")
    c1, c2 = st.columns([2, 1])
    uploads = c1.file_uploader("Photos", type=UPLOAD_TYPES, accept_multiple_files=True, key="pt_batch")
    chosen_b = c2.selectbox("Model", ready_classifiers(), format_func=label, key="pt_batch_model")
    classifier_b = cl.CLASSIFIERS[chosen_b]
    engine_b = c2.radio("Engine", classifier_b.engines, format_func=ENGINE_NAMES.get, horizontal=True,
                        key=f"pt_batch_engine_{chosen_b}")
    photos, rows = [], []
    if uploads:
        for upload in uploads:
            try:
                photos.append((upload.name, decode_upload(upload.getvalue(), upload.name)))
            except ImageIntakeError as error:
                rows.append({"photo": upload.name, "top-1": "—", "probability": None, "top-5": f"skipped: {error}"})
    else:
        photos = [(n, sample_photo(n)) for n in samples.sample_names()]
    if photos:
        predictions = cl.classify(runner(chosen_b, engine_b), [p for _, p in photos])
        for (photo_name, _), p in zip(photos, predictions):
            rows.append({"photo": photo_name, "top-1": p.top[0][1].replace("_", " "), "probability": round(p.top[0][2], 4),
                         "top-5": ", ".join(f"{lab.replace('_', ' ')} {q:.0%}" for _, lab, q in p.top)})
        st.caption(f"{len(photos)} photo(s) · {predictions[0].ms:.0f} ms per photo on {ENGINE_NAMES[engine_b]}")
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"probability": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")})
    st.download_button("Download the table (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv",
                       disabled=table.empty)

with compare_tab, friendly_errors():
    st.markdown("The same photo through every model and engine on this machine, side by side.")
    results = []
    progress = st.progress(0.0)
    pairs = [(k, e) for k in ready_classifiers() for e in cl.CLASSIFIERS[k].engines]
    for i, (key, eng) in enumerate(pairs):
        progress.progress(i / len(pairs), f"{cl.CLASSIFIERS[key].title} on {ENGINE_NAMES[eng]}")
        results.append(cl.classify(runner(key, eng), [photo])[0])
    progress.empty()
    table = pd.DataFrame([{
        "model": cl.CLASSIFIERS[p.classifier].title, "engine": ENGINE_NAMES[p.engine],
        "top-1": p.top[0][1].replace("_", " "), "probability": round(p.top[0][2], 3),
        "top-5": ", ".join(lab.replace("_", " ") for _, lab, _ in p.top), "ms": round(p.ms, 1),
        "parameters": cl.CLASSIFIERS[p.classifier].card.params,
        "file MB": round(sum(f.stat().st_size for f in cl.CLASSIFIERS[p.classifier].card.paths()) / 1e6, 1),
        "published": cl.CLASSIFIERS[p.classifier].card.accuracy} for p in results])
    st.dataframe(table, hide_index=True, width="stretch")
    agreement = []
    for key in {p.classifier for p in results}:
        same = [p for p in results if p.classifier == key]
        for a, b in zip(same, same[1:]):
            agreement.append({"model": cl.CLASSIFIERS[key].title, "engines": f"{ENGINE_NAMES[a.engine]} vs {ENGINE_NAMES[b.engine]}",
                              "same top-1": a.top[0][0] == b.top[0][0],
                              "max probability difference": float(np.abs(a.probabilities - b.probabilities).max())})
    if agreement:
        st.markdown("**Do the engines agree?** (the same weights, run by different engines)")
        st.dataframe(pd.DataFrame(agreement), hide_index=True, width="stretch")
    chart = px.bar(table, x="ms", y=table["model"] + " · " + table["engine"], orientation="h",
                   title="Time per photo (ms)", height=120 + 40 * len(table))
    st.plotly_chart(chart.update_yaxes(title=None), width="stretch")
    missing = [c for c in cl.CLASSIFIERS.values() if not c.card.ready()]
    if missing:
        with st.expander(f"{len(missing)} more model(s) where the internet is"):
            st.code("\n".join(c.card.how_to_get() for c in missing), language="bash")


def grad_cam_tab() -> None:
    st.markdown("**Grad-CAM** weighs the last convolutional feature maps by how much each one raises the class's "
                "score: red is where the evidence for that class is.")
    trained = {f"project:{name_}/{stem}": saved for name_ in projects.list_projects()
               for stem, saved in projects.Project(name_, create=False).saved_models().items()}
    sources = [k for k in ready_classifiers() if cl.CLASSIFIERS[k].family == "keras"] + ["demo_flowers", *trained]

    def source_label(k: str) -> str:
        if k == "demo_flowers":
            return "Flowers demo: real MobileNetV2 base + head trained on the 5 demo classes"
        if k in trained:
            return f"Your transfer-learning model: {k.split(':', 1)[1]}"
        return cl.CLASSIFIERS[k].title

    source = st.selectbox("Keras classifier", sources, key="cam_model", format_func=source_label)
    if source == "demo_flowers" and not transfer.demo_classifier_trained() \
            and not st.button("Train the flowers demo classifier (about 20 s, once)", key="cam_train"):
        st.info("No ImageNet Keras classifier is on this machine, so Grad-CAM uses a classifier trained here on the "
                "real MobileNetV2 base: train it once with the button.", icon=":material/model_training:")
        return
    if source == "demo_flowers":
        model, class_names = demo_model()
        batch = cl.keras_preprocess("MobileNetV2")(np.stack([cl.resize(photo, 224)]))
    elif source in trained:
        path, meta = trained[source]
        model = load_saved_model(str(path), path.stat().st_mtime)
        class_names = meta["classes"]
        batch = np.stack([cl.resize(photo, 224)]).astype(np.float32)  # exported models take raw 0-255 pixels
    else:
        model = runner(source, "keras").model
        batch = cl.CLASSIFIERS[source].prepare([photo])
        class_names = cl.imagenet_labels()
    probabilities = np.asarray(model.predict_on_batch(batch))[0]
    options = [int(i) for i in np.argsort(-probabilities)[:5]]
    explain = st.selectbox("Explain the class", options, key=f"cam_class_{source}",
                           format_func=lambda i: f"{class_names[i].replace('_', ' ')} ({probabilities[i]:.1%})")
    opacity = st.slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05, key="cam_opacity")
    cam, _ = cl.grad_cam(model, batch, explain)
    overlay = drawing.overlay_heatmap(photo, cam, opacity)
    c1, c2 = st.columns([3, 1])
    c1.image(overlay, width="stretch")
    c2.image(drawing.heat(cam), width="stretch")
    c2.caption(f"The raw {cam.shape[0]}x{cam.shape[1]} map at layer `{cl.last_conv_layer(model)}`")
    c2.download_button("Download (PNG)", encode_png(overlay), f"{name.rsplit('.', 1)[0]}_gradcam.png", "image/png")


with cam_tab, friendly_errors():
    grad_cam_tab()

with zoo_tab:
    st.markdown("The models of the deck's table. Each is registered with its Keras file, download address and hash; "
                "ready ones run here, the rest say how to get them.")
    zoo = pd.DataFrame([{"model": c.title, "status": "ready" if c.card.ready() else "fetch where online",
                         "engines": ", ".join(ENGINE_NAMES[e] for e in c.engines), "input": f"{c.size}x{c.size}",
                         "parameters": c.card.params, "published accuracy": c.card.accuracy,
                         "preprocessing": c.card.preprocessing} for c in cl.CLASSIFIERS.values()])
    st.dataframe(zoo, hide_index=True, width="stretch")
    errors = pd.DataFrame(cl.ILSVRC_TOP5_ERROR, columns=["entry", "top-5 error %"])
    st.plotly_chart(px.bar(errors, x="entry", y="top-5 error %", text="top-5 error %",
                           title="ImageNet (ILSVRC) top-5 error: deep CNNs from 2012 on"), width="stretch")
