"""Your own objects: draw boxes for your own classes, train a detector on them (R-CNN the deck's way, step by step,
or a fast one for the live camera), measure it and use it."""

import numpy as np
import streamlit as st

from pages._own_label import (add_photos, apply_pending, box_list, classes_row, flash, keep_report, kept_choice,
                              label_photo, navigator, show_report, then_rerun)
from pages._own_measure import detect_tab, evaluate_tab, rcnn_tab
from pages._own_train import train_tab
from pages._shared import current_photo, ensure_ready, friendly_errors, literal, start_page, tabbed, workspace
from vision_backend.own_detection import sample
from vision_backend.own_detection.projects import DetectionProject
from vision_backend.workspace import Workspace

EXPORTS = {"voc": "Pascal VOC XML", "coco": "COCO JSON", "yolo": "YOLO txt"}


# ---- the project ----------------------------------------------------------------------------------------
def open_project() -> DetectionProject | None:
    space = workspace()
    existing = space.detection_projects()
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Detection project", existing, key=kept_choice("own_project", existing)) if existing else None
    if not existing:
        c1.info("No detection project yet: load the raccoon set or create one.", icon=":material/folder_open:")
    new = c2.text_input("New project", key="own_new_name", placeholder="e.g. my mugs")
    if c3.button("Create", key="own_create", disabled=not new.strip()):
        with friendly_errors():
            created = space.detection_project(new)
            flash(f"Opened the existing project {literal(created.name)}" if created.name in existing else
                  f"Created the project {literal(created.name)}")
            then_rerun(switch_to=created.name, clear=("own_new_name",))
    sample_button(space, existing)
    return space.detection_project(chosen, create=False) if chosen else None


def sample_button(space: Workspace, existing: list[str]) -> None:
    """The raccoon set in one click (200 real photos, 217 boxes), fetched first where this machine has none yet."""
    card = sample.RACCOON_SET
    if sample.SAMPLE_PROJECT in existing or not (card.ready() or card.downloadable()):
        return
    first = "" if card.ready() else " — fetched first"
    if st.button(f"Load the raccoon sample set (200 photos, 217 boxes){first}", key="own_sample", type="primary",
                 icon=":material/pets:") and ensure_ready(card):
        bar = st.progress(0.0, "Adding the raccoons…")
        report = sample.load_sample(space.detection_project(sample.SAMPLE_PROJECT),
                                    lambda done, total: bar.progress(done / total, f"Stored {done} of {total} photos"))
        keep_report("The raccoon sample set", report)
        then_rerun(switch_to=sample.SAMPLE_PROJECT)


# ---- Label ----------------------------------------------------------------------------------------------
def label_tab(project: DetectionProject, photo_name: str, photo: np.ndarray) -> None:
    photos = project.photos()
    boxes = sum(p.boxes for p in photos)
    st.markdown(f"**{literal(project.name)}**: {len(photos)} photo{'s' if len(photos) != 1 else ''}, {boxes} "
                f"box{'es' if boxes != 1 else ''} (stored in your workspace; a restart loses nothing).")
    classes_row(project)
    add_photos(project, photo_name, photo, empty=not photos)
    classes = project.classes()
    if not photos:
        return
    chosen = navigator(project, photos)
    if not classes:
        st.info("Add a class first (above): each box you draw gets one.", icon=":material/label:")
        return
    label_photo(project, chosen, classes)
    box_list(project, chosen, classes)


# ---- Import / export --------------------------------------------------------------------------------------
def import_tab(project: DetectionProject) -> None:
    version = st.session_state.get("own_zip_version", 0)
    upload = st.file_uploader("A ZIP of photos and their boxes: Pascal VOC XML, COCO JSON or YOLO txt (found by "
                              "itself), or photos alone", type=["zip"], key=f"own_zip_{version}")
    with st.expander("Photos turned by their EXIF orientation"):
        exif = st.radio("Their boxes were drawn on", ["auto", "stored", "upright"], horizontal=True, key="own_exif",
                        format_func={"auto": "decide photo by photo (by the declared size, else as stored)",
                                     "stored": "the pixels as stored (labelImg, darknet)",
                                     "upright": "the photo turned upright (CVAT, labelme)"}.get)
    if upload is not None and st.button("Import", key="own_import", type="primary"):
        bar = st.progress(0.0, "Reading and checking every photo and box…")
        report = project.import_set(upload.getvalue(), lambda done, total: bar.progress(
            done / max(total, 1), f"Stored {done:,} of {total:,} photos"), exif)
        st.session_state.own_zip_version = version + 1
        keep_report(f"Import of {upload.name}", report)
        then_rerun()
    st.subheader("Export")
    st.caption("Every photo (upright, with no EXIF tag, so every tool sees the pixels its boxes are on) and its boxes "
               "as a ZIP; importing it again gives back every box to the pixel.")
    columns = st.columns(len(EXPORTS))
    for column, (fmt, title) in zip(columns, EXPORTS.items()):
        column.download_button(title, lambda f=fmt: project.export(f), f"{project.name}_{fmt}.zip", "application/zip",
                               key=f"own_export_{fmt}", on_click="ignore", disabled=not project.photos(),
                               icon=":material/download:")


# ---- the page ---------------------------------------------------------------------------------------------
start_page("Your own objects", "Draw boxes around your own objects, train a detector on them (R-CNN the deck's way, "
           "step by step, or a fast one for the live camera), measure it on photos it never saw, and use it here, "
           "on the live camera, from the command line and the API.")
apply_pending()
photo_name, photo = current_photo()
project = None
with friendly_errors():
    project = open_project()
show_report()
if project is not None:
    tabbed({"Label": lambda: label_tab(project, photo_name, photo), "Import / export": lambda: import_tab(project),
            "Train": lambda: train_tab(project), "R-CNN step by step": lambda: rcnn_tab(project),
            "Evaluate": lambda: evaluate_tab(project), "Detect": lambda: detect_tab(project, photo_name, photo)})
