"""Face recognition: enrol people, recognise them in any photo, verify two faces, measure on LFW."""

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages._shared import (UPLOAD_TYPES, current_photo, decode_photo, ensure_ready, friendly_errors, guarded_fragment,
                           keep, literal, param_widgets, photo_cache, photo_key, sample_photo, setting_key, start_page,
                           tabbed, workspace)
from vision_backend import drawing, models, samples
from vision_backend.face_recognition import EMBEDDERS, FaceEmbedder, lfw, recognise, scratch
from vision_backend.face_recognition.gallery import Gallery
from vision_backend.face_recognition.recognise import Faces
from vision_backend.intake import ImageIntakeError, encode_png, read_image_file
from vision_backend.samples import PHOTOS

PREFIX = "fr"


# ---- faces of a photo, once per photo and embedder ----------------------------------------------
@photo_cache(max_entries=16, show_spinner="Finding and embedding faces…")
def _analysed(image: np.ndarray, embedder: str) -> Faces:
    return recognise.analyse(EMBEDDERS[embedder], image)


def faces_in(image: np.ndarray, embedder: FaceEmbedder) -> Faces:
    """Every face in ``image`` (the face finder's), its unit embedding and the crop the network saw; cached on
    the photo's content, so every tab and rerun reuses one analysis."""
    return _analysed(image, embedder.name)


def embedder_label(name: str) -> str:
    embedder = EMBEDDERS[name]
    return embedder.title + ("" if embedder.ready() else " — fetched on first use")


def choose_embedder() -> tuple[FaceEmbedder | None, dict]:
    """The recogniser and its settings: the same-person threshold, the uncertain band around it, the smallest face
    worth naming (None while its weights are not here)."""
    left, right = st.columns([3, 2])
    chosen = left.radio("Recogniser", list(EMBEDDERS), format_func=embedder_label, horizontal=True,
                        key=keep("fr_embedder", models.default("embed").name),
                        help="Each turns a face into an embedding; one whose weights are not here yet is fetched on "
                             "first use.")
    embedder = EMBEDDERS[chosen]
    if not ensure_ready(embedder.card):
        return None, {}
    with right:
        return embedder, param_widgets(embedder, PREFIX)


def suggested_threshold(embedder: FaceEmbedder, gallery: Gallery) -> None:
    """The threshold the person's own gallery suggests, where it holds enough pairs, with a button to use it."""
    suggestion = recognise.suggest_threshold(*gallery.embeddings(embedder.name, embedder.dimensions))
    if suggestion is None:
        st.caption("With three photos or more of a few people in the gallery, it suggests a threshold of its own.")
        return
    value, same, different = suggestion
    key = setting_key(PREFIX, embedder, embedder.param("threshold"))
    st.caption(f"Your gallery suggests a threshold of **{value:.2f}** ({same} same-person and {different} "
               "different-person pairs of its faces).")
    st.button(f"Use {value:.2f}", key="fr_use_suggested", on_click=lambda: st.session_state.update({key: round(
        min(max(value, 0.1), 1.4), 2)}))


# ---- recognise ----------------------------------------------------------------------------------
VERDICT_WORDS = {"same": "named", "uncertain": "uncertain: near the threshold", "different": "unknown",
                 "too small": "too small to tell"}


def recognise_tab(name: str, photo: np.ndarray, embedder: FaceEmbedder, settings: dict, gallery: Gallery) -> None:
    names, enrolled = gallery.embeddings(embedder.name, embedder.dimensions)
    faces = faces_in(photo, embedder)
    if not names:
        st.info("Nobody is enrolled yet for this recogniser: enrol people in the Gallery tab (one click for the "
                "demo people).", icon=":material/person_add:")
    matches = recognise.recognise_faces(faces, names, enrolled, settings)
    annotated = drawing.draw_detections(photo, faces.detections, show_scores=False,
                                        captions=[m.caption for m in matches], legend=True)
    left, right = st.columns([3, 2])  # the photo beside its table, both on one screen
    left.image(annotated, width="stretch")
    counts = Counter(m.verdict for m in matches)
    left.caption(f"{len(faces)} face(s) in {name}; {counts['same']} recognised at distance ≤ "
                 f"{settings['threshold'] - settings['margin']:.2f}, {counts['uncertain']} uncertain (within "
                 f"{settings['margin']:.2f} of the threshold {settings['threshold']:.2f}: shown with a question mark, "
                 f"not named), {counts['too small']} too small to tell (under {settings['min_named_face']} px) "
                 f"({embedder.title}). Box label: the person and the distance between the two faces' embeddings "
                 "(0 = the same face; the smaller, the more alike).")
    table = faces_table(matches, faces, bool(names))
    if len(table):
        right.dataframe(table, hide_index=True, width="stretch", column_config={
            "who": st.column_config.TextColumn(width="medium"), "verdict": st.column_config.TextColumn(width="medium")})
    stem = name.rsplit(".", 1)[0]
    right.download_button("Annotated image (PNG)", lambda: encode_png(annotated), f"{stem}_recognised.png",
                          "image/png", on_click="ignore")  # made on the click, not on every run
    right.download_button("Faces (CSV)", table.to_csv(index=False), f"{stem}_recognised.csv", "text/csv",
                          disabled=table.empty, on_click="ignore")


def faces_table(matches: list, faces: Faces, any_enrolled: bool) -> pd.DataFrame:
    return pd.DataFrame([{"face": i + 1, "who": m.name, "verdict": VERDICT_WORDS[m.verdict],
                          "distance": round(m.distance, 3) if any_enrolled else None, "nearest enrolled": m.nearest,
                          "size (px)": int(side)}
                         for i, (m, side) in enumerate(zip(matches, recognise.face_sides(faces.detections)))])


# ---- the gallery ----------------------------------------------------------------------------------
def gallery_tab(name: str, photo: np.ndarray, embedder: FaceEmbedder, gallery: Gallery) -> None:
    """Enrolment first, the people last, and the count (written at the top) from that same last read."""
    count = st.empty()
    if st.button("Enrol the demo people (Obama, Biden) from the staged photos", key="fr_demo",
                 disabled=not PHOTOS.ready()):
        with friendly_errors():
            st.dataframe(pd.DataFrame(recognise.enrol_demo_people(gallery, embedder)), hide_index=True)
    st.subheader("Enrol from the current photo")
    with friendly_errors():
        enrol_current(name, photo, embedder, gallery)
    with st.expander("Enrol several photos of one person", expanded="fr_multi_report" in st.session_state), \
            friendly_errors():
        enrol_several(embedder, gallery)
    st.subheader("People")
    people = gallery.people()
    for person in people:
        person_panel(person, gallery)
    suggested_threshold(embedder, gallery)
    faces = sum(p["faces"] for p in people)
    count.markdown(f"**{len(people)} {'person' if len(people) == 1 else 'people'} enrolled** with {faces} face(s) "
                   "for recognition (stored in your workspace, kept across restarts).")


CHIP_SIDE = 160
"""Face crops are shown this wide (px): enough to tell a face, small enough to see several at once."""


def enrol_current(name: str, photo: np.ndarray, embedder: FaceEmbedder, gallery: Gallery) -> None:
    faces = faces_in(photo, embedder)
    if not len(faces):
        st.warning(f"No face found in {name}: pick a photo with a clear, frontal face.", icon=":material/face:")
        return
    if len(faces) > 1:
        st.info(f"{len(faces)} faces in this photo: pick the one to enrol.", icon=":material/group:")
    chosen = pick_face(faces, f"fr_enrol_face_{photo_key(photo)}")
    who = st.selectbox("Person", ["(new person)"] + [p["name"] for p in gallery.people()], key="fr_enrol_person")
    person = st.text_input("Name of the new person", key=keep("fr_enrol_name", "")) if who == "(new person)" else who
    anyway = look_alike_warning(faces, chosen, person, embedder, gallery, "fr_enrol_anyway")
    if st.button("Enrol this face", type="primary", key="fr_enrol", disabled=not person.strip()):
        row = recognise.enrol_face(gallery, embedder, person, faces, name, chosen, anyway)
        shown = {"enrolled": st.success, "already enrolled": st.info}.get(row["result"], st.warning)
        shown(f"Face {chosen + 1} of {literal(name)}: {row['result']} as {literal(person.strip())}"
              + (f" ({literal(row['reason'])})" if row["reason"] else "."), icon=":material/how_to_reg:")


def pick_face(faces: Faces, key: str) -> int:
    """The faces side by side, each small, and which one the person picked (the only one, or the radio's)."""
    columns = st.columns(min(len(faces), 6))
    for i, chip in enumerate(faces.crops):
        columns[i % len(columns)].image(chip, caption=f"face {i + 1}", width=CHIP_SIDE)
    if len(faces) == 1:
        return 0
    return st.radio("Face to enrol", list(range(len(faces))), format_func=lambda i: f"face {i + 1}",
                    horizontal=True, key=key)


def look_alike_warning(faces: Faces, chosen: int, person: str, embedder: FaceEmbedder, gallery: Gallery,
                       key: str) -> bool:
    """A warning when the chosen face looks like someone enrolled under another name, and whether to enrol anyway."""
    if not person.strip():
        return False
    other = recognise.lookalike(faces.vectors[chosen], *gallery.embeddings(embedder.name, embedder.dimensions),
                                person, embedder.threshold, embedder.margin)
    if other is None:
        return False
    st.warning(f"This face looks like **{literal(other[0])}** (distance {other[1]:.2f}), who is enrolled already. "
               f"Enrolling it as {literal(person.strip())} would mix the two up.", icon=":material/warning:")
    return st.checkbox("Enrol it anyway (they are different people)", key=key)


def enrol_several(embedder: FaceEmbedder, gallery: Gallery) -> None:
    """Several photos of one person: each photo's face found, the person picks where a photo has several, faces
    that look like someone else are held back; once enrolled the uploader and the name start empty again."""
    if "fr_multi_report" in st.session_state:
        enrol_report(*st.session_state.pop("fr_multi_report"))
    version = st.session_state.get("fr_multi_version", 0)  # a new uploader once its photos are in
    uploads = st.file_uploader("Photos of one person", type=UPLOAD_TYPES, accept_multiple_files=True,
                               key=f"fr_multi_{version}")
    person = st.text_input("Their name", key=f"fr_multi_name_{version}")
    if not uploads:
        return
    chosen = choose_faces(uploads, embedder)
    anyway = st.checkbox("Also enrol faces that look like someone already enrolled", key=f"fr_multi_anyway_{version}")
    if st.button("Enrol these photos", key="fr_multi_go", disabled=not person.strip()):
        with st.spinner(f"Finding and embedding the faces in {len(uploads)} photo(s)…"):
            report = recognise.enrol_photos(gallery, embedder, person, [(u.name, u.getvalue()) for u in uploads],
                                            chosen, anyway)
        st.session_state.fr_multi_report = (person.strip(), report, [note for u in uploads if (note := frame_note(u))])
        st.session_state.fr_multi_version = version + 1
        st.rerun()


def choose_faces(uploads: list, embedder: FaceEmbedder) -> dict[str, int]:
    """For each upload with several faces, the crops and a choice of which is the person (file name -> face)."""
    chosen = {}
    for upload in uploads:
        try:
            faces = faces_in(decode_photo(upload.getvalue(), upload.name).image, embedder)
        except ImageIntakeError:
            continue  # said in the report, with its reason
        if len(faces) > 1:
            st.markdown(f"**{literal(upload.name)}** has {len(faces)} faces: which is the person?")
            chosen[upload.name] = pick_face(faces, f"fr_multi_face_{photo_key(faces.vectors)}")
    return chosen


def enrol_report(person: str, report: list[dict], noted: list[str]) -> None:
    counts = Counter(row["result"] for row in report)
    st.markdown(f"**{len(report)} photo(s) of {literal(person)}:** {counts['enrolled']} enrolled, "
                f"{counts['already enrolled']} already enrolled, {counts['flagged']} held back (they look like "
                f"someone else), {counts['skipped']} skipped.")
    st.dataframe(pd.DataFrame(report), hide_index=True, width="stretch",
                 column_config={"reason": st.column_config.TextColumn(width="large")})
    for note in noted:
        st.info(literal(note), icon=":material/filter_frames:")


def frame_note(upload: Any) -> str:
    """Which frame of an animation (or page of a TIFF) the photo is ("" for an ordinary photo or a bad file)."""
    try:
        return decode_photo(upload.getvalue(), upload.name).note
    except ImageIntakeError:
        return ""


def title_of(embedder: str) -> str:
    return EMBEDDERS[embedder].title if embedder in EMBEDDERS else embedder


def stored_crop(path) -> np.ndarray | None:
    """A stored face crop, or None when the file can no longer be read (the face can still be removed)."""
    try:
        return read_image_file(path)
    except (ImageIntakeError, OSError):
        return None


def person_panel(person: dict, gallery: Gallery) -> None:
    """One enrolled person: their faces (each removable), a new name, or delete them."""
    with st.expander(f"{person['name']} · {person['faces']} face(s)"):
        columns = st.columns(8)
        for i, face in enumerate(gallery.faces(person["id"])):
            with columns[i % 8]:
                crop = stored_crop(face["crop"])
                if crop is None:
                    st.caption("cannot be shown")
                else:
                    st.image(crop, width="stretch")
                st.caption(f"{title_of(face['recogniser'])} · {face['source']}")
                if st.button("Remove", key=f"fr_remove_{face['id']}"):
                    gallery.delete_face(face["id"])
                    st.rerun()
        with friendly_errors():
            left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
            renamed = left.text_input("Rename", person["name"], key=f"fr_rename_{person['id']}")
            if middle.button("Rename", key=f"fr_rename_go_{person['id']}", disabled=renamed == person["name"]):
                gallery.rename(person["id"], renamed)
                st.rerun()
            if right.button("Delete person", key=f"fr_delete_{person['id']}"):
                gallery.delete_person(person["id"])
                st.rerun()


# ---- verify two faces -------------------------------------------------------------------------------
def second_photo() -> tuple[str | None, np.ndarray | None]:
    source = st.radio("Second photo", ["Sample", "Upload"], horizontal=True, key=keep("fr_other_source", "Sample"))
    if source == "Sample":
        options = samples.sample_names()
        chosen = st.selectbox("Sample", options, key=keep("fr_other_sample",
                                                          "obama_2.jpg" if "obama_2.jpg" in options else options[0]))
        return chosen, sample_photo(chosen)
    upload = st.file_uploader("Second photo", type=UPLOAD_TYPES, key="fr_other_upload")
    if upload is None:
        return None, None
    photo = decode_photo(upload.getvalue(), upload.name)
    if photo.note:
        st.info(photo.note, icon=":material/filter_frames:")
    return upload.name, photo.image


def distance_gauge(distance: float, threshold: float, margin: float) -> go.Figure:
    """The distance on a dial: green where it is the same person, amber in the uncertain band, red beyond."""
    steps = [{"range": [0, threshold - margin], "color": "#dcfce7"},
             {"range": [threshold - margin, threshold + margin], "color": "#fef3c7"}]
    gauge = go.Figure(go.Indicator(mode="gauge+number", value=distance, title={"text": "distance"},
                                   gauge={"axis": {"range": [0, 1.4]}, "steps": steps,
                                          "threshold": {"value": threshold, "line": {"color": "red", "width": 3}}}))
    return gauge.update_layout(height=220, margin={"t": 30, "b": 0})


@guarded_fragment
def verify_tab(name: str, photo: np.ndarray, embedder: FaceEmbedder, settings: dict) -> None:
    """The second photo's widgets rerun this tab only."""
    st.markdown("Are two faces the same person? Left: the current photo. Right: another photo.")
    other_name, other = second_photo()
    if other is None:
        return
    faces_a, faces_b = faces_in(photo, embedder), faces_in(other, embedder)
    if not len(faces_a) or not len(faces_b):
        st.warning(f"No face found in {name if not len(faces_a) else other_name}.", icon=":material/face:")
        return
    a, b = recognise.largest_index(faces_a.detections), recognise.largest_index(faces_b.detections)
    threshold, margin = settings["threshold"], settings["margin"]
    call, distance = recognise.judge(faces_a.vectors[a], faces_b.vectors[b], threshold, margin)
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.image(faces_a.crops[a], caption=name, width=CHIP_SIDE)
    c2.image(faces_b.crops[b], caption=other_name, width=CHIP_SIDE)
    c3.metric("Distance", f"{distance:.3f}")
    verdict = {"same": "the same person", "different": "different people",
               "uncertain": "uncertain: too near the threshold to tell"}[call]
    c3.caption(f"Verdict: **{verdict}** (threshold {threshold:.2f} ± {margin:.2f}; the largest face of each photo)")
    c3.plotly_chart(distance_gauge(distance, threshold, margin), width="stretch")


# ---- measure on LFW ---------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def lfw_results(embedder: str) -> lfw.PairResults:
    bar = st.progress(0.0, "Embedding the LFW images (once; cached on disk)…")
    results = lfw.verify_pairs(EMBEDDERS[embedder], lambda done, total: bar.progress(
        done / total, f"Embedding LFW images {done}/{total}"))
    bar.empty()
    return results


def lfw_figures(results: lfw.PairResults, embedder: FaceEmbedder) -> None:
    metrics = results.metrics
    m1, m2, m3 = st.columns(3)
    m1.metric("Accuracy at the best threshold", f"{metrics.best_accuracy:.2%}",
              help=f"95% interval {metrics.interval[0]:.1%} – {metrics.interval[1]:.1%}")
    m2.metric("ROC AUC", f"{metrics.auc:.4f}")
    m3.metric("Suggested threshold", f"{metrics.best_threshold:.3f}")
    st.caption(f"LFW fold 1: accuracy {metrics.best_accuracy:.4f} (95% interval {metrics.interval[0]:.3f}–"
               f"{metrics.interval[1]:.3f}) at distance ≤ {metrics.best_threshold:.3f}; AUC {metrics.auc:.4f}. "
               f"Published: {embedder.card.accuracy} (all 10 folds).")
    left, right = st.columns(2)
    roc = px.area(x=metrics.fpr, y=metrics.tpr, labels={"x": "false positive rate", "y": "true positive rate"},
                  title=f"ROC curve (AUC {metrics.auc:.4f})")
    left.plotly_chart(roc.update_layout(height=380), width="stretch")
    frame = pd.DataFrame({"distance": results.distances,
                          "pair": np.where(results.same, "same person", "different people")})
    histogram = px.histogram(frame, x="distance", color="pair", nbins=60, barmode="overlay",
                             title=f"Distances of the {len(frame)} pairs")
    histogram.add_vline(x=metrics.best_threshold, line_dash="dash", annotation_text="best threshold")
    right.plotly_chart(histogram.update_layout(height=380), width="stretch")


@guarded_fragment
def measure_tab(embedder: FaceEmbedder) -> None:
    st.markdown("**Labeled Faces in the Wild**, the standard test: fold 1 of the official pairs — 300 pairs of "
                "the same person, 300 of different people, faces the network never saw.")
    lfw.LFW.require()
    if st.button("Measure on LFW fold 1 (600 pairs)", type="primary", key="fr_measure") or \
            st.session_state.get("fr_measured") == embedder.name:
        st.session_state.fr_measured = embedder.name
        lfw_figures(lfw_results(embedder.name), embedder)


# ---- from scratch vs transfer -----------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def comparison(embedder: str) -> scratch.Comparison:
    bar = st.progress(0.0, "Starting…")
    result = scratch.from_scratch_vs_embeddings(EMBEDDERS[embedder],
                                                progress=lambda text, share: bar.progress(min(share, 1.0), text))
    bar.empty()
    return result


def comparison_figures(result: scratch.Comparison, embedder: FaceEmbedder) -> None:
    c1, c2 = st.columns(2)
    c1.metric("From scratch (small CNN)", f"{result.scratch_accuracy:.1%}", help="the deck: 90%")
    c2.metric(f"Transfer ({embedder.title} embeddings)", f"{result.embeddings_accuracy:.1%}",
              help="the deck (ResNet50 transfer): 93%")
    st.caption(f"Held-out accuracy on {len(result.test_labels)} photos: from scratch "
               f"{result.scratch_accuracy:.3f}, embeddings {result.embeddings_accuracy:.3f}")
    short = [n.replace("_", " ") for n in result.names]
    for column, title, predicted in ((c1, "From scratch", result.scratch_predicted),
                                     (c2, "Embeddings", result.embeddings_predicted)):
        column.plotly_chart(px.imshow(result.confusion(predicted), x=short, y=short, text_auto=True,
                                      color_continuous_scale="Blues", labels={"x": "predicted", "y": "true"},
                                      title=title).update_layout(height=420), width="stretch")


@guarded_fragment
def scratch_tab(embedder: FaceEmbedder) -> None:
    st.markdown("The deck's experiment: tell apart the **five LFW people with the most photos** (1,140 photos). "
                "(a) A small CNN trained **from scratch** on these photos only; (b) a simple classifier on the "
                "**face embeddings** of a network trained on millions of faces (transfer). Same held-out quarter.")
    lfw.LFW.require()
    if st.button("Run the comparison (a few minutes the first time)", key="fr_scratch") or \
            st.session_state.get("fr_compared") == embedder.name:
        st.session_state.fr_compared = embedder.name
        comparison_figures(comparison(embedder.name), embedder)


def draw_tabs(name: str, photo: np.ndarray, embedder: FaceEmbedder, settings: dict) -> None:
    gallery = workspace().gallery()
    tabbed({"Recognise": lambda: recognise_tab(name, photo, embedder, settings, gallery),
            "Gallery: enrol people": lambda: gallery_tab(name, photo, embedder, gallery),
            "Verify two faces": lambda: verify_tab(name, photo, embedder, settings),
            "Measure on LFW": lambda: measure_tab(embedder), "From scratch vs transfer": lambda: scratch_tab(embedder)})


start_page("Face recognition", "A network turns each face into a list of numbers (an embedding); the same person's "
           "faces land close together. Enrol people once, then find them in any photo.")
photo_name, photo = current_photo()
chosen, recognition_settings = choose_embedder()
if chosen is not None:
    draw_tabs(photo_name, photo, chosen, recognition_settings)
