"""Transfer learning studio: label your own classes, train a head on a frozen pretrained CNN, evaluate, predict, export."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import UPLOAD_TYPES, current_photo, decode_upload, friendly_errors, load_model
from vision_backend import classification as cl
from vision_backend import models, projects, transfer
from vision_backend.intake import ImageIntakeError, encode_png

st.title("Transfer learning")
st.caption("A network trained on ImageNet already knows edges, textures and parts. Freeze it, let it describe each of "
           "your photos with a vector once, and train only a small head on those vectors: seconds, not hours.")

DEMO = "Flowers demo"
name, photo = current_photo()


def open_project() -> projects.Project | None:
    existing = projects.list_projects()
    c1, c2, c3 = st.columns([2, 2, 1])
    if existing:
        chosen = c1.selectbox("Project", existing, key="tl_project",
                              index=existing.index(st.session_state.get("tl_open", existing[0]))
                              if st.session_state.get("tl_open") in existing else 0)
    else:
        c1.info("No project yet: load the demo or create one.", icon=":material/folder_open:")
        chosen = None
    new = c2.text_input("New project", key="tl_new_name", placeholder="e.g. my mugs")
    if c3.button("Create", key="tl_create", disabled=not new.strip()):
        projects.Project(new.strip())
        st.session_state.tl_open = new.strip()
        st.rerun()
    if DEMO not in existing and models.card("demo_classes").ready() and \
            st.button("Load the flowers demo project (5 classes x 50 real photos)", key="tl_demo", type="primary"):
        demo = projects.Project(DEMO)
        demo.import_zip(_folder_zip(models.card("demo_classes").path()))
        st.session_state.tl_open = DEMO
        st.rerun()
    return projects.Project(chosen, create=False) if chosen else None


def _folder_zip(root) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for label, files in transfer.class_folders(root).items():
            for file in files:
                archive.write(file, f"{label}/{file.name}")
    return buffer.getvalue()


with friendly_errors():
    project = open_project()

if project is not None:
    label_tab, train_tab, eval_tab, predict_tab, export_tab = st.tabs(
        ["Label", "Train", "Evaluate", "Predict", "Export"])

    with label_tab, friendly_errors():
        counts = project.counts()
        st.markdown(f"**{project.name}**: {len(counts)} classes, {sum(counts.values())} examples "
                    "(stored on this machine; a restart loses nothing).")
        a1, a2 = st.columns([3, 1])
        new_class = a1.text_input("New class", key="tl_new_class", placeholder="e.g. cat")
        if a2.button("Add class", key="tl_add_class", disabled=not new_class.strip()):
            project.add_class(new_class)
            st.rerun()
        if counts:
            b1, b2 = st.columns([3, 1])
            target = b1.selectbox("Add the current photo to", list(counts), key="tl_photo_class")
            if b2.button("Add photo", key="tl_add_photo"):
                added = project.add_example(target, encode_png(photo), name)
                st.toast(f"Added {name} to {target}" if added else f"{name} is already in {target}")
        with st.expander("Import a ZIP (one folder per class)"):
            archive = st.file_uploader("ZIP", type=["zip"], key="tl_zip")
            if archive is not None and st.button("Import", key="tl_zip_go"):
                try:
                    added, skipped = project.import_zip(archive.getvalue())
                except Exception as error:  # noqa: BLE001 — a broken archive is a message
                    st.error(f"{archive.name} is not a readable ZIP: {error}")
                else:
                    st.success(f"Imported {added} image(s).")
                    for line in skipped[:20]:
                        st.caption(f"skipped {line}")
        for label, count in counts.items():
            with st.expander(f"{label} · {count} example(s)", expanded=count == 0):
                uploads = st.file_uploader(f"Add photos to {label}", type=UPLOAD_TYPES, accept_multiple_files=True,
                                           key=f"tl_up_{label}")
                if uploads and st.button(f"Add {len(uploads)} photo(s)", key=f"tl_up_go_{label}"):
                    report = []
                    for upload in uploads:
                        try:
                            project.add_example(label, upload.getvalue(), upload.name)
                        except ImageIntakeError as error:
                            report.append(f"{upload.name}: {error}")
                    if report:
                        st.warning("Skipped: " + "; ".join(report))
                    else:
                        st.rerun()
                examples = project.examples(label)
                columns = st.columns(8)
                for i, example in enumerate(examples[:32]):
                    with columns[i % 8]:
                        st.image(example.path.read_bytes(), width="stretch")
                        if st.button("Delete", key=f"tl_del_{example.id}"):
                            project.delete_example(example.id)
                            st.rerun()
                if len(examples) > 32:
                    st.caption(f"… and {len(examples) - 32} more")
                m1, m2, m3 = st.columns(3)
                move = m1.selectbox("Move example", [e.id for e in examples], key=f"tl_move_{label}",
                                    format_func=lambda i: f"#{i}") if examples else None
                to = m2.selectbox("to class", [c for c in counts if c != label] or [label], key=f"tl_move_to_{label}")
                if examples and m3.button("Move", key=f"tl_move_go_{label}"):
                    project.move_example(move, to)
                    st.rerun()
                if st.button(f"Delete class {label}", key=f"tl_del_class_{label}"):
                    project.delete_class(label)
                    st.rerun()
        st.download_button("Export the project (ZIP)", project.export_zip(), f"{project.name}.zip", "application/zip",
                           disabled=not counts)

    with train_tab, friendly_errors():
        ready = [b for b in transfer.BASES if models.card(b).ready()]
        base_name = st.selectbox("Frozen base", ready, key="tl_base", format_func=lambda b: transfer.BASES[b][1])
        d = transfer.HeadSettings()
        s1, s2, s3, s4 = st.columns(4)
        settings = transfer.HeadSettings(
            hidden=s1.select_slider("Hidden units", [0, 32, 64, 100, 128, 256, 512], d.hidden, key="tl_hidden",
                                    help="0 = a softmax straight on the features; Teachable Machine uses 100."),
            dropout=s2.slider("Dropout", 0.0, 0.7, d.dropout, 0.05, key="tl_dropout"),
            epochs=s3.slider("Epochs", 5, 300, d.epochs, 5, key="tl_epochs"),
            learning_rate=s4.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], d.learning_rate,
                                           key="tl_lr"),
            validation=s1.slider("Validation share", 0.1, 0.4, d.validation, 0.05, key="tl_val"),
            batch_size=s2.select_slider("Batch size", [8, 16, 32, 64], d.batch_size, key="tl_batch"),
            class_weights=s3.toggle("Class weights", d.class_weights, key="tl_weights",
                                    help="Count rare classes more, so a big class cannot drown them."),
            mirror=s4.toggle("Mirror images too", d.mirror, key="tl_mirror",
                             help="Learn from each photo's mirror image as well (cached like the rest)."),
        )
        for problem in project.problems():
            st.warning(problem, icon=":material/warning:")
        if not project.problems() and st.button("Train", type="primary", key="tl_train"):
            base = load_model(base_name)
            bar = st.progress(0.0, "Features…")
            chart = st.empty()
            history: dict[str, list[float]] = {}

            def features_progress(done: int, total: int) -> None:
                bar.progress(done / total * 0.5, f"Base features for new photos: {done}/{total} (then cached)")

            def on_epoch(epoch: int, logs: dict) -> None:
                for key, value in logs.items():
                    history.setdefault(key, []).append(float(value))
                bar.progress(0.5 + 0.5 * (epoch + 1) / settings.epochs, f"Head: epoch {epoch + 1}")
                if epoch % 5 == 4:
                    frame = pd.DataFrame(history).reset_index(names="epoch")
                    chart.plotly_chart(px.line(frame, x="epoch", y=[c for c in frame if "accuracy" in c],
                                               title="accuracy"), width="stretch", key=f"tl_curve_{epoch}")

            from vision_backend.small_cnn import epoch_callback

            trained = transfer.train_project(project, base_name, base, settings, [epoch_callback(on_epoch)],
                                             features_progress)
            bar.progress(1.0, f"Done in {trained.seconds:.1f} s: validation accuracy {trained.accuracy:.1%} "
                              f"on {len(trained.labels)} held-out example(s)")
            st.session_state.tl_trained = (project.name, trained)
            frame = pd.DataFrame(trained.history).reset_index(names="epoch")
            chart.plotly_chart(px.line(frame, x="epoch", y=[c for c in frame if c != "epoch"],
                                       title="Training curves"), width="stretch")
            model = transfer.export_model(base_name, base, trained)
            path = project.folder / "models" / f"{base_name}.keras"
            model.save(path)
            (path.with_suffix(".json")).write_text(json.dumps(
                {"classes": trained.names, "validation_accuracy": trained.accuracy, "base": base_name,
                 "settings": trained.settings.__dict__}, indent=1))

    trained_pair = st.session_state.get("tl_trained")
    trained = trained_pair[1] if trained_pair and trained_pair[0] == project.name else None

    with eval_tab, friendly_errors():
        if trained is None:
            st.info("Train a model first (the Train tab).", icon=":material/info:")
        else:
            examples = project.examples()
            st.metric("Validation accuracy", f"{trained.accuracy:.1%}")
            st.caption(f"Validation accuracy {trained.accuracy:.4f} on {len(trained.labels)} held-out examples")
            st.dataframe(pd.DataFrame(trained.per_class()).round(3), hide_index=True, width="stretch")
            st.plotly_chart(px.imshow(trained.confusion(), x=trained.names, y=trained.names, text_auto=True,
                                      color_continuous_scale="Blues", labels={"x": "predicted", "y": "true"},
                                      title="Confusion matrix (validation)"), width="stretch")
            wrong = [(i, p) for i, p, y in zip(trained.validation, trained.probabilities.argmax(1), trained.labels)
                     if p != y]
            if wrong:
                st.markdown("**Misclassified**")
                columns = st.columns(8)
                for k, (i, p) in enumerate(wrong[:16]):
                    with columns[k % 8]:
                        st.image(examples[i].path.read_bytes(), width="stretch")
                        st.caption(f"{examples[i].label} → {trained.names[p]}")
            features, labels, names, _ = transfer.project_features(project, trained.base_name,
                                                                   load_model(trained.base_name))
            from sklearn.decomposition import PCA

            points = PCA(2, random_state=0).fit_transform(features[:, : features.shape[1] // 2])
            st.plotly_chart(px.scatter(x=points[:, 0], y=points[:, 1], color=[names[k] for k in labels],
                                       labels={"x": "PC 1", "y": "PC 2", "color": "class"},
                                       title="Your examples in feature space (PCA of the base's features)"),
                            width="stretch")

    with predict_tab, friendly_errors():
        if trained is None:
            st.info("Train a model first (the Train tab).", icon=":material/info:")
        else:
            base = load_model(trained.base_name)
            app = transfer.BASES[trained.base_name][0]

            def predict(images: list[np.ndarray]) -> np.ndarray:
                features = transfer.embed(base, images, app)
                if trained.settings.mirror:
                    features = np.concatenate([features, transfer.embed(base, [i[:, ::-1] for i in images], app)], 1)
                return transfer.predict_head(trained.head, features, trained.settings)

            probabilities = predict([photo])[0]
            best = int(probabilities.argmax())
            c1, c2 = st.columns(2)
            c1.image(photo, width="stretch")
            c2.caption(f"Prediction for {name}: **{trained.names[best]}** ({probabilities[best]:.0%})")
            c2.plotly_chart(px.bar(x=probabilities, y=trained.names, orientation="h", range_x=[0, 1],
                                   labels={"x": "probability", "y": "class"}), width="stretch")
            batch = st.file_uploader("Predict many photos", type=UPLOAD_TYPES, accept_multiple_files=True,
                                     key="tl_batch_predict")
            if batch:
                rows, images, names_ok = [], [], []
                for upload in batch:
                    try:
                        images.append(decode_upload(upload.getvalue(), upload.name))
                        names_ok.append(upload.name)
                    except ImageIntakeError as error:
                        rows.append({"photo": upload.name, "prediction": f"skipped: {error}"})
                if images:
                    for photo_name, p in zip(names_ok, predict(images)):
                        rows.append({"photo": photo_name, "prediction": trained.names[int(p.argmax())],
                                     **{c: round(float(v), 4) for c, v in zip(trained.names, p)}})
                table = pd.DataFrame(rows)
                st.dataframe(table, hide_index=True, width="stretch")
                st.download_button("Predictions (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv")

    with export_tab, friendly_errors():
        saved = sorted((project.folder / "models").glob("*.keras"))
        if not saved:
            st.info("Train a model first; it is saved with the project.", icon=":material/info:")
        for path in saved:
            meta = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
            st.markdown(f"**{path.stem}** · classes {', '.join(meta.get('classes', []))} · validation accuracy "
                        f"{meta.get('validation_accuracy', float('nan')):.1%}")
            st.caption("Takes raw 224x224 RGB (0-255): the base's scaling is inside the model.")
            e1, e2 = st.columns(2)
            e1.download_button("Keras (.keras)", path.read_bytes(), f"{project.name}_{path.name}",
                               "application/octet-stream", key=f"tl_dl_keras_{path.stem}")
            if e2.button("Convert to ONNX", key=f"tl_onnx_{path.stem}"):
                import keras

                onnx_path = cl.keras_to_onnx(keras.models.load_model(path), path.with_suffix(".onnx"))
                st.session_state[f"tl_onnx_ready_{path.stem}"] = str(onnx_path)
            if st.session_state.get(f"tl_onnx_ready_{path.stem}"):
                onnx_file = path.with_suffix(".onnx")
                e2.download_button("ONNX (.onnx)", onnx_file.read_bytes(), f"{project.name}_{onnx_file.name}",
                                   "application/octet-stream", key=f"tl_dl_onnx_{path.stem}")
