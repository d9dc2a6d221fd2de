"""Pretrained CNNs: ImageNet top-5 on Keras, ONNX Runtime and LiteRT; many photos; compare models; where each
classifier looked (Grad-CAM where there are gradients, occlusion and RISE on every engine, with deletion and
insertion scores)."""

from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import (UPLOAD_TYPES, current_photo, decode_photo, ensure_ready, guarded_fragment, keep, photo_cache,
                           preview, sample_photo, settings_widgets, start_page, tabbed, workspace)
from vision_backend import drawing, models, samples
from vision_backend.classification import (CLASSIFIERS, Prediction, engine_title, engine_agreement, gradcam, imagenet,
                                           saliency)
from vision_backend.intake import ImageIntakeError, encode_png
from vision_backend.transfer import demo
from vision_backend.transfer.bases import MOBILENET_V2

DEMO = "demo_flowers"
NO_CLASSIFIER = ("No ImageNet classifier is on this machine yet. Pick one in the **Classify** tab: it is fetched "
                 "on first use where the internet is, and the tab says how to get it where it is not.")


def ready_classifiers() -> list[str]:
    return [key for key, classifier in CLASSIFIERS.items() if classifier.ready()]


def label(key: str) -> str:
    classifier = CLASSIFIERS[key]
    if classifier.ready():
        return classifier.title
    where = "fetched on first use" if classifier.card.downloadable() else "not on this machine"
    return f"{classifier.title} — {where}"


def pretty(name: str) -> str:
    return name.replace("_", " ")


def top5_chart(prediction: Prediction, title: str):
    frame = pd.DataFrame([{"class": pretty(name), "probability": p} for _, name, p in prediction.top])
    chart = px.bar(frame, x="probability", y="class", orientation="h", title=title, range_x=[0, 1], height=300,
                   text=frame["probability"].map(lambda p: f"{p:.1%}"))
    return chart.update_yaxes(autorange="reversed", title=None)


def engine_choice(key: str, classifier: Any, where: Any) -> str:
    return where.radio("Engine", classifier.engines, format_func=engine_title, horizontal=True,
                       key=keep(f"{key}_{classifier.name}", classifier.engines[0]))


@photo_cache(max_entries=64, show_spinner=False)
def classified(photos: list[np.ndarray], key: str, engine: str) -> list[Prediction]:
    """Predictions kept per model, engine and photos: the page's next run, or the next visit, reuses them."""
    return CLASSIFIERS[key].classify(photos, engine)


def classify_one(key: str, engine: str, photos: list[np.ndarray]) -> list[Prediction]:
    classifier = CLASSIFIERS[key]
    with st.spinner(f"{classifier.title} on {engine_title(engine)} (the first ONNX run converts the model once)…"):
        return classified(photos, key, engine)


# ---- Classify ------------------------------------------------------------------------------------
@guarded_fragment
def classify_tab(photo: np.ndarray) -> None:
    c1, c2 = st.columns([2, 1])
    chosen = c1.selectbox("Model", list(CLASSIFIERS), format_func=label,
                          key=keep("pt_model", next(iter(CLASSIFIERS))))
    classifier = CLASSIFIERS[chosen]
    engine = engine_choice("pt_engine", classifier, c2)
    card = classifier.card
    st.caption(f"{card.title} · {card.params or 0:,} parameters · input {card.input} · {card.preprocessing} · "
               f"{card.accuracy} · licence {card.licence}")
    if not ensure_ready(card):
        return
    prediction = classify_one(chosen, engine, [photo])[0]
    left, right = st.columns([1, 1])
    left.image(photo, width="stretch")
    right.plotly_chart(top5_chart(prediction, "Top-5"), width="stretch")
    right.caption(f"Top-1: **{pretty(prediction.top[0][1])}** ({prediction.top[0][2]:.1%}) · "
                  f"{engine_title(engine)} · {prediction.ms:.0f} ms")


# ---- Many photos ---------------------------------------------------------------------------------
def batch_photos(uploads: list[Any]) -> tuple[list[tuple[str, np.ndarray]], list[dict]]:
    """The uploaded photos (or every sample photo when none is uploaded), and a row for each unreadable upload;
    which frame of an animation is used is said above the table."""
    if not uploads:
        return [(samples.title(name), sample_photo(name)) for name in samples.sample_names()], []
    photos, skipped = [], []
    for upload in uploads:
        try:
            photo = decode_photo(upload.getvalue(), upload.name)
        except ImageIntakeError as error:
            skipped.append({"photo": upload.name, "top-1": "—", "probability": None, "top-5": f"skipped: {error}"})
            continue
        photos.append((upload.name, photo.image))
        if photo.note:
            st.info(photo.note, icon=":material/filter_frames:")
    return photos, skipped


def batch_row(name: str, prediction: Prediction) -> dict:
    return {"photo": name, "top-1": pretty(prediction.top[0][1]), "probability": round(prediction.top[0][2], 4),
            "top-5": ", ".join(f"{pretty(label_)} {p:.0%}" for _, label_, p in prediction.top)}


@guarded_fragment
def batch_tab() -> None:
    st.markdown("Classify many photos at once: upload several, or use the staged sample photos.")
    ready = ready_classifiers()
    c1, c2 = st.columns([2, 1])
    uploads = c1.file_uploader("Photos", type=UPLOAD_TYPES, accept_multiple_files=True, key="pt_batch")
    if not ready:
        st.info(NO_CLASSIFIER, icon=":material/download:")
        return
    chosen = c2.selectbox("Model", ready, format_func=label, key=keep("pt_batch_model", ready[0]))
    engine = engine_choice("pt_batch_engine", CLASSIFIERS[chosen], c2)
    photos, rows = batch_photos(uploads)
    if photos:
        predictions = classify_one(chosen, engine, [p for _, p in photos])
        rows = [batch_row(name, p) for (name, _), p in zip(photos, predictions)] + rows
        st.caption(f"{len(photos)} photo(s) · {predictions[0].ms:.0f} ms per photo on {engine_title(engine)}")
    table = pd.DataFrame(rows)
    bar = st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")
    st.dataframe(table, hide_index=True, width="stretch", column_config={"probability": bar})
    st.download_button("Download the table (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv",
                       disabled=table.empty)


# ---- Compare models ------------------------------------------------------------------------------
def everywhere(photo: np.ndarray, ready: list[str]) -> list[Prediction]:
    """The photo through every ready model on each of its engines, with a progress bar."""
    pairs = [(key, engine) for key in ready for engine in CLASSIFIERS[key].engines]
    progress, results = st.progress(0.0), []
    for i, (key, engine) in enumerate(pairs):
        progress.progress(i / len(pairs), f"{CLASSIFIERS[key].title} on {engine_title(engine)}")
        results.append(classified([photo], key, engine)[0])
    progress.empty()
    return results


def compare_row(prediction: Prediction) -> dict:
    classifier = CLASSIFIERS[prediction.classifier]
    return {"model": classifier.title, "engine": engine_title(prediction.engine),
            "top-1": pretty(prediction.top[0][1]), "probability": round(prediction.top[0][2], 3),
            "top-5": ", ".join(pretty(name) for _, name, _ in prediction.top), "ms": round(prediction.ms, 1),
            "parameters": classifier.card.params, "file MB": round(classifier.file_mb(), 1),
            "published": classifier.card.accuracy}


def missing_models() -> None:
    missing = [c for c in CLASSIFIERS.values() if not c.ready()]
    if missing:
        with st.expander(f"{len(missing)} more model(s) where the internet is"):
            st.code("\n".join(c.card.how_to_get() for c in missing), language="bash", wrap_lines=True)


def compare_tab(photo: np.ndarray) -> None:
    st.markdown("The same photo through every model and engine on this machine, side by side.")
    ready = ready_classifiers()
    if not ready:
        st.info(NO_CLASSIFIER, icon=":material/download:")
        missing_models()
        return
    results = everywhere(photo, ready)
    table = pd.DataFrame([compare_row(p) for p in results])
    st.dataframe(table, hide_index=True, width="stretch")
    agreement = engine_agreement(results)
    if agreement:
        st.markdown("**Do the engines agree?** (the same weights, run by different engines)")
        st.dataframe(pd.DataFrame(agreement), hide_index=True, width="stretch")
    chart = px.bar(table, x="ms", y=table["model"] + " · " + table["engine"], orientation="h",
                   title="Time per photo (ms)", height=120 + 40 * len(table))
    st.plotly_chart(chart.update_yaxes(title=None), width="stretch")
    missing_models()


# ---- Where did it look? --------------------------------------------------------------------------
IMAGENET_CAM = models.default("grad-cam").name
"""The ImageNet Keras classifier offered for Grad-CAM when none is here (the one whose role it is: the smallest,
fetched on first use)."""
FIRST_TO_EXPLAIN = models.default("classify").name
"""The classifier the tab starts on: the Classify tab's own default (int8, no gradients: occlusion and RISE)."""


def explain_sources() -> dict[str, str]:
    """Every classifier the tab explains here, key -> what the select box says: each ImageNet classifier whose
    files are here (on any of its engines), Keras' MobileNetV2 for Grad-CAM where it can be fetched, the flowers
    demo and the person's saved transfer-learning models."""
    sources = {key: CLASSIFIERS[key].title for key in ready_classifiers()}
    if IMAGENET_CAM not in sources and CLASSIFIERS[IMAGENET_CAM].card.downloadable():
        sources[IMAGENET_CAM] = (f"{CLASSIFIERS[IMAGENET_CAM].title}: ImageNet's 1,000 classes, with Grad-CAM "
                                 f"(fetched on first use, 14 MB)")
    if demo.demo_classifier_trained() or (MOBILENET_V2.ready() and demo.DEMO_CLASSES.ready()):
        sources[DEMO] = "Flowers demo: knows only daisy, dandelion, rose, sunflower and tulip"
    space = workspace()
    for project in space.projects():
        for stem in space.project(project, create=False).saved_models():
            sources[f"project:{project}/{stem}"] = f"Your transfer-learning model: {project}/{stem}"
    return sources


def first_source(sources: dict[str, str]) -> str:
    ready = [k for k in sources if k not in CLASSIFIERS or CLASSIFIERS[k].ready()]
    return FIRST_TO_EXPLAIN if FIRST_TO_EXPLAIN in ready else (ready or list(sources))[0]


@st.cache_resource(show_spinner=False)
def demo_explainable() -> gradcam.Explainable:
    bar = st.progress(0.0, "Training the demo flowers classifier once (real MobileNetV2 base)…")
    explainable = gradcam.demo_explainable(lambda done, total: bar.progress(done / total, f"Features {done}/{total}"))
    bar.empty()
    return explainable


def demo_subject() -> saliency.Subject | None:
    if not demo.demo_classifier_trained() and \
            not st.button("Train the flowers demo classifier (about 20 s, once)", key="cam_train"):
        st.info("The flowers demo classifier is trained here on the real MobileNetV2 base: train it once with "
                "the button.", icon=":material/model_training:")
        return None
    return saliency.keras_subject("Flowers demo", demo_explainable())


def subject_for(source: str, where: Any) -> tuple[saliency.Subject, str] | None:
    """The classifier to explain and what names it in the caches (its engine; a saved model's file key, so a
    model retrained under the same name is explained afresh); None when it is not here yet."""
    if source == DEMO:
        subject = demo_subject()
        return None if subject is None else (subject, DEMO)
    if source.startswith("project:"):
        project, stem = source.removeprefix("project:").split("/", 1)
        saved = workspace().project(project, create=False).models.get(stem)
        return saliency.saved_subject(saved), f"saved:{saved.key}"
    classifier = CLASSIFIERS[source]
    if not ensure_ready(classifier.card):
        return None
    engine = engine_choice("cam_engine", classifier, where)
    return saliency.classifier_subject(classifier, engine), f"{source}@{engine}"


def method_choice(subject: saliency.Subject, ident: str) -> saliency.Method:
    """The methods that apply (Grad-CAM only where there are gradients: said so where there are none)."""
    methods = {m.name: m for m in subject.methods()}
    chosen = st.radio("Method", list(methods), format_func=lambda n: methods[n].title, horizontal=True,
                      key=keep(f"cam_method_{ident}", next(iter(methods))))
    if subject.gradients is None:
        st.caption(f"{subject.title} has no gradients (int8, TFLite or ONNX), so Grad-CAM cannot run on it: "
                   "occlusion and RISE need nothing but its answers.")
    st.caption(f"**{methods[chosen].title}** {methods[chosen].about}.")
    return methods[chosen]


@photo_cache(max_entries=64, show_spinner=False)
def top_classes(photo: np.ndarray, ident: str, *, _subject: saliency.Subject) -> list[tuple[int, float]]:
    return _subject.top(photo)


@photo_cache(max_entries=32, show_spinner=False)
def explained(photo: np.ndarray, ident: str, method: str, class_index: int, settings: tuple, scoring: tuple, *,
              _subject: saliency.Subject) -> tuple[saliency.Saliency, saliency.Faithfulness]:
    """A map and its deletion / insertion scores, kept per photo, classifier, class and settings; a progress bar
    while the masked copies run through the model."""
    title = saliency.METHODS[method].title
    bar = st.progress(0.0, f"{title} on {_subject.title}…")
    found = _subject.explain(photo, method, class_index, lambda done, total: bar.progress(
        done / total, f"{title}: {done} of {total} masked copies through {_subject.title}"), **dict(settings))
    side = dict(settings).get("side", saliency.SIDE.default)
    scored = _subject.faithfulness(photo, found, lambda done, total: bar.progress(
        done / total, f"Deletion and insertion: {done} of {total} copies"), side=side, **dict(scoring))
    bar.empty()
    return found, scored


def map_caption(found: saliency.Saliency) -> str:
    height, width = found.map.shape
    if found.layer:
        return f"The raw {height}x{width} map at layer `{found.layer}` · {found.seconds * 1000:.0f} ms"
    return (f"The raw {height}x{width} map ({saliency.METHODS[found.method].title}: {found.evaluations} photos "
            f"through the model, {found.seconds:.1f} s)")


def drawing_hex(index: int) -> str:
    return "#%02x%02x%02x" % drawing.colour(index)


def curves_chart(scored: saliency.Faithfulness):
    rows = [{"share of pixels": share, "probability": p, "curve": curve, "order": order}
            for curve, order, values in (("deletion", "the map's", scored.deletion),
                                         ("deletion", "random", scored.random_deletion),
                                         ("insertion", "the map's", scored.insertion),
                                         ("insertion", "random", scored.random_insertion))
            for share, p in zip(scored.fractions, values)]
    chart = px.line(pd.DataFrame(rows), x="share of pixels", y="probability", color="curve", line_dash="order",
                    height=260, range_y=[0, 1],
                    color_discrete_map={"deletion": drawing_hex(1), "insertion": drawing_hex(2)})
    return chart.update_layout(margin=dict(l=0, r=0, t=10, b=0), legend_title=None)


def show_faithfulness(where: Any, scored: saliency.Faithfulness) -> None:
    """Deletion and insertion beside the map: AUCs, against random orders, and the curves."""
    left, right = where.columns(2)
    left.metric("Deletion AUC", f"{scored.auc(scored.deletion):.3f}", f"{scored.deletion_vs_random - 1:+.0%} vs random",
                delta_color="inverse", help="The class's probability as the map's hottest pixels are blacked out "
                "first: lower is better (the map found what matters).")
    right.metric("Insertion AUC", f"{scored.auc(scored.insertion):.3f}",
                 f"{scored.insertion_vs_random - 1:+.0%} vs random", help="The class's probability as the map's "
                 "hottest pixels are put back into a blurred copy first: higher is better.")
    where.plotly_chart(curves_chart(scored), width="stretch")
    where.caption(f"Deletion {scored.deletion_vs_random:.2f}x and insertion {scored.insertion_vs_random:.2f}x the "
                  f"areas of {scored.randoms} smooth random orders on the same photo ({scored.evaluations} copies, "
                  f"{scored.seconds:.1f} s).")


def show_map(name: str, photo: np.ndarray, found: saliency.Saliency, scored: saliency.Faithfulness,
             opacity: float) -> None:
    overlay = drawing.overlay_heatmap(preview(photo), found.map, opacity)
    c1, c2 = st.columns([3, 2])
    c1.image(overlay, width="stretch")
    c1.download_button("Download the overlay (PNG)", lambda: encode_png(overlay),
                       f"{name.rsplit('.', 1)[0]}_{found.method}.png", "image/png", on_click="ignore")
    c2.image(drawing.heat(found.map), width="stretch")
    c2.caption(map_caption(found))
    show_faithfulness(c2, scored)


def class_choice(subject: saliency.Subject, source: str, top: list[tuple[int, float]]) -> int:
    probability = dict(top)
    if source == DEMO:
        st.caption("This classifier knows five kinds of flower only, so on any other photo it still names one "
                   "of them: the map then shows what looked most like that flower. An ImageNet model above "
                   "explains the 1,000 ImageNet classes.")
    return st.selectbox("Explain the class", list(probability), key=keep(f"cam_class_{source}", top[0][0]),
                        format_func=lambda i: f"{pretty(subject.class_names[i])} ({probability[i]:.1%})")


@guarded_fragment
def explain_tab(name: str, photo: np.ndarray) -> None:
    st.markdown("Where did the classifier look for the class? **Grad-CAM** reads it from a Keras model's "
                "gradients; **occlusion** and **RISE** from its answers alone, so they explain every classifier on "
                "every engine. Beside each map, **deletion** and **insertion** say whether it beats a random one.")
    sources = explain_sources()
    if not sources:
        st.info("No classifier to explain yet: fetch an ImageNet model in the **Classify** tab, or train a model "
                "on the **Transfer learning** page.", icon=":material/download:")
        return
    c1, c2 = st.columns([2, 1])
    source = c1.selectbox("Classifier", list(sources), format_func=sources.get,
                          key=keep("cam_model", first_source(sources)))
    found = subject_for(source, c2)
    if found is None:
        return
    subject, ident = found
    method = method_choice(subject, ident)
    with st.expander(f"{method.title} settings"):
        settings = settings_widgets(method.params, lambda p: f"cam:{method.name}:{p.name}", columns=3)
        scoring = settings_widgets(saliency.FAITHFULNESS, lambda p: f"cam:score:{p.name}", columns=2)
    explain = class_choice(subject, source, top_classes(photo, ident, _subject=subject))
    opacity = st.slider("Heat-map opacity", 0.0, 1.0, step=0.05, key=keep("cam_opacity", 0.45))
    result = explained(photo, ident, method.name, explain, tuple(sorted(settings.items())),
                       tuple(sorted(scoring.items())), _subject=subject)
    show_map(name, photo, *result, opacity)


# ---- The model zoo -------------------------------------------------------------------------------
def zoo_tab() -> None:
    st.markdown("The models of the deck's table. Each is registered with its Keras file, download address and hash; "
                "ready ones run here, the rest are fetched on first use where the internet is.")
    zoo = pd.DataFrame([{"model": c.title, "status": c.card.status(),
                         "engines": ", ".join(engine_title(e) for e in c.engines), "input": f"{c.size}x{c.size}",
                         "parameters": c.card.params, "published accuracy": c.card.accuracy,
                         "preprocessing": c.card.preprocessing} for c in CLASSIFIERS.values()])
    st.dataframe(zoo, hide_index=True, width="stretch")
    errors = pd.DataFrame(imagenet.ILSVRC_TOP5_ERROR, columns=["entry", "top-5 error %"])
    st.plotly_chart(px.bar(errors, x="entry", y="top-5 error %", text="top-5 error %",
                           title="ImageNet (ILSVRC) top-5 error: deep CNNs from 2012 on"), width="stretch")


start_page("Pretrained CNNs", "Networks trained on ImageNet's 1.2 million photos of 1,000 classes, used as they are: "
           "what do they see in your photo, how sure are they, how fast — and where did they look?")
photo_name, photo = current_photo()
tabbed({"Classify": lambda: classify_tab(photo), "Many photos": batch_tab, "Compare models": lambda: compare_tab(photo),
        "Where did it look?": lambda: explain_tab(photo_name, photo), "The model zoo": zoo_tab})
