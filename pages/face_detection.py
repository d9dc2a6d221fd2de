"""Face detection: Viola-Jones, HOG, MTCNN and YuNet, tuned live and compared side by side."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages._shared import current_photo, friendly_errors, load_model
from vision_backend import drawing, models
from vision_backend import face_detection as fd
from vision_backend.intake import encode_png

st.title("Face detection")
st.caption("Four generations of face detectors on your photo: Viola-Jones (2001), HOG + SVM (2005), "
           "MTCNN (2016) and YuNet (2023). Tune each one and watch boxes appear and vanish.")

name, photo = current_photo()


HAAR_SETUPS = {"Fast": fd.DETECTORS["haar"].defaults, "Thorough": {**fd.DETECTORS["haar"].defaults, **fd.HAAR_THOROUGH}}


def apply_haar_setup() -> None:
    """Move the Viola-Jones sliders to the chosen setup (runs before the widgets are drawn again)."""
    setup = HAAR_SETUPS[st.session_state.haar_setup]
    st.session_state.haar_sf = setup["scale_factor"]
    st.session_state.haar_mn = setup["min_neighbors"]
    st.session_state.haar_tilt = setup["tilt"]


def settings_for(detector: str) -> dict:
    """The widgets of one detector; returns its settings."""
    d = fd.DETECTORS[detector].defaults
    if detector == "haar":
        cascade = st.selectbox("Cascade", ["haar_frontalface_alt", "haar_frontalface_default", "haar_frontalface_alt2",
                                           "haar_profileface"], key="haar_cascade",
                               format_func=lambda n: models.card(n).title.split(", ", 1)[1])
        st.session_state.haar_model = cascade
        st.radio("Setup", list(HAAR_SETUPS), key="haar_setup", on_change=apply_haar_setup, horizontal=True,
                 help="Fast: upright scan, 1.2 step. Thorough: 1.1 step and copies turned by ±12°, so tilted "
                      "heads are found too; about five times slower.")
        return dict(
            scale_factor=st.slider("scaleFactor", 1.02, 1.5, d["scale_factor"], 0.01, key="haar_sf",
                                   help="Pyramid step: smaller finds more sizes, slower."),
            min_neighbors=st.slider("minNeighbors", 0, 12, d["min_neighbors"], key="haar_mn",
                                    help="Overlapping windows needed to call it a face: higher = fewer false alarms."),
            tilt=st.select_slider("Also scan turned copies (± degrees)", [0, 5, 8, 10, 12, 15, 20, 25], d["tilt"],
                                  key="haar_tilt", help="The cascade was trained on upright faces; copies of the "
                                                        "photo turned both ways catch tilted heads: two more scans."),
            min_size=st.slider("minSize (px)", 10, 200, d["min_size"], key="haar_min"),
            max_size=st.slider("maxSize (px, 0 = none)", 0, 1000, d["max_size"], key="haar_max"),
            max_side=st.select_slider("Detect at long side", [320, 400, 480, 640, 800, 1280], d["max_side"],
                                      key="haar_side"),
            equalize=st.toggle("Equalise the histogram first", d["equalize"], key="haar_eq",
                               help="Stretches contrast: helps in dim photos, adds false alarms in busy ones."),
        )
    if detector == "hog":
        return dict(
            work_side=st.select_slider("Search at long side (px)", [400, 500, 640, 800, 900, 1000, 1280, 1600],
                                       d["work_side"], key="hog_side",
                                       help="HOG's window is 80x80: enlarge small photos to find small faces."),
            upsample=st.slider("Upsample (x2 each)", 0, 2, d["upsample"], key="hog_up"),
            threshold=st.slider("Score threshold", -1.0, 4.0, d["threshold"], 0.05, key="hog_thr"),
        )
    if detector == "mtcnn":
        return dict(
            min_face_size=st.slider("Min face size (px)", 8, 200, d["min_face_size"], key="mtcnn_min"),
            scale_factor=st.slider("Scale factor", 0.3, 0.95, d["scale_factor"], 0.01, key="mtcnn_sf"),
            thresholds=(
                st.slider("P-Net threshold", 0.0, 1.0, d["thresholds"][0], 0.05, key="mtcnn_p"),
                st.slider("R-Net threshold", 0.0, 1.0, d["thresholds"][1], 0.05, key="mtcnn_r"),
                st.slider("O-Net threshold", 0.0, 1.0, d["thresholds"][2], 0.05, key="mtcnn_o"),
            ),
            max_side=st.select_slider("Detect at long side", [320, 480, 640, 800, 1280], d["max_side"], key="mtcnn_side"),
        )
    return dict(
        score_threshold=st.slider("Score threshold", 0.05, 1.0, d["score_threshold"], 0.05, key="yunet_score"),
        nms_threshold=st.slider("NMS IoU threshold", 0.05, 1.0, d["nms_threshold"], 0.05, key="yunet_nms"),
        max_side=st.select_slider("Detect at long side", [320, 480, 640, 800, 1280], d["max_side"], key="yunet_side"),
    )


def model_for(detector: str) -> str:
    return st.session_state.get("haar_model", fd.DETECTORS["haar"].model) if detector == "haar" else fd.DETECTORS[detector].model


def run(detector: str, image: np.ndarray, settings: dict):
    return fd.detect(detector, load_model(model_for(detector)), image, **settings)


settings: dict = {}
detect_tab, vj_tab, hog_tab, mtcnn_tab, eval_tab = st.tabs(
    ["Detect", "How Viola-Jones works", "What HOG sees", "How MTCNN works", "Measure on group photos"])

with detect_tab, friendly_errors():
    chosen = st.multiselect("Detectors", list(fd.DETECTORS), default=list(fd.DETECTORS), key="fd_chosen",
                            format_func=lambda k: fd.DETECTORS[k].title)
    if chosen:
        for column, detector in zip(st.columns(len(chosen)), chosen):
            with column.expander(f"{fd.DETECTORS[detector].title} settings"):
                settings[detector] = settings_for(detector)
        results = {}
        for column, detector in zip(st.columns(len(chosen)), chosen):
            with column, friendly_errors():
                found = run(detector, photo, settings[detector])
                results[detector] = found
                st.image(drawing.draw_detections(photo, found), width="stretch")
                st.caption(f"{fd.DETECTORS[detector].title}: {len(found)} face(s) in {found.meta['ms']:.0f} ms")
        if results:
            timing = pd.DataFrame([{"detector": fd.DETECTORS[k].title, "faces": len(v), "ms": round(v.meta["ms"], 1)}
                                   for k, v in results.items()])
            st.plotly_chart(px.bar(timing, x="ms", y="detector", orientation="h", text="faces",
                                   title="Time per detector (bar label: faces found)", height=260),
                            width="stretch")
            st.subheader("Do something with the faces")
            source = st.selectbox("Use the faces found by", list(results), key="fd_action_source",
                                  format_func=lambda k: fd.DETECTORS[k].title)
            faces = results[source]
            mode = st.radio("Privacy", ["none", "blur", "pixelate"], horizontal=True, key="fd_privacy")
            shown = photo if mode == "none" else drawing.anonymise(photo, faces, mode)
            annotated = drawing.draw_detections(shown, faces) if mode == "none" else shown
            st.image(annotated, width="stretch")
            stem = name.rsplit(".", 1)[0]
            c1, c2, c3 = st.columns(3)
            c1.download_button("Download image (PNG)", encode_png(annotated), f"{stem}_{source}_{mode}.png", "image/png")
            c2.download_button("Faces as ZIP", drawing.zip_pngs(drawing.crops(photo, faces)), f"{stem}_faces.zip",
                               "application/zip", disabled=not len(faces))
            c3.download_button("Detections (JSON)", json.dumps({"image": name, "detector": source,
                                                                "faces": faces.to_records()}, indent=1),
                               f"{stem}_{source}.json", "application/json")
            if "haar" in results and st.toggle("Also look for eyes inside Haar's faces", key="fd_eyes"):
                eyes = fd.detect_eyes(load_model("haar_eye"), photo, results["haar"])
                st.image(drawing.draw_detections(drawing.draw_detections(photo, results["haar"], show_scores=False),
                                                 eyes, show_scores=False, rgb=(22, 163, 74)),
                         caption=f"{len(eyes)} eye(s)", width="stretch")


@st.cache_data(max_entries=8, show_spinner="Running the cascade stage by stage…")
def funnel(image: np.ndarray, cascade: str):
    return fd.cascade_funnel(str(models.card(cascade).path()), image)


with vj_tab, friendly_errors():
    st.markdown("**The integral image.** Each cell holds the sum of every pixel above and to its left, so the sum of "
                "*any* rectangle takes four look-ups: D − B − C + A. The deck's example:")
    example = np.array([[2, 4, 1, 2], [1, 1, 2, 2], [3, 2, 2, 1]])
    c1, c2 = st.columns(2)
    c1.dataframe(pd.DataFrame(example), hide_index=True)
    c2.dataframe(pd.DataFrame(fd.integral_image(example)), hide_index=True)
    grey = np.asarray(photo.mean(axis=2))
    ii = fd.integral_image(grey.astype(np.uint8))
    st.image(drawing.heat(np.log1p(ii)), caption="Integral image of your photo (log scale)", width=360)
    st.markdown("**Haar features on a face.** White minus black sums, each from the integral image.")
    faces = fd.detect("haar", load_model(fd.DETECTORS["haar"].model), photo)
    if not len(faces):
        st.info("Viola-Jones found no face in this photo; try the astronaut sample.")
    else:
        x1, y1, x2, y2 = faces.boxes[0].astype(int)
        w, h = x2 - x1, y2 - y1
        spots = {  # where the classic features sit on a face
            "two-rectangle (top/bottom)": (x1 + w // 6, y1 + h // 5, 2 * w // 3, h // 3),  # eyes darker than cheeks
            "three-rectangle (horizontal)": (x1 + w // 4, y1 + h // 5, w // 2, h // 4),  # bridge of the nose
            "two-rectangle (left/right)": (x1 + w // 4, y1 + h // 2, w // 2, h // 3),
            "three-rectangle (vertical)": (x1 + w // 5, y1 + h // 8, 3 * w // 5, h // 2),
        }
        columns = st.columns(len(spots))
        for column, (kind, box) in zip(columns, spots.items()):
            value, rects = fd.haar_feature(ii, kind, *box)
            canvas = photo.copy()
            for rx, ry, rw, rh, weight in rects:
                overlay = canvas[ry : ry + rh, rx : rx + rw]
                tint = 255 if weight > 0 else 0
                canvas[ry : ry + rh, rx : rx + rw] = (0.45 * overlay + 0.55 * tint).astype(np.uint8)
            crop = canvas[max(0, y1 - h // 4) : y2 + h // 4, max(0, x1 - w // 4) : x2 + w // 4]
            column.image(crop, caption=f"{kind}: {value:+,}", width="stretch")
    st.markdown("**The cascade as a funnel.** Every window of every pyramid level enters stage 1; each stage "
                "rejects most of what is left, so the expensive later stages see almost nothing.")
    counts, survivors = funnel(photo, "haar_frontalface_default")
    labels = ["windows"] + [f"stage {i}" for i in range(1, len(counts))]
    st.plotly_chart(go.Figure(go.Funnel(y=labels, x=counts, textinfo="value+percent initial")).update_layout(
        height=620, title="Windows alive after each stage (frontalface_default, 320 px, step 2)"), width="stretch")
    st.image(drawing.draw_boxes(photo, survivors, (234, 88, 12)), width=420,
             caption=f"The {len(survivors)} windows that pass all {len(counts) - 1} stages, before grouping "
                     "(minNeighbors groups them into faces)")

with hog_tab, friendly_errors():
    cell = st.select_slider("Cell size (px)", [4, 6, 8, 12, 16], 8, key="hog_cell")
    c1, c2 = st.columns(2)
    c1.image(photo, caption="Photo", width="stretch")
    c2.image(fd.hog_cells(photo, cell), caption=f"Histogram of oriented gradients, {cell}x{cell} cells", width="stretch")
    st.caption("dlib's detector slides an 80x80 window of these cells over an image pyramid and scores it with a "
               "linear SVM trained on faces.")

with mtcnn_tab, friendly_errors():
    st.markdown("MTCNN is a cascade of three CNNs: **P-Net** proposes boxes at every pyramid level, **R-Net** "
                "refines and rejects them, **O-Net** gives the final boxes and five landmarks.")
    mtcnn_settings = settings.get("mtcnn", fd.DETECTORS["mtcnn"].defaults)
    stages = fd.mtcnn_stages(load_model("mtcnn"), photo, **mtcnn_settings)
    columns = st.columns(3)
    for column, (stage, found) in zip(columns, stages):
        column.image(drawing.draw_detections(photo, found, show_scores=stage == "O-Net"), width="stretch",
                     caption=f"after {stage}: {len(found)} candidate(s)")


@st.cache_data(show_spinner="Measuring on the annotated group photos…")
def measure(detector: str, model: str, settings_json: str):
    from vision_backend import samples

    truth = samples.annotated_faces()
    found = [fd.detect(detector, load_model(model), samples.load_sample(photo_name), **json.loads(settings_json))
             for photo_name in truth]
    result = fd.evaluate(found, list(truth.values()))
    no_face = sum(len(fd.detect(detector, load_model(model), samples.load_sample(p), **json.loads(settings_json)))
                  for p in samples.NO_FACE_PHOTOS)
    return result, no_face, float(np.median([f.meta["ms"] for f in found]))


@st.cache_data(show_spinner=False)
def measure_scaled(detector: str, model: str, settings_json: str) -> list[dict]:
    from vision_backend import samples

    truth = samples.annotated_faces()
    chosen = json.loads(settings_json)
    scaled = fd.evaluate_at_scales(lambda image: fd.detect(detector, load_model(model), image, **chosen),
                                   [samples.load_sample(p) for p in truth], list(truth.values()))
    return [{"photo size (%)": round(factor * 100), "recall": r.recall, "precision": r.precision,
             "found": f"{r.true_positives}/{r.faces}"} for factor, r in scaled.items()]


with eval_tab, friendly_errors():
    models.card("photos").require()
    st.markdown("Three group photos with 17 hand-annotated faces (dlib's annotations). A detection is correct "
                "when it overlaps an annotated face with IoU ≥ 0.5. Uses each detector's settings from the Detect tab.")
    runs = []
    for detector in fd.DETECTORS:
        runs.append((fd.DETECTORS[detector].title, detector, settings.get(detector, fd.DETECTORS[detector].defaults)))
        if detector == "haar" and runs[-1][2] != HAAR_SETUPS["Thorough"]:  # the trade-off at a glance
            runs.append(("Viola-Jones, thorough setup", "haar", HAAR_SETUPS["Thorough"]))
    rows = []
    for title, detector, chosen_settings in runs:
        result, no_face, ms = measure(detector, model_for(detector), json.dumps(chosen_settings))
        rows.append({"detector": title, "found": f"{result.true_positives}/{result.faces}",
                     "recall": round(result.recall, 3), "precision": round(result.precision, 3),
                     "false positives": result.false_positives, "mean IoU": round(result.mean_iou, 3),
                     "faces on 2 no-face photos": no_face, "median ms": round(ms, 1)})
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch")
    # speed against recall is the page's story; points sit close together, so a legend, not labels
    low = min(0.5, float(table["recall"].min()) - 0.05)
    chart = px.scatter(table, x="median ms", y="recall", color="detector", log_x=True, range_y=[low, 1.03],
                       hover_data=["found", "precision", "false positives"], height=380,
                       title="Recall against time per photo at these settings (hover for precision)")
    st.plotly_chart(chart.update_traces(marker_size=14), width="stretch")

    st.markdown("**Does it hold at other sizes?** Seventeen faces are few: a setting can score well on them "
                "only because its pyramid happens to line up with these faces at this size. The same photos "
                "resized to 80–120% tell a detector that finds faces from a setting tuned to the photos.")
    if st.toggle("Measure again on the photos at 80–120% size (10–20 s)", key="fd_scaled"):
        bar = st.progress(0.0, text="Resizing the photos and detecting again…")
        lines = []
        for step, (title, detector, chosen_settings) in enumerate(runs):
            for row in measure_scaled(detector, model_for(detector), json.dumps(chosen_settings)):
                lines.append({"detector": title, **row})
            bar.progress((step + 1) / len(runs), text=f"{title} done")
        bar.empty()
        scaled = pd.DataFrame(lines)
        st.plotly_chart(px.line(scaled, x="photo size (%)", y="recall", color="detector", markers=True,
                                hover_data=["found", "precision"], height=380,
                                title="Recall on the same photos, resized"), width="stretch")
        spread = scaled.groupby("detector", sort=False)["recall"].agg(["min", "median", "max"]).round(3)
        st.dataframe(spread.rename(columns=lambda c: f"recall {c}"), width="stretch")
