"""Transfer learning studio: label your own classes, train a head on a frozen pretrained CNN, evaluate, predict, export."""

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import (UPLOAD_TYPES, current_photo, decode_photo, ensure_ready, friendly_errors, guarded_fragment,
                           keep, literal, settings_widgets, start_page, tabbed, workspace)
from vision_backend import models
from vision_backend.archive import ArchiveError
from vision_backend import convert
from vision_backend.intake import ImageIntakeError, encode_png
from vision_backend.small_cnn.training import epoch_callback
from vision_backend.transfer import demo, evaluate, export, features, full, head
from vision_backend.transfer.bases import BASES
from vision_backend.storage import SavedModel
from vision_backend.transfer.projects import Project, thumbnail
from vision_backend.workspace import Workspace

MODES = {"fast": "Fast: cached features, head only", "full": "Full: augmented photos, optional fine-tuning"}
PER_PAGE = 32  # thumbnails per page of a class; every photo is on some page, so every one can be deleted
SHOWN_SKIPPED = 50


# ---- small helpers ------------------------------------------------------------------------------
def flash(text: str) -> None:
    """A message for the next run (actions rerun the page so every count is fresh)."""
    st.session_state.setdefault("tl_flash", []).append(text)


def then_rerun(switch_to: str | None = None, clear: tuple[str, ...] = ()) -> None:
    """Rerun the page; before its widgets are drawn, switch to a project and empty name boxes."""
    if switch_to is not None:
        st.session_state.tl_switch_to = switch_to
    st.session_state.tl_clear = [*st.session_state.get("tl_clear", []), *clear]
    st.rerun()


def apply_pending() -> None:
    if "tl_switch_to" in st.session_state:
        st.session_state.tl_project = st.session_state.pop("tl_switch_to")
    for key in st.session_state.pop("tl_clear", []):
        st.session_state[key] = ""


def skipped_list(lines: list[str]) -> None:
    """What was not added, one line per file."""
    shown = "\n".join(f"- {literal(line)}" for line in lines[:SHOWN_SKIPPED])
    more = f"\n- … and {len(lines) - SHOWN_SKIPPED} more" if len(lines) > SHOWN_SKIPPED else ""
    st.warning(f"Skipped:\n{shown}{more}", icon=":material/warning:")


def notes_list(lines: list[str]) -> None:
    """What the person should know about files that were added ("frame 1 of 3"), one line each."""
    if lines:
        st.info("\n".join(f"- {literal(line)}" for line in lines[:SHOWN_SKIPPED]), icon=":material/filter_frames:")


@st.cache_data(max_entries=600, show_spinner=False)
def small_photo(path: str) -> np.ndarray | None:
    """A stored photo's thumbnail, decoded to RGB (files are named by their content, so the path is the key)."""
    return thumbnail(Path(path), 128)


def use_recipe(name: str) -> None:
    """The recipe's settings into the widgets, and its base (named by its role) where that base is here."""
    recipe = dict(head.RECIPES[name])
    base = models.default(recipe.pop("base"))
    if base.ready():
        st.session_state.tl_base = base.name
    for setting, value in recipe.items():
        st.session_state[f"tl_{setting}"] = value


# ---- the project ------------------------------------------------------------------------------------
def open_project() -> Project | None:
    space = workspace()
    existing = space.projects()
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    chosen = None
    if existing:
        chosen = c1.selectbox("Project", existing, key=keep("tl_project", existing[0]))
    else:
        c1.info("No project yet: load the demo or create one.", icon=":material/folder_open:")
    new = c2.text_input("New project", key="tl_new_name", placeholder="e.g. my mugs")
    if c3.button("Create", key="tl_create", disabled=not new.strip()):
        with friendly_errors():
            created = space.project(new, create=True)
            flash(f"Opened the existing project {literal(created.name)}" if created.name in existing else
                  f"Created the project {literal(created.name)}")
            then_rerun(switch_to=created.name, clear=("tl_new_name",))
    demo_button(space, existing)
    return space.project(chosen, create=False) if chosen in existing else None


def demo_button(space: Workspace, existing: list[str]) -> None:
    """The flowers demo in one click; its photos are fetched first when this machine has none yet."""
    card = demo.DEMO_CLASSES
    if demo.DEMO_PROJECT in existing or not (card.ready() or card.downloadable()):
        return
    first = "" if card.ready() else f" — fetched first ({card.download_size() / 1e6:.0f} MB, {card.licence})"
    if st.button(f"Load the flowers demo project (5 classes x 50 real photos){first}", key="tl_demo",
                 type="primary") and ensure_ready(card):
        with st.spinner("Adding the demo's photos…"):
            demo.load_demo_project(space.project(demo.DEMO_PROJECT))
        then_rerun(switch_to=demo.DEMO_PROJECT)


# ---- Label ----------------------------------------------------------------------------------------
def label_tab(project: Project, photo_name: str, photo: np.ndarray) -> None:
    for text in st.session_state.pop("tl_flash", []):
        st.toast(text)
    refused_uploads()
    counts = project.counts()
    st.markdown(f"**{literal(project.name)}**: {len(counts)} classes, {sum(counts.values())} examples "
                "(stored on this machine; a restart loses nothing).")
    a1, a2 = st.columns([3, 1], vertical_alignment="bottom")
    new_class = a1.text_input("New class", key="tl_new_class", placeholder="e.g. cat")
    if a2.button("Add class", key="tl_add_class", disabled=not new_class.strip()):
        flash(f"Added the class {literal(project.add_class(new_class))}")
        then_rerun(clear=("tl_new_class",))
    if counts:
        add_current_photo(project, list(counts), photo_name, photo)
        camera_shots(project, list(counts))
    zip_import(project)
    for label in counts:
        class_expander(project, label, list(counts))
    st.download_button("Export the project (ZIP)", project.export_zip, f"{project.name}.zip", "application/zip",
                       disabled=not counts, on_click="ignore", key="tl_export_zip")


def add_current_photo(project: Project, classes: list[str], photo_name: str, photo: np.ndarray) -> None:
    b1, b2 = st.columns([3, 1], vertical_alignment="bottom")
    target = b1.selectbox("Add the current photo to", classes, key=keep("tl_photo_class", classes[0]))
    if b2.button("Add photo", key="tl_add_photo"):
        added = project.add_example(target, encode_png(photo), photo_name)
        flash(f"Added {literal(photo_name)} to {literal(target)}" if added else f"{literal(photo_name)} is already in {literal(target)}")
        then_rerun()


@guarded_fragment
def camera_shots(project: Project, classes: list[str]) -> None:
    if not st.toggle("Take photos with the camera", key=keep("tl_camera_on", False)):
        return
    k1, k2 = st.columns([1, 2])
    target = k1.selectbox("Add each shot to", classes, key=keep("tl_camera_class", classes[0]))
    shot = k2.camera_input("Camera", key="tl_camera", label_visibility="collapsed")
    if shot is None or st.session_state.get("tl_camera_done") == shot.file_id:
        return  # each shot is added once, not again on every rerun
    st.session_state.tl_camera_done = shot.file_id
    try:
        added = project.add_example(target, shot.getvalue(), f"camera_{target}.jpg")
    except ImageIntakeError as error:
        st.error(str(error), icon=":material/broken_image:")
        return
    flash(f"Added a photo to {literal(target)}" if added else "That shot is already there")
    then_rerun()


def zip_import(project: Project) -> None:
    result = st.session_state.pop("tl_zip_result", None)
    with st.expander("Import a ZIP (one folder per class)", expanded=result is not None):
        if result is not None:
            st.success(f"Imported {result[0]} image(s).", icon=":material/check:")
            if result[1]:
                skipped_list(result[1])
            notes_list(result[2])
        archive = st.file_uploader("ZIP", type=["zip"], key="tl_zip")
        if archive is not None and st.button("Import", key="tl_zip_go"):
            try:
                notes: list[str] = []
                bar = st.progress(0.0, "Reading the archive…")
                result = project.import_zip(archive, notes, lambda done, total: bar.progress(
                    done / max(total, 1), f"Checked and stored {done:,} of {total:,} entries"))
                st.session_state.tl_zip_result = (*result, notes)
            except ArchiveError as error:
                st.error(f"{archive.name}: {error}", icon=":material/folder_zip:")
                return
            then_rerun()


@guarded_fragment
def class_expander(project: Project, label: str, classes: list[str]) -> None:
    """One class: its photos (count and thumbnails read together), uploads, move, rename, delete."""
    examples = project.examples(label)
    with st.expander(f"{literal(label)} · {len(examples)} example(s)", expanded=not examples), friendly_errors():
        add_uploads(project, label)
        thumbnails(project, label, examples)
        move_example(project, label, examples, classes)
        n1, n2, n3 = st.columns([2, 1, 1], vertical_alignment="bottom")
        renamed = n1.text_input("Rename to", key=f"tl_rename_{label}", placeholder=label)
        if n2.button("Rename", key=f"tl_rename_go_{label}", disabled=not renamed.strip()):
            project.rename_class(label, renamed)
            then_rerun(clear=(f"tl_rename_{label}",))
        if n3.button(f"Delete class {literal(label)}", key=f"tl_del_class_{label}"):
            project.delete_class(label)
            then_rerun()


def refused_uploads() -> None:
    """What the last upload did not add and why, at the top of the tab where it cannot be missed (a class's panel
    folds away once it has photos)."""
    if refused := st.session_state.pop("tl_refused", None):
        label, skipped, notes = refused
        if skipped:
            st.warning(f"**{len(skipped)} photo(s) not added to {literal(label)}:**", icon=":material/warning:")
            skipped_list(skipped)
        notes_list(notes)


def add_uploads(project: Project, label: str) -> None:
    version = st.session_state.get(f"tl_up_version_{label}", 0)  # a new uploader once its photos are in
    uploads = st.file_uploader(f"Add photos to {literal(label)}", type=UPLOAD_TYPES, accept_multiple_files=True,
                               key=f"tl_up_{label}_{version}")
    if uploads and st.button(f"Add {len(uploads)} photo(s)", key=f"tl_up_go_{label}"):
        notes: list[str] = []
        added, skipped = project.add_examples(label, ((u.name, u.getvalue()) for u in uploads), notes)
        st.session_state.tl_refused = (label, skipped, notes)
        st.session_state[f"tl_up_version_{label}"] = version + 1
        flash(f"Added {added} photo(s) to {literal(label)}" + (f"; {len(skipped)} not added: see why above"
                                                               if skipped else ""))
        then_rerun()


def thumbnails(project: Project, label: str, examples: list) -> None:
    """Every stored photo, decoded the one way photos are (so none can break the page), a page at a time."""
    pages = max(1, -(-len(examples) // PER_PAGE))
    page = st.selectbox("Page", range(1, pages + 1), key=keep(f"tl_page_{label}", 1),
                        format_func=lambda p: f"photos {(p - 1) * PER_PAGE + 1}–{min(p * PER_PAGE, len(examples))} "
                                              f"of {len(examples)}") if pages > 1 else 1
    columns = st.columns(8)
    for i, example in enumerate(examples[(page - 1) * PER_PAGE : page * PER_PAGE]):
        with columns[i % 8]:
            image = small_photo(str(example.path))
            if image is None:
                st.caption("cannot be shown")
            else:
                st.image(image, caption=f"#{example.id}", width="stretch")
            if st.button("Delete", key=f"tl_del_{example.id}"):
                project.delete_example(example.id)
                then_rerun()


def move_example(project: Project, label: str, examples: list, classes: list[str]) -> None:
    if not examples:
        return
    others = [c for c in classes if c != label]
    m1, m2, m3 = st.columns(3, vertical_alignment="bottom")
    moved = m1.selectbox("Move example", [e.id for e in examples], key=f"tl_move_{label}",
                         format_func=lambda i: f"#{i}")
    to = m2.selectbox("to class", others or [label], key=f"tl_move_to_{label}")
    if m3.button("Move", key=f"tl_move_go_{label}", disabled=not others):
        project.move_example(moved, to)
        then_rerun()


# ---- Train ----------------------------------------------------------------------------------------
def fast_settings() -> head.HeadSettings:
    settings = settings_widgets(head.PARAMS, lambda p: f"tl_{p.name}", columns=4)
    st.caption("Fast mode runs each new photo (and its mirror image) through the base once, about 0.05 s a photo "
               "on two cores, and keeps the features; the head then trains in about a second (the flowers demo's "
               "250 photos, 150 epochs).")
    return head.HeadSettings(**settings)


def full_settings() -> full.FullSettings:
    settings = settings_widgets(full.PARAMS, lambda p: f"tl_full_{p.name}", columns=4)
    st.caption("Full mode runs every photo through the base on every epoch: about 2-4 s per epoch for "
               "200 photos on two cores, more with fine-tuning.")
    return full.FullSettings(**settings)


@guarded_fragment
def train_tab(project: Project, trained: evaluate.Trained | None) -> None:
    ready = [name for name, base in BASES.items() if base.ready()]
    if not ready:
        st.warning("No frozen base is on this machine yet (see Home's model table).", icon=":material/download:")
        return
    r1, r2, r3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    mode = r1.radio("Mode", list(MODES), horizontal=True, key=keep("tl_mode", "fast"), format_func=MODES.get)
    for column, recipe in zip((r2, r3), head.RECIPES):
        column.button(f"{recipe} recipe", key=f"tl_recipe_{recipe}", on_click=use_recipe, args=(recipe,),
                      disabled=mode != "fast")
    base = BASES[st.selectbox("Frozen base", ready, key=keep("tl_base", ready[0]), format_func=lambda b: BASES[b].title)]
    settings = fast_settings() if mode == "fast" else full_settings()
    problems = project.problems()
    for problem in problems:
        st.warning(problem, icon=":material/warning:")
    if trained is not None:
        last_training(trained)
    if not problems and st.button("Train", type="primary", key="tl_train"):
        run_training(project, base, mode, settings)


def curves(history: dict[str, list[float]], columns: Callable[[str], bool], title: str) -> Any:
    frame = pd.DataFrame(history).reset_index(names="epoch")
    return px.line(frame, x="epoch", y=[c for c in frame if c != "epoch" and columns(c)], markers=len(frame) < 2,
                   title=title)


def run_training(project: Project, base: Any, mode: str, settings: Any) -> None:
    """Train with a progress bar and live curves, keep the model with the project, and rerun so every tab shows it."""
    bar = st.progress(0.0, "Features…")
    chart = st.empty()
    history: dict[str, list[float]] = {}
    total = settings.epochs + (settings.fine_tune_epochs if mode == "full" and settings.fine_tune_layers else 0)
    drawn = [0.0]  # fast mode's 150 epochs take about a second: redraw the curves at most every 0.5 s

    def photos_progress(done: int, count: int) -> None:
        what = "Base features for new photos" if mode == "fast" else "Reading photos"
        bar.progress(done / count * 0.3, f"{what}: {done}/{count}")

    def on_epoch(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        bar.progress(min(1.0, 0.3 + 0.7 * (epoch + 1) / total), f"Epoch {epoch + 1}/{total}")
        if mode == "full" or time.perf_counter() - drawn[0] > 0.5:
            drawn[0] = time.perf_counter()
            chart.plotly_chart(curves(history, lambda c: "accuracy" in c, "accuracy"), width="stretch",
                               key=f"tl_curve_{epoch}")

    if mode == "fast":
        trained = head.train_project(project, base, settings, on_epoch, photos_progress)
    else:
        trained = full.train_full(project, base, settings, [epoch_callback(on_epoch)], photos_progress)
    bar.progress(1.0, "Saving the model with the project…")
    export.save_trained(project, base, trained)
    st.session_state.tl_trained = (project.name, trained)
    then_rerun()


def last_training(trained: evaluate.Trained) -> None:
    st.success(f"Done in {trained.seconds:.1f} s: validation accuracy {trained.accuracy:.1%} on "
               f"{len(trained.labels)} held-out example(s); saved with the project.", icon=":material/check:")
    st.plotly_chart(curves(trained.history, lambda c: c != "learning_rate", "Training curves"), width="stretch")


# ---- Evaluate -------------------------------------------------------------------------------------
def evaluate_tab(project: Project, trained: evaluate.Trained | None) -> None:
    if trained is None:
        st.info("Train a model first (the Train tab).", icon=":material/info:")
        return
    st.metric("Validation accuracy", f"{trained.accuracy:.1%}")
    st.caption(f"Validation accuracy {trained.accuracy:.4f} on {len(trained.labels)} held-out examples")
    st.dataframe(pd.DataFrame(trained.per_class()).round(3), hide_index=True, width="stretch")
    st.plotly_chart(px.imshow(trained.confusion(), x=trained.names, y=trained.names, text_auto=True,
                              color_continuous_scale="Blues", labels={"x": "predicted", "y": "true"},
                              title="Confusion matrix (validation)"), width="stretch")
    wrong = trained.misclassified()
    examples = project.examples()
    if wrong:
        st.markdown("**Misclassified**")
        columns = st.columns(8)
        for k, (i, predicted) in enumerate((i, p) for i, p in wrong[:16] if i < len(examples)):
            with columns[k % 8]:
                image = small_photo(str(examples[i].path))
                if image is not None:
                    st.image(image, width="stretch")
                st.caption(f"{literal(examples[i].label)} → {literal(trained.names[predicted])}")
    feature_map(project, trained)


@guarded_fragment
def feature_map(project: Project, trained: evaluate.Trained) -> None:
    method = st.radio("Map of your examples", ["PCA", "t-SNE"], horizontal=True, key=keep("tl_projection", "PCA"))
    pooling = trained.settings.pooling if trained.head is not None else "layers"  # full mode: the default
    with st.spinner(f"Features and {method}…"):
        vectors, labels, names, examples = features.project_features(project, BASES[trained.base_name], pooling)
        points = evaluate.project_2d(vectors[:, : vectors.shape[1] // 2], method)  # the photos, not their mirrors
    st.plotly_chart(px.scatter(x=points[:, 0], y=points[:, 1], color=[names[k] for k in labels],
                               hover_name=[e.source for e in examples],
                               labels={"x": f"{method} 1", "y": f"{method} 2", "color": "class"},
                               title=f"Your examples in feature space ({method} of the base's features)"),
                    width="stretch")


# ---- Predict --------------------------------------------------------------------------------------
def predictor(choice: str, trained: evaluate.Trained | None, saved: dict) -> tuple[list[str], Callable]:
    """(class names, photos -> probabilities) for the model chosen: the one just trained, or one saved earlier."""
    if choice == "session":
        base = BASES[trained.base_name]
        return trained.names, lambda images: export.predict_images(trained, base, images)
    chosen = saved[choice]
    return chosen.meta["classes"], lambda images: export.saved_probabilities(chosen, images)


@guarded_fragment
def predict_tab(project: Project, trained: evaluate.Trained | None, photo_name: str, photo: np.ndarray) -> None:
    saved = project.saved_models()
    choices = (["session"] if trained is not None else []) + list(saved)
    if not choices:
        st.info("Train a model first (the Train tab); trained models are saved with the project.",
                icon=":material/info:")
        return
    choice = st.selectbox("Model", choices, key=keep("tl_predict_model", choices[0]), format_func=lambda c: (
        "The model you just trained" if c == "session" else
        f"Saved: {c} ({saved[c].meta.get('validation_accuracy', float('nan')):.0%} validation)"))
    class_names, predict = predictor(choice, trained, saved)
    probabilities = predict([photo])[0]
    best = int(probabilities.argmax())
    c1, c2 = st.columns(2)
    c1.image(photo, width="stretch")
    c2.caption(f"Prediction for {literal(photo_name)}: **{literal(class_names[best])}** ({probabilities[best]:.0%})")
    c2.plotly_chart(px.bar(x=probabilities, y=class_names, orientation="h", range_x=[0, 1],
                           labels={"x": "probability", "y": "class"}), width="stretch")
    batch = st.file_uploader("Predict many photos", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key="tl_batch_predict")
    if batch:
        predict_many(batch, class_names, predict)


def predict_many(uploads: list, class_names: list[str], predict: Callable) -> None:
    rows, images, names, notes = [], [], [], []
    for upload in uploads:
        try:
            photo = decode_photo(upload.getvalue(), upload.name)
            images.append(photo.image)
            names.append(upload.name)
            notes.append(photo.note)
        except ImageIntakeError as error:
            rows.append({"photo": upload.name, "prediction": f"skipped: {error}"})
    notes_list([note for note in notes if note])
    if images:
        rows += export.prediction_rows(names, predict(images), class_names)
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Predictions (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv",
                       on_click="ignore")


# ---- Export ---------------------------------------------------------------------------------------
def export_tab(project: Project) -> None:
    saved = project.saved_models()
    if not saved:
        st.info("Train a model first; it is saved with the project.", icon=":material/info:")
    for model in saved.values():
        export_row(project, model)


@guarded_fragment
def export_row(project: Project, saved: SavedModel) -> None:
    meta = saved.meta
    size = BASES[meta["base"]].size if meta.get("base") in BASES else 224
    st.markdown(f"**{literal(saved.stem)}** · classes {literal(', '.join(meta.get('classes', [])))} · validation accuracy "
                f"{meta.get('validation_accuracy', float('nan')):.1%}")
    st.caption(f"Takes raw {size}x{size} RGB (0-255): the base's scaling is inside the model.")
    e1, e2, e3 = st.columns(3)
    e1.download_button("Keras (.keras)", saved.read, f"{project.name}_{saved.stem}.keras", "application/octet-stream",
                       key=f"tl_dl_keras_{saved.stem}", on_click="ignore")
    for column, (fmt, conversion) in zip((e2, e3), (("onnx", convert.keras_to_onnx),
                                                    ("tflite", convert.keras_to_tflite))):
        conversion_cell(column.empty(), project, saved, fmt, conversion)


def conversion_cell(slot: Any, project: Project, saved: SavedModel, fmt: str, conversion: Callable) -> None:
    """"Convert to X" until the file exists, then its download in the same place: one or the other, never both."""
    folder = project.derived / "exports"
    target = folder / f"{saved.key.removesuffix('.keras')}.{fmt}"
    if not target.is_file():
        if not slot.button(f"Convert to {fmt.upper()}", key=f"tl_{fmt}_{saved.stem}"):
            return
        with st.spinner(f"Converting to {fmt.upper()}…"):
            target = export.converted(saved, fmt, folder, conversion)
    slot.download_button(f"{fmt.upper()} (.{fmt})", target.read_bytes, f"{project.name}_{saved.stem}.{fmt}",
                         "application/octet-stream", key=f"tl_dl_{fmt}_{saved.stem}", on_click="ignore")


# ---- the page -------------------------------------------------------------------------------------
def session_trained(project: Project) -> evaluate.Trained | None:
    """The model trained in this browser session, if it was trained on this project."""
    pair = st.session_state.get("tl_trained")
    return pair[1] if pair and pair[0] == project.name else None


start_page("Transfer learning", "A network trained on ImageNet already knows edges, textures and parts. Freeze it, "
           "let it describe each of your photos with a vector once, and train only a small head on those vectors: "
           "seconds, not hours.")
apply_pending()
photo_name, photo = current_photo()
project = None
with friendly_errors():
    project = open_project()
if project is not None:
    trained = session_trained(project)
    tabbed({"Label": lambda: label_tab(project, photo_name, photo), "Train": lambda: train_tab(project, trained),
            "Evaluate": lambda: evaluate_tab(project, trained),
            "Predict": lambda: predict_tab(project, trained, photo_name, photo), "Export": lambda: export_tab(project)})
