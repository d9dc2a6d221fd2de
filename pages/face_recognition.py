"""Face recognition: enrol people, recognise them in any photo, verify two faces, measure on LFW."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pages._shared import UPLOAD_TYPES, current_photo, decode_upload, friendly_errors, load_model, sample_photo
from vision_backend import drawing, models, samples
from vision_backend import face_recognition as fr
from vision_backend.intake import ImageIntakeError, encode_png

st.title("Face recognition")
st.caption("A network turns each face into a list of numbers (an embedding); the same person's faces land close "
           "together. Enrol people once, then find them in any photo.")

name, photo = current_photo()
stem = name.rsplit(".", 1)[0]
gallery = fr.Gallery()
DEMO_PEOPLE = {"Barack Obama": "obama_1.jpg", "Joe Biden": "biden.jpg"}


def recogniser_label(key: str) -> str:
    r = fr.RECOGNISERS[key]
    return r.title + ("" if models.card(r.model).ready() else " — not on this machine")


recogniser_key = st.radio("Recogniser", list(fr.RECOGNISERS), format_func=recogniser_label, horizontal=True,
                          key="fr_recogniser", help="dlib's ResNet runs here; VGGFace2 once its weights are fetched.")
recogniser = fr.RECOGNISERS[recogniser_key]


@st.cache_data(max_entries=16, show_spinner="Finding and embedding faces…")
def analyse(image: np.ndarray, recogniser_name: str):
    """Every face in the photo (HOG detector), its unit embedding and the aligned crop the network saw."""
    rec = fr.RECOGNISERS[recogniser_name]
    faces = fr.find_faces(load_model("dlib_hog"), image, "hog")
    vectors, crops = rec.embed(load_model(rec.model), image, faces)
    return faces, vectors, crops


recognise_tab, gallery_tab, verify_tab, measure_tab, scratch_tab = st.tabs(
    ["Recognise", "Gallery: enrol people", "Verify two faces", "Measure on LFW", "From scratch vs transfer"])

with gallery_tab, friendly_errors():
    people = gallery.people()
    st.markdown(f"**{len(people)} people enrolled** for recognition (stored on this machine, kept across restarts).")
    if st.button("Enrol the demo people (Obama, Biden) from the staged photos", key="fr_demo",
                 disabled=not models.card("photos").ready()):
        for person, sample in DEMO_PEOPLE.items():
            image = sample_photo(sample)
            faces, vectors, crops = analyse(image, recogniser_key)
            one = fr.largest_index(faces)
            gallery.add_face(gallery.add_person(person), recogniser_key, vectors[one], crops[one], sample)
        st.rerun()

    st.subheader("Enrol from the current photo")
    faces, vectors, crops = analyse(photo, recogniser_key)
    if not len(faces):
        st.warning(f"No face found in {name}: pick a photo with a clear, frontal face.", icon=":material/face:")
    else:
        if len(faces) > 1:
            st.info(f"{len(faces)} faces in this photo: pick the one to enrol.", icon=":material/group:")
        columns = st.columns(min(len(crops), 8))
        for i, (column, chip) in enumerate(zip(columns * 10, crops)):
            column.image(chip, width="stretch")
            column.caption(f"face {i + 1}")
        chosen = st.radio("Face to enrol", list(range(len(faces))), format_func=lambda i: f"face {i + 1}",
                          horizontal=True, key="fr_enrol_face") if len(faces) > 1 else 0
        who = st.selectbox("Person", ["(new person)"] + [p["name"] for p in people], key="fr_enrol_person")
        new_name = st.text_input("Name of the new person", key="fr_enrol_name") if who == "(new person)" else who
        if st.button("Enrol this face", type="primary", key="fr_enrol", disabled=not new_name.strip()):
            gallery.add_face(gallery.add_person(new_name), recogniser_key, vectors[chosen], crops[chosen], name)
            st.success(f"Enrolled face {chosen + 1} of {name} as {new_name.strip()}.", icon=":material/how_to_reg:")

    with st.expander("Enrol several photos of one person"):
        uploads = st.file_uploader("Photos of one person (one face each)", type=UPLOAD_TYPES,
                                   accept_multiple_files=True, key="fr_multi")
        multi_name = st.text_input("Their name", key="fr_multi_name")
        if uploads and st.button("Enrol these photos", key="fr_multi_go", disabled=not multi_name.strip()):
            person, report = gallery.add_person(multi_name), []
            for upload in uploads:
                try:
                    image = decode_upload(upload.getvalue(), upload.name)
                except ImageIntakeError as error:
                    report.append(f"{upload.name}: skipped, {error}")
                    continue
                found, found_vectors, found_crops = analyse(image, recogniser_key)
                if len(found) != 1:
                    report.append(f"{upload.name}: skipped, {len(found)} faces (needs exactly one)")
                    continue
                gallery.add_face(person, recogniser_key, found_vectors[0], found_crops[0], upload.name)
                report.append(f"{upload.name}: enrolled")
            st.write("\n".join(f"- {line}" for line in report))

    st.subheader("People")
    for person in gallery.people():
        with st.expander(f"{person['name']} · {person['faces']} face(s)"):
            faces_of = gallery.faces(person["id"])
            columns = st.columns(8)
            for i, face in enumerate(faces_of):
                with columns[i % 8]:
                    st.image(face["crop"].read_bytes(), width="stretch")
                    st.caption(f"{face['recogniser']} · {face['source']}")
                    if st.button("Remove", key=f"fr_remove_{face['id']}"):
                        gallery.delete_face(face["id"])
                        st.rerun()
            r1, r2 = st.columns([3, 1])
            renamed = r1.text_input("Rename", person["name"], key=f"fr_rename_{person['id']}")
            if renamed != person["name"] and renamed.strip():
                gallery.rename(person["id"], renamed)
                st.rerun()
            if r2.button("Delete person", key=f"fr_delete_{person['id']}"):
                gallery.delete_person(person["id"])
                st.rerun()

with recognise_tab, friendly_errors():
    names, enrolled = gallery.embeddings(recogniser_key)
    threshold = st.slider("Same-person distance threshold", 0.1, 1.4, recogniser.threshold, 0.01, key="fr_threshold",
                          help="Embeddings are unit vectors: distance 0 = identical, about 1.4 = unrelated. "
                               "The default is the best threshold measured on LFW.")
    faces, vectors, crops = analyse(photo, recogniser_key)
    if not names:
        st.info("Nobody is enrolled yet for this recogniser: enrol people in the Gallery tab (one click for the "
                "demo people).", icon=":material/person_add:")
    matches = fr.recognise(vectors, names, enrolled, threshold)
    labels = [f"{m.name} {m.distance:.2f}" if m.name != "unknown" else "unknown" for m in matches]
    annotated = drawing.draw_detections(photo, faces, show_scores=False, captions=labels)
    st.image(annotated, width="stretch")
    st.caption(f"{len(faces)} face(s) in {name}; {sum(m.name != 'unknown' for m in matches)} recognised "
               f"at distance ≤ {threshold:.2f} ({recogniser.title})")
    table = pd.DataFrame([{"face": i + 1, "who": m.name, "distance": round(m.distance, 3) if names else None,
                           "nearest enrolled": m.nearest, "box (x1, y1, x2, y2)": [round(float(v), 1) for v in box]}
                          for i, (m, box) in enumerate(zip(matches, faces.boxes))])
    if len(table):
        st.dataframe(table, hide_index=True, width="stretch")
    d1, d2 = st.columns(2)
    d1.download_button("Annotated image (PNG)", encode_png(annotated), f"{stem}_recognised.png", "image/png")
    d2.download_button("Faces (CSV)", table.to_csv(index=False), f"{stem}_recognised.csv", "text/csv",
                       disabled=table.empty)

with verify_tab, friendly_errors():
    st.markdown("Are two faces the same person? Left: the current photo. Right: another photo.")
    other_source = st.radio("Second photo", ["Sample", "Upload"], horizontal=True, key="fr_other_source")
    if other_source == "Sample":
        options = samples.sample_names()
        default = options.index("obama_2.jpg") if "obama_2.jpg" in options else 0
        other_name = st.selectbox("Sample", options, index=default, key="fr_other_sample")
        other = sample_photo(other_name)
    else:
        upload = st.file_uploader("Second photo", type=UPLOAD_TYPES, key="fr_other_upload")
        other_name, other = (upload.name, decode_upload(upload.getvalue(), upload.name)) if upload else (None, None)
    if other is not None:
        faces_a, vectors_a, crops_a = analyse(photo, recogniser_key)
        faces_b, vectors_b, crops_b = analyse(other, recogniser_key)
        if not len(faces_a) or not len(faces_b):
            st.warning(f"No face found in {name if not len(faces_a) else other_name}.", icon=":material/face:")
        else:
            pick_a, pick_b = fr.largest_index(faces_a), fr.largest_index(faces_b)
            threshold = st.session_state.get("fr_threshold", recogniser.threshold)
            same, distance = fr.verify(vectors_a[pick_a], vectors_b[pick_b], threshold)
            c1, c2, c3 = st.columns([1, 1, 2])
            c1.image(crops_a[pick_a], caption=name, width="stretch")
            c2.image(crops_b[pick_b], caption=other_name, width="stretch")
            verdict = "the same person" if same else "different people"
            c3.metric("Distance", f"{distance:.3f}")
            c3.caption(f"Verdict: **{verdict}** (threshold {threshold:.2f}; the largest face of each photo)")
            gauge = go.Figure(go.Indicator(mode="gauge+number", value=distance, title={"text": "distance"},
                                           gauge={"axis": {"range": [0, 1.4]}, "threshold": {"value": threshold,
                                                  "line": {"color": "red", "width": 3}},
                                                  "steps": [{"range": [0, threshold], "color": "#dcfce7"}]}))
            c3.plotly_chart(gauge.update_layout(height=220, margin={"t": 30, "b": 0}), width="stretch")


@st.cache_data(show_spinner=False)
def lfw_results(recogniser_name: str):
    pairs = fr.lfw_pairs()
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    bar = st.progress(0.0, f"Embedding {len(files)} LFW images (once; cached on disk)…")
    rec = fr.RECOGNISERS[recogniser_name]
    vectors = fr.embed_files(rec, load_model(rec.model), load_model("dlib_hog"), files,
                             lambda done, total: bar.progress(done / total, f"Embedding LFW images {done}/{total}"))
    bar.empty()
    pair_distances = np.array([fr.distances(vectors[a], vectors[b])[0, 0] for a, b, _ in pairs])
    same = np.array([s for _, _, s in pairs])
    return pair_distances, same, fr.pair_metrics(pair_distances, same)


with measure_tab, friendly_errors():
    st.markdown("**Labeled Faces in the Wild**, the standard test: fold 1 of the official pairs — 300 pairs of the "
                "same person, 300 of different people, faces the network never saw.")
    models.card("lfw").require()
    if st.button("Measure on LFW fold 1 (600 pairs)", type="primary", key="fr_measure") or \
            st.session_state.get("fr_measured") == recogniser_key:
        st.session_state.fr_measured = recogniser_key
        pair_distances, same, metrics = lfw_results(recogniser_key)
        m1, m2, m3 = st.columns(3)
        m1.metric("Accuracy at the best threshold", f"{metrics.best_accuracy:.2%}",
                  help=f"95% interval {metrics.interval[0]:.1%} – {metrics.interval[1]:.1%}")
        m2.metric("ROC AUC", f"{metrics.auc:.4f}")
        m3.metric("Suggested threshold", f"{metrics.best_threshold:.3f}")
        st.caption(f"LFW fold 1: accuracy {metrics.best_accuracy:.4f} (95% interval {metrics.interval[0]:.3f}–"
                   f"{metrics.interval[1]:.3f}) at distance ≤ {metrics.best_threshold:.3f}; AUC {metrics.auc:.4f}. "
                   f"Published: {models.card(recogniser.model).accuracy} (all 10 folds).")
        left, right = st.columns(2)
        roc = px.area(x=metrics.fpr, y=metrics.tpr, labels={"x": "false positive rate", "y": "true positive rate"},
                      title=f"ROC curve (AUC {metrics.auc:.4f})")
        left.plotly_chart(roc.update_layout(height=380), width="stretch")
        frame = pd.DataFrame({"distance": pair_distances, "pair": np.where(same, "same person", "different people")})
        histogram = px.histogram(frame, x="distance", color="pair", nbins=60, barmode="overlay",
                                 title="Distances of the 600 pairs")
        histogram.add_vline(x=metrics.best_threshold, line_dash="dash", annotation_text="best threshold")
        right.plotly_chart(histogram.update_layout(height=380), width="stretch")


@st.cache_data(show_spinner=False)
def comparison(recogniser_name: str) -> fr.Comparison:
    bar = st.progress(0.0, "Starting…")
    rec = fr.RECOGNISERS[recogniser_name]
    result = fr.from_scratch_vs_embeddings(rec, load_model(rec.model), load_model("dlib_hog"),
                                           progress=lambda text, share: bar.progress(min(share, 1.0), text))
    bar.empty()
    return result


with scratch_tab, friendly_errors():
    st.markdown("The deck's experiment: tell apart the **five LFW people with the most photos** (1,140 photos). "
                "(a) A small CNN trained **from scratch** on these photos only; (b) a simple classifier on the "
                "**face embeddings** of a network trained on millions of faces (transfer). Same held-out quarter.")
    models.card("lfw").require()
    if st.button("Run the comparison (a few minutes the first time)", key="fr_scratch") or \
            st.session_state.get("fr_compared") == recogniser_key:
        st.session_state.fr_compared = recogniser_key
        result = comparison(recogniser_key)
        c1, c2 = st.columns(2)
        c1.metric("From scratch (small CNN)", f"{result.scratch_accuracy:.1%}", help="the deck: 90%")
        c2.metric(f"Transfer ({recogniser.title} embeddings)", f"{result.embeddings_accuracy:.1%}",
                  help="the deck (ResNet50 transfer): 93%")
        st.caption(f"Held-out accuracy on {len(result.test_labels)} photos: from scratch "
                   f"{result.scratch_accuracy:.3f}, embeddings {result.embeddings_accuracy:.3f}")
        short = [n.replace("_", " ") for n in result.names]
        for column, title, predicted in ((c1, "From scratch", result.scratch_predicted),
                                         (c2, "Embeddings", result.embeddings_predicted)):
            matrix = np.zeros((len(short), len(short)), int)
            np.add.at(matrix, (result.test_labels, predicted), 1)
            column.plotly_chart(px.imshow(matrix, x=short, y=short, text_auto=True, color_continuous_scale="Blues",
                                          labels={"x": "predicted", "y": "true"}, title=title)
                                .update_layout(height=420), width="stretch")
