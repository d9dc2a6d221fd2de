"""Face detection: Viola-Jones, HOG, MTCNN and YuNet, tuned live and compared side by side."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages._shared import (current_photo, current_settings, ensure_ready, guarded_fragment, keep, param_widgets,
                           photo_cache, start_page, tabbed, timing)
from vision_backend import drawing
from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS, MTCNN, ViolaJones
from vision_backend.face_detection import evaluate as fde
from vision_backend.face_detection import explain
from vision_backend.imageops import fit_long_side
from vision_backend.intake import encode_jpeg, encode_png
from vision_backend.samples import PHOTOS

PREFIX = "fd"
VIOLA_JONES = next(d for d in DETECTORS.values() if isinstance(d, ViolaJones))
"""The detector the explainers take apart (the integral image, Haar features, the cascade's funnel)."""
MTCNN_DETECTOR = next(d for d in DETECTORS.values() if isinstance(d, MTCNN))
PICTURE_SIDE = 1600
"""A result's long side at most, as sent (the photo pickers' previews are as large): half the page shows it."""


def settings_of(name: str) -> dict:
    return current_settings(DETECTORS[name], PREFIX)


@photo_cache(max_entries=32, show_spinner=False)
def detected(photo: np.ndarray, detector: str, settings: dict) -> Detections:
    """One detector's faces on a photo at some settings, found once: the Detect tab, the actions below it and
    the Haar features reuse it, and so does the page's next visit (its caption then gives that run's time)."""
    return DETECTORS[detector].detect(photo, **settings)


@photo_cache(max_entries=8, show_spinner=False)
def hog_picture(photo: np.ndarray, cell: int) -> np.ndarray:
    return explain.hog_cells(photo, cell)


@photo_cache(max_entries=8, show_spinner=False)
def mtcnn_stages(photo: np.ndarray, settings: dict) -> list[tuple[str, Detections]]:
    return explain.mtcnn_stages(MTCNN_DETECTOR, photo, **settings)


def annotated(photo: np.ndarray, found, detector: str) -> np.ndarray:
    """The faces drawn with their numbers as each detector's score reads (Viola-Jones's: a count of votes)."""
    return drawing.draw_detections(photo, found, show_scores=False, captions=DETECTORS[detector].caption(found.scores),
                                   legend=True)


@photo_cache(max_entries=32, show_spinner=False)
def result_picture(photo: np.ndarray, detector: str, settings: dict) -> bytes:
    """A detector's result as the JPEG the page sends, drawn and encoded once per photo and settings: given an
    array, Streamlit draws nothing but encodes it afresh on every run (JPEG at quality 100, 20-40 ms of a core
    holding the GIL), so in a room every press, even one whose result was cached, paid for it."""
    picture = annotated(photo, detected(photo, detector, settings), detector)
    return encode_jpeg(fit_long_side(picture, PICTURE_SIDE)[0], 90)


@guarded_fragment
def detector_column(name: str, photo: np.ndarray) -> None:
    """One detector's settings and result: a slider here reruns this detector only."""
    detector = DETECTORS[name]
    with st.expander(f"{detector.title} settings"):
        settings = param_widgets(detector, PREFIX)
    if not ensure_ready(detector.card):
        return
    found = detected(photo, name, settings)
    st.image(result_picture(photo, name, settings), width="stretch")
    st.caption(f"{detector.title}: {len(found)} face(s) {timing(found.meta)} (box label: "
               f"{detector.score_label}, {detector.score_help})")


def detect_tab(name: str, photo: np.ndarray) -> None:
    chosen = st.multiselect("Detectors", list(DETECTORS), key=keep("fd_chosen", list(DETECTORS)),
                            format_func=lambda k: DETECTORS[k].title)
    cells = [cell for row in range(0, len(chosen), 2)  # two a row: each result large enough to read its boxes
             for cell in zip(st.columns(2, gap="medium"), chosen[row : row + 2])]
    waiting = {d: column.empty() for column, d in cells if not DETECTORS[d].engines_loaded()}
    for detector, note in waiting.items():
        note.caption(f"{DETECTORS[detector].title}: its engine is still loading (first visit after a restart)…")
    for column, detector in sorted(cells, key=lambda cell: cell[1] in waiting):  # the ones that cannot wait first
        with column:
            detector_column(detector, photo)
        if detector in waiting:
            waiting[detector].empty()
    ready = [k for k in chosen if DETECTORS[k].ready()]
    if ready:
        face_actions(name, photo, ready)


@guarded_fragment
def face_actions(name: str, photo: np.ndarray, detectors: list[str]) -> None:
    st.subheader("Do something with the faces")
    source = st.selectbox("Use the faces found by", detectors, key=keep("fd_action_source", detectors[0]),
                          format_func=lambda k: DETECTORS[k].title, help="With that detector's settings above.")
    settings = settings_of(source)
    faces = detected(photo, source, settings)
    mode = st.radio("Privacy", ["none", "blur", "pixelate"], horizontal=True, key=keep("fd_privacy", "none"))
    hidden = None if mode == "none" else drawing.anonymise(photo, faces, mode)
    left, downloads = st.columns([3, 1], vertical_alignment="center")  # the photo no larger than a result above
    left.image(result_picture(photo, source, settings) if hidden is None else hidden, width="stretch")
    stem = name.rsplit(".", 1)[0]
    # the files are made when a button is pressed, not on every run (a PNG of the photo costs 50-300 ms)
    downloads.download_button("Download image (PNG)", lambda: encode_png(annotated(photo, faces, source)
                                                                         if hidden is None else hidden),
                              f"{stem}_{source}_{mode}.png", "image/png", on_click="ignore")
    downloads.download_button("Faces as ZIP", lambda: drawing.zip_pngs(drawing.crops(photo, faces)),
                              f"{stem}_faces.zip", "application/zip", disabled=not len(faces), on_click="ignore")
    downloads.download_button("Detections (JSON)", json.dumps({"image": name, "detector": source,
                                                               "faces": faces.to_records()}, indent=1),
                              f"{stem}_{source}.json", "application/json", on_click="ignore")
    if DETECTORS[source] is VIOLA_JONES and st.toggle("Also look for eyes inside these faces",
                                                      key=keep("fd_eyes", False)):
        eyes = VIOLA_JONES.detect_eyes(photo, faces)
        st.image(drawing.draw_detections(drawing.draw_detections(photo, faces, show_scores=False), eyes,
                                         show_scores=False, rgb=(22, 163, 74)), caption=f"{len(eyes)} eye(s)",
                 width="stretch")


@photo_cache(max_entries=8, show_spinner="Running the cascade stage by stage…")
def funnel(image: np.ndarray, cascade: str):
    return explain.cascade_funnel(VIOLA_JONES.cascade_path(cascade), image)


def haar_features(photo: np.ndarray, ii: np.ndarray) -> None:
    """The four classic Haar features placed where they sit on the first face Viola-Jones finds."""
    faces = detected(photo, VIOLA_JONES.name, VIOLA_JONES.defaults())
    if not len(faces):
        st.info("Viola-Jones found no face in this photo; try the astronaut sample.")
        return
    x1, y1, x2, y2 = faces.boxes[0].astype(int)
    for column, (kind, box) in zip(st.columns(4), explain.classic_feature_spots(faces.boxes[0]).items()):
        value, rects = explain.haar_feature(ii, kind, *box)
        crop = drawing.tint_rectangles(photo, rects)[max(0, y1 - (y2 - y1) // 4) : y2 + (y2 - y1) // 4,
                                                     max(0, x1 - (x2 - x1) // 4) : x2 + (x2 - x1) // 4]
        column.image(crop, caption=f"{kind}: {value:+,}", width="stretch")


@guarded_fragment
def viola_jones_tab(photo: np.ndarray) -> None:
    st.markdown("**The integral image.** Each cell holds the sum of every pixel above and to its left, so the sum of "
                "*any* rectangle takes four look-ups: D − B − C + A. The deck's example:")
    example = np.array([[2, 4, 1, 2], [1, 1, 2, 2], [3, 2, 2, 1]])
    c1, c2 = st.columns(2)
    c1.dataframe(pd.DataFrame(example), hide_index=True)
    c2.dataframe(pd.DataFrame(explain.integral_image(example)), hide_index=True)
    ii = explain.integral_image(photo.mean(axis=2).astype(np.uint8))  # not cached: 8 bytes a pixel
    st.image(drawing.heat(np.log1p(ii)), caption="Integral image of your photo (log scale)", width=360)
    st.markdown("**Haar features on a face.** White minus black sums, each from the integral image.")
    haar_features(photo, ii)
    st.markdown("**The cascade as a funnel.** Every window of every pyramid level enters stage 1; each stage "
                "rejects most of what is left, so the expensive later stages see almost nothing.")
    counts, survivors = funnel(photo, "frontalface_default")
    labels = ["windows"] + [f"stage {i}" for i in range(1, len(counts))]
    st.plotly_chart(go.Figure(go.Funnel(y=labels, x=counts, textinfo="value+percent initial")).update_layout(
        height=620, title="Windows alive after each stage (frontalface_default, 320 px, step 2)"), width="stretch")
    st.image(drawing.draw_boxes(photo, survivors, (234, 88, 12)), width=420,
             caption=f"The {len(survivors)} windows that pass all {len(counts) - 1} stages, before grouping "
                     "(minNeighbors groups them into faces)")


@guarded_fragment
def hog_tab(photo: np.ndarray) -> None:
    cell = st.select_slider("Cell size (px)", [4, 6, 8, 12, 16], key=keep("fd_hog_cell", 8))
    try:
        cells = hog_picture(photo, cell)
    except ValueError as error:  # a photo too thin for two cells across (a 32x2000 strip)
        st.info(str(error), icon=":material/photo_size_select_small:")
        return
    c1, c2 = st.columns(2)
    c1.image(photo, caption="Photo", width="stretch")
    c2.image(cells, caption=f"Histogram of oriented gradients, {cell}x{cell} cells", width="stretch")
    st.caption("dlib's detector slides an 80x80 window of these cells over an image pyramid and scores it with a "
               "linear SVM trained on faces.")


@guarded_fragment
def mtcnn_tab(photo: np.ndarray) -> None:
    st.markdown("MTCNN is a cascade of three CNNs: **P-Net** proposes boxes at every pyramid level, **R-Net** "
                "refines and rejects them, **O-Net** gives the final boxes and five landmarks. "
                "It uses the settings from the Detect tab.")
    if not MTCNN_DETECTOR.ready():
        return
    for column, (stage, found) in zip(st.columns(3), mtcnn_stages(photo, settings_of(MTCNN_DETECTOR.name))):
        column.image(drawing.draw_detections(photo, found, show_scores=stage == "O-Net", legend=True), width="stretch",
                     caption=f"after {stage}: {len(found)} candidate(s)")


@st.cache_data(show_spinner="Measuring on the annotated group photos…")
def measure(detector: str, settings_json: str) -> dict:
    result = fde.measure_group_photos(DETECTORS[detector], json.loads(settings_json))
    e = result.evaluation
    return {"found": f"{e.true_positives}/{e.faces}", "recall": round(e.recall, 3), "precision": round(e.precision, 3),
            "false positives": e.false_positives, "mean IoU": round(e.mean_iou, 3),
            "faces on 2 no-face photos": result.faces_on_no_face_photos, "median ms": round(result.median_ms, 1)}


@st.cache_data(show_spinner=False)
def measure_scaled(detector: str, settings_json: str) -> list[dict]:
    scaled = fde.measure_at_scales(DETECTORS[detector], json.loads(settings_json))
    return [{"photo size (%)": round(factor * 100), "recall": r.recall, "precision": r.precision,
             "found": f"{r.true_positives}/{r.faces}"} for factor, r in scaled.items()]


def measured_setups() -> list[tuple[str, str, dict]]:
    """(title, detector, settings) of each row: every detector at the Detect tab's settings, and
    Viola-Jones's thorough setup beside its fast one when the fast one is shown (the trade-off)."""
    thorough = {**VIOLA_JONES.defaults(), **VIOLA_JONES.presets["Thorough"]}
    runs = [(d.title, name, settings_of(name)) for name, d in DETECTORS.items() if d.ready()]
    if settings_of(VIOLA_JONES.name) != thorough:
        runs.insert(1, ("Viola-Jones, thorough setup", VIOLA_JONES.name, thorough))
    return runs


def recall_at_scales(runs: list[tuple[str, str, dict]]) -> None:
    bar = st.progress(0.0, text="Resizing the photos and detecting again…")
    lines = []
    for step, (title, detector, settings) in enumerate(runs):
        lines += [{"detector": title, **row} for row in measure_scaled(detector, json.dumps(settings))]
        bar.progress((step + 1) / len(runs), text=f"{title} done")
    bar.empty()
    scaled = pd.DataFrame(lines)
    st.plotly_chart(px.line(scaled, x="photo size (%)", y="recall", color="detector", markers=True,
                            hover_data=["found", "precision"], height=380, title="Recall on the same photos, resized"),
                    width="stretch")
    spread = scaled.groupby("detector", sort=False)["recall"].agg(["min", "median", "max"]).round(3)
    st.dataframe(spread.rename(columns=lambda c: f"recall {c}"), width="stretch")


@guarded_fragment
def measure_tab() -> None:
    PHOTOS.require()
    st.markdown("Three group photos with 17 hand-annotated faces (dlib's annotations). A detection is correct "
                "when it overlaps an annotated face with IoU ≥ 0.5. Uses each detector's settings from the Detect tab.")
    runs = measured_setups()
    table = pd.DataFrame([{"detector": title, **measure(detector, json.dumps(settings))}
                          for title, detector, settings in runs])
    st.dataframe(table, hide_index=True, width="stretch")
    low = min(0.5, float(table["recall"].min()) - 0.05)
    chart = px.scatter(table, x="median ms", y="recall", color="detector", log_x=True, range_y=[low, 1.03],
                       hover_data=["found", "precision", "false positives"], height=380,
                       title="Recall against time per photo at these settings (hover for precision)")
    st.plotly_chart(chart.update_traces(marker_size=14), width="stretch")
    st.markdown("**Does it hold at other sizes?** Seventeen faces are few: a setting can score well on them "
                "only because its pyramid happens to line up with these faces at this size. The same photos "
                "resized to 80–120% tell a detector that finds faces from a setting tuned to the photos.")
    if st.toggle("Measure again on the photos at 80–120% size (10–20 s)", key=keep("fd_scaled", False)):
        recall_at_scales(runs)


start_page("Face detection", "Four generations of face detectors on your photo: Viola-Jones (2001), HOG + SVM (2005), "
           "MTCNN (2016) and YuNet (2023). Tune each one and watch boxes appear and vanish.")
photo_name, photo = current_photo()
tabbed({"Detect": lambda: detect_tab(photo_name, photo), "How Viola-Jones works": lambda: viola_jones_tab(photo),
        "What HOG sees": lambda: hog_tab(photo), "How MTCNN works": lambda: mtcnn_tab(photo),
        "Measure on group photos": measure_tab})
