"""Transfer learning studio: label your own classes, train a head on a frozen pretrained CNN, evaluate, predict, export."""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import UPLOAD_TYPES, current_photo, decode_upload, friendly_errors, load_model, load_saved_model
from vision_backend import classification as cl
from vision_backend import models, projects, transfer
from vision_backend.intake import ImageIntakeError, encode_png
from vision_backend.small_cnn import epoch_callback

st.title("Transfer learning")
st.caption("A network trained on ImageNet already knows edges, textures and parts. Freeze it, let it describe each of "
           "your photos with a vector once, and train only a small head on those vectors: seconds, not hours.")

DEMO = "Flowers demo"
RECIPES = {  # widget key -> value; "Teachable Machine" is its documented default recipe
    "Vision Lab": {"tl_base": "mobilenet_v2_notop", "tl_pooling": "layers", "tl_hidden": 0, "tl_dropout": 0.5,
                   "tl_epochs": 150, "tl_lr": 3e-3, "tl_batch": 32},
    "Teachable Machine": {"tl_base": "mobilenet_v1_025_notop", "tl_pooling": "average", "tl_hidden": 100,
                          "tl_dropout": 0.0, "tl_epochs": 50, "tl_lr": 1e-3, "tl_batch": 16},
}


def use_recipe(name: str) -> None:
    for key, value in RECIPES[name].items():
        if key != "tl_base" or models.card(value).ready():
            st.session_state[key] = value


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
        if counts and st.toggle("Take photos with the camera", key="tl_camera_on"):
            k1, k2 = st.columns([1, 2])
            shot_class = k1.selectbox("Add each shot to", list(counts), key="tl_camera_class")
            shot = k2.camera_input("Camera", key="tl_camera", label_visibility="collapsed")
            if shot is not None:
                try:
                    added = project.add_example(shot_class, shot.getvalue(), f"camera_{shot_class}.jpg")
                    st.toast(f"Added a photo to {shot_class}" if added else "That shot is already there")
                except ImageIntakeError as error:
                    st.error(str(error), icon=":material/broken_image:")
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
                n1, n2, n3 = st.columns([2, 1, 1])
                renamed = n1.text_input("Rename to", key=f"tl_rename_{label}", placeholder=label)
                if n2.button("Rename", key=f"tl_rename_go_{label}", disabled=not renamed.strip()):
                    project.rename_class(label, renamed)
                    st.rerun()
                if n3.button(f"Delete class {label}", key=f"tl_del_class_{label}"):
                    project.delete_class(label)
                    st.rerun()
        st.download_button("Export the project (ZIP)", project.export_zip(), f"{project.name}.zip", "application/zip",
                           disabled=not counts)

    with train_tab, friendly_errors():
        ready = [b for b in transfer.BASES if models.card(b).ready()]
        r1, r2, r3 = st.columns([2, 1, 1])
        mode = r1.radio("Mode", ["fast", "full"], horizontal=True, key="tl_mode", format_func={
            "fast": "Fast: cached features, head only", "full": "Full: augmented photos, optional fine-tuning"}.get)
        for column, recipe in zip((r2, r3), RECIPES):
            column.button(f"{recipe} recipe", key=f"tl_recipe_{recipe}", on_click=use_recipe, args=(recipe,),
                          disabled=mode != "fast")
        base_name = st.selectbox("Frozen base", ready, key="tl_base", format_func=lambda b: transfer.BASES[b].title)
        s1, s2, s3, s4 = st.columns(4)
        if mode == "fast":
            d = transfer.HeadSettings()
            pooling = s1.selectbox("Features", list(transfer.POOLINGS), key="tl_pooling",
                                   index=list(transfer.POOLINGS).index(d.pooling), help="\n\n".join(
                                       f"**{k}**: {v}" for k, v in transfer.POOLINGS.items()))
            settings = transfer.HeadSettings(
                pooling=pooling,
                hidden=s2.select_slider("Hidden units", [0, 32, 64, 100, 128, 256, 512], d.hidden, key="tl_hidden",
                                        help="0 = a softmax straight on the features; Teachable Machine uses 100."),
                dropout=s3.slider("Dropout", 0.0, 0.7, d.dropout, 0.05, key="tl_dropout"),
                epochs=s4.slider("Epochs", 5, 300, d.epochs, 5, key="tl_epochs"),
                learning_rate=s1.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], d.learning_rate,
                                               key="tl_lr"),
                validation=s2.slider("Validation share", 0.1, 0.4, d.validation, 0.05, key="tl_val"),
                batch_size=s3.select_slider("Batch size", [8, 16, 32, 64], d.batch_size, key="tl_batch"),
                patience=s4.select_slider("Early stopping (epochs without progress)", [0, 10, 25, 50], d.patience,
                                          key="tl_patience", help="0 = train every epoch"),
                class_weights=s1.toggle("Class weights", d.class_weights, key="tl_weights",
                                        help="Count rare classes more, so a big class cannot drown them."),
                mirror=s2.toggle("Mirror images too", d.mirror, key="tl_mirror",
                                 help="Learn from each photo's mirror image as well (cached like the rest)."),
            )
        else:
            d = transfer.FullSettings()
            settings = transfer.FullSettings(
                pooling=s1.radio("Pooling", ["average", "flatten"], horizontal=True, key="tl_full_pooling",
                                 help="\n\n".join(f"**{k}**: {transfer.POOLINGS[k]}" for k in ("average", "flatten"))),
                hidden=s2.select_slider("Hidden units", [0, 32, 64, 100, 128, 256], d.hidden, key="tl_full_hidden"),
                dropout=s3.slider("Dropout", 0.0, 0.7, d.dropout, 0.05, key="tl_full_dropout"),
                epochs=s4.slider("Epochs (head)", 1, 50, d.epochs, key="tl_full_epochs"),
                learning_rate=s1.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3], d.learning_rate,
                                               key="tl_full_lr"),
                validation=s2.slider("Validation share", 0.1, 0.4, d.validation, 0.05, key="tl_full_val"),
                batch_size=s3.select_slider("Batch size", [4, 8, 16, 32], d.batch_size, key="tl_full_batch"),
                augment=s4.toggle("Augment (flip, turn, zoom, brightness)", d.augment, key="tl_full_augment"),
                fine_tune_layers=s1.slider("Fine-tune the top N base layers", 0, 40, d.fine_tune_layers,
                                           key="tl_full_ft", help="0 = the base stays frozen"),
                fine_tune_epochs=s2.slider("Fine-tuning epochs", 1, 20, d.fine_tune_epochs, key="tl_full_ft_epochs"),
                fine_tune_learning_rate=s3.select_slider("Fine-tuning rate", [1e-6, 1e-5, 1e-4],
                                                         d.fine_tune_learning_rate, key="tl_full_ft_lr"),
                class_weights=s4.toggle("Class weights", d.class_weights, key="tl_full_weights"),
            )
            st.caption("Full mode runs every photo through the base on every epoch: about 2-4 s per epoch for "
                       "200 photos on two cores, more with fine-tuning.")
        for problem in project.problems():
            st.warning(problem, icon=":material/warning:")
        if not project.problems() and st.button("Train", type="primary", key="tl_train"):
            base = load_model(base_name)
            bar = st.progress(0.0, "Features…")
            chart = st.empty()
            history: dict[str, list[float]] = {}
            total_epochs = settings.epochs + (settings.fine_tune_epochs if mode == "full" and
                                              settings.fine_tune_layers else 0)

            def photos_progress(done: int, total: int) -> None:
                what = "Base features for new photos" if mode == "fast" else "Reading photos"
                bar.progress(done / total * 0.3, f"{what}: {done}/{total}")

            def on_epoch(epoch: int, logs: dict) -> None:
                for key, value in logs.items():
                    if key != "learning_rate":
                        history.setdefault(key, []).append(float(value))
                bar.progress(min(1.0, 0.3 + 0.7 * (epoch + 1) / total_epochs), f"Epoch {epoch + 1}/{total_epochs}")
                if mode == "full" or epoch % 5 == 4:
                    frame = pd.DataFrame(history).reset_index(names="epoch")
                    chart.plotly_chart(px.line(frame, x="epoch", y=[c for c in frame if "accuracy" in c],
                                               title="accuracy"), width="stretch", key=f"tl_curve_{epoch}")

            train = transfer.train_project if mode == "fast" else transfer.train_full
            trained = train(project, base_name, base, settings, [epoch_callback(on_epoch)], photos_progress)
            bar.progress(1.0, f"Done in {trained.seconds:.1f} s: validation accuracy {trained.accuracy:.1%} "
                              f"on {len(trained.labels)} held-out example(s)")
            st.session_state.tl_trained = (project.name, trained)
            frame = pd.DataFrame(trained.history).reset_index(names="epoch")
            chart.plotly_chart(px.line(frame, x="epoch", y=[c for c in frame if c not in ("epoch", "learning_rate")],
                                       title="Training curves"), width="stretch")
            project.save_model(f"{base_name}_{mode}", transfer.export_model(base_name, base, trained), {
                "classes": trained.names, "validation_accuracy": trained.accuracy, "base": base_name, "mode": mode,
                "per_class": trained.per_class(), "examples": int(sum(project.counts().values())),
                "settings": trained.settings.__dict__})

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
            pooling = trained.settings.pooling if trained.head is not None else "layers"  # full mode: the default
            features, labels, names, _ = transfer.project_features(project, trained.base_name,
                                                                   load_model(trained.base_name), pooling)
            method = st.radio("Map of your examples", ["PCA", "t-SNE"], horizontal=True, key="tl_projection")
            points = transfer.project_2d(features[:, : features.shape[1] // 2], method)
            st.plotly_chart(px.scatter(x=points[:, 0], y=points[:, 1], color=[names[k] for k in labels],
                                       hover_name=[e.source for e in examples],
                                       labels={"x": f"{method} 1", "y": f"{method} 2", "color": "class"},
                                       title=f"Your examples in feature space ({method} of the base's features)"),
                            width="stretch")

    with predict_tab, friendly_errors():
        saved = project.saved_models()
        choices = (["session"] if trained is not None else []) + list(saved)
        if not choices:
            st.info("Train a model first (the Train tab); trained models are saved with the project.",
                    icon=":material/info:")
        else:
            choice = st.selectbox("Model", choices, key="tl_predict_model", format_func=lambda c: (
                "The model you just trained" if c == "session" else
                f"Saved: {c} ({saved[c][1].get('validation_accuracy', float('nan')):.0%} validation)"))
            if choice == "session":
                base = load_model(trained.base_name)
                class_names = trained.names

                def predict(images: list[np.ndarray]) -> np.ndarray:
                    return transfer.predict_images(trained, base, images)
            else:
                path, meta = saved[choice]
                model = load_saved_model(str(path), path.stat().st_mtime)
                class_names = meta["classes"]

                def predict(images: list[np.ndarray]) -> np.ndarray:
                    return transfer.photo_probabilities(model, images)

            probabilities = predict([photo])[0]
            best = int(probabilities.argmax())
            c1, c2 = st.columns(2)
            c1.image(photo, width="stretch")
            c2.caption(f"Prediction for {name}: **{class_names[best]}** ({probabilities[best]:.0%})")
            c2.plotly_chart(px.bar(x=probabilities, y=class_names, orientation="h", range_x=[0, 1],
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
                        rows.append({"photo": photo_name, "prediction": class_names[int(p.argmax())],
                                     **{c: round(float(v), 4) for c, v in zip(class_names, p)}})
                table = pd.DataFrame(rows)
                st.dataframe(table, hide_index=True, width="stretch")
                st.download_button("Predictions (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv")

    with export_tab, friendly_errors():
        saved = project.saved_models()
        if not saved:
            st.info("Train a model first; it is saved with the project.", icon=":material/info:")
        for stem, (path, meta) in saved.items():
            st.markdown(f"**{stem}** · classes {', '.join(meta.get('classes', []))} · validation accuracy "
                        f"{meta.get('validation_accuracy', float('nan')):.1%}")
            st.caption("Takes raw 224x224 RGB (0-255): the base's scaling is inside the model.")
            e1, e2, e3 = st.columns(3)
            e1.download_button("Keras (.keras)", path.read_bytes(), f"{project.name}_{path.name}",
                               "application/octet-stream", key=f"tl_dl_keras_{stem}")
            for column, (fmt, convert) in zip((e2, e3), (("onnx", cl.keras_to_onnx), ("tflite", cl.keras_to_tflite))):
                target = path.with_suffix(f".{fmt}")
                if not target.is_file() and column.button(f"Convert to {fmt.upper()}", key=f"tl_{fmt}_{stem}"):
                    with st.spinner(f"Converting to {fmt.upper()}…"):
                        convert(load_saved_model(str(path), path.stat().st_mtime), target)
                if target.is_file():
                    column.download_button(f"{fmt.upper()} (.{fmt})", target.read_bytes(),
                                           f"{project.name}_{target.name}", "application/octet-stream",
                                           key=f"tl_dl_{fmt}_{stem}")
